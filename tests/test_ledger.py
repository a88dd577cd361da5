"""The cost ledger with a driven clock: bounds, conservative counting, billed-while-down, months."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from padlab import ledger
from padlab.providers.base import Machine

T0 = datetime.datetime(2026, 5, 10, 12, 0, tzinfo=datetime.timezone.utc).timestamp()
H = 3600.0


def running(price: float = 2.0, started_at: float | None = None) -> Machine:
    return Machine(state="running", id="m1", price_per_hour=price, price_source="test", started_at=started_at)


def off(down: float | None = 0.01, what: str | None = "disk 50 GB") -> Machine:
    return Machine(state="off", id="m1", price_per_hour=2.0, down_usd_per_hour=down, billed_while_down=what)


def total(profile: str | None = "gpu", now: float = T0 + 100 * H, kind: str = "compute") -> float:
    start, end, _ = ledger.month_bounds("2026-05")
    return sum(s.usd for s in ledger.spans(start, end, profile, now) if s.kind == kind)


def hours(profile: str = "gpu", now: float = T0 + 100 * H) -> float:
    start, end, _ = ledger.month_bounds("2026-05")
    return sum(s.hours for s in ledger.spans(start, end, profile, now) if s.kind == "compute")


def test_up_then_down_counts_from_the_start_request_to_the_seen_stop(home: Path) -> None:
    ledger.observe("gpu", off(), T0, "padlab (before acting)")
    ledger.observe("gpu", running(), T0 + 60, "padlab up")  # started somewhere in these 60 s
    ledger.observe("gpu", running(), T0 + 2 * H, "padlab (before acting)")
    ledger.observe("gpu", off(), T0 + 2 * H + 30, "padlab down")
    assert hours() == pytest.approx(2 + 30 / H)
    assert total() == pytest.approx(2.0 * (2 + 30 / H))
    [span] = [s for s in ledger.spans(T0 - H, T0 + 10 * H, "gpu", T0 + 10 * H) if s.kind == "compute"]
    assert span.exact  # both ends known within an API round-trip


def test_a_machine_seen_off_stops_growing(home: Path) -> None:
    """The guest powered itself off at an unknown moment: the later bound counts, then nothing more."""
    ledger.observe("gpu", off(), T0)
    ledger.observe("gpu", running(), T0 + 10)
    ledger.observe("gpu", running(), T0 + H)  # the last time anyone saw it up
    assert hours(now=T0 + 3 * H) == pytest.approx(3)  # from the last sighting off, and open: until now
    ledger.observe("gpu", off(), T0 + 3 * H)  # status: the provider says off
    after = total(now=T0 + 3 * H)
    assert after == pytest.approx(2.0 * 3)
    ledger.observe("gpu", off(), T0 + 9 * H)
    assert total(now=T0 + 50 * H) == after
    row = [r for r in ledger.rows("gpu") if r["kind"] == "compute"][0]
    assert (row["end_lo"], row["end_hi"]) == (T0 + H, T0 + 3 * H)


def test_the_agents_stop_record_narrows_the_bounds(home: Path) -> None:
    ledger.observe("gpu", running(), T0)
    ledger.observe("gpu", off(), T0 + 5 * H)
    assert ledger.stopped_by_agent("gpu", T0 + 2 * H, "power-off requested")
    row = [r for r in ledger.rows("gpu") if r["kind"] == "compute"][0]
    assert row["end_lo"] == T0 + 2 * H and row["end_hi"] == T0 + 5 * H
    assert "autostop" in row["end_source"]
    assert not ledger.stopped_by_agent("gpu", T0 + 7 * H, "outside the bounds")


def test_what_is_billed_while_down(home: Path) -> None:
    ledger.observe("gpu", running(), T0)
    ledger.observe("gpu", off(down=0.01), T0 + H)
    ledger.observe("gpu", off(down=0.01), T0 + 11 * H)
    assert total(kind="down", now=T0 + 11 * H) == pytest.approx(0.01 * 10)
    ledger.observe("gpu", Machine(state="missing"), T0 + 21 * H)  # destroyed: nothing billed from here
    assert total(kind="down", now=T0 + 99 * H) == pytest.approx(0.01 * 20)


def test_a_powered_off_droplet_bills_in_full_while_down(home: Path) -> None:
    ledger.observe("do", running(price=0.76), T0)
    ledger.observe("do", off(down=0.76, what="the whole droplet"), T0 + H)
    ledger.observe("do", off(down=0.76, what="the whole droplet"), T0 + 3 * H)
    assert total("do", now=T0 + 3 * H) == pytest.approx(0.76)
    assert total("do", kind="down", now=T0 + 3 * H) == pytest.approx(0.76 * 2)


def test_the_uncertain_stretch_is_counted_once(home: Path) -> None:
    ledger.observe("gpu", off(down=0.5), T0)
    ledger.observe("gpu", running(price=2.0), T0 + H)  # started somewhere in this hour: count it as running
    ledger.observe("gpu", off(down=0.5), T0 + 2 * H)
    assert total(now=T0 + 2 * H) == pytest.approx(2 * 2.0)
    assert total(kind="down", now=T0 + 2 * H) == pytest.approx(0)


def test_a_price_change_splits_the_interval(home: Path) -> None:
    ledger.observe("gpu", running(price=1.0), T0)
    ledger.observe("gpu", running(price=3.0), T0 + H)
    ledger.observe("gpu", off(), T0 + 2 * H)
    assert total() == pytest.approx(1.0 + 3.0)


def test_a_new_machine_counts_from_before_its_create(home: Path) -> None:
    ledger.observe("gpu", Machine(state="missing"), T0, "padlab (before acting)")
    ledger.observe("gpu", running(), T0 + 300, "padlab up")  # created, booted, reached
    assert hours(now=T0 + H) == pytest.approx(1.0)


def test_console_start_counts_from_the_providers_timestamp(home: Path) -> None:
    ledger.observe("gpu", running(started_at=T0 - 2 * H), T0)
    assert hours(now=T0) == pytest.approx(2.0)


def test_months_and_days_are_clipped(home: Path) -> None:
    end_of_april = datetime.datetime(2026, 4, 30, 23, 0, tzinfo=datetime.timezone.utc).timestamp()
    ledger.observe("gpu", running(), end_of_april)
    ledger.observe("gpu", off(down=None, what=None), end_of_april + 3 * H)
    may = ledger.month_bounds("2026-05")
    assert sum(s.hours for s in ledger.spans(may[0], may[1], "gpu")) == pytest.approx(2.0)


def test_machines_without_a_price_leave_no_file(home: Path) -> None:
    ledger.observe("lab", Machine(state="running", host="127.0.0.1"))
    assert not (home / "ledger.sqlite").exists()


def test_running_rates_of_other_profiles(home: Path) -> None:
    ledger.observe("a", running(price=1.5), T0)
    ledger.observe("b", running(price=0.5), T0)
    assert ledger.running_rates(exclude="a") == 0.5


def test_the_file_is_private(home: Path) -> None:
    ledger.observe("gpu", running(), T0)
    assert (home / "ledger.sqlite").stat().st_mode & 0o777 == 0o600


# -- a broken ledger: one clear line, and never in the way of a stop ------------------------------

PS_KEY = "ps-ledger-secret-0a1b2c3d4e5f"


def break_ledger() -> Path:
    """Overwrite a real ledger's SQLite header, as a disk error or a bad copy would."""
    ledger.observe("gpu", running(), T0)  # a real file with a row in it
    path = ledger.db_path()
    with open(path, "r+b") as fh:
        fh.write(b"not a database!!")
    return path


def test_a_broken_ledger_is_one_line_that_says_how_to_recover(home: Path) -> None:
    path = break_ledger()
    with pytest.raises(ledger.LedgerError) as caught:
        ledger.month_spend()
    assert "cannot be used" in caught.value.message
    assert f"mv {path} {path}.broken" in caught.value.fix


def test_a_broken_ledger_never_blocks_down(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A Paperspace machine (the strict fake) still powers off, the phase is `stopped`, an alert goes out."""
    import itertools

    from padlab import alerts, state, workstation
    from padlab.profiles import Profile
    from padlab.providers import retry
    from padlab.providers.paperspace import PaperspaceProvider
    from tests.fakes import FakePaperspace, MemoryBackend
    from tests.fakes.push_endpoints import FakeNtfy

    for name, value in (("POLL_FIRST", 0.01), ("POLL_MAX", 0.02), ("RETRY_FIRST", 0.01), ("RETRY_MAX", 0.02)):
        monkeypatch.setattr(retry, name, value)
    monkeypatch.setenv("PAPERSPACE_API_KEY", PS_KEY)
    ticks = itertools.count()  # the backend's clock moves by reads, not by wall time: no race
    backend = MemoryBackend(boot_seconds=1.0, stop_seconds=0.3, clock=lambda: next(ticks) * 0.1)
    with FakePaperspace(api_key=PS_KEY, backend=backend) as fake, FakeNtfy() as ntfy:
        alerts.configure(ntfy=ntfy.topic_url())
        profile = Profile(name="ps", provider="paperspace", options={"api_url": fake.url}).validate()
        machine = PaperspaceProvider(profile).start_machine(print)
        path = break_ledger()
        # Restarted from the console and still booting: billed, so `down` reads the ledger first,
        # and not yet serving, so `down` has no Jupyter to reach before it powers off.
        backend.stop(machine.id)
        backend.start(machine.id)
        out = workstation.down(profile)
        assert backend.state(machine.id) == "off"
        assert state.load("ps")["phase"] == "stopped" and out["state"] == "stopped"
        [warning] = out["ledger_warnings"]
        assert f"mv {path} {path}.broken" in warning
        [message] = ntfy.wait(1)
        assert message.headers["title"] == "cost ledger broken" and str(path) in message.body.decode()
        # status still tells the machine's state, with the same line
        shown = workstation.status(profile)
        assert shown["state"] == "stopped" and shown["month_usd"] is None
        assert f"mv {path} {path}.broken" in shown["ledger_warnings"][0]


def test_up_with_a_broken_ledger_is_one_clear_line(tmp_path: Path) -> None:
    from tests.helpers import one_line_error, padlab

    home = tmp_path / "h"
    padlab(home, "init", "lab", "--provider", "local", "--root-dir", str(tmp_path / "nb"))
    padlab(home, "budget", "10")
    padlab(home, "costs")
    [path] = home.rglob("ledger.sqlite")
    with open(path, "r+b") as fh:
        fh.write(b"not a database!!")
    proc = padlab(home, "up", "--password-stdin", input="correct-horse-battery-staple\n", check=False)
    line = one_line_error(proc)
    assert "ledger" in line and f"mv {path} {path}.broken" in line
