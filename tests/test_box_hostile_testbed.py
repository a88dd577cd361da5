"""A notebook against its own box (issue 16), on one real testbed machine.

padlab logs in as root (DigitalOcean's way), so Jupyter runs as the unprivileged
``padlab-jupyter``: the notebook user, with no sudo. As that user the test plants
everything a notebook can: a directory where the keep file goes, non-numbers in a
download job, a download job folder that is a link to a root-only folder, a kernel
environment whose bin/python notes who runs it, a Jupyter venv python that does the
same, and a kernelspec folder that is a link to a root folder. Then the client runs
`up`, `kernels create`, `get` and `status` against it, and the box is left idle.

It asserts that the box still powers off within the idle limit (plus the agent's one
minute), that nothing ran as root from a path the user owns (the planted programs note
`id -u`; none says 0), and that nothing was written through the links (the root folders
they point at are unchanged). One machine; the only wait is the idle limit itself.
"""

from __future__ import annotations

import json
import os
import textwrap
import time
from collections.abc import Iterator
from typing import Any

import pytest

from padlab.box.files import jobs
from tests.helpers import PASSWORD, padlab, padlab_json
from tests.test_autostop_testbed import close, open_terminal

pytestmark = [pytest.mark.testbed, pytest.mark.timeout(1800)]

JUSER = "padlab-jupyter"
PREFIX = "/opt/padlab"
CANARY = "/var/lib/padlab-canary"  # root's: what the planted links point at
MARKS = "/srv/padlab-marks"  # world-writable, not sticky: anyone's planted program can leave a mark
LIMIT = 60
SLACK = 60
TRAP_URL = "http://127.0.0.1:9/trap.bin"
TRAP_DEST = f"/home/{JUSER}/notebooks/datasets/trap.bin"
OK_URL = "http://127.0.0.1:8000/ok.bin"

SETUP = f"""
set -e
mkdir -p /root/.ssh && cp /home/padlab/.ssh/authorized_keys /root/.ssh/ && chmod 700 /root/.ssh
mkdir -p {CANARY}/kernels {CANARY}/jobs /srv/www
echo '[Unit]' > {CANARY}/kernels/padlab-units.service
chmod -R go-w {CANARY}
mkdir -m 777 {MARKS} && chmod 777 {MARKS}
head -c 300000 /dev/urandom > /srv/www/ok.bin
systemd-run --unit padlab-web --property=DynamicUser=yes python3 -m http.server 8000 --bind 127.0.0.1 --directory /srv/www
"""

# As the Jupyter user: each line is something a notebook can do.
PLANT = textwrap.dedent(
    f"""\
    set -e
    cd ~
    # 1. a directory where the keep file goes
    rm -f {PREFIX}/run/keep-until && mkdir {PREFIX}/run/keep-until
    # 2. a download job whose times and sizes are not numbers
    d=~/.cache/padlab/downloads/0123456789abcdef && mkdir -p $d
    echo '{{"url": 5, "dest": ["x"], "sha256": 7}}' > $d/job.json
    echo '{{"state": "done", "updated": "soon", "finished": "later", "started": "x", "bytes": "lots"}}' > $d/state.json
    # 3. the folder of the next `get`'s job, a link to a root-only folder
    ln -s {CANARY}/jobs ~/.cache/padlab/downloads/{jobs.job_id(TRAP_URL, TRAP_DEST)}
    # 4. a kernel environment whose bin/python notes who runs it
    e={PREFIX}/kernels/evil && mkdir -p $e/bin
    printf '#!/bin/sh\\nid -u > {MARKS}/kernel-$$\\nexit 1\\n' > $e/bin/python && chmod 755 $e/bin/python
    echo 'version_info = 3.11.2' > $e/pyvenv.cfg
    # 5. Jupyter's venv python: notes who runs it, then runs the real one
    v={PREFIX}/venv/bin && rm $v/python
    printf '#!/bin/sh\\nid -u > {MARKS}/venv-$$\\nexec "$(dirname "$0")/python3" "$@"\\n' > $v/python && chmod 755 $v/python
    """
)
# 6. after the first `up`: the kernelspec folder of Jupyter's venv, a link to a root folder.
PLANT_KERNELSPECS = f"k={PREFIX}/venv/share/jupyter/kernels && mv $k $k.moved && ln -s {CANARY}/kernels $k"
LISTING = f"find {CANARY} -printf '%p %u %s %T@\\n' | sort"


def as_jupyter_user(machine: Any, script: str) -> None:
    machine.exec(["runuser", "-u", JUSER, "--", "bash", "-c", script])


@pytest.fixture(scope="module")
def story(testbed: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Set up, plant, run the client's actions, leave the box idle; what each step saw."""
    from tests.testbed.host import TestbedError

    try:
        machine = testbed.machine(f"hostile{os.getpid() % 100000}")
    except TestbedError:  # a boot that loses the race for sshd under load gets one more try
        machine = testbed.machine(f"hostile{os.getpid() % 100000}r")
    seen: dict[str, Any] = {"machine": machine}
    off = {"at": None}
    machine.on_off(lambda _m: off.update(at=off["at"] or time.time()))
    home = tmp_path_factory.mktemp("hostile") / "padlab-home"
    term = None
    try:
        machine.exec(SETUP)
        padlab(home, "init", "box", "--provider", "ssh", "--host", f"root@{machine.ip}",
               "--identity", str(machine.identity), "--autostop", "1m",
               "--autostop-action", "poweroff")  # fmt: skip
        padlab_json(home, "up", "--password-stdin", input=PASSWORD + "\n")
        seen["uid"] = machine.exec(["id", "-u", JUSER]).stdout.strip()
        term = open_terminal(machine)  # an interactive session holds the box up while the test works
        seen["canary_before"] = machine.exec(LISTING).stdout
        as_jupyter_user(machine, PLANT)

        seen["up"] = padlab(home, "up", "box", "--json", check=False)
        seen["kernel"] = padlab(
            home, "kernels", "box", "create", "evil", "--packages", "ipykernel", "--python", "3.11",
            check=False,
        )  # fmt: skip
        seen["trap"] = padlab(home, "get", "box", TRAP_URL, "--json", check=False)
        seen["ok"] = padlab(home, "get", "box", OK_URL, "--json", check=False)
        seen["ok_owner"] = machine.exec(
            f"stat -c %U /home/{JUSER}/notebooks/datasets/ok.bin", check=False
        ).stdout.strip()
        seen["status"] = padlab(home, "status", "box", "--json", check=False)
        as_jupyter_user(machine, PLANT_KERNELSPECS)
        seen["up_linked"] = padlab(home, "up", "box", "--json", check=False)
        seen["canary_after"] = machine.exec(LISTING).stdout

        close(term)
        term = None
        seen["idle_at"] = time.time()
        deadline = seen["idle_at"] + LIMIT + SLACK + 120
        while off["at"] is None and time.time() < deadline:
            time.sleep(1)
        seen["off_at"] = off["at"]
        root = machine.root
        seen["marks"] = {p.name: p.read_text().strip() for p in (root / MARKS.lstrip("/")).iterdir()}
        agent_dir = root / "var/lib/padlab/agent-box"
        seen["log"] = (agent_dir / "agent.log").read_text(errors="replace")
        stopped = agent_dir / "stopped.json"
        seen["stopped"] = json.loads(stopped.read_text()) if stopped.exists() else {}
        yield seen
    finally:
        if term is not None:
            close(term)
        machine.destroy()


def test_the_box_still_stops_at_the_idle_limit(story: dict[str, Any]) -> None:
    assert story["off_at"] is not None, story["log"][-3000:]
    assert story["off_at"] - story["idle_at"] <= LIMIT + SLACK, story["log"][-3000:]
    assert "ignored the hold in /opt/padlab/run/keep-until: not a regular file" in story["log"]
    assert story["stopped"].get("result", "").startswith("power-off requested at"), story["stopped"]
    assert story["status"].returncode == 0, story["status"].stderr  # status still answers, planted or not


def test_nothing_ran_as_root_from_a_path_the_user_owns(story: dict[str, Any]) -> None:
    marks = story["marks"]
    assert set(marks.values()) == {story["uid"]}, marks
    # The planted programs were reached (as the user): the check above is not vacuous.
    assert any(n.startswith("venv-") for n in marks) and any(n.startswith("kernel-") for n in marks), marks
    assert story["up"].returncode == 0, story["up"].stderr


def test_nothing_was_written_through_a_planted_link(story: dict[str, Any]) -> None:
    assert story["canary_after"] == story["canary_before"]
    trap = story["trap"]
    assert trap.returncode != 0 and "may not write" in trap.stderr, trap.stderr
    assert story["ok"].returncode == 0 and story["ok_owner"] == JUSER, (story["ok"].stderr, story["ok_owner"])
    linked = story["up_linked"]  # refused, in one line, rather than acting through the link
    assert linked.returncode != 0 and f"as {JUSER}" in linked.stderr, linked.stderr
