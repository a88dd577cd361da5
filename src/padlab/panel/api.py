"""The API for scripts and Siri: JSON under /api, `Authorization: Bearer TOKEN`, no cookie, no CSRF."""

from __future__ import annotations

import json
from typing import Any, Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from padlab.errors import PadlabError
from padlab.panel import actions, audit, store
from padlab.panel.web import client, panel_of, too_many


def _refuse() -> Response:
    return JSONResponse(
        {
            "error": "a valid API token is needed",
            "fix": "send Authorization: Bearer TOKEN (make one with: padlab panel token add LABEL)",
        },
        status_code=401,
        headers={"WWW-Authenticate": 'Bearer realm="padlab"'},
    )


def _out_of_scope(have: str, need: str) -> Response:
    return JSONResponse(
        {
            "error": f"this API token's scope is {have}; this needs {need}",
            "fix": f"use a token of scope {need} (padlab panel token add LABEL --scope {need}, "
            f"or padlab remote login URL --scope {need})",
        },
        status_code=403,
    )


def bearer(scope: str) -> Callable[[Callable], Callable]:
    """A token from `padlab panel token add` whose scope covers `scope`, else 401 or 403.

    Bad tokens count toward the 429 limit, each check reserved before it runs (limits.py).
    """
    store.check_scope(scope)

    def decorate(handler: Callable) -> Callable:
        async def wrapped(request: Request) -> Response:
            panel, who = panel_of(request), client(request)
            retry = panel.failures.retry_after(who)
            if retry:
                return too_many(request, retry, api=True)
            kind, _, token = request.headers.get("authorization", "").partition(" ")
            token = token.strip()
            entry = None
            if token:
                retry = panel.failures.reserve(who)  # before the check: checks in flight count
                if retry:
                    return too_many(request, retry, api=True)
                try:
                    entry = store.token_entry(token) if kind.lower() == "bearer" else None
                finally:
                    panel.failures.settle(who, entry is not None)
            if entry is None:
                audit.record("api-refused", who, ok=False, path=request.url.path)
                return _refuse()
            if not store.allows(entry["scope"], scope):
                audit.record("api-out-of-scope", who, ok=False, path=request.url.path, token=entry["label"])
                return _out_of_scope(entry["scope"], scope)
            request.state.token_label = entry["label"]
            try:
                return await handler(request)
            except PadlabError as exc:
                return JSONResponse(
                    {"error": exc.message, "fix": exc.fix}, status_code=actions.http_status(exc)
                )

        return wrapped

    return decorate


@bearer("read")
async def list_all(request: Request) -> Response:
    return JSONResponse({"workstations": await run_in_threadpool(actions.views, panel_of(request))})


@bearer("read")
async def show(request: Request) -> Response:
    return JSONResponse(await run_in_threadpool(actions.one, panel_of(request), request.path_params["name"]))


async def _duration(request: Request) -> str:
    raw = await request.body()
    try:
        body: Any = json.loads(raw) if raw.strip() else {}
    except ValueError:
        body = None
    if not isinstance(body, dict) or not isinstance(body.get("duration", ""), str):
        raise actions.BadDuration('the body must be JSON like {"duration": "2h"}', "send a duration string")
    return body.get("duration") or actions.KEEP_DURATION


@bearer("start-stop")
async def act(request: Request) -> Response:
    panel = panel_of(request)
    name, action = request.path_params["name"], request.path_params["action"]
    fields: dict[str, Any] = {"workstation": name, "token": request.state.token_label}
    try:
        duration = await _duration(request) if action == "keep" else actions.KEEP_DURATION
        result = await run_in_threadpool(actions.run, panel, name, action, duration)
    except PadlabError as exc:
        audit.record(action, client(request), ok=False, error=str(exc), **fields)
        raise
    audit.record(action, client(request), **fields)
    if action == "keep":
        return JSONResponse({"name": name, "autostop": result})
    return JSONResponse(
        {"name": name, "state": actions.PROGRESSIVE[action], "job": result.as_dict()}, status_code=202
    )


def routes() -> list[Route]:
    return [
        Route("/api/workstations", list_all),
        Route("/api/workstations/{name}", show),
        Route("/api/workstations/{name}/{action}", act, methods=["POST"]),
    ]
