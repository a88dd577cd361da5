"""Budgets and costs: the refusal, the box deadline, the 80 % warning, and the commands' bad input."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from padlab import ledger, money
from padlab.errors import PadlabError
from padlab.providers.base import Machine
from tests.helpers import one_line_error, padlab, padlab_json

H = 3600.0


def ran(profile: str, hours: float, price: float, now: float) -> None:
    """A machine that ran `hours` up to `now` at `price`, and runs still."""
    ledger.observe(profile, Machine(state="off", price_per_hour=price), now - hours * H)
    ledger.observe(profile, Machine(state="running", price_per_hour=price), now - hours * H)
    ledger.observe(profile, Machine(state="running", price_per_hour=price), now)


@pytest.mark.parametrize("text", ["-5", "lots", "nan", "inf", ""])
def test_bad_amounts(text: str) -> None:
    with pytest.raises(PadlabError, match="padlab budget 50"):
        money.parse_amount(text)


def test_amounts() -> None:
    assert money.parse_amount("$12.504") == 12.5 and money.parse_amount("0") == 0


def test_a_spent_budget_refuses_up(home: Path) -> None:
    now = time.time()
    ran("gpu", 2, 5.0, now)  # $10
    money.set_budget(None, 10)
    with pytest.raises(PadlabError) as err:
        money.check_up("gpu", over_budget=False)
    text = str(err.value)
    assert "$10.00" in text and "--over-budget" in text and "padlab budget AMOUNT" in text
    money.check_up("gpu", over_budget=True)  # lifted for one run
    money.set_budget(None, None)
    money.set_budget("gpu", 9)
    with pytest.raises(PadlabError, match="padlab budget gpu AMOUNT"):
        money.check_up("gpu", over_budget=False)
    money.check_up("other", over_budget=False)  # gpu's budget is not other's


def test_the_remaining_budget_becomes_the_boxes_deadline(home: Path) -> None:
    now = time.time()
    ran("gpu", 1, 2.0, now)  # $2 of $10 spent
    money.set_budget(None, 10)
    fields = money.box_fields("gpu", 2.0, over_budget=False, now=now)
    assert fields["deadline_at"] == pytest.approx(now + 4 * H, abs=5)
    assert "$8.00 left at $2.00/h" in fields["deadline_why"]
    assert fields["budget_warn_at"] == pytest.approx(now + 3 * H, abs=5)  # at $8 spent: 80 %
    # Another running profile drains an all-profiles budget too.
    ran("other", 0.1, 2.0, now)
    both = money.box_fields("gpu", 2.0, over_budget=False, now=now)
    assert both["deadline_at"] < fields["deadline_at"]
    assert money.box_fields("gpu", 2.0, over_budget=True, now=now) == {}
    assert money.box_fields("gpu", None, over_budget=False, now=now) == {}  # no price: no guess


def test_warnings_at_eighty_percent(home: Path) -> None:
    ran("gpu", 1, 8.5, time.time())
    money.set_budget("gpu", 10)
    [line] = money.warnings("gpu")
    assert "85% of gpu's monthly budget" in line


def test_costs_shape(home: Path) -> None:
    now = time.time()
    ran("gpu", 1.5, 2.0, now)
    data = money.costs(now=now)
    assert data["estimate"] and data["profiles"]["gpu"]["hours"] == pytest.approx(1.5, abs=0.01)
    assert data["total_usd"] == pytest.approx(3.0, abs=0.02)
    assert sum(data["days"].values()) == pytest.approx(3.0, abs=0.02)


# -- the commands ------------------------------------------------------------------------------


def test_budget_command(tmp_path: Path) -> None:
    home = tmp_path / "h"
    padlab(home, "init", "lab", "--provider", "local")
    assert "$50.00 per month" in padlab(home, "budget", "50").stdout
    assert "$20.00 per month" in padlab(home, "budget", "lab", "20").stdout
    view = padlab_json(home, "budget")
    assert set(view["budgets"]) == {"*", "lab"} and view["budgets"]["lab"]["spent_usd"] == 0
    padlab(home, "budget", "off")
    assert set(padlab_json(home, "budget")["budgets"]) == {"lab"}
    assert "negative" not in one_line_error(padlab(home, "budget", "-5", check=False))
    assert "not an amount" in one_line_error(padlab(home, "budget", "lots", check=False))
    assert "nosuch" in one_line_error(padlab(home, "budget", "nosuch", "5", check=False))
    assert "at most" in one_line_error(padlab(home, "budget", "a", "b", "c", check=False))


def test_costs_command(tmp_path: Path) -> None:
    home = tmp_path / "h"
    padlab(home, "init", "lab", "--provider", "local")
    data = padlab_json(home, "costs")
    assert data["total_usd"] == 0 and data["profiles"] == {} and data["estimate"] is True
    assert "estimate" in padlab(home, "costs").stdout
    assert "YYYY-MM" in one_line_error(padlab(home, "costs", "--month", "2026-13", check=False))
    for month in ("0000-01", "9999-12"):  # datetime has no year 0, nor a month after 9999-12
        assert "year from" in one_line_error(padlab(home, "costs", "--month", month, check=False))
    assert "nosuch" in one_line_error(padlab(home, "costs", "nosuch", check=False))


def test_alert_command(tmp_path: Path) -> None:
    home = tmp_path / "h"
    padlab(home, "init", "lab", "--provider", "local")
    shown = padlab_json(home, "alert", "--ntfy", "https://ntfy.example/padlab-secret-topic")
    assert shown["ntfy"] == "https://ntfy.example/pad…"  # the topic is the secret
    assert (home / "money.json").stat().st_mode & 0o777 == 0o600
    assert padlab_json(home, "alert", "lab", "--after", "3h")["after"] == {"lab": 10800}
    assert "ntfy topic URL" in one_line_error(padlab(home, "alert", "--ntfy", "ntfy.sh", check=False))
    assert "e.g. padlab alert" in one_line_error(padlab(home, "alert", "lab", "--after", "soon", check=False))
    assert "needs a profile" in one_line_error(padlab(home, "alert", "--after", "3h", check=False))
