"""padlab.box.setup.jupyter: the plain-HTTP front for a cloud's HTTPS proxy is on only where the request asks."""

from __future__ import annotations

import json

from padlab.box.service import Layout
from padlab.box.setup import jupyter


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
