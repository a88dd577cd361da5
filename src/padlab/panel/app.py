"""The panel's web app: sign-in, the workstations page, live start/stop, and the routes of the others.

Long actions go to a worker (jobs.py); a page reloaded during a start reads
padlab's state and the job's stages, so it shows the start still going.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import secrets
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from padlab.errors import PadlabError
from padlab.panel import actions, api, audit, home_api, lifecycle, money, pages, passkeys, store
from padlab.panel.web import (
    HERE,
    SESSION_COOKIE,
    Panel,
    SecurityHeaders,
    client,
    error_page,
    panel_of,
    render,
    signed_in,
    too_many,
)

LOGIN_CSRF_COOKIE = "__Host-padlab-login"


def _safe_next(value: str | None) -> str:
    return value if value and value.startswith("/") and not value.startswith("//") else "/"


async def login_page(request: Request) -> Response:
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(32)
    response = render(
        request,
        "login.html",
        csrf=token,
        next=_safe_next(request.query_params.get("next")),
        error=None,
        passkeys=passkeys.offer(request),
    )
    response.set_cookie(LOGIN_CSRF_COOKIE, token, max_age=3600, secure=True, httponly=True, samesite="strict")
    return response


async def login_submit(request: Request) -> Response:
    panel, who = panel_of(request), client(request)
    retry = panel.failures.retry_after(who)
    if retry:
        return too_many(request, retry, api=False)
    form = await request.form()
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not cookie or not hmac.compare_digest(str(form.get("csrf", "")).encode(), cookie.encode()):
        audit.record("csrf-refused", who, ok=False, path="/login")
        return error_page(request, 403, "this sign-in form is out of date", "reload the page and try again")
    nxt = _safe_next(str(form.get("next", "/")))
    retry = panel.failures.reserve(who)  # before the hash: checks in flight count toward the limit
    if retry:
        return too_many(request, retry, api=False)
    ok = False
    try:
        ok = await run_in_threadpool(store.check_password, str(form.get("password", "")))
    finally:
        panel.failures.settle(who, ok)
    if not ok:
        audit.record("sign-in", who, ok=False, how="password")
        return render(
            request,
            "login.html",
            status_code=401,
            csrf=cookie,
            next=nxt,
            error="Wrong password. Try again.",
            passkeys=passkeys.offer(request),
        )
    audit.record("sign-in", who, how="password")
    return start_session(nxt, "password")


def start_session(target: str, how: str) -> Response:
    sid, _ = store.new_session(how)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE, sid, max_age=store.SESSION_S, secure=True, httponly=True, samesite="strict"
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, secure=True, httponly=True, samesite="strict")
    return response


@signed_in
async def logout(request: Request) -> Response:
    store.end_session(request.cookies.get(SESSION_COOKIE))
    audit.record("sign-out", client(request))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, secure=True, httponly=True, samesite="strict")
    return response


@signed_in
async def workstations_page(request: Request) -> Response:
    items = await run_in_threadpool(actions.views, panel_of(request))
    return render(request, "workstations.html", workstations=items, keep=actions.KEEP_DURATION)


@signed_in
async def action_form(request: Request) -> Response:
    panel = panel_of(request)
    name, action = request.path_params["name"], request.path_params["action"]
    try:
        await run_in_threadpool(actions.run, panel, name, action)
    except actions.NeedsPassword:
        return RedirectResponse(f"/w/{name}/password", status_code=303)
    except PadlabError as exc:
        audit.record(action, client(request), ok=False, workstation=name, error=str(exc))
        return error_page(request, actions.http_status(exc), exc.message, exc.fix)
    audit.record(action, client(request), workstation=name)
    return RedirectResponse(f"/#w-{name}", status_code=303)


@signed_in
async def events(request: Request) -> Response:
    """Server-sent events: the job's stages as they happen, then `done` with its error, if any."""
    job = panel_of(request).jobs.get(request.path_params["name"])

    async def stream() -> Any:
        seen, progress = 0, None
        while job is not None:
            stages, done = await run_in_threadpool(job.since, seen, 10.0)
            for text in stages:
                yield f"event: stage\ndata: {json.dumps(text)}\n\n"
            seen += len(stages)
            if job.progress != progress:
                progress = job.progress
                yield f"event: progress\ndata: {json.dumps(progress)}\n\n"
            elif done and not stages:
                break
            elif not stages:
                yield ": still working\n\n"
            await asyncio.sleep(0)
        yield f"event: done\ndata: {json.dumps({'error': job.error if job else None})}\n\n"

    return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})


def create_app(panel: Panel | None = None) -> Starlette:
    routes = [
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login_submit, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/", workstations_page),
        Route("/w/{name}/events", events),
        *pages.routes(),
        *lifecycle.routes(),
        *money.routes(),
        Route("/w/{name}/{action}", action_form, methods=["POST"]),
        *passkeys.routes(LOGIN_CSRF_COOKIE, start_session),
        *api.routes(),
        *home_api.routes(),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    app = Starlette(routes=routes, middleware=[Middleware(SecurityHeaders)])
    app.state.panel = panel or Panel()
    return app
