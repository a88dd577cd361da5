"""The panel's money pages: costs (the same figures as `padlab costs`, with an SVG chart) and Web Push.

The Home Screen app subscribes to Web Push with padlab's VAPID key
(padlab/webpush.py); alerts padlab sends then reach the iPad as notifications.
The service worker is served from /sw.js so that its scope is the whole panel.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from padlab.errors import PadlabError
from padlab.panel import api, audit
from padlab.panel.web import HERE, client, error_page, render, signed_in

CHART_W, CHART_H, BAR_GAP = 600, 160, 2


def chart_svg(days: dict[str, float]) -> str:
    """One bar per day (USD), as inline SVG: no script, no external file, fine under the panel's CSP."""
    if not days:
        return ""
    top = max(days.values()) or 1.0
    width = CHART_W / len(days)
    bars = []
    for i, (day, usd) in enumerate(days.items()):
        h = round(usd / top * (CHART_H - 20), 1)
        x = round(i * width, 1)
        bars.append(
            f'<rect x="{x}" y="{CHART_H - 20 - h}" width="{max(width - BAR_GAP, 1):.1f}" height="{h}">'
            f"<title>{escape(day)}: ${usd:.2f}</title></rect>"
        )
    first, last = next(iter(days)), list(days)[-1]
    return (
        f'<svg class="chart" viewBox="0 0 {CHART_W} {CHART_H}" role="img" '
        f'aria-label="USD per day, {escape(first)} to {escape(last)}">'
        + "".join(bars)
        + f'<text x="0" y="{CHART_H - 4}">{escape(first[5:])}</text>'
        f'<text x="{CHART_W}" y="{CHART_H - 4}" text-anchor="end">{escape(last[5:])}</text>'
        f'<text x="{CHART_W}" y="12" text-anchor="end">max ${top:.2f}/day</text></svg>'
    )


def _costs(month: str | None) -> dict[str, Any]:
    """What `padlab costs --json` prints: providers read now (this month), then the ledger added up."""
    from padlab import money, profiles

    unread = money.refresh(profiles.names()) if month is None else []
    data = money.costs(None, month)
    data["unread"] = unread
    return data


@signed_in
async def costs_page(request: Request) -> Response:
    try:
        data = await run_in_threadpool(_costs, request.query_params.get("month"))
    except PadlabError as exc:
        return error_page(request, 400, exc.message, exc.fix)
    from padlab import webpush

    return render(
        request,
        "costs.html",
        costs=data,
        chart=chart_svg(data["days"]),
        push_key=await run_in_threadpool(webpush.application_server_key),
    )


@api.bearer("read")
async def costs_api(request: Request) -> Response:
    """The same JSON as `padlab costs --json`; a bad month is the caller's error (400)."""
    try:
        return JSONResponse(await run_in_threadpool(_costs, request.query_params.get("month")))
    except PadlabError as exc:
        return JSONResponse({"error": exc.message, "fix": exc.fix}, status_code=400)


@signed_in
async def push_subscribe(request: Request) -> Response:
    """The service worker's PushSubscription (its toJSON(), as the form field `subscription`)."""
    from padlab import webpush

    try:
        sub = json.loads(str(request.state.form.get("subscription", "")))
        if not isinstance(sub, dict):
            raise ValueError
    except ValueError:
        return JSONResponse({"error": "subscription must be a PushSubscription as JSON"}, status_code=400)
    try:
        saved = await run_in_threadpool(webpush.subscribe, sub)
    except PadlabError as exc:
        return JSONResponse({"error": exc.message, "fix": exc.fix}, status_code=400)
    audit.record("push-subscribe", client(request), endpoint=saved["endpoint"].split("/")[2])
    return JSONResponse({"subscribed": True})


async def service_worker(request: Request) -> Response:
    return FileResponse(
        HERE / "static" / "sw.js", media_type="text/javascript", headers={"Cache-Control": "no-cache"}
    )


def routes() -> list[Route]:
    return [
        Route("/costs", costs_page),
        Route("/api/costs", costs_api),
        Route("/push/subscribe", push_subscribe, methods=["POST"]),
        Route("/sw.js", service_worker),
    ]
