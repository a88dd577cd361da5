"""Costs and budgets end to end: the fake Paperspace runs a real testbed machine at a stated price.

One machine for the whole story, each step building on the last (a first
bootstrap takes minutes): up then down is charged the time the machine ran;
a guest that powers itself off stops the ledger; a budget that runs out while
the box runs stops the box through its agent, with no padlab client running,
and the agent's alert reaches an ntfy endpoint on the test network; the spent
budget then refuses `up` and starts nothing. The figures for the closing note
(the ledger's error, the stop's delay past the deadline) are printed (-s).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes import FakePaperspace
from tests.fakes.push_endpoints import FakeNtfy
from tests.fakes.testbed_backend import TestbedBackend
from tests.helpers import PASSWORD, one_line_error, padlab

pytestmark = [pytest.mark.testbed, pytest.mark.timeout(2400)]

PS_KEY = "ps-money-secret-1a2b3c4d5e6f"
PRICE = 3.60  # USD per hour: $0.001 a second, so seconds read straight off the ledger
ENV = {"PAPERSPACE_API_KEY": PS_KEY}


class TimedBackend(TestbedBackend):
    """The testbed backend, noting when each machine was asked to boot and when it was off."""

    __test__ = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.runs: list[list[float | None]] = []  # [boot asked, off seen]
        self._cv = threading.Condition()

    def create(self, machine_id: str, spec: Any) -> None:
        super().create(machine_id, spec)
        self.machine(machine_id).on_off(self._went_off)

    def start(self, machine_id: str) -> str:
        with self._cv:
            self.runs.append([time.time(), None])
        return super().start(machine_id)

    def _went_off(self, _machine: Any) -> None:
        with self._cv:
            if self.runs and self.runs[-1][1] is None:
                self.runs[-1][1] = time.time()
            self._cv.notify_all()

    def wait_run_ended(self, timeout: float) -> float:
        with self._cv:
            if not self._cv.wait_for(lambda: self.runs and self.runs[-1][1] is not None, timeout):
                raise AssertionError(f"the machine did not power off within {timeout:.0f} s")
            return float(self.runs[-1][1])  # type: ignore[arg-type]

    def measured_s(self) -> float:
        return sum(end - start for start, end in self.runs if end is not None)  # type: ignore[operator]


def run_json(home: Path, *args: str, input: str | None = None) -> dict[str, Any]:
    return json.loads(padlab(home, *args, "--json", input=input, **ENV).stdout)


def ledger_s(home: Path) -> float:
    return run_json(home, "costs", "ps")["profiles"]["ps"]["hours"] * 3600.0


@pytest.fixture
def cloud(testbed) -> Iterator[tuple[FakePaperspace, TimedBackend]]:
    key = testbed.identity.with_name(testbed.identity.name + ".pub").read_text().strip()
    backend = TimedBackend(testbed, login_user="paperspace", account_keys=[key])
    with backend, FakePaperspace(api_key=PS_KEY, backend=backend) as fake:
        yield fake, backend


def test_the_ledger_and_the_budget_on_a_real_machine(cloud, testbed, tmp_path: Path) -> None:
    fake, backend = cloud
    home = tmp_path / "padlab-home"
    padlab(home, "init", "ps", "--provider", "paperspace", "--api-url", fake.url,
           "--identity", str(testbed.identity), "--price", str(PRICE), **ENV)  # fmt: skip
    figures: dict[str, float] = {}

    # 1. up, then down: charged the time the machine ran, never less.
    padlab(home, "up", "ps", "--password-stdin", input=PASSWORD + "\n", **ENV)
    [machine_id] = backend.machine_ids()
    machine = backend.machine(machine_id)
    padlab(home, "down", "ps", **ENV)
    assert machine.state() == "off"
    measured, counted = backend.measured_s(), ledger_s(home)
    figures["up/down: ledger - measured (s)"] = counted - measured
    assert measured <= counted <= measured + 120, (measured, counted)
    costs = run_json(home, "costs")
    assert costs["total_usd"] == pytest.approx(counted / 3600 * PRICE, rel=1e-3)

    # 2. The guest powers itself off: the ledger stops growing once the provider says off.
    padlab(home, "up", "ps", **ENV)
    time.sleep(20)  # it runs a while
    machine.poweroff()
    padlab(home, "status", "ps", **ENV)
    frozen = ledger_s(home)
    figures["guest poweroff: ledger - measured (s)"] = frozen - backend.measured_s()
    assert frozen >= backend.measured_s()
    time.sleep(15)
    assert ledger_s(home) == pytest.approx(frozen, abs=0.01)

    # 3. A budget that runs out while the box runs: the agent stops it, no client running.
    with FakeNtfy("0.0.0.0") as ntfy:
        host_side = machine.ip.rsplit(".", 1)[0] + ".1"  # the testbed host, as the guest reaches it
        padlab(home, "alert", "--ntfy", ntfy.topic_url(host_side), **ENV)
        spent = run_json(home, "costs")["total_usd"]
        padlab(home, "budget", "ps", f"{spent + 0.30:.2f}", **ENV)  # 300 s of running left
        card = run_json(home, "up", "ps")
        deadline = card["budget"]["deadline_at"]
        assert deadline and "ps's monthly budget runs out" in card["budget"]["deadline_why"]
        assert machine.exec("stat -c %a:%U /var/lib/padlab/agent-ps/alert-url").stdout.strip() == "600:root"
        off_at = backend.wait_run_ended(timeout=deadline - time.time() + 360)  # no padlab runs meanwhile
        figures["budget stop: machine off past the deadline (s)"] = off_at - deadline
        assert off_at >= deadline
        received = ntfy.wait(2, timeout=30)  # 80 % of the budget, then the stop
        titles = [m.headers["title"] for m in received]
        assert titles == ["padlab ps: budget", "padlab ps: stopping"], titles
        assert "ps's monthly budget runs out" in received[1].body.decode()

    # 4. The budget is spent: up refuses in one line and starts nothing.
    def start_calls() -> int:
        return len([r for r in fake.requests if r.method == "PATCH" and r.path.endswith("/start")])

    runs, patches = len(backend.runs), start_calls()
    line = one_line_error(padlab(home, "up", "ps", check=False, **ENV))
    assert "ps's monthly budget" in line and "--over-budget" in line
    assert (len(backend.runs), start_calls()) == (runs, patches) and machine.state() == "off"
    after = run_json(home, "status", "ps")
    assert after["state"] == "stopped" and after["machine"]["state"] == "off"
    record = json.loads((machine.root / "var/lib/padlab/agent-ps/stopped.json").read_text())
    figures["budget stop: agent's stop record past the deadline (s)"] = record["at"] - deadline
    assert record["result"].startswith("power-off requested")
    print("\nmoney figures: " + json.dumps({k: round(v, 1) for k, v in figures.items()}))
