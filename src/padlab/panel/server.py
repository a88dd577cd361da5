"""Run the panel: its certificate, its password, then uvicorn over HTTPS in the foreground."""

from __future__ import annotations

import socket
import ssl
import time
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


def prepare(listen: str, port: int, names: list[str], public_cert: str | None = None) -> dict[str, Any]:
    """Check the stack and the port, and make or renew the certificate; what the banner shows.

    public_cert: one file with the key and chain of a public certificate (the panel host's ACME
    client keeps it renewed, panel/host.py); while it is valid the panel serves it and makes no
    CA of its own for that, else padlab's CA, with the reason in `tls_line`."""
    check_stack()
    from padlab import tls
    from padlab.panel import certs

    _check_port(listen, port)
    public, why = _public(public_cert) if public_cert else (None, None)
    if public:
        return {
            "cert": public_cert,
            "key": public_cert,
            "cert_sha256": public["sha256"],
            "ca_sha256": None,
            "urls": urls(listen, port, names),
            "names": public["ips"],
            "tls_line": f"public certificate from {public['org']}: no profile needed",
            "watch": public_cert,
        }
    cert, key, sha = certs.ensure(names)
    return {
        "cert": str(cert),
        "key": str(key),
        "cert_sha256": sha,
        "ca_sha256": tls.fingerprint(tls.ensure_ca()),
        "urls": urls(listen, port, names),
        "names": certs.names(names),
        "tls_line": f"padlab's CA: {why}" if why else None,
        # A public certificate that comes later (its timer) replaces padlab's CA's, live.
        "watch": public_cert or str(cert),
    }


def _public(path: str) -> tuple[dict[str, Any] | None, str | None]:
    """(facts, None) of a valid public certificate in `path`, else (None, why not)."""
    import datetime
    import hashlib

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    try:
        with open(path, "rb") as fh:
            cert = x509.load_pem_x509_certificate(fh.read())
    except (OSError, ValueError) as exc:
        return None, f"no public certificate in {path} ({getattr(exc, 'strerror', None) or exc})"
    if cert.not_valid_after_utc <= datetime.datetime.now(datetime.timezone.utc):
        return None, "the public certificate expired"
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        ips = [str(i) for i in san.get_values_for_type(x509.IPAddress)]
        ips += san.get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        ips = []
    orgs = cert.issuer.get_attributes_for_oid(
        x509.NameOID.ORGANIZATION_NAME
    ) or cert.issuer.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    der = cert.public_bytes(serialization.Encoding.DER)
    org = str(orgs[0].value) if orgs else "the ACME server"
    return {"ips": ips, "org": org, "sha256": hashlib.sha256(der).hexdigest()}, None


def watch_certificate(ctx: Any, cert: str, key: str, every_s: float = 30.0) -> None:
    """Load a renewed certificate into the live SSLContext: new connections get it, open ones
    and the process stay (no restart). Runs as a daemon thread."""
    import os
    import threading

    def stamp() -> tuple[float, int] | None:
        try:
            info = os.stat(cert)
        except OSError:
            return None
        return info.st_mtime, info.st_ino

    seen = stamp()

    def loop() -> None:
        nonlocal seen
        while True:
            time.sleep(every_s)
            now = stamp()
            if now and now != seen:
                try:
                    ctx.load_cert_chain(cert, key)
                    seen = now
                except (OSError, ssl.SSLError):
                    pass  # mid-write or unreadable: the current one stays, try again next round

    threading.Thread(target=loop, name="padlab-cert-reload", daemon=True).start()


def keep_ca_off(info: dict[str, Any]) -> None:
    """A panel serving a public certificate makes no padlab CA for a box that gets none (its key
    would sit on a public panel), unless its admin allowed it (--allow-padlab-ca): docs/panel.md."""
    from padlab import tls

    tls.keep_ca_off(info["ca_sha256"] is None and not info.get("allow_padlab_ca"))


def serve(listen: str, port: int, info: dict[str, Any]) -> None:
    import uvicorn

    from padlab.panel.app import create_app
    from padlab.panel.web import Panel

    keep_ca_off(info)
    config = uvicorn.Config(
        create_app(
            Panel(
                names=info["names"],
                port=port,
                tls_line=info.get("tls_line"),
                public_tls=info["ca_sha256"] is None,
                allow_api_urls=info.get("allow_api_urls"),
            )
        ),
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
    config.load()
    if config.ssl is not None:
        watch = info.get("watch") or info["cert"]
        key = watch if watch != info["cert"] else info["key"]
        watch_certificate(config.ssl, watch, key)
    uvicorn.Server(config).run()
