"""Wait until Jupyter serves its login page over TLS that verifies against padlab's CA."""

from __future__ import annotations

import ssl
import time
import urllib.error
import urllib.request

from .report import BoxError


def wait_ready(port: int, ca_pem: str, log: str, alive, timeout: float = 90.0) -> float:
    """Seconds until /login answered 200; raises with the log's path when it never does."""
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
