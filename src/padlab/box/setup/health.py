"""Wait until Jupyter serves its login page over TLS that verifies against padlab's CA."""

from __future__ import annotations

import ssl
import time
import urllib.error
import urllib.request

from ..report import BoxError


def wait_ready(
    port: int, ca_pem: str | None, log: str, alive, timeout: float = 90.0, pin: str | None = None
) -> float:
    """Seconds until /login answered 200; raises with the log's path when it never does.

    pin: a public certificate (its root may be one this box does not hold, and it names the
    public IP, not 127.0.0.1): the served certificate's SHA-256 must be this one instead.
    """
    if pin:
        ctx = ssl._create_unverified_context()
        _check_pin(port, pin)
    else:
        ctx = ssl.create_default_context(cadata=ca_pem)
    url = "https://127.0.0.1:%d/login" % port
    t0 = time.monotonic()
    last = ""
    while time.monotonic() - t0 < timeout:
        try:
            with urllib.request.urlopen(url, context=ctx, timeout=5) as resp:
                if resp.status == 200:
                    return time.monotonic() - t0
        except (urllib.error.URLError, OSError) as exc:
            last = str(getattr(exc, "reason", exc))
            if isinstance(getattr(exc, "reason", None), ssl.SSLError):
                raise BoxError(
                    "Jupyter's TLS certificate does not verify: %s" % last, "run `padlab up` again"
                ) from exc
        if not alive():
            raise BoxError("Jupyter stopped while starting", "see the log on the box: %s" % log)
        time.sleep(0.05)  # Jupyter starts in ~1.5 s: a coarse poll adds up to its whole interval
    raise BoxError(
        "Jupyter did not answer on port %d within %d s (%s)" % (port, timeout, last), "see %s" % log
    )


def _check_pin(port: int, pin: str) -> None:
    """The certificate Jupyter serves on a new connection is the one padlab just installed."""
    import hashlib
    import socket

    ctx = ssl._create_unverified_context()
    deadline = time.monotonic() + 60
    while True:
        try:
            with (
                socket.create_connection(("127.0.0.1", port), timeout=5) as sock,
                ctx.wrap_socket(sock) as tls,
            ):
                der = tls.getpeercert(binary_form=True) or b""
            break
        except OSError:
            if time.monotonic() > deadline:
                return  # not answering: wait_ready's loop says so with the log
            time.sleep(0.25)
    if hashlib.sha256(der).hexdigest() != pin:
        raise BoxError("Jupyter does not serve the certificate padlab installed", "run `padlab up` again")
