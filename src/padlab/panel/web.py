"""What every route shares: the Panel object, headers, templates, the session and CSRF checks.

Pages use a session cookie (Secure, HttpOnly, SameSite=Strict, expiring) and a
CSRF token on every form POST.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.templating import Jinja2Templates

from padlab.panel import audit, store
from padlab.panel.jobs import Jobs
from padlab.panel.limits import Failures
from padlab.panel.views import Workstations

HERE = Path(__file__).parent
SESSION_COOKIE = "__Host-padlab-session"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; manifest-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


class Panel:
    """Everything the routes share: workstations (cached), jobs, sign-in failures, templates.

    names: the DNS names the panel's certificate carries (passkeys only on those); None in tests.
    port: the port the panel listens on (443 when None): a passkey's origin must be one of the
    names at this port, whatever Host a request says.
    """

    def __init__(
        self,
        cache_s: float | None = None,
        failures: Failures | None = None,
        names: list[str] | None = None,
        port: int | None = None,
        tls_line: str | None = None,
        public_tls: bool = False,
        allow_api_urls: list[str] | None = None,
    ) -> None:
        self.names = names
        # API URLs besides each provider's own that a session may send a stored key to: set by
        # whoever starts the panel (the root-owned unit's --allow-api-url), never from the panel.
        self.allow_api_urls = [u.rstrip("/") for u in allow_api_urls or ()]
        self.public_tls = public_tls  # serves a public certificate: makes no CA of its own for /ca
        self.port = port or 443
        self.workstations = Workstations() if cache_s is None else Workstations(cache_s)
        self.jobs = Jobs(on_done=self.workstations.forget)
        self.failures = failures or Failures()
        self.templates = Jinja2Templates(directory=str(HERE / "templates"))
        # One line on the sign-in and /ca pages: "public certificate from …: no profile needed".
        self.templates.env.globals["tls_line"] = tls_line


def client(request: Request) -> str:
    return request.client.host if request.client else "?"


def panel_of(request: Request) -> Panel:
    return request.app.state.panel


HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]


class SecurityHeaders:
    """ASGI middleware: the strict CSP and friends on every response; no-store unless it says otherwise."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                headers += [h for h in HEADERS if h[0] not in names]
                if b"cache-control" not in names:
                    headers.append((b"cache-control", b"no-store"))
                message = dict(message, headers=headers)
            await send(message)

        await self.app(scope, receive, with_headers)


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> Response:
    session = getattr(request.state, "session", None)
    context.setdefault("csrf", session["csrf"] if session else None)
    context.setdefault("signed_in", session is not None)
    return panel_of(request).templates.TemplateResponse(request, template, context, status_code=status_code)


def error_page(request: Request, status: int, message: str, fix: str = "") -> Response:
    return render(request, "error.html", status_code=status, message=message, fix=fix)


def signed_in(handler: Callable) -> Callable:
    """Pages and POSTs: a valid session, and on POST the session's CSRF token.

    Forms send it as the field `csrf`; the passkey scripts, which POST JSON, as X-CSRF-Token.
    """

    async def wrapped(request: Request) -> Response:
        session = store.session(request.cookies.get(SESSION_COOKIE))
        if session is None:
            if request.method == "GET":
                return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
            return error_page(request, 401, "you are not signed in", "sign in again")
        request.state.session = session
        if request.method == "POST":
            header = request.headers.get("x-csrf-token")
            form = None if header is not None else await request.form()
            sent = header if form is None else str(form.get("csrf", ""))
            if not hmac.compare_digest(sent.encode(), session["csrf"].encode()):
                audit.record("csrf-refused", client(request), ok=False, path=request.url.path)
                return error_page(
                    request,
                    403,
                    "this form is out of date or was not sent by the panel",
                    "reload the page and try again",
                )
            request.state.form = form
        return await handler(request)

    return wrapped


@dataclass
class Workstation:
    """A page's workstation: its name, its view (as the list shows it) and its profile."""

    panel: Panel
    name: str
    item: dict[str, Any]
    profile: Any


def workstation_page(handler: Callable) -> Callable:
    """A signed-in page about one workstation (`/w/{name}/...`): the handler gets it looked up, or the
    visitor gets the error page (404 for a name that does not exist) without the handler running."""
    from starlette.concurrency import run_in_threadpool

    from padlab.errors import PadlabError
    from padlab.panel import actions

    def look_up(panel: Panel, name: str) -> Workstation:
        return Workstation(panel, name, actions.one(panel, name), panel.workstations.profile(name))

    @signed_in
    async def wrapped(request: Request) -> Response:
        try:
            found = await run_in_threadpool(look_up, panel_of(request), request.path_params["name"])
        except PadlabError as exc:
            return error_page(request, actions.http_status(exc), exc.message, exc.fix)
        return await handler(request, found)

    return wrapped


def too_many(request: Request, retry: int, api: bool) -> Response:
    audit.record("rate-limited", client(request), ok=False, path=request.url.path)
    message, fix = "too many failed attempts from this address", f"wait {retry} s and try again"
    if api:
        response: Response = JSONResponse({"error": message, "fix": fix}, status_code=429)
    else:
        response = error_page(request, 429, message, fix)
    response.headers["Retry-After"] = str(retry)
    return response
