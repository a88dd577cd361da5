"""padlab.box.setup.jupyter: the plain-HTTP front for a cloud's HTTPS proxy is on only where the request asks."""

from __future__ import annotations

import json
import time
from pathlib import Path

from padlab.box.service import Layout
from padlab.box.setup import jupyter
from padlab.box.system import login_user


def config(proxy_port: int | None) -> dict:
    layout = Layout("t", "/opt/padlab", "/etc/padlab", "nobody", True)
    return json.loads(
        jupyter.config(layout, 8888, "0.0.0.0", "~/notebooks", "argon2:x", proxy_port=proxy_port)
    )


def test_the_proxys_http_port_is_served_only_when_asked() -> None:
    on = config(8889)
    assert on["ServerApp"]["jpserver_extensions"] == {jupyter.HTTP_FRONT: True}
    assert on["PadlabHttpFront"] == {"port": 8889}
    assert on["ServerApp"]["certfile"] and on["ServerApp"]["port"] == 8888  # Jupyter's own port stays TLS
    assert on["PasswordIdentityProvider"]["password_required"] is True
    off = config(None)
    assert "jpserver_extensions" not in off["ServerApp"] and "PadlabHttpFront" not in off


def test_warmed_ends_the_warm_up_and_what_it_started(tmp_path: Path) -> None:
    """The warm-up runs under sudo (as the Jupyter user): ending it must end the user's processes too,
    not only the first one, or a stray import keeps running beside Jupyter's start."""
    child = tmp_path / "child.pid"
    python = tmp_path / "venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(f"#!/bin/sh\nsleep 1000 &\necho $! > {child}\nexec sleep 1000\n")
    python.chmod(0o755)
    layout = Layout("t", str(tmp_path), str(tmp_path / "etc"), login_user(), False)
    proc = jupyter.warm_up(layout)
    assert proc is not None
    deadline = time.monotonic() + 10
    while not child.exists() or not child.read_text().strip():
        assert time.monotonic() < deadline, "the warm-up never started"
        time.sleep(0.05)
    pid = int(child.read_text())
    jupyter.warmed(proc)
    assert proc.returncode is not None
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}").exists() and Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z":
        assert time.monotonic() < deadline, "the warm-up's own child outlived it"
        time.sleep(0.05)
