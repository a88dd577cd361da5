"""A panel server as the home: the `Home` methods as calls to the panel's API over HTTPS.

One request per method (`status` is one GET); long actions (`up`, `down`, `get`) read the
answer as JSON lines while it runs (stages, progress events, then the result), so the CLI
shows the same progress as at home. The token and the panel's CA (when its certificate is
not publicly trusted) come from `padlab remote login`, in `home/config.py`.
"""

from __future__ import annotations

import json
import re
import socket
import ssl
from typing import TYPE_CHECKING, Any, Callable
from urllib.parse import urlsplit

from padlab.errors import PadlabError

if TYPE_CHECKING:
    from padlab.home import Event
    from padlab.providers.base import Progress

TIMEOUT_S = 30.0
STREAM_READ_S = 120.0  # the panel sends a blank line at least every 10 s while an action runs


def _quiet(_: Any) -> None:
    return None


def check_url(url: str) -> str:
    """https://HOST[:PORT], without a path: the one form padlab keeps."""
    parts = urlsplit(url.strip())
    if parts.scheme != "https" or not parts.hostname:
        raise PadlabError(
            f"{url!r} is not a panel URL",
            "give it as https://HOST:PORT (the URL `padlab panel` prints), e.g. https://panel.example.com:8443",
        )
    return f"https://{parts.netloc}"


class Unreachable(PadlabError):
    """No answer from the panel (or a broken one): whether it acted is not known."""


def _unreachable(url: str, exc: Exception) -> PadlabError:
    reason = str(exc) or type(exc).__name__
    return Unreachable(
        f"cannot reach the padlab panel at {url}: {reason}",
        "check the URL and that the panel runs there (padlab panel status, on its machine); "
        "or go back to this machine's home: padlab remote logout",
    )


def context(ca_pem: str | None) -> ssl.SSLContext:
    """Public CAs, or padlab's CA pinned at login and nothing else."""
    if ca_pem:
        return ssl.create_default_context(cadata=ca_pem)
    import certifi

    return ssl.create_default_context(cafile=certifi.where())


def _error_of(response: Any, url: str) -> PadlabError:
    """The panel's own {"error", "fix"}, or one line for a token it refused."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code == 401 and "www-authenticate" in response.headers:
        return PadlabError(
            f"the panel at {url} refused this CLI's token (revoked, or not one of this panel's)",
            f"log in again: padlab remote login {url}",
        )
    if isinstance(body, dict) and body.get("error"):
        kind = Unreachable if response.status_code >= 500 else PadlabError
        return kind(str(body["error"]), str(body.get("fix") or ""))
    return Unreachable(
        f"the panel at {url} answered HTTP {response.status_code}",
        "check that the URL is a padlab panel's, and that both run the same padlab version",
    )


class Api:
    """Calls to one panel: a Bearer token (or none, to mint one), verified TLS, one-line errors."""

    def __init__(self, url: str, token: str | None, ca_pem: str | None) -> None:
        import httpx

        self.url = url
        self.calls = 0
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._client = httpx.Client(
            base_url=url, headers=headers, verify=context(ca_pem), timeout=TIMEOUT_S, follow_redirects=False
        )

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        import httpx

        self.calls += 1
        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise _unreachable(self.url, exc) from exc
        if response.status_code >= 400:
            raise _error_of(response, self.url)
        return response.json()

    def stream(self, path: str, body: dict[str, Any], on: dict[str, Callable[[Any], None]]) -> Any:
        """POST, then each JSON line to its handler (`stage`, `event`, `warning`) until `result`."""
        import httpx

        self.calls += 1
        timeout = httpx.Timeout(TIMEOUT_S, read=STREAM_READ_S)
        try:
            with self._client.stream("POST", path, json=body, timeout=timeout) as response:
                if response.status_code >= 400:
                    response.read()
                    raise _error_of(response, self.url)
                for line in response.iter_lines():
                    if not line.strip():
                        continue  # the panel's keep-alive
                    message = json.loads(line)
                    if "result" in message:
                        return message["result"]
                    if "error" in message:
                        raise PadlabError(str(message["error"]), str(message.get("fix") or ""))
                    for key, handler in on.items():
                        if key in message:
                            handler(message[key])
        except httpx.HTTPError as exc:
            raise _unreachable(self.url, exc) from exc
        raise Unreachable(
            f"the panel at {self.url} ended the answer before the result",
            "run the command again: it carries on from where the panel got to",
        )


CONNECTS = "connects from this machine to the box"
SSH_SETUP = "changes this machine's ssh setup for boxes this home reaches"
JUPYTER = "open {name}'s Jupyter through the link on {url} (or the one `padlab card {name}` prints)"
INSTEAD: dict[str, tuple[str, str]] = {  # command: (why it stays here, what does it through the panel)
    "ssh": (CONNECTS, JUPYTER + " and use File > New > Terminal there"),
    "mosh": (CONNECTS, JUPYTER + " and use File > New > Terminal there"),
    "push": (
        CONNECTS,
        JUPYTER + " and upload in its file browser, or fetch a URL onto the box: padlab get {name} URL",
    ),
    "pull": (CONNECTS, JUPYTER + " and download from its file browser"),
    "ssh-config": (SSH_SETUP, "the panel holds the ssh keys: run `padlab ssh-config` on the panel's machine"),
    "forget-host-key": (SSH_SETUP, "run `padlab forget-host-key {name}` on the panel's machine"),
}


class RemoteHome:
    """The panel logged in to with `padlab remote login`."""

    def __init__(self, saved: dict[str, Any]) -> None:
        self.where = saved["url"]
        self.saved = saved
        self.api = Api(saved["url"], saved["token"], saved.get("ca_pem"))

    def line(self) -> str | None:
        return f"home: the panel at {self.where} (token {self.saved.get('label')}, scope {self.saved.get('scope')})"

    def name_of(self, name: str | None) -> str | None:
        return name

    def only_here(self, what: str, name: str | None = None) -> None:
        """What stays on this machine's home (ssh to the box, its ssh setup) says what does the same
        through the panel, with the profile's name filled in."""
        why, instead = INSTEAD.get(what) or INSTEAD.get(
            what.split()[0], ("does not run through a panel", "run it on the panel's machine")
        )
        raise PadlabError(
            f"`padlab {what}` {why}, and this CLI's home is the panel at {self.where}",
            instead.format(url=self.where, name=name or "NAME")
            + "; or come back to this machine's home: padlab remote logout",
        )

    def profiles(self) -> dict[str, Any]:
        return self.api.call("GET", "/api/home/profiles")

    def status(self, name: str | None) -> dict[str, Any]:
        return self.api.call("GET", "/api/home/status", params=_only(name=name))

    def status_all(self) -> list[dict[str, Any]]:
        return self.api.call("GET", "/api/home/status", params={"all": "1"})

    def prepare_up(self, name: str | None) -> dict[str, Any]:
        return self.api.call("GET", "/api/home/prepare-up", params=_only(name=name))

    def up(
        self,
        name: str,
        password: str | None,
        generated: bool,
        on_stage: Progress = _quiet,
        over_budget: bool = False,
        move: bool = False,
        check: bool = False,
    ) -> dict[str, Any]:
        body = {
            "name": name,
            "password": password,
            "generated": generated,
            "over_budget": over_budget,
            "move": move,
            "check": check,
        }
        return self.api.stream("/api/home/up", body, {"stage": on_stage})

    def down(
        self, name: str | None, on_stage: Progress = _quiet, on_warning: Callable[[str], None] = _quiet
    ) -> dict[str, Any]:
        return self.api.stream("/api/home/down", {"name": name}, {"stage": on_stage, "warning": on_warning})

    def costs(self, name: str | None, month: str | None, reconcile: bool) -> dict[str, Any]:
        params = _only(name=name, month=month, reconcile="1" if reconcile else None)
        return self.api.call("GET", "/api/home/costs", params=params)

    def get(self, name: str | None, spec: dict[str, Any], on_event: Event) -> dict[str, Any]:
        return self.api.stream("/api/home/get", dict(spec, profile=name), {"event": on_event})

    def downloads(self, name: str | None) -> dict[str, Any]:
        return self.api.call("GET", "/api/home/downloads", params=_only(name=name))

    def passwd(
        self, name: str | None, password: str, generated: bool, on_stage: Progress = _quiet
    ) -> dict[str, Any]:
        body = {"name": name, "password": password, "generated": generated}
        return self.api.stream("/api/home/passwd", body, {"stage": on_stage})

    def kernels(self, name: str | None, cuda: bool, on_stage: Progress = _quiet) -> dict[str, Any]:
        return self.api.stream("/api/home/kernels/list", {"name": name, "cuda": cuda}, {"stage": on_stage})

    def kernel_create(
        self, name: str | None, kernel: str, want: dict[str, Any], on_stage: Progress = _quiet
    ) -> dict[str, Any]:
        body = {"name": name, "kernel": kernel, "want": want}
        return self.api.stream("/api/home/kernels", body, {"stage": on_stage})

    def autostop(
        self, name: str | None, limit: str | None, max_uptime: str | None, action: str | None
    ) -> dict[str, Any]:
        if limit is None and max_uptime is None and action is None:
            return self.api.call("GET", "/api/home/autostop", params=_only(name=name))
        body = {"name": name, "limit": limit, "max_uptime": max_uptime, "action": action}
        return self.api.call("POST", "/api/home/autostop", json=body)

    def keep(self, name: str | None, duration: str) -> dict[str, Any]:
        return self.api.call("POST", "/api/home/keep", json={"name": name, "duration": duration})

    def budget(self, name: str | None, change: bool, value: float | None) -> dict[str, Any]:
        if not change:
            return self.api.call("GET", "/api/home/budget")
        return self.api.call("POST", "/api/home/budget", json={"name": name, "value": value})

    def logs(self, name: str | None, agent: bool, lines: int) -> dict[str, Any]:
        params = _only(name=name, agent="1" if agent else None, lines=str(lines))
        return self.api.call("GET", "/api/home/logs", params=params)

    def set_default(self, name: str) -> dict[str, Any]:
        return self.api.call("POST", "/api/home/default", json={"name": name})

    def init(
        self,
        name: str | None,
        provider: str | None,
        force: bool,
        cloud: dict[str, Any],
        fields: dict[str, Any],
    ) -> dict[str, Any]:
        body = {"name": name, "provider": provider, "force": force, "cloud": cloud, "fields": fields}
        return self.api.call("POST", "/api/home/init", json=body)

    def login(
        self, provider: str, parts: list[str], api_url: str | None, verify: bool, autostop_token: bool
    ) -> dict[str, Any]:
        body = {
            "provider": provider,
            "parts": parts,
            "api_url": api_url,
            "verify": verify,
            "autostop_token": autostop_token,
        }
        return self.api.call("POST", "/api/home/login", json=body)

    def doctor(self, name: str | None, password: str | None, host: str | None) -> dict[str, Any]:
        if host:
            raise PadlabError(
                "--host would make the panel connect to an address of your choosing",
                f"check the profile's own address through the panel (leave out --host), or run "
                f"`padlab doctor {name or 'NAME'} --host {host}` on the panel's machine",
            )
        return self.api.call("POST", "/api/home/doctor", json={"name": name, "password": password})

    def alert(
        self, name: str | None, ntfy: str | None, after_s: float | None, set_after: bool, test: bool
    ) -> dict[str, Any]:
        if ntfy is None and not set_after and not test:
            return self.api.call("GET", "/api/home/alert", params=_only(name=name))
        body = {"name": name, "ntfy": ntfy, "after_s": after_s, "set_after": set_after, "test": test}
        return self.api.call("POST", "/api/home/alert", json=body)

    def start_machine(
        self, name: str | None, over_budget: bool, on_stage: Progress = _quiet
    ) -> dict[str, Any]:
        body = {"name": name, "over_budget": over_budget}
        return self.api.stream("/api/home/start-machine", body, {"stage": on_stage})

    def destroy(self, name: str, typed: str, on_stage: Progress = _quiet) -> dict[str, Any]:
        return self.api.stream("/api/home/destroy", {"name": name, "typed": typed}, {"stage": on_stage})

    def take_in(self, bundle: dict[str, Any]) -> dict[str, Any]:
        return self.api.call("POST", "/api/home/profiles", json=bundle)


def _only(**params: str | None) -> dict[str, str]:
    return {k: v for k, v in params.items() if v is not None}


# -- logging in: trust, then a token -----------------------------------------------------------


def normal_fingerprint(text: str) -> str:
    return re.sub(r"[^0-9a-f]", "", text.lower())


def _publicly_trusted(url: str) -> bool:
    """Whether the panel's certificate verifies against public CAs for its host name."""
    parts = urlsplit(url)
    try:
        with (
            socket.create_connection((parts.hostname, parts.port or 443), timeout=TIMEOUT_S) as sock,
            context(None).wrap_socket(sock, server_hostname=parts.hostname),
        ):
            return True
    except ssl.SSLCertVerificationError:
        return False
    except OSError as exc:
        raise _unreachable(url, exc) from exc


def _panel_ca(url: str) -> str:
    """padlab's CA as the panel serves it, read before it is trusted: the fingerprint decides."""
    import httpx

    try:
        response = httpx.get(f"{url}/ca/padlab-ca.pem", verify=False, timeout=TIMEOUT_S)
    except httpx.HTTPError as exc:
        raise _unreachable(url, exc) from exc
    if response.status_code != 200 or "BEGIN CERTIFICATE" not in response.text:
        raise PadlabError(
            f"{url} has a certificate no public CA vouches for, and serves no padlab CA",
            "check the URL: it must be a padlab panel's",
        )
    return response.text


def trust(url: str, fingerprint: str | None, confirm: Callable[[str], bool] | None) -> str | None:
    """None where public CAs verify the panel; else padlab's CA PEM, accepted by its SHA-256
    (given, or shown and confirmed on a terminal) and then checked against the panel's certificate."""
    from padlab import tls

    if _publicly_trusted(url):
        return None
    pem = _panel_ca(url)
    seen = tls.fingerprint(pem)
    pretty = tls.pretty_fingerprint(seen)
    if fingerprint:
        if normal_fingerprint(fingerprint) != seen:
            raise PadlabError(
                f"the panel at {url} shows a CA with SHA-256 {pretty}, not the one given",
                "compare with the fingerprint `padlab panel` printed on its machine; do not log in if they differ",
            )
    elif confirm is None or not confirm(pretty):
        raise PadlabError(
            f"the panel at {url} uses padlab's CA with SHA-256 {pretty}",
            "if that is what `padlab panel` printed on its machine, pass --ca-fingerprint with it",
        )
    try:
        with (
            socket.create_connection(
                (urlsplit(url).hostname, urlsplit(url).port or 443), timeout=TIMEOUT_S
            ) as s,
            context(pem).wrap_socket(s, server_hostname=urlsplit(url).hostname),
        ):
            pass
    except ssl.SSLCertVerificationError as exc:
        raise PadlabError(
            f"the panel at {url} has a certificate its own CA does not vouch for ({exc.verify_message})",
            "use the URL `padlab panel` prints (its certificate names those hosts)",
        ) from exc
    return pem


def login(
    url: str,
    token: str | None,
    password: str | None,
    scope: str,
    label: str,
    fingerprint: str | None = None,
    confirm: Callable[[str], bool] | None = None,
) -> dict[str, Any]:
    """Check the panel and the token (or mint one with the password), then save both, 0600."""
    from padlab.home import config

    url = check_url(url)
    ca_pem = trust(url, fingerprint, confirm)
    if token is None:
        minted = Api(url, None, ca_pem).call(
            "POST", "/api/tokens", json={"password": password or "", "scope": scope, "label": label}
        )
        token, label, scope = minted["token"], minted["label"], minted["scope"]
    else:
        who = Api(url, token, ca_pem).call("GET", "/api/home/whoami")
        label, scope = who["label"], who["scope"]
    saved = {"url": url, "token": token, "label": label, "scope": scope, "ca_pem": ca_pem}
    config.save(saved)
    return dict(saved, token=None, config=str(config.path()))


def push(name: str, copy_key: bool = False) -> dict[str, Any]:
    """Move a profile from this machine to the logged-in panel; a re-run finishes an interrupted move."""
    from padlab.home import config, moves

    saved = config.load()
    if saved is None:
        raise PadlabError("this CLI is not logged in to a panel", "padlab remote login URL --scope admin")
    bundle = moves.take_out(name, saved["url"], copy_key)
    home = RemoteHome(saved)
    try:
        result = home.take_in(bundle)
    except Unreachable as exc:
        raise PadlabError(
            f"{name!r} is on its way to {saved['url']} and not yet there ({exc.message})",
            f"run `padlab remote push {name}` again to finish the move",
        ) from exc
    except PadlabError as exc:
        moves.put_back(name)
        raise PadlabError(f"{exc.message}; {name!r} stays on this machine", exc.fix) from exc
    moves.finish(name)
    key = bundle.get("ssh_key") or {}
    return dict(
        result,
        url=saved["url"],
        credentials_kept_here=bundle.get("credentials_kept_here", False),
        ssh_key=key.get("from"),
        ssh_key_kept_here=bool(key) and not key.get("leaves"),
    )
