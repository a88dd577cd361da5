"""Alerts: an ntfy topic (the ntfy app on iOS shows them) for stops, budgets and long uptimes.

The box's agent sends what happens on the box itself (an autostop stop, a failed
stop, a box up longer than the threshold, 80 % of the budget reached while it
runs), so those arrive while no client runs; box_fields() is what it is given.
The client sends what it sees: the 80 % warning at `up` and a failed `down`.
An ntfy topic URL is a credential (anyone who knows it can read the topic): it is
kept 0600 here and root-only on the box.
"""

from __future__ import annotations

from typing import Any

from padlab import ledger, money
from padlab.errors import PadlabError


def config() -> dict[str, Any]:
    return dict(money.settings().get("alerts") or {})


def configure(
    ntfy: str | None = None, profile: str | None = None, after_s: int | None | bool = False
) -> dict:
    """Set the ntfy URL ('' removes it) and/or a profile's uptime threshold (None removes it)."""
    data = money.settings()
    alerts = data.setdefault("alerts", {})
    if ntfy is not None:
        if ntfy in ("", "off"):
            alerts.pop("ntfy", None)
        else:
            alerts["ntfy"] = check_url(ntfy)
    if after_s is not False:
        if profile is None:
            raise PadlabError("--after needs a profile", "padlab alert NAME --after 3h")
        after = alerts.setdefault("after", {})
        if after_s is None:
            after.pop(profile, None)
        else:
            after[profile] = int(after_s)
    money.save(data)
    return alerts


def check_url(url: str) -> str:
    import urllib.parse

    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.netloc or len(parts.path.strip("/")) == 0:
        raise PadlabError(
            f"{url!r} is not an ntfy topic URL",
            "give e.g. https://ntfy.sh/padlab-7f3a9c (a long random topic)",
        )
    return url


def box_fields(profile: str) -> dict[str, Any]:
    """The request's alert part for the agent: the topic URL and the uptime threshold."""
    cfg = config()
    out: dict[str, Any] = {}
    if cfg.get("ntfy"):
        out["ntfy"] = cfg["ntfy"]
    after = (cfg.get("after") or {}).get(profile)
    if after:
        out["after_s"] = after
    return out


def budget_once(profile: str, text: str) -> None:
    """Send a budget warning as an alert, once per profile and month."""
    _, _, month = ledger.month_bounds()
    data = money.settings()
    key = f"{month}:{profile}"
    if key in (data.get("warned") or {}):
        return
    data.setdefault("warned", {})[key] = text
    money.save(data)
    send("budget", text, "moneybag")


def send(title: str, text: str, tags: str = "warning") -> list[str]:
    """Send one alert everywhere it is configured; returns where it failed (never raises)."""
    failed = []
    url = config().get("ntfy")
    if url:
        import httpx

        try:
            resp = httpx.post(
                url, content=text.encode(), headers={"Title": title, "Tags": tags}, timeout=10.0
            )
            resp.raise_for_status()
        except httpx.HTTPError as exc:
            failed.append(f"ntfy: {exc}")
    from padlab import webpush

    failed += webpush.send_all({"title": title, "body": text, "tags": tags})
    return failed
