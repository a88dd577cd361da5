"""Jupyter on boot where the box is a container (a RunPod pod): its start command re-runs `up`.

A container has no systemd and no cron, and its disk is wiped at every stop, so nothing
the box installs there outlives a restart. What outlives it is the volume. So `up` keeps,
in a root-only directory on the volume (the request's ``boot.dir``), a copy of the box
program and of its own request (without the password or the signed certificate: the
password hash and the certificate are on the volume already), and the pod's start
command runs that `up` again in the background at every start (``COMMAND``). It rebuilds
only what the wiped disk lost: the Jupyter user, the detached Jupyter, the autostop loop.

Root runs this program, so it and its request live where only root can write: the
directory is root's, 0700, and its parent must be root's too (the provider's start
command makes it so before reading anything from it). The Jupyter user can write the
box prefix, so nothing is run from there.
"""

from __future__ import annotations

import json
import os

from ..report import Report
from ..system import Host

PROGRAM = "padlab_box.pyz"
REQUEST = "up-request.json"
LOG = "boot.log"
# What the start command runs, with the directory as $1 (standard library only, any python3).
COMMAND = (
    "import json,sys;d=sys.argv[1];p=d+'/%s';sys.path.insert(0,p)\n"
    "from padlab_box.__main__ import run\n"
    "sys.exit(run(json.load(open(d+'/%s')),open(p,'rb').read()))" % (PROGRAM, REQUEST)
)
# Left out of the saved request: secrets a later run does not need, and the one-time parts.
DROPPED = ("password", "answers", "check")


def save(host: Host, req: dict, program: bytes, report: Report) -> None:
    """Keep the program and this request (root's, 0600) for the start command's next run."""
    where = req["boot"]["dir"]
    host.makedirs(where, mode=0o700, root=True)
    host.run(["chmod", "700", where], root=True)
    kept = {k: v for k, v in req.items() if k not in DROPPED}
    changed = bool(program) and host.write(os.path.join(where, PROGRAM), program, mode=0o600, root=True)
    text = json.dumps(kept, indent=1, sort_keys=True) + "\n"
    changed |= host.write(os.path.join(where, REQUEST), text, mode=0o600, root=True)
    report.step("boot", changed, "the pod's start command runs `up` again from %s" % where)
