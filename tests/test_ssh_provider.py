"""The ssh provider end to end on real systemd Debian machines (tests/testbed).

One box is set up once for the module (bare -> `padlab up` over ssh with
`--firewall on --allow-from auto`) and shared by the tests that only look at
it; the reboot test comes last because it disturbs it. Tests that break a box
(host keys, sudo, python3, a killed connection) get a fresh machine each.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pty
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from padlab.notebook_api import NotebookClient
from tests.helpers import PASSWORD, one_line_error, padlab, padlab_env, padlab_json

pytestmark = [pytest.mark.testbed, pytest.mark.timeout(600)]

JUPYTER_PORT = 8888
MOSH = (60001, 60010)


def init(home: Path, name: str, machine, *extra: str) -> None:
    padlab(
        home,
        "init", name, "--provider", "ssh",
        "--host", f"{machine.user}@{machine.ip}",
        "--identity", str(machine.identity),
        *extra,
    )  # fmt: skip


def login_and_run(url: str, ca_file: str) -> str:
    """Password login over HTTPS verified against padlab's CA, then code in a kernel."""
    with NotebookClient(url, ca_file) as client:
        assert client.login(PASSWORD), "Jupyter refused the password"
        kernel = client.start_kernel()
        try:
            return client.execute(kernel, "print(6 * 7)").stdout.strip()
        finally:
            client.shutdown_kernel(kernel)


def tcp_from(client, ip: str, port: int) -> str:
    """What a TCP connect from another namespace gets: the first bytes, or the error."""
    code = (
        "import socket,sys\n"
        "try:\n"
        f" s=socket.create_connection(({ip!r},{port}),3); s.settimeout(3); print('open', s.recv(4))\n"
        "except OSError as e: print('closed', type(e).__name__)\n"
    )
    return client.run([sys.executable, "-c", code]).stdout.strip()


def close_connection(home: Path, machine) -> None:
    """End padlab's shared ssh connection to machine, as a network drop would."""
    subprocess.run(
        ["ssh", "-o", f"ControlPath={control_path(home)}", "-O", "exit", f"{machine.user}@{machine.ip}"],
        capture_output=True,
    )


def control_path(home: Path) -> str:
    code = "from padlab import ssh; print(ssh.control_dir() / '%C')"
    env = padlab_env(home)
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture(scope="module")
def box(testbed, tmp_path_factory) -> Iterator[dict]:
    machine = testbed.machine(f"ssh{os.getpid() % 100000}")
    home = tmp_path_factory.mktemp("ssh") / "home"
    init(home, "box", machine, "--allow-from", "auto", "--firewall", "on")
    t0 = time.monotonic()
    card = padlab_json(home, "up", "box", "--password-stdin", input=PASSWORD + "\n")
    yield {"machine": machine, "home": home, "card": card, "bare_s": time.monotonic() - t0}
    machine.destroy()


def test_bare_box_up_gives_verified_https_login_and_kernel(box) -> None:
    card, machine = box["card"], box["machine"]
    assert card["state"] == "running" and card["changed"] is True
    assert card["url"] == f"https://{machine.ip}:{JUPYTER_PORT}/"
    assert login_and_run(card["url"], card["ca_cert"]) == "42"
    assert card["ssh"] == f"ssh padlab@{machine.ip}"
    assert card["mosh"] == f"mosh -p {MOSH[0]}:{MOSH[1]} padlab@{machine.ip}"
    assert card["blink"].startswith(f"Host box  HostName {machine.ip}  User padlab")


def test_bare_box_runs_exactly_padlabs_jupyter_lock(box) -> None:
    """Debian 12 (Python 3.11): every locked package at its locked version (docs/jupyter-stack.md)."""
    from tests.test_jupyter_stack import compare_on, off_lock

    found = compare_on(box["machine"])
    assert found["jupyterlab"][1].startswith("4.5.") and off_lock(found) == {}


def test_service_runs_as_login_user_and_secrets_are_private(box) -> None:
    machine = box["machine"]
    unit = machine.exec("systemctl show padlab-box.service -p User -p Restart -p UnitFileState").stdout
    assert set(unit.split()) == {"User=padlab", "Restart=always", "UnitFileState=enabled"}
    modes = machine.exec(
        "stat -c '%n %a %U' /etc/padlab/jupyter/jupyter_server_config.json /etc/padlab/tls/server.key"
    ).stdout.splitlines()
    assert all(line.endswith(" 600 padlab") for line in modes), modes


def test_second_up_changes_nothing(box) -> None:
    """Its speed is a figure for benchmarks/bootstrap.py, not an assertion on a loaded machine."""
    again = padlab_json(box["home"], "up", "box")
    assert again["changed"] is False, [s for s in again["steps"] if s["changed"]]
    assert [s["name"] for s in again["steps"]] == ["unchanged"], again.get("fingerprint_changed")
    checked = padlab_json(box["home"], "up", "box", "--check")
    assert checked["changed"] is False, [s for s in checked["steps"] if s["changed"]]
    assert {s["name"] for s in checked["steps"]} >= {"python-env", "service", "mosh", "firewall"}


def test_firewall_holds_exactly_the_expected_rules(box) -> None:
    machine = box["machine"]
    table = json.loads(machine.exec("nft -j list table inet padlab").stdout)["nftables"]
    chain = next(i["chain"] for i in table if "chain" in i)
    comments = sorted(i["rule"]["comment"] for i in table if "rule" in i)
    me = f"{machine.net.host_ip}/32"  # the host, as the box sees it: what --allow-from auto means
    assert (chain["hook"], chain["policy"]) == ("input", "drop")
    assert comments == sorted(
        [
            "padlab:base:established",
            "padlab:base:loopback",
            "padlab:base:icmp",
            "padlab:base:dhcp",
            "padlab:ssh:tcp:22:any",
            f"padlab:jupyter:tcp:{JUPYTER_PORT}:{me}",
            f"padlab:mosh:udp:{MOSH[0]}-{MOSH[1]}:{me}",
        ]
    )
    # Nothing else in the ruleset: padlab added one table and touched no other.
    tables = machine.exec("nft list tables").stdout.split("\n")
    assert [t.strip() for t in tables if t.strip()] == ["table inet padlab"]


def test_allow_from_refuses_another_source_but_never_ssh(box, make_client) -> None:
    machine, outsider = box["machine"], make_client()
    assert tcp_from(outsider, machine.ip, JUPYTER_PORT).startswith("closed")
    assert tcp_from(outsider, machine.ip, 22) == "open b'SSH-'"


# Run on the box as root: every padlab unit without User= (root's), the paths it names (and the
# paths named by the scripts it runs), and which of those, or of the folders above them, USER can
# write; also whether each Python it starts is isolated (-I: no PYTHONPATH, no user site, no cwd).
ROOT_UNITS_AUDIT = r"""
import glob, json, os, pwd, re, sys
user = pwd.getpwnam(sys.argv[1])
units, named, not_isolated = [], set(), []
PATH = re.compile(r"(?<![\w.])/[\w.@+-][\w./@+-]*")
for unit in sorted(glob.glob("/etc/systemd/system/padlab*.service")):
    text = open(unit).read()
    if re.search(r"^User=", text, re.M):
        continue
    units.append(os.path.basename(unit))
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key.startswith("Exec") or key in ("Environment", "EnvironmentFile", "WorkingDirectory"):
            found = PATH.findall(value)
            named.update(found)
            if key.startswith("Exec") and found:
                program = found[0]
                head = open(program, errors="replace").readline() if os.path.isfile(program) else ""
                shebang = head if head.startswith("#!") else ""
                python = "python" in os.path.basename(program) or "python" in shebang
                if python and " -I" not in " " + value and " -I" not in shebang:
                    not_isolated.append(unit + ": " + value)
for path in list(named):  # scripts: what they name runs as root too
    if os.path.isfile(path) and open(path, "rb").read(2) == b"#!":
        named.update(PATH.findall(open(path, errors="replace").read()))
check = set()
for path in named:
    while path not in ("", "/"):
        check.add(path)
        path = os.path.dirname(path)
check.add("/")
pid = os.fork()
if pid == 0:
    os.setgroups(os.getgrouplist(user.pw_name, user.pw_gid))
    os.setgid(user.pw_gid)
    os.setuid(user.pw_uid)
    writable = sorted(p for p in check if os.path.exists(p) and os.access(p, os.W_OK))
    print(json.dumps({"units": units, "checked": len(check), "writable": writable,
                      "not_isolated": not_isolated}), flush=True)
    os._exit(0)
os.waitpid(pid, 0)
"""


def test_root_units_load_nothing_the_login_user_can_write(box) -> None:
    machine, home = box["machine"], box["home"]
    padlab(home, "autostop", "box", "8h")  # the agent's timer unit runs as root too
    audit = json.loads(machine.exec(["python3", "-c", ROOT_UNITS_AUDIT, machine.user]).stdout)
    assert {"padlab-firewall.service", "padlab-agent-box.service"} <= set(audit["units"]), audit
    assert audit["checked"] > 10, audit
    assert audit["writable"] == [] and audit["not_isolated"] == [], audit
    padlab(home, "autostop", "box", "off")


def run_in_pty(argv: list[str], env: dict[str, str], timeout: float) -> str:
    """Run argv on a 24x80 pseudo-terminal (mosh-client needs one) and return what it drew."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: size the terminal, then become argv
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        os.execvpe(argv[0], argv, env)
    out = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
    finally:
        if time.monotonic() >= deadline:
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(fd)
    return out.decode(errors="replace")


def test_real_mosh_client_connects_through_the_firewall(box) -> None:
    env = padlab_env(box["home"], LANG="C.UTF-8", TERM="xterm")
    drawn = run_in_pty(
        [sys.executable, "-m", "padlab", "mosh", "box", "--", "sh", "-c", "echo MOSH-$((6*7)); sleep 1"],
        env,
        timeout=60,
    )
    assert "MOSH-42" in drawn, drawn[-2000:]


def test_reboot_brings_jupyter_back_without_padlab(box, record_property) -> None:
    machine, card = box["machine"], box["card"]
    boots = machine.boot_count
    machine.reboot()
    assert machine.boot_count == boots + 1
    deadline, last, stalled = time.monotonic() + 90, None, 0
    while True:
        try:
            assert login_and_run(card["url"], card["ca_cert"]) == "42"
            break
        except Exception as exc:  # not up yet: connection refused, 502...
            last = exc
        # A kernel whose websocket handshake never finished (jupyter_server waits for the new kernel
        # there, once without a limit; CI saw it twice right after Jupyter's start, cause unknown)
        # takes OPEN_TIMEOUT: one more try, with a new kernel, and the figure says so.
        stalled += "websocket did not open" in str(last)
        if time.monotonic() >= deadline and not (stalled == 1 and "websocket did not open" in str(last)):
            pytest.fail(f"Jupyter did not come back after the reboot: {last}")
        time.sleep(1)
    if stalled:
        record_property(
            "figure", f"ssh reboot: {stalled} kernel websocket(s) never opened, then a new kernel ran code"
        )
    # The firewall came back too (padlab-firewall.service), still with its allow-from rule.
    assert "padlab:jupyter" in machine.exec("nft list table inet padlab").stdout
    assert padlab_json(box["home"], "status", "box")["state"] == "running"


# -- tests that break their own box --------------------------------------------------------


def test_changed_host_key_is_refused_until_forgotten(machine, tmp_path) -> None:
    home = tmp_path / "home"
    init(home, "hk", machine)
    padlab(home, "ssh", "hk", "--", "true")  # trust on first use
    known = (home / "ssh" / "known_hosts").read_text()
    assert machine.host_public_key() in known
    machine.regenerate_host_keys()
    close_connection(home, machine)
    proc = padlab(home, "up", "hk", "--generate-password", check=False)
    line = one_line_error(proc)
    assert "host key" in line and "changed" in line and "forget-host-key" in line, line
    padlab(home, "forget-host-key", "hk")
    padlab(home, "ssh", "hk", "--", "true")
    assert machine.host_public_key() in (home / "ssh" / "known_hosts").read_text()


def _forward(to: tuple[str, int]) -> tuple[int, Callable[[], None]]:
    """A TCP forwarder on 127.0.0.1: the same machine at another address, as a cloud restart gives."""
    import socket
    import threading

    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def pipe(a: socket.socket, b: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := a.recv(65536):
                b.sendall(data)
        with contextlib.suppress(OSError):
            b.shutdown(socket.SHUT_WR)

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(to)
            for a, b in ((conn, upstream), (upstream, conn)):
                threading.Thread(target=pipe, args=(a, b), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()

    def close() -> None:
        stop.set()
        listener.close()

    return listener.getsockname()[1], close


def test_a_machine_back_at_a_new_address_keeps_its_key_check(machine, tmp_path) -> None:
    """AWS gives a new address on every start: padlab checks the profile's key, never a fresh TOFU."""
    home = tmp_path / "home"
    init(home, "hk", machine)
    padlab(home, "ssh", "hk", "--", "true")  # trust on first use, under the profile's alias
    known = (home / "ssh" / "known_hosts").read_text()
    found = ["ssh-keygen", "-F", "padlab-hk", "-f", str(home / "ssh" / "known_hosts")]
    assert subprocess.run(found, capture_output=True).returncode == 0 and len(known.splitlines()) == 1
    port, close = _forward((machine.ip, 22))
    try:
        moved = ("--host", f"{machine.user}@127.0.0.1", "--ssh-port", str(port), "--force")
        padlab(home, "init", "hk", "--provider", "ssh", "--identity", str(machine.identity), *moved)
        padlab(home, "ssh", "hk", "--", "true")  # same key at the new address: accepted, nothing added
        assert (home / "ssh" / "known_hosts").read_text() == known
        machine.regenerate_host_keys()
        close_connection(home, machine)
        subprocess.run(
            ["ssh", "-o", f"ControlPath={control_path(home)}", "-O", "exit", "-p", str(port)]
            + [f"{machine.user}@127.0.0.1"],
            capture_output=True,
        )
        line = one_line_error(padlab(home, "up", "hk", "--generate-password", check=False))
        assert "host key" in line and "changed" in line and "forget-host-key" in line, line
    finally:
        close()


def test_sudo_asking_for_a_password_gives_the_clear_error(machine, tmp_path) -> None:
    home = tmp_path / "home"
    init(home, "sp", machine)
    machine.require_sudo_password()
    line = one_line_error(padlab(home, "up", "sp", "--generate-password", check=False))
    assert "sudo" in line and "password" in line and "NOPASSWD" in line, line


def test_box_without_python3_gives_one_line_with_the_install_command(machine, tmp_path) -> None:
    home = tmp_path / "home"
    init(home, "np", machine)
    machine.exec("for f in /usr/bin/python3*; do mv $f $f.off; done")
    line = one_line_error(padlab(home, "up", "np", "--generate-password", check=False))
    assert "python3 is not installed" in line and "apt-get install -y python3" in line, line


DROP_RULESET = """flush ruleset
table inet filter {
  chain input {
    type filter hook input priority filter; policy drop;
    ct state established,related accept
    iif "lo" accept
    tcp dport 22 accept
  }
}
"""


def test_killed_connection_mid_bootstrap_then_up_finishes_on_an_nftables_box(machine, tmp_path) -> None:
    """Also: a box whose own nftables ruleset drops input gets padlab's rules in that chain."""
    machine.exec(
        "apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -q -y nftables", timeout=300
    )
    machine.exec(
        ["sh", "-c", "cat > /etc/nftables.conf && systemctl enable --now nftables"], input=DROP_RULESET
    )
    home = tmp_path / "home"
    init(home, "kill", machine)
    first = subprocess.Popen(
        [sys.executable, "-m", "padlab", "up", "kill", "--password-stdin"],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        env=padlab_env(home),
        text=True,
        start_new_session=True,
    )
    assert first.stdin and first.stderr
    first.stdin.write(PASSWORD + "\n")
    first.stdin.close()
    for line in first.stderr:
        if "installing Jupyter" in line:
            break
    else:
        pytest.fail("up never reached the install stage")
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    close_connection(home, machine)

    card = padlab_json(home, "up", "kill", "--password-stdin", input=PASSWORD + "\n")
    assert login_and_run(card["url"], card["ca_cert"]) == "42"
    rules = machine.exec("nft -a list chain inet filter input").stdout
    tagged = sorted(
        line.split('comment "')[1].split('"')[0] for line in rules.splitlines() if "padlab:" in line
    )
    assert tagged == sorted(
        [
            "padlab:ssh:tcp:22:any",
            f"padlab:jupyter:tcp:{JUPYTER_PORT}:any",
            f"padlab:mosh:udp:{MOSH[0]}-{MOSH[1]}:any",
        ]
    )
    assert "inet padlab" not in machine.exec("nft list tables").stdout
    assert padlab_json(home, "up", "kill")["changed"] is False


def test_down_stops_and_disables_jupyter_but_leaves_the_machine_on(box) -> None:
    machine, home = box["machine"], box["home"]
    padlab(home, "down", "box")
    unit = machine.exec("systemctl show padlab-box.service -p ActiveState -p UnitFileState").stdout.split()
    assert set(unit) == {"ActiveState=inactive", "UnitFileState=disabled"}
    assert machine.state() == "running"
    assert padlab_json(home, "status", "box")["state"] == "stopped"
    again = padlab_json(home, "up", "box")
    assert again["state"] == "running" and login_and_run(again["url"], again["ca_cert"]) == "42"


def test_active_ufw_gets_tagged_rules_and_a_new_allow_from_replaces_them(machine, tmp_path) -> None:
    machine.exec(
        "apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -q -y ufw"
        " && ufw allow 22/tcp && ufw --force enable",
        timeout=300,
    )
    home = tmp_path / "home"
    init(home, "uf", machine, "--allow-from", "198.18.0.0/16")
    card = padlab_json(home, "up", "uf", "--password-stdin", input=PASSWORD + "\n")
    assert login_and_run(card["url"], card["ca_cert"]) == "42"

    def padlab_rules() -> list[str]:
        added = machine.exec("ufw show added").stdout.splitlines()
        return sorted(line.split("comment '")[1].rstrip("'") for line in added if "comment 'padlab:" in line)

    assert padlab_rules() == [
        "padlab:jupyter:tcp:8888:198.18.0.0/16",
        f"padlab:mosh:udp:{MOSH[0]}-{MOSH[1]}:198.18.0.0/16",
        "padlab:ssh:tcp:22:any",
    ]
    init(home, "uf", machine, "--allow-from", "auto", "--force")
    assert padlab_json(home, "up", "uf")["changed"] is True
    me = f"{machine.net.host_ip}/32"
    assert padlab_rules() == [
        f"padlab:jupyter:tcp:8888:{me}",
        f"padlab:mosh:udp:{MOSH[0]}-{MOSH[1]}:{me}",
        "padlab:ssh:tcp:22:any",
    ]
    assert machine.exec("ufw status").stdout.startswith("Status: active")
