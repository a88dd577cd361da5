"""The other pages: a workstation's card, logs and settings; the CA page; the web app manifest.

The CA page and its files are public: they hold no secret, and an iPad needs them
before it can sign in over a connection it does not trust yet (docs/panel.md).
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from padlab.errors import PadlabError
from padlab.panel import actions, audit, store
from padlab.panel.web import (
    HERE,
    SESSION_COOKIE,
    Workstation,
    client,
    error_page,
    panel_of,
    render,
    signed_in,
    workstation_page,
)

LOG_LINES = 200


def _card_extras(item: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """QR code (inline SVG from segno), ssh/mosh commands, Blink's ssh:// link and host settings."""
    import segno

    from padlab import tls

    out: dict[str, Any] = {"ssh": data.get("ssh"), "mosh": data.get("mosh"), "blink": data.get("blink")}
    out["password_hint"] = data.get("password_hint")
    out["cert_sha256"] = tls.pretty_fingerprint(data["cert_sha256"]) if data.get("cert_sha256") else None
    out["local_url"] = data.get("local_url")
    out["qr_svg"] = (
        segno.make(item["url"], error="m").svg_inline(border=2, dark="#000", light="#fff", omitsize=True)
        if item["url"]
        else None
    )
    out["ssh_link"] = _ssh_link(data.get("ssh"))
    return out


def _ssh_link(command: str | None) -> str | None:
    """ssh://USER@HOST:PORT from the card's `ssh ...` command: Blink opens such links."""
    if not command:
        return None
    import shlex

    words = shlex.split(command)
    port, target = None, None
    i = 1
    while i < len(words):
        if words[i] == "-p" and i + 1 < len(words):
            port, i = words[i + 1], i + 2
            continue
        if words[i].startswith("-"):
            i += 2 if words[i] in ("-i", "-F", "-J", "-o", "-l") else 1
            continue
        target = words[i]
        break
    if not target:
        return None
    return f"ssh://{target}" + (f":{port}" if port else "")


@workstation_page
async def card_page(request: Request, w: Workstation) -> Response:
    data = w.panel.workstations.status(w.name)
    return render(request, "card.html", w=w.item, card=_card_extras(w.item, data))


def _logs(profile: Any) -> dict[str, str]:
    from padlab import workstation

    out = {}
    for key, agent in (("jupyter", False), ("agent", True)):
        try:
            out[key] = workstation.logs(profile, agent, LOG_LINES) or "(the log is empty)"
        except PadlabError as exc:
            out[key] = f"(not available: {exc})"
    return out


@workstation_page
async def logs_page(request: Request, w: Workstation) -> Response:
    logs = await run_in_threadpool(_logs, w.profile)
    return render(request, "logs.html", w=w.item, logs=logs, lines=LOG_LINES)


def _settings(panel: Any, name: str) -> dict[str, Any]:
    from padlab import autostop, workstation

    profile = panel.workstations.profile(name)
    return {
        "autostop": profile.autostop or "",
        "max_uptime": profile.max_uptime or "",
        "policy": autostop.describe_policy(workstation.autostop_policy(profile)),
    }


def _save_settings(panel: Any, name: str, limit: str, max_uptime: str) -> dict[str, Any]:
    from padlab import workstation

    profile = panel.workstations.profile(name)
    result = workstation.set_autostop(profile, limit or None, max_uptime or None, None)
    panel.workstations.forget(name)
    return result


@signed_in
async def settings_page(request: Request) -> Response:
    panel, name = panel_of(request), request.path_params["name"]
    saved = None
    try:
        if request.method == "POST":
            form = request.state.form
            limit, cap = str(form.get("autostop", "")).strip(), str(form.get("max_uptime", "")).strip()
            result = await run_in_threadpool(_save_settings, panel, name, limit, cap)
            audit.record("settings", client(request), workstation=name, autostop=limit, max_uptime=cap)
            saved = "applied on the box" if result["box"] else "applies at the next start"
        item = await run_in_threadpool(actions.one, panel, name)
        current = await run_in_threadpool(_settings, panel, name)
    except PadlabError as exc:
        if request.method == "POST":
            audit.record("settings", client(request), ok=False, workstation=name, error=str(exc))
        return error_page(
            request,
            actions.http_status(exc) if "no workstation" in exc.message else 400,
            exc.message,
            exc.fix,
        )
    return render(request, "settings.html", w=item, settings=current, saved=saved)


def ca_facts(public: bool = False) -> dict[str, str | None]:
    """The CA's fingerprint; a panel with a public certificate makes no CA just to show it
    (the CA key stays off a public panel until a workstation needs it)."""
    from padlab import tls

    if public and not tls.ca_cert_path().exists():
        return {"fingerprint": None}
    pem = tls.ensure_ca()
    return {"fingerprint": tls.pretty_fingerprint(tls.fingerprint(pem))}


async def ca_page(request: Request) -> Response:
    request.state.session = store.session(request.cookies.get(SESSION_COOKIE))
    return render(request, "ca.html", ca=await run_in_threadpool(ca_facts, panel_of(request).public_tls))


def _exported(kind: str) -> bytes:
    import tempfile
    from pathlib import Path

    from padlab import tls

    with tempfile.TemporaryDirectory() as tmp:
        return Path(tls.export(Path(tmp))[kind]).read_bytes()


async def ca_file(request: Request) -> Response:
    kind = request.path_params["kind"]
    media = {
        "mobileconfig": "application/x-apple-aspen-config",
        "crt": "application/x-x509-ca-cert",
        "pem": "application/x-pem-file",
    }
    if kind not in media:
        return error_page(request, 404, f"no CA file of kind {kind!r}", "use /ca")
    if (await run_in_threadpool(ca_facts, panel_of(request).public_tls))["fingerprint"] is None:
        return error_page(request, 404, "padlab's CA is not on this panel", "this panel needs no profile")
    body = await run_in_threadpool(_exported, kind)
    return Response(
        body,
        media_type=media[kind],
        headers={
            "Content-Disposition": f'attachment; filename="padlab-ca.{kind}"',
            "Cache-Control": "no-cache",
        },
    )


async def manifest(request: Request) -> Response:
    return JSONResponse(
        {
            "name": "padlab",
            "short_name": "padlab",
            "description": "Start, stop and connect to your notebook workstations.",
            "start_url": "/",
            "scope": "/",
            "display": "standalone",
            "background_color": "#101418",
            "theme_color": "#101418",
            "icons": [
                {"src": "/static/icon-192.png", "sizes": "192x192", "type": "image/png"},
                {"src": "/static/icon-512.png", "sizes": "512x512", "type": "image/png"},
                {"src": "/static/icon.svg", "sizes": "any", "type": "image/svg+xml"},
            ],
        },
        media_type="application/manifest+json",
        headers={"Cache-Control": "max-age=3600"},
    )


async def apple_icon(request: Request) -> Response:
    return FileResponse(HERE / "static" / "icon-180.png", media_type="image/png")


async def favicon(request: Request) -> Response:
    return RedirectResponse("/static/icon.svg", status_code=301)


def routes() -> list[Route]:
    return [
        Route("/w/{name}/card", card_page),
        Route("/w/{name}/logs", logs_page),
        Route("/w/{name}/settings", settings_page, methods=["GET", "POST"]),
        Route("/ca", ca_page),
        Route("/ca/padlab-ca.{kind}", ca_file),
        Route("/manifest.webmanifest", manifest),
        Route("/apple-touch-icon.png", apple_icon),
        Route("/favicon.ico", favicon),
    ]
