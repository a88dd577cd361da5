"""Run the panel: its certificate, its password, then uvicorn over HTTPS in the foreground."""

from __future__ import annotations

import socket
from typing import Any

from padlab.errors import PadlabError

INSTALL_HINT = "install the panel's web stack: pip install 'padlab[panel]'"


def check_stack() -> None:
    """One line with the fix when the optional web stack is missing, not an ImportError."""
    try:
        import jinja2  # noqa: F401
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise PadlabError(f"the panel needs {exc.name}, which is not installed", INSTALL_HINT) from exc


def _check_port(listen: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in listen else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((listen, port))
        except OSError as exc:
            raise PadlabError(
                f"cannot listen on {listen} port {port}: {exc.strerror}",
                f"pick another with --port (e.g. --port {port + 1}), or stop what holds it",
            ) from exc


def urls(listen: str, port: int, names: list[str]) -> list[str]:
    """Where an iPad can reach the panel: this machine's addresses, then its names."""
    from padlab.box.system import addresses

    if listen in ("127.0.0.1", "::1", "localhost") or listen not in ("0.0.0.0", "::"):
        hosts = [listen]
    else:
        hosts = [*addresses(), *names, socket.gethostname()]
    return [f"https://{'[' + h + ']' if ':' in h else h}:{port}/" for h in dict.fromkeys(hosts)]


def prepare(listen: str, port: int, names: list[str]) -> dict[str, Any]:
    """Check the stack and the port, and make or renew the certificate; what the banner shows."""
    check_stack()
    from padlab import tls
    from padlab.panel import certs

    _check_port(listen, port)
    cert, key, sha = certs.ensure(names)
    return {
        "cert": str(cert),
        "key": str(key),
        "cert_sha256": sha,
        "ca_sha256": tls.fingerprint(tls.ensure_ca()),
        "urls": urls(listen, port, names),
        "names": certs.names(names),
    }


def serve(listen: str, port: int, info: dict[str, Any]) -> None:
    import uvicorn

    from padlab.panel.app import create_app
    from padlab.panel.web import Panel

    uvicorn.run(
        create_app(Panel(names=info["names"], port=port)),
        host=listen,
        port=port,
        ssl_certfile=info["cert"],
        ssl_keyfile=info["key"],
        log_level="warning",
        access_log=False,
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=3,
    )
