"""The box's ACME client: a certificate for the box's public IP, http-01 on port 80 (runs as root).

Runs in padlab's own ACME venv (``acme_setup.VENV``: root's, certbot's ``acme`` package),
never in Jupyter's, which the Jupyter user can change: root executes only what root owns.
It is started by ``up`` (``acme_setup.ensure``) and by the hourly ``padlab-acme-NAME.timer``,
which also fires at boot. Each run decides whether a certificate is due (none yet, issued for
another address, past half its life, or ``--force``), and only then talks to the ACME server.

Let's Encrypt issues IP certificates only under the ``shortlived`` profile; the client asks
for it when the directory lists profiles and sends no profile when it does not (pebble).
During the challenge a small responder answers on port 80 and the firewall opens port 80
(the same rules as ``firewall.py``, one more); both are closed in a ``finally``.

The certificate and its key go into one file, replaced by one rename: Jupyter (tornado with
a dict of ssl_options) loads certfile and keyfile on every new connection, so it serves the
new certificate at once, with no restart and no kernel lost, and never a mismatched pair.
A failed run keeps the old certificate, records why (state.json, the agent's log), and
alerts once a day before it expires.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from . import alerts, firewall
from .acme_setup import Paths
from .system import Host, addresses, primary_address

PROFILE = "shortlived"  # Let's Encrypt: IP identifiers only under this profile (160 h)
ALERT_BEFORE_S = 24 * 3600
DEADLINE_S = 120


def main(argv: list) -> int:
    """Entry of the runner (``up`` and the timer): ``NAME [--force]``; 0 ok or not due, 1 failed."""
    name = argv[0]
    force = "--force" in argv[1:]
    where = Paths(name)
    # One run at a time: the timer fires at once when `up` enables it on a box up for more than
    # its OnBootSec, beside `up`'s own run, and both would bind port 80. The second finds the
    # first's certificate and has nothing to do.
    import fcntl

    lock = os.open(os.path.join(where.dir, ".lock"), os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    fcntl.flock(lock, fcntl.LOCK_EX)
    with open(where.config) as fh:
        conf = json.load(fh)
    state = _load(where.state)
    now = time.time()
    ip = current_ip(conf["ip"], bool(state.get("on_interface")))
    why = due(where, ip, now, force)
    if why is None:
        return 0
    t0 = time.monotonic()
    try:
        info = obtain(where, conf, ip)
    except Exception as exc:  # noqa: BLE001 - any failure keeps the old certificate, says why
        reason = one_line(exc)
        state.update(status="failed", reason=reason, tried_at=now, ip=ip, seconds=time.monotonic() - t0)
        _log(conf, "TLS  certificate for %s failed (%s): %s; the current one is kept" % (ip, why, reason))
        _alert_expiry(conf, where, state, now)
        _save(where.state, state)
        print(json.dumps(state))
        return 1
    state = dict(
        info, status="ok", reason=None, tried_at=now, why=why, seconds=round(time.monotonic() - t0, 1)
    )
    _log(
        conf,
        "TLS  new certificate for %s from %s (%s), valid until %s, in %.1f s"
        % (ip, info["issuer"], why, _iso(info["not_after"]), state["seconds"]),
    )
    _save(where.state, state)
    print(json.dumps(state))
    return 0


def current_ip(configured: str, held: bool = False) -> str:
    """The address to certify: the client's, unless the box held it on an interface and now holds
    another (a reboot or a restored snapshot that changed it), or now holds one public address
    instead. A public address not on any interface (NAT) comes from the next ``up``."""
    local = addresses()
    if configured in local:
        return configured
    if held:
        now = primary_address()
        if now and now in local:
            return now
    public = [a for a in local if _global(a)]
    return public[0] if len(public) == 1 and _global(configured) else configured


def _global(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_global
    except ValueError:
        return False


def due(where: Paths, ip: str, now: float, force: bool) -> str | None:
    """Why a new certificate is needed now, or None."""
    info = cert_info(where.cert)
    if force:
        return "forced"
    if info is None:
        return "no certificate yet"
    if ip not in info["ips"]:
        return "the address changed to %s" % ip
    if now >= info["not_before"] + (info["not_after"] - info["not_before"]) / 2:
        return "half its life is over"
    return None


def cert_info(path: str) -> dict | None:
    """Facts of the current certificate (the first in the chain file), or None."""
    from cryptography import x509

    try:
        with open(path, "rb") as fh:
            cert = x509.load_pem_x509_certificate(fh.read())
    except (OSError, ValueError):
        return None
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        ips = [str(i) for i in san.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        ips = []
    issuer = cert.issuer.rfc4514_string()
    return {
        "ips": ips,
        "issuer": issuer,
        "not_before": cert.not_valid_before_utc.timestamp(),
        "not_after": cert.not_valid_after_utc.timestamp(),
    }


def obtain(where: Paths, conf: dict, ip: str) -> dict:
    """Order, validate over http-01, finalize; write key + chain in one rename."""
    import josepy as jose
    from acme import challenges, client, crypto_util, errors, messages
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    account_key = serialization.load_pem_private_key(conf["account_key_pem"].encode(), password=None)
    verify: object = True
    if conf.get("ca_pem"):
        verify = where.ca
    net = client.ClientNetwork(
        jose.JWKEC(key=account_key),
        alg=jose.ES256,
        verify_ssl=verify,
        user_agent="padlab",  # type: ignore[arg-type]
    )
    directory = client.ClientV2.get_directory(conf["directory"], net)
    acme = client.ClientV2(directory, net)
    try:
        acme.new_account(messages.NewRegistration.from_data(terms_of_service_agreed=True))
    except errors.ConflictError as exc:  # this key's account exists: use it
        net.account = messages.RegistrationResource(uri=exc.location, body=messages.Registration())
    profile = choose_profile(getattr(directory.meta, "profiles", None))
    key_pem = _reuse_key(where.key)
    if key_pem is None:
        key = ec.generate_private_key(ec.SECP256R1())
        key_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    csr = crypto_util.make_csr(key_pem, ipaddrs=[ipaddress.ip_address(ip)])
    order = acme.new_order(csr, profile=profile)
    tokens = {}
    answers = []
    for authz in order.authorizations:
        if authz.body.status == messages.STATUS_VALID:
            continue
        for challb in authz.body.challenges:
            if isinstance(challb.chall, challenges.HTTP01):
                response, validation = challb.response_and_validation(net.key)
                tokens[challb.path] = validation.encode()
                answers.append((challb, response))
                break
        else:
            raise RuntimeError("the ACME server offered no http-01 challenge for %s" % ip)
    with _challenge_open(conf, tokens, ip):
        for challb, response in answers:
            acme.answer_challenge(challb, response)
        deadline = datetime.datetime.now() + datetime.timedelta(seconds=DEADLINE_S)
        order = acme.poll_and_finalize(order, deadline=deadline)
    chain = order.fullchain_pem.encode() if isinstance(order.fullchain_pem, str) else order.fullchain_pem
    _install(where, conf, key_pem, chain)
    info = cert_info(where.cert) or {}
    return dict(info, ip=ip, profile=profile, directory=conf["directory"], on_interface=ip in addresses())


def choose_profile(listed: dict | None) -> str | None:
    """``shortlived`` where the directory lists it (Let's Encrypt issues IP certificates only
    under it); no profile where it lists none (pebble 2.4, servers before draft-aaron-acme-profiles)."""
    return PROFILE if listed and PROFILE in listed else None


def _reuse_key(path: str) -> bytes | None:
    """Root's copy of the key now served: renewals keep it (the served file is never read back)."""
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError:
        return None


def _install(where: Paths, conf: dict, key_pem: bytes, chain: bytes) -> None:
    """Root's key copy, the chain (world-readable, for status), then key + chain for Jupyter:
    root's, readable by its user's group only, so that user can read it but neither change nor
    replace it. Each is one rename."""
    import pwd

    _atomic(where.key, key_pem, 0o600, 0)
    _atomic(where.cert, chain, 0o644, 0)
    _atomic(where.live, key_pem + chain, 0o440, 0, pwd.getpwnam(conf["user"]).pw_gid)


def _atomic(path: str, data: bytes, mode: int, uid: int, gid: int = 0) -> None:
    tmp = path + ".new"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        os.fchown(fd, uid, gid)
        os.fchmod(fd, mode)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


class _Responder(BaseHTTPRequestHandler):
    tokens: dict = {}

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        body = self.tokens.get(self.path.split("?")[0])
        self.send_response(200 if body else 404)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        if body:
            self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class _challenge_open:  # noqa: N801 - used as a context manager
    """Port 80: the responder up and the firewall open while in, both closed on the way out."""

    def __init__(self, conf: dict, tokens: dict, ip: str) -> None:
        self.conf = conf
        self.tokens = tokens
        self.v6 = ":" in ip
        self.server: ThreadingHTTPServer | None = None
        self.saved: dict | None = None

    def __enter__(self) -> _challenge_open:
        handler = type("Handler", (_Responder,), {"tokens": self.tokens})
        server_class = ThreadingHTTPServer
        if self.v6:
            server_class = type("Server6", (ThreadingHTTPServer,), {"address_family": socket.AF_INET6})
        try:
            self.server = server_class(("::" if self.v6 else "0.0.0.0", 80), handler)
        except OSError as exc:
            raise RuntimeError(
                "port 80 is in use on the box (%s); the http-01 challenge needs it" % exc
            ) from exc
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.saved = _load(firewall.SPEC) or None
        if self.saved:
            rules = self.saved["rules"] + [firewall._rule("acme", "tcp", "80", None)]
            firewall.apply(Host(sudo=False), {"rules": rules, "enable": self.saved.get("enable")})
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self.saved:
                firewall.apply(Host(sudo=False), self.saved)
        finally:
            if self.server is not None:
                self.server.shutdown()
                self.server.server_close()


def _alert_expiry(conf: dict, where: Paths, state: dict, now: float) -> None:
    """Once per certificate: a day before the kept certificate expires, through the agent's alerts."""
    info = cert_info(where.cert)
    if info is None or info["not_after"] - now > ALERT_BEFORE_S:
        return
    if state.get("alerted_expiry") == info["not_after"]:
        return
    agent_conf = _load(conf.get("agent_config") or "")
    text = "the box's certificate expires at %s and renewing failed: %s" % (
        _iso(info["not_after"]),
        state.get("reason"),
    )
    log_fn = lambda at, line: _log(conf, line)  # noqa: E731
    if alerts.send(agent_conf, "certificate expires soon", text, "warning", log_fn):
        state["alerted_expiry"] = info["not_after"]


def _log(conf: dict, line: str) -> None:
    """One line in the agent's log, its format: what `padlab logs NAME --agent` shows."""
    path = conf.get("agent_log")
    if not path or not os.path.isdir(os.path.dirname(path)):
        return
    stamp = time.strftime("%Y-%m-%d %H:%M:%S %z", time.localtime())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o640)
    try:
        os.write(fd, ("%s  %s\n" % (stamp, line)).encode())
    finally:
        os.close(fd)


def one_line(exc: BaseException) -> str:
    """An ACME error's detail, a connection failure in words, else the exception's text, on one line."""
    if type(exc).__name__ in ("ConnectionError", "ConnectTimeout", "SSLError"):
        text = str(exc)
        cause = text.rsplit("] ", 1)[-1].rstrip("'\")") if "] " in text else text
        return "cannot reach the ACME server: %s" % " ".join(cause.split())[:200]
    text = str(getattr(exc, "detail", "") or exc) or type(exc).__name__
    return " ".join(text.split())[:300]


def _iso(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _load(path: str) -> dict:
    try:
        with open(path) as fh:
            data = json.load(fh)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _save(path: str, data: dict) -> None:
    _atomic(path, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode(), 0o644, 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
