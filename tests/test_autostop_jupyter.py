"""The agent against a real Jupyter on the local provider: the credential, busy kernels, the stop.

The checks run in-process with a driven clock (``now``), so "twice the limit" takes
no wall time; Jupyter, its kernels and its activity endpoint are real.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import httpx
import pytest

from padlab.box.autostop import activity, agent, stops
from padlab.notebook_api import NotebookClient, ssl_context
from tests.helpers import PASSWORD, free_port, one_line_error, padlab, padlab_json

LIMIT = 120


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory):
    """A local workstation with a 2 min idle limit (stopping only Jupyter, as local always does)."""
    home = tmp_path_factory.mktemp("auto") / "padlab-home"
    port = free_port()
    nb = home.parent / "nb"
    padlab(
        home,
        "init",
        "auto",
        "--provider",
        "local",
        "--port",
        str(port),
        "--root-dir",
        str(nb),
        "--autostop",
        "2m",
    )
    card = padlab_json(home, "up", "--password-stdin", input=PASSWORD + "\n")
    agent_dir = home / "boxes" / "auto" / "agent-auto"
    yield {"home": home, "port": port, "card": card, "conf": agent.load_json(str(agent_dir / "config.json"))}
    padlab(home, "down", check=False)


@pytest.fixture
def client(box: dict):
    with NotebookClient(f"https://127.0.0.1:{box['port']}", box["card"]["ca_cert"]) as c:
        assert c.login(PASSWORD)
        yield c


@pytest.fixture(autouse=True)
def fresh_state(box: dict) -> None:
    """Each test drives its own clock, so none may inherit another's remembered times."""
    Path(box["conf"]["dir"], "state.json").unlink(missing_ok=True)


@pytest.fixture(autouse=True)
def never_power_off(monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden() -> list:
        raise AssertionError("the local provider must never power the machine off")

    monkeypatch.setattr(stops, "power_off", forbidden)


def test_the_box_got_the_policy_and_a_private_credential(box: dict) -> None:
    conf = box["conf"]
    assert conf["idle_s"] == LIMIT and conf["action"] == "service"
    token = Path(conf["jupyter"]["token_file"])
    assert token.stat().st_mode & 0o777 == 0o600
    assert (Path(conf["config_file"]).stat().st_mode & 0o777) == 0o600
    jupyter_cfg = json.loads(
        (Path(box["conf"]["layout"]["etc"]) / "jupyter" / "jupyter_server_config.json").read_text()
    )
    assert jupyter_cfg["IdentityProvider"]["token"] == ""  # token login stays off
    assert token.read_text().strip() not in json.dumps(jupyter_cfg)


def test_activity_endpoint_needs_the_agent_token(box: dict) -> None:
    url = f"https://127.0.0.1:{box['port']}{activity.ACTIVITY_PATH}"
    ctx = ssl_context(box["card"]["ca_cert"])
    assert httpx.get(url, verify=ctx).status_code == 403
    wrong = {"Authorization": "padlab-agent " + "0" * 64}
    assert httpx.get(url, verify=ctx, headers=wrong).status_code == 403
    data = activity.fetch_activity(box["conf"]["jupyter"])
    assert {"started", "last_activity", "connections", "kernels"} <= set(data)


def test_polling_is_not_activity(box: dict) -> None:
    first = activity.fetch_activity(box["conf"]["jupyter"])["last_activity"]
    time.sleep(1.1)
    for _ in range(3):
        again = activity.fetch_activity(box["conf"]["jupyter"])["last_activity"]
    assert again == first


def start_session(client: NotebookClient, path: str) -> str:
    resp = client.api(
        "POST", "/sessions", json={"path": path, "type": "notebook", "kernel": {"name": "python3"}}
    )
    resp.raise_for_status()
    return resp.json()["kernel"]["id"]


def test_long_cell_keeps_it_up_and_its_end_counts_as_activity(box: dict, client: NotebookClient) -> None:
    conf = box["conf"]
    kernel = start_session(client, "train.ipynb")
    try:
        runner = threading.Thread(
            target=client.execute, args=(kernel, "import time; time.sleep(8)"), kwargs={"timeout": 120}
        )
        runner.start()
        # The open websocket counts before the kernel reports busy: wait for the kernel itself.
        deadline = time.time() + 60
        while time.time() < deadline and "kernel: busy (train.ipynb)" not in agent.evaluate(
            conf, {}, time.time()
        )["reasons"]:
            time.sleep(0.3)
        busy = agent.check(conf, now=time.time() + 2 * LIMIT + 60)  # as if the cell ran past 2x the limit
        assert busy["in_use"] and "kernel: busy (train.ipynb)" in busy["reasons"], busy
        assert busy["action_taken"] is None
        runner.join()
        finished = time.time()
        after = agent.check(conf, now=finished)
        assert not after["in_use"]
        assert after["idle_since"] >= finished - 1  # the end of the cell, not its start
        assert "finished running (train.ipynb)" in after["last_activity"] or after["idle_since"] == finished
    finally:
        client.shutdown_kernel(kernel)


def test_the_idle_clock_starts_when_the_cell_ended_not_at_the_next_check(
    box: dict, client: NotebookClient
) -> None:
    """With nobody connected, the kernel's last message dates the end of its cell."""
    conf = box["conf"]
    kernel = start_session(client, "ends.ipynb")
    try:
        client.start(kernel, "import time; time.sleep(4)")
        deadline = time.time() + 30
        busy = agent.check(conf, now=time.time())
        while not busy["in_use"] and time.time() < deadline:
            time.sleep(0.3)
            busy = agent.check(conf, now=time.time())
        assert busy["reasons"] == ["kernel: busy (ends.ipynb)"], busy

        def state() -> str | None:
            kernels = activity.fetch_activity(conf["jupyter"])["kernels"]  # not activity itself
            return next(k["execution_state"] for k in kernels if k["path"] == "ends.ipynb")

        while state() == "busy" and time.time() < deadline:
            time.sleep(0.2)
        ended = time.time()
        time.sleep(3)
        after = agent.check(conf, now=time.time())
        assert not after["in_use"], after
        assert busy["checked_at"] <= after["idle_since"] <= ended, (busy["checked_at"], after, ended)
    finally:
        client.shutdown_kernel(kernel)


def test_open_connection_is_use(box: dict, client: NotebookClient) -> None:
    kernel = client.start_kernel()
    try:
        with client.channel(kernel):
            decision = agent.check(box["conf"], now=time.time() + 10 * LIMIT)
            assert decision["in_use"] and any("open connection" in r for r in decision["reasons"])
    finally:
        client.shutdown_kernel(kernel)


def test_cli_keep_status_and_logs(box: dict) -> None:
    home = box["home"]
    kept = padlab(home, "keep", "auto", "10m").stdout
    assert "held until" in kept
    agent.check(box["conf"])
    status = padlab(home, "status", "auto").stdout
    assert "autostop: " in status and "held until" in status
    assert padlab(home, "keep", "auto", "off").returncode == 0
    log = padlab(home, "logs", "auto", "--agent", "-n", "5").stdout
    assert "idle" in log and "autostop" not in one_line_error(
        padlab(home, "keep", "auto", "soon", check=False)
    )


def test_idle_local_box_stops_only_jupyter(box: dict) -> None:
    """Warn, then stop the service; the machine stays on; status says when and why; up brings it back."""
    conf, home = box["conf"], box["home"]
    now = time.time()
    first = agent.check(conf, now=now + LIMIT + 1)
    assert first["action_taken"] == "warn"
    stop = agent.check(conf, now=now + LIMIT + 61)
    assert stop["action_taken"] == "stop"
    assert not agent.jupyter_running(conf)
    st = padlab_json(home, "status", "auto")
    assert st["state"] == "stopped" and st["machine"]["state"] == "running"
    assert st["stop_reason"].startswith("by autostop at") and "idle for 2 min" in st["stop_reason"]
    assert "stopped: by autostop" in padlab(home, "status", "auto").stdout
    again = agent.check(conf, now=now + LIMIT + 121)
    assert again["action_taken"] is None
    log = Path(conf["dir"], "agent.log").read_text()
    assert "WARN" in log and "stop (service): Jupyter stopped" in log
    assert padlab_json(home, "up")["state"] == "running"
