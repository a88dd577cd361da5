"""The box request: every field the client may send, with its type and default, checked once.

``__main__.run`` parses the JSON request with ``parse()`` before any action runs,
so an action reads ``req["field"]`` and finds it, typed, its default filled in;
a field that is unknown or of the wrong type stops the program with one line.

Adding a field is one line in FIELDS (or in a nested table such as AUTOSTOP),
then the client sets it (padlab.workstation.request_for, or a provider's
``layout().steps`` / ``autostop_fields``). Standard library only, imports nothing:
the client reads the defaults below too (e.g. MOSH_PORTS).
"""

from __future__ import annotations

import copy

from .report import BoxError

# mosh's UDP range: `mosh -p 60001:60010` on the client, the firewall step and cloud rules on the box side.
MOSH_PORTS = (60001, 60010)
# A GPU at or above this utilisation counts as in use (autostop).
GPU_THRESHOLD = 10
# The warning reaches every open terminal this long before a stop (at most the idle limit).
WARN_S = 300

REQUIRED = object()
NONE = type(None)
NUMBER = (int, float)


class Field:
    """One request field: the types it may have, its default (REQUIRED: none), and nested fields."""

    __slots__ = ("types", "default", "fields")

    def __init__(self, types: object, default: object = None, fields: dict | None = None) -> None:
        self.types = types if isinstance(types, tuple) else (types,)
        self.default = default
        self.fields = fields


DIGITALOCEAN = {
    "droplet_id": Field((str, NONE)),
    "api_url": Field((str, NONE)),
    "snapshot_prefix": Field((str, NONE)),
    "token": Field((str, NONE)),  # kept 0600 in a file of its own; never in the config or argv
}

LAMBDA = {
    "instance_id": Field((str, NONE)),
    "api_url": Field((str, NONE)),
    "key": Field((str, NONE)),  # kept 0600 in a file of its own; never in the config or argv
}

RUNPOD = {
    "api_url": Field((str, NONE)),  # the pod's key and id come from the pod itself (runpod_stop.py)
}

AUTOSTOP = {
    "idle_s": Field((int, NONE)),  # None: no idle limit
    "max_uptime_s": Field((int, NONE)),  # None: no hard cap
    "action": Field(str, "service"),  # a key of stops.STOPS
    "warn_s": Field(int, WARN_S),
    "gpu_threshold": Field(int, GPU_THRESHOLD),
    "digitalocean": Field((dict, NONE), None, DIGITALOCEAN),  # the snapshot-and-delete stop's settings
    "lambda": Field((dict, NONE), None, LAMBDA),  # Lambda's terminate stop's settings
    "runpod": Field((dict, NONE), None, RUNPOD),  # RunPod's stop's settings
    # The budget (padlab/money.py): stop at the deadline whatever the box does; alert at 80 %.
    "deadline_at": Field(NUMBER + (NONE,)),
    "deadline_why": Field((str, NONE)),
    "budget_warn_at": Field(NUMBER + (NONE,)),
    "budget_warn_text": Field((str, NONE)),
}

ALERTS = {
    "ntfy": Field((str, NONE)),  # the topic URL: a credential, kept 0600 in a file of its own
    "after_s": Field(NUMBER + (NONE,)),  # alert once the box has been up this long
}

GET = {
    "url": Field((str, NONE)),
    "name": Field((str, NONE)),  # the file name, from the URL's path
    "to": Field(str, "datasets"),  # the folder, relative to the notebook folder
    "sha256": Field((str, NONE)),
    "unpack": Field(bool, False),
    "list": Field(bool, False),  # list the downloads instead of starting one
}

PATHS = {
    "path": Field(str, "."),  # relative to the notebook folder
    "push": Field(bool, False),  # make the destination's folder
    "rsync": Field(bool, False),  # the copy is rsync over ssh: rsync must be on the box
}

# A public certificate from an ACME server (box/setup/acme_setup.py); the account key is the client's.
ACME = {
    "directory": Field(str, REQUIRED),  # the ACME directory URL (Let's Encrypt by default)
    "ip": Field(str, REQUIRED),  # the address the certificate is for: the one the client reaches
    "account_key_pem": Field(str, REQUIRED),  # made once per client, kept 0600 there and root's here
    "ca_pem": Field((str, NONE)),  # extra roots for a private ACME server (tests: pebble)
}

FIELDS = {
    # -- every request ------------------------------------------------------------------
    "action": Field(str, REQUIRED),  # a key of __main__.ACTIONS
    "name": Field(str, REQUIRED),  # the profile: names the unit, the lock and the agent
    "prefix": Field(str, REQUIRED),  # where the workstation lives (venv, program, logs)
    "etc": Field(str, REQUIRED),  # its configuration and TLS files
    "system": Field(bool, False),  # system files through sudo -n (remote boxes)
    "user": Field((str, NONE)),  # Jupyter's user; None: the login user, padlab-jupyter if that is root
    "port": Field((int, NONE)),  # Jupyter's HTTPS port (up, autostop)
    "listen": Field(str, "0.0.0.0"),
    "root_dir": Field(str, "~/notebooks"),
    "extra_sans": Field(list, []),  # names the certificate must carry besides the box's own
    "autostop": Field(dict, {}, AUTOSTOP),
    "alerts": Field((dict, NONE), None, ALERTS),  # the agent's own alerts (up, autostop)
    # -- up and passwd ----------------------------------------------------------------------
    "ca_pem": Field((str, NONE)),
    "password": Field((str, NONE)),
    "packages": Field(list, []),  # extra packages for Jupyter's venv
    "uv_cache": Field((str, NONE)),  # up: uv's cache dir (a container's volume); None: uv's default
    # up: a plain-HTTP port serving Jupyter for a cloud's HTTPS proxy only (RunPod; box/setup/http_front.py)
    "proxy_port": Field((int, NONE)),
    "mosh": Field((dict, NONE), None, {"ports": Field(list, list(MOSH_PORTS))}),  # None: no mosh step
    "firewall": Field(  # None: no firewall step
        (dict, NONE), None, {"allow_from": Field((str, NONE)), "enable": Field(bool, False)}
    ),
    "kernels": Field(dict, {}, {"declared": Field(dict, {})}),  # up: kernels the profile declared
    "clone": Field((str, NONE)),  # up: a git URL cloned into root_dir when missing
    "acme": Field((dict, NONE), None, ACME),  # up: a public certificate for the box's IP; None: padlab's CA
    "check": Field(bool, False),  # up: run every step, even when the fingerprint says nothing changed
    # up: the client answers the box's questions on stdin (report.ask: it signs the certificate's
    # CSR in the same call); without it, `up` stops at the TLS step and the client calls again.
    "answers": Field(bool, False),
    # -- kernels, kernel-create ---------------------------------------------------------------
    "cuda": Field(bool, True),  # kernels: ask torch about CUDA in each environment
    "kernel": Field((dict, NONE), None, {"name": Field(str, REQUIRED), "want": Field(dict, REQUIRED)}),
    "rsync": Field((dict, NONE), None, {}),  # None: no rsync step (push and pull need it)
    # up: where a container's start command finds `up` again (box/setup/boot.py); None: not a container
    "boot": Field((dict, NONE), None, {"dir": Field(str, REQUIRED)}),
    # -- get and paths (padlab get, push, pull; box/files/files.py) -------------------------
    "get": Field((dict, NONE), None, GET),
    "paths": Field((dict, NONE), None, PATHS),
    # -- down, keep, logs -------------------------------------------------------------------------
    "disable": Field(bool, True),  # down: also keep Jupyter from starting at boot
    "keep_s": Field((int, NONE)),  # keep: hold the box up this long; None releases the hold
    "agent": Field(bool, False),  # logs: the agent's log instead of Jupyter's
    "lines": Field(int, 50),  # logs: how many lines
}


def parse(raw: object, fields: dict = FIELDS, where: str = "") -> dict:
    """The request with every field present and typed; a BoxError names the first bad field."""
    if not isinstance(raw, dict):
        raise _bad("%s is not a JSON object" % (where or "the request"))
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise _bad("unknown request field %s" % ", ".join(where + k for k in unknown))
    out = {}
    for key, field in fields.items():
        if key in raw:
            value = raw[key]
        elif field.default is REQUIRED:
            raise _bad("the request lacks %s%s" % (where, key))
        else:
            value = copy.deepcopy(field.default)
        if not isinstance(value, field.types) or (isinstance(value, bool) and bool not in field.types):
            raise _bad("request field %s%s is %s" % (where, key, type(value).__name__))
        if field.fields is not None and isinstance(value, dict):
            value = parse(value, field.fields, where + key + ".")
        out[key] = value
    return out


def _bad(message: str) -> BoxError:
    return BoxError(
        message,
        "padlab and its box program disagree: this is a bug in padlab, please report it",
        code="bad_request",
    )
