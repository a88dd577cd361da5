"""The CLI against a remote home: a real panel over TLS on loopback, the CLI in another PADLAB_HOME.

The panel runs in this process (uvicorn in a thread, its PADLAB_HOME the test's) so the test
can count the API calls a command makes; the CLI runs as users run it, as a subprocess with
a home of its own that holds only the login. The same commands on the panel's machine are
the reference: a remote home must give the same results.
"""

from __future__ import annotations

import json
import os
import ssl
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes import FakePaperspace, MemoryBackend
from tests.helpers import PASSWORD, free_port, one_line_error, padlab, padlab_env
from tests.rangeserver import RangeServer
from tests.testbed.network import host_addresses_fixed

KEY = "ps-remote-secret-5e4d3c2b1a"
DATA = os.urandom(300_000)


class Counting:
    """ASGI middleware: the API calls the panel received, by method and path."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.calls: list[str] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.calls.append(f"{scope['method']} {scope['path']}")
        await self.app(scope, receive, send)


@pytest.fixture(scope="module")
def panel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A panel whose home has a local workstation 'lab' (never started), served over TLS."""
    import uvicorn

    base = tmp_path_factory.mktemp("remote")
    server_home, client_home = base / "panel-home", base / "cli-home"
    user = base / "user"
    (user / ".ssh").mkdir(parents=True)
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(user / ".ssh" / "id_ed25519")], check=True
    )
    env = {"HOME": str(user), "PAPERSPACE_API_KEY": "", "XDG_CONFIG_HOME": str(user / ".config")}
    port = free_port()
    padlab(
        server_home, "init", "lab", "--provider", "local", "--port", str(port), "--root-dir", str(base / "nb")
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PADLAB_HOME", str(server_home))
        for name, value in env.items():
            mp.setenv(name, value)
        from padlab import tls
        from padlab.panel import certs, store
        from padlab.panel.app import create_app
        from padlab.panel.web import Panel

        store.set_password(PASSWORD)
        cert, key, _ = certs.ensure(["127.0.0.1"])
        web = Panel(cache_s=0)
        app = Counting(create_app(web))
        panel_port = free_port()
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=panel_port,
            ssl_certfile=str(cert),
            ssl_keyfile=str(key),
            log_level="warning",
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 60
        while not server.started:
            assert time.monotonic() < deadline and thread.is_alive(), "the panel did not start"
            time.sleep(0.05)
        ranges = RangeServer().__enter__()
        data_url = ranges.add("/data.bin", DATA)
        fake = FakePaperspace(api_key=KEY, backend=MemoryBackend(boot_seconds=0.05, stop_seconds=0.05))
        fake.__enter__()
        web.allow_api_urls = [fake.url.rstrip("/")]  # as `panel install --allow-api-url` would
        try:
            yield {
                "server": server_home,
                "client": client_home,
                "url": f"https://127.0.0.1:{panel_port}",
                "fingerprint": tls.pretty_fingerprint(tls.fingerprint(tls.ensure_ca())),
                "app": app,
                "env": env,
                "data_url": data_url,
                "fake": fake,
            }
        finally:
            padlab(server_home, "down", "lab", check=False)
            fake.__exit__(None, None, None)
            ranges.__exit__(None, None, None)
            server.should_exit = True
            thread.join(timeout=30)


def here(panel: dict[str, Any], *args: str, **kw: Any) -> subprocess.CompletedProcess:
    """A command on the panel's machine, in its own home: the reference."""
    return padlab(panel["server"], *args, **panel["env"], **kw)


def there(panel: dict[str, Any], *args: str, **kw: Any) -> subprocess.CompletedProcess:
    """The same command from the CLI logged in to the panel."""
    return padlab(panel["client"], *args, **panel["env"], **kw)


def login(
    panel: dict[str, Any], *extra: str, input: str = PASSWORD + "\n", **kw: Any
) -> subprocess.CompletedProcess:
    args = ("remote", "login", panel["url"], "--ca-fingerprint", panel["fingerprint"], *extra)
    if "--token-stdin" not in extra:
        args += ("--password-stdin",)
    return there(panel, *args, input=input, **kw)


def steady(data: dict[str, Any]) -> dict[str, Any]:
    """A status or card without what changes from one second to the next."""
    return {
        k: v for k, v in data.items() if k not in ("uptime_s", "started_at", "steps", "seconds", "updated_at")
    }


def test_status_up_get_down_costs_give_the_same_results_as_on_the_panels_machine(
    panel, record_property
) -> None:
    out = login(panel, "--scope", "admin")
    assert "Logged in to" in out.stdout and "padlab's CA, pinned" in out.stdout
    saved = panel["client"] / "remote.json"
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600 and json.loads(saved.read_text())["token"].startswith(
        "padlab_"
    )
    assert "home: the panel at" in there(panel, "remote", "status").stdout

    assert json.loads(there(panel, "status", "lab", "--json").stdout) == json.loads(
        here(panel, "status", "lab", "--json").stdout
    )

    # up through the panel: its stages stream to this terminal as they happen, then the card
    remote_up = there(panel, "up", "lab", "--password-stdin", "--json", input=PASSWORD + "\n")
    stages = [line for line in remote_up.stderr.splitlines() if line.startswith("[")]
    assert len(stages) >= 3, remote_up.stderr
    card = json.loads(remote_up.stdout)
    assert card["state"] == "running" and card["url"].startswith("https://")
    with host_addresses_fixed():  # the certificate names every address of this host
        here(panel, "up", "lab")  # a testbed network made meanwhile is in the certificate now
        again = json.loads(
            here(panel, "up", "lab", "--json").stdout
        )  # the same workstation, healthy: a no-op
        assert steady(again) == steady(json.loads(there(panel, "up", "lab", "--json").stdout))
    assert steady(card)["url"] == again["url"]

    app = panel["app"]
    app.calls.clear()
    text_there = there(panel, "status", "lab")
    calls = list(app.calls)
    assert calls == ["GET /api/home/status"], calls
    record_property("figure", f"remote `padlab status`: {len(calls)} API call ({calls[0]})")
    assert text_there.stderr.startswith("home: the panel at ")
    running_here = steady(json.loads(here(panel, "status", "lab", "--json").stdout))
    assert steady(json.loads(there(panel, "status", "lab", "--json").stdout)) == running_here

    url = panel["data_url"]
    got = [json.loads(line) for line in there(panel, "get", "lab", url, "--json").stdout.splitlines()]
    assert any(e.get("event") == "progress" for e in got[:-1]) and got[-1]["ok"]
    assert Path(got[-1]["dest"]).read_bytes() == DATA
    got_here = json.loads(here(panel, "get", "lab", url, "--json").stdout.splitlines()[-1])
    got_there = json.loads(there(panel, "get", "lab", url, "--json").stdout.splitlines()[-1])
    assert got_here == got_there and not got_there["changed"]
    assert (
        there(panel, "get", "lab", "--list", "--json").stdout
        == here(panel, "get", "lab", "--list", "--json").stdout
    )

    down = json.loads(there(panel, "down", "lab", "--json").stdout)
    assert down["state"] == "stopped"
    assert there(panel, "down", "lab", "--json").stdout == here(panel, "down", "lab", "--json").stdout
    assert there(panel, "status", "lab").stdout == here(panel, "status", "lab").stdout
    assert json.loads(there(panel, "costs", "--json").stdout) == json.loads(
        here(panel, "costs", "--json").stdout
    )
    assert there(panel, "list", "--json").stdout == here(panel, "list", "--json").stdout


def api(panel: dict[str, Any], token: str, path: str, body: dict[str, Any]) -> httpx.Response:
    """One POST to the panel's API, as a script holding the token would send it."""
    verify = ssl.create_default_context(cafile=str(panel["server"] / "ca" / "padlab-ca.pem"))
    return httpx.post(
        f"{panel['url']}{path}", headers={"Authorization": f"Bearer {token}"}, json=body, verify=verify
    )


def no_digits(text: str) -> str:
    """Output without the numbers that tick (seconds left, times)."""
    import re

    return re.sub(r"\d+", "N", text)


def test_every_other_command_gives_the_same_output_through_the_panel(panel, tmp_path) -> None:
    fake = panel["fake"]
    login(panel, "--scope", "admin")
    there(panel, "up", "lab", "--password-stdin", "--json", input=PASSWORD + "\n")
    # budget, autostop, default, card: the same output, text and --json
    assert there(panel, "budget", "lab", "20", "--json").stdout == here(panel, "budget", "--json").stdout
    assert there(panel, "budget", "lab", "20").stdout == here(panel, "budget", "lab", "20").stdout
    assert there(panel, "budget").stdout == here(panel, "budget").stdout
    there(panel, "budget", "lab", "off")
    assert "lab" not in json.loads(here(panel, "budget", "--json").stdout)["budgets"]
    assert there(panel, "autostop", "lab", "--json").stdout == here(panel, "autostop", "lab", "--json").stdout
    assert there(panel, "autostop", "lab", "45m").stdout == here(panel, "autostop", "lab", "45m").stdout
    assert "45 min idle" in here(panel, "autostop", "lab").stdout
    assert there(panel, "default", "lab").stdout == here(panel, "default", "lab").stdout
    assert there(panel, "alert", "lab", "--after", "3h", "--json").stdout == (
        here(panel, "alert", "lab", "--after", "3h", "--json").stdout
    )
    assert (
        there(panel, "alert").stdout == here(panel, "alert").stdout
        and "3 h up" in here(panel, "alert").stdout
    )
    card_there, card_here = (
        steady(json.loads(where(panel, "card", "lab", "--json").stdout)) for where in (there, here)
    )
    assert card_there.pop("autostop").keys() == card_here.pop("autostop").keys()  # the agent's clock ticks
    assert card_there == card_here

    # init and login make the profile and store the key on the panel, never echoing the key back
    made = ("init", "web", "--provider", "local", "--port", str(free_port()), "--force")
    assert there(panel, *made).stdout == here(panel, *made).stdout
    assert str(panel["server"]) in there(panel, *made).stdout
    assert not (panel["client"] / "profiles").exists()
    own_key = there(
        panel, "init", "web2", "--provider", "ssh", "--host", "me@box", "--identity", "/k", check=False
    )
    assert "--identity names a file on this machine" in one_line_error(own_key)
    stored = there(panel, "login", "paperspace", "--key-stdin", "--api-url", fake.url, input=KEY + "\n")
    assert str(panel["server"] / "credentials" / "paperspace") in stored.stdout and KEY not in stored.stdout
    assert (panel["server"] / "credentials" / "paperspace").read_text().strip() == KEY
    assert not (panel["client"] / "credentials").exists()
    elsewhere = there(
        panel,
        "login",
        "paperspace",
        "--key-stdin",
        "--api-url",
        "https://example.com",
        input=KEY + "\n",
        check=False,
    )
    assert "only to Paperspace's own API" in one_line_error(elsewhere)

    # kernels, keep, logs, passwd, with the stages streamed as they happen
    listed = there(panel, "kernels", "lab", "--no-cuda", "--json")
    assert json.loads(listed.stdout) == json.loads(
        here(panel, "kernels", "lab", "--no-cuda", "--json").stdout
    )
    assert json.loads(listed.stdout)["kernels"]
    bad = ("kernels", "lab", "create", "Bad Name!", "--packages", "x")
    assert one_line_error(there(panel, *bad, check=False)) == one_line_error(here(panel, *bad, check=False))
    held_there = there(panel, "keep", "lab", "2h")
    held_here = here(panel, "keep", "lab", "2h")
    assert (
        no_digits(held_there.stdout).split(" stops in ")[0]
        == no_digits(held_here.stdout).split(" stops in ")[0]
    )
    assert "(idle for" in held_there.stdout
    assert held_there.stdout.startswith("lab: ")
    assert (
        json.loads(there(panel, "keep", "lab", "off", "--json").stdout).keys()
        == json.loads(here(panel, "keep", "lab", "off", "--json").stdout).keys()
    )
    tail = there(panel, "logs", "lab", "--agent", "-n", "3").stdout.splitlines()
    assert tail and set(tail) <= set(here(panel, "logs", "lab", "--agent", "-n", "500").stdout.splitlines())
    new_password = "another long tablet password"
    changed = there(panel, "passwd", "lab", "--password-stdin", input=new_password + "\n")
    stages = [line for line in changed.stderr.splitlines() if line.startswith("[")]
    assert stages, changed.stderr
    assert changed.stdout == here(panel, "passwd", "lab", "--password-stdin", input=PASSWORD + "\n").stdout

    # destroy: the same refusal (a local box is not deleted), and only with the name typed
    gone = ("destroy", "lab", "--yes-really-destroy")
    assert one_line_error(there(panel, *gone, check=False)) == one_line_error(here(panel, *gone, check=False))
    token = json.loads((panel["client"] / "remote.json").read_text())["token"]
    typo = api(panel, token, "/api/home/destroy", {"name": "lab", "typed": "lab-not"})
    assert typo.status_code == 409 and "the name did not match" in typo.json()["error"]
    # doctor: the same checks, from the panel's machine; never an address of the caller's choosing
    checked = [
        json.loads(where(panel, "doctor", "lab", "--password-stdin", "--json", input=PASSWORD + "\n").stdout)
        for where in (there, here)
    ]
    assert [(c["name"], c["ok"]) for c in checked[0]["checks"]] == [
        (c["name"], c["ok"]) for c in checked[1]["checks"]
    ]
    assert checked[0]["ok"] and len(checked[0]["checks"]) >= 4
    elsewhere = there(panel, "doctor", "lab", "--host", "192.0.2.1", check=False)
    assert "--host would make the panel connect" in one_line_error(elsewhere)
    there(panel, "down", "lab")

    # what needs ssh from this machine says what to do instead
    for args, hint in (
        (("ssh", "lab"), "`padlab card lab` prints) and use File > New > Terminal"),
        (("push", "lab", str(tmp_path), "x"), "fetch a URL onto the box: padlab get lab URL"),
        (("forget-host-key", "lab"), "run `padlab forget-host-key lab` on the panel's machine"),
    ):
        refused = there(panel, *args, check=False)
        assert hint in one_line_error(refused) and panel["url"] in refused.stderr
    assert "Usage: padlab ssh" in there(panel, "ssh", "--help").stdout  # help needs no home


def ledger_rows(home: Path, name: str) -> list[dict[str, Any]]:
    code = f"import json; from padlab import ledger; print(json.dumps(ledger.rows({name!r})))"
    out = subprocess.run(
        [sys.executable, "-c", code], env=padlab_env(home), capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


def test_a_moved_profile_takes_its_key_and_ledger_and_is_gone_from_the_old_home(panel) -> None:
    fake = panel["fake"]
    there(panel, "remote", "logout")
    there(panel, "login", "paperspace", "--key-stdin", "--api-url", fake.url, input=KEY + "\n")
    there(panel, "init", "gpu", "--provider", "paperspace", "--api-url", fake.url)
    there(panel, "up", "gpu", "--skip-setup", "--json")
    there(panel, "down", "gpu")
    before = json.loads(there(panel, "costs", "gpu", "--json").stdout)["profiles"]["gpu"]
    rows = ledger_rows(panel["client"], "gpu")
    assert {r["kind"] for r in rows} == {"compute", "down"}  # the run, then the disk billed while down

    login(panel, "--scope", "start-stop")
    # the box trusts the user's own ~/.ssh key: padlab sends a copy only when asked, and says so
    own_key = there(panel, "remote", "push", "gpu", check=False)
    assert "your own ssh key" in one_line_error(own_key) and "--copy-key" in own_key.stderr
    assert (panel["client"] / "profiles" / "gpu.toml").exists() and not list(
        (panel["client"] / "moves").iterdir()
    )
    refused = there(panel, "remote", "push", "gpu", "--copy-key", check=False)
    assert "needs admin" in one_line_error(refused) and "stays on this machine" in refused.stderr
    assert (panel["client"] / "profiles" / "gpu.toml").exists()  # given back, whole
    assert ledger_rows(panel["client"], "gpu") == rows

    login(panel, "--scope", "admin")
    user_key = Path(panel["env"]["HOME"]) / ".ssh" / "id_ed25519"
    pushed = there(panel, "remote", "push", "gpu", "--copy-key")
    assert f"ssh key {user_key} was copied and stays here" in pushed.stdout
    assert user_key.exists()  # never taken from the user
    carried = panel["server"] / "keys" / "gpu" / "id_ed25519"
    assert carried.read_bytes() == user_key.read_bytes() and stat.S_IMODE(carried.stat().st_mode) == 0o600
    assert f'identity = "{carried}"' in (panel["server"] / "profiles" / "gpu.toml").read_text()
    assert not (panel["client"] / "profiles" / "gpu.toml").exists()
    assert not (panel["client"] / "credentials" / "paperspace").exists()
    # the API the key was checked against moves with it: the panel's form reads the lists there
    assert not (panel["client"] / "credentials" / "paperspace-api-url").exists()
    assert (panel["server"] / "credentials" / "paperspace-api-url").read_text().strip() == fake.url.rstrip("/")
    assert not (panel["client"] / "state" / "gpu.json").exists()
    assert ledger_rows(panel["client"], "gpu") == []
    assert not list((panel["client"] / "moves").iterdir())

    def no_id(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: v for k, v in r.items() if k != "id"} for r in found]

    assert no_id(ledger_rows(panel["server"], "gpu")) == no_id(rows)
    moved = json.loads(there(panel, "costs", "gpu", "--json").stdout)["profiles"]["gpu"]
    # counted once, with the same figures (the disk billed while down grows by the second)
    assert moved["hours"] == before["hours"] and moved["usd"] == pytest.approx(before["usd"], abs=0.01)
    status = json.loads(
        there(panel, "status", "gpu", "--json").stdout
    )  # the panel reads the fake with the moved key
    assert status["machine"]["state"] == "off" and status["state"] == "stopped"
    again = there(panel, "remote", "push", "gpu", check=False)
    assert "no profile named 'gpu'" in one_line_error(again)
    # the machine alone, through the panel with the moved key: the same answer as on its machine
    started = json.loads(there(panel, "up", "gpu", "--skip-setup", "--json").stdout)
    again_here = json.loads(here(panel, "up", "gpu", "--skip-setup", "--json").stdout)
    assert steady(started.pop("machine")) == steady(again_here.pop("machine")) and started == again_here
    assert (
        started["host"]
        and "gpu: the machine is running at" in there(panel, "up", "gpu", "--skip-setup").stdout
    )
    there(panel, "down", "gpu")

    there(panel, "remote", "logout")
    listed = json.loads(there(panel, "list", "--json").stdout)
    assert "gpu" not in listed["profiles"]


def test_a_moved_profile_takes_padlabs_ssh_key_and_host_key_and_the_panel_reaches_the_box_with_them(
    panel,
) -> None:
    fake = panel["fake"]
    there(panel, "remote", "logout")
    keys = panel["client"] / "keys" / "mine"
    keys.mkdir(parents=True)
    key = keys / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    there(panel, "login", "paperspace", "--key-stdin", "--api-url", fake.url, input=KEY + "\n")
    there(panel, "init", "gpu3", "--provider", "paperspace", "--api-url", fake.url, "--identity", str(key))
    host_key = "padlab-gpu3 " + " ".join(key.with_name("id_ed25519.pub").read_text().split()[:2])
    (panel["client"] / "ssh").mkdir(exist_ok=True)
    (panel["client"] / "ssh" / "known_hosts").write_text(host_key + "\n")
    private = key.read_bytes()

    login(panel, "--scope", "start-stop")  # refused: the key and the host key come back where they were
    assert "needs admin" in one_line_error(there(panel, "remote", "push", "gpu3", check=False))
    assert key.read_bytes() == private and stat.S_IMODE(key.stat().st_mode) == 0o600
    assert host_key in (panel["client"] / "ssh" / "known_hosts").read_text()
    assert f'identity = "{key}"' in (panel["client"] / "profiles" / "gpu3.toml").read_text()

    login(panel, "--scope", "admin")
    out = there(panel, "remote", "push", "gpu3")
    assert "ssh key" not in out.stdout  # padlab's own key moved: nothing was copied
    assert not key.exists() and not key.with_name("id_ed25519.pub").exists()  # no copy left here
    assert "padlab-gpu3" not in (panel["client"] / "ssh" / "known_hosts").read_text()
    carried = panel["server"] / "keys" / "gpu3" / "id_ed25519"
    assert carried.read_bytes() == private and stat.S_IMODE(carried.stat().st_mode) == 0o600

    # the panel's ssh to the box: the carried key, and the box's host key already known (no new trust)
    code = (
        "import json; from padlab import profiles, ssh; p = profiles.load('gpu3'); "
        "t = ssh.Target('203.0.113.9', 'paperspace', 22, p.identity, ssh.key_alias('gpu3')); "
        "print(json.dumps({'argv': ssh.command(t, 'true'), 'known': ssh._recorded(t.key_alias, ssh.known_hosts())}))"
    )
    seen = json.loads(
        subprocess.run(
            [sys.executable, "-c", code],
            env=padlab_env(panel["server"], **panel["env"]),
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    argv = seen["argv"]
    assert argv[argv.index("-i") + 1] == str(carried) and seen["known"] == [host_key]
    public = subprocess.run(
        ["ssh-keygen", "-y", "-f", str(carried)], capture_output=True, text=True, check=True
    )
    assert public.stdout.split()[:2] == host_key.split()[1:]
    # a re-run of the finished move changes nothing, and the status reads the fake with the moved key
    assert "no profile named 'gpu3'" in one_line_error(there(panel, "remote", "push", "gpu3", check=False))
    assert json.loads(there(panel, "status", "gpu3", "--json").stdout)["name"] == "gpu3"


def test_an_interrupted_move_is_finished_by_running_it_again_and_counted_once(panel) -> None:
    fake = panel["fake"]
    there(panel, "remote", "logout")
    there(panel, "login", "paperspace", "--key-stdin", "--api-url", fake.url, input=KEY + "\n")
    there(panel, "init", "gpu2", "--provider", "paperspace", "--api-url", fake.url)
    there(panel, "up", "gpu2", "--skip-setup", "--json")
    there(panel, "down", "gpu2")
    rows = ledger_rows(panel["client"], "gpu2")
    login(panel, "--scope", "admin")
    # The move got as far as the panel, and the answer never came back (the CLI was killed).
    code = (
        "from padlab.home import client, config, moves; "
        "saved = config.load(); client.RemoteHome(saved).take_in(moves.take_out('gpu2', saved['url'], True))"
    )
    subprocess.run([sys.executable, "-c", code], env=padlab_env(panel["client"]), check=True)
    assert (panel["client"] / "moves" / "gpu2.json").exists()
    assert not (panel["client"] / "profiles" / "gpu2.toml").exists()  # never live in both homes
    there(panel, "remote", "push", "gpu2")
    assert not (panel["client"] / "moves" / "gpu2.json").exists()
    assert len(ledger_rows(panel["server"], "gpu2")) == len(rows)


def test_scopes_are_enforced(panel) -> None:
    from padlab.panel import store

    reader = store.add_token("reader", "read")
    out = login(panel, "--token-stdin", input=reader + "\n")
    assert "scope read" in out.stdout
    assert json.loads(there(panel, "status", "lab", "--json").stdout)["name"] == "lab"
    refused = there(panel, "up", "lab", "--password-stdin", input=PASSWORD + "\n", check=False)
    assert "scope is read; this needs start-stop" in one_line_error(refused)
    assert "lab" in json.loads(there(panel, "list", "--json").stdout)["profiles"]
    verify = ssl.create_default_context(cafile=str(panel["server"] / "ca" / "padlab-ca.pem"))
    headers = {"Authorization": f"Bearer {reader}"}
    started = httpx.post(f"{panel['url']}/api/workstations/lab/start", headers=headers, verify=verify)
    assert started.status_code == 403
    pushed = httpx.post(f"{panel['url']}/api/home/profiles", headers=headers, json={}, verify=verify)
    assert pushed.status_code == 403
    # a read token looks (budget, autostop, logs) and changes nothing
    assert there(panel, "budget", "--json").stdout == here(panel, "budget", "--json").stdout
    assert json.loads(there(panel, "autostop", "lab", "--json").stdout)["name"] == "lab"
    for args, needs in (
        (("passwd", "lab", "--password-stdin"), "admin"),
        (("destroy", "lab", "--yes-really-destroy"), "admin"),
        (("budget", "lab", "5"), "admin"),
        (("default", "lab"), "admin"),
        (("alert", "lab", "--after", "1h"), "admin"),
        (("up", "lab", "--skip-setup"), "start-stop"),
        (("init", "x", "--provider", "local"), "admin"),
        (("login", "paperspace", "--key-stdin", "--no-verify"), "admin"),
        (("autostop", "lab", "5m"), "start-stop"),
        (("keep", "lab", "1h"), "start-stop"),
        (("kernels", "lab", "create", "k", "--packages", "x"), "start-stop"),
    ):
        refused = there(panel, *args, input="a long enough password\n", check=False)
        assert f"scope is read; this needs {needs}" in one_line_error(refused), args
    assert (
        "5m" not in here(panel, "autostop", "lab").stdout
        and not (panel["server"] / "profiles" / "x.toml").exists()
    )
    starter = store.add_token("starter", "start-stop")
    for path, body in (
        ("/api/home/passwd", {"name": "lab", "password": "a long enough password"}),
        ("/api/home/destroy", {"name": "lab", "typed": "lab"}),
        ("/api/home/login", {"provider": "paperspace", "parts": ["k"], "verify": False}),
    ):
        assert api(panel, starter, path, body).status_code == 403, path


def test_bad_url_token_or_fingerprint_is_one_line_with_a_fix(panel) -> None:
    there(panel, "remote", "logout")
    plain = there(panel, "remote", "login", "http://127.0.0.1:1", "--token", "x", check=False)
    assert "not a panel URL" in one_line_error(plain) and "https://" in plain.stderr
    nobody = there(panel, "remote", "login", f"https://127.0.0.1:{free_port()}", "--token", "x", check=False)
    assert "cannot reach the padlab panel" in one_line_error(nobody)
    unpinned = there(panel, "remote", "login", panel["url"], "--token", "x", check=False)
    assert panel["fingerprint"] in one_line_error(unpinned) and "--ca-fingerprint" in unpinned.stderr
    wrong = login(panel, "--token-stdin", input="padlab_made-up\n", check=False)
    assert "refused this CLI's token" in one_line_error(wrong)
    assert not (panel["client"] / "remote.json").exists()
    bad_password = login(panel, input="not the password at all\n", check=False)
    assert "wrong panel password" in one_line_error(bad_password)

    from padlab.panel import store

    token = store.add_token("revoked-later", "read")
    login(panel, "--token-stdin", input=token + "\n")
    store.revoke_token("revoked-later")
    status = there(panel, "status", "lab", check=False)
    assert "padlab remote login" in one_line_error(status)
    local_only = there(panel, "ssh", "lab", check=False)
    assert "padlab remote logout" in one_line_error(local_only)
    (panel["client"] / "remote.json").write_text("{not json")
    damaged = there(panel, "status", "lab", check=False)
    assert "padlab remote logout" in one_line_error(damaged)
    there(panel, "remote", "logout")
    assert "home: this machine" in there(panel, "remote", "status").stdout
