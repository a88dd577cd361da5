"""What the pages and the API show for each workstation, from workstation.status() cached briefly.

A cloud's state costs an API call; a few seconds of cache keep page reloads from
hammering the provider (and its rate limits). Actions drop the entry at once.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from padlab.errors import PadlabError

CACHE_S = 5.0


class UnknownWorkstation(PadlabError):
    """No profile of that name (HTTP 404)."""


class Workstations:
    def __init__(self, cache_s: float = CACHE_S) -> None:
        self.cache_s = cache_s
        self._cache: dict[str, tuple[float, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        from padlab import profiles

        return profiles.names()

    def profile(self, name: str) -> Any:
        """The profile, or a PadlabError naming the ones that exist."""
        from padlab import profiles

        known = profiles.names()
        if name not in known:
            raise UnknownWorkstation(f"no workstation named {name!r}", f"known: {', '.join(known) or 'none'}")
        return profiles.load(name)

    def status(self, name: str) -> dict[str, Any]:
        with self._lock:
            hit = self._cache.get(name)
        if hit and time.monotonic() - hit[0] < self.cache_s:
            return hit[1]
        from padlab import workstation

        profile = self.profile(name)
        try:
            data = workstation.status(profile)
        except PadlabError as exc:
            data = {"name": name, "provider": profile.provider, "state": "error", "last_error": str(exc)}
        with self._lock:
            self._cache[name] = (time.monotonic(), data)
        return data

    def all(self) -> list[dict[str, Any]]:
        names = self.names()
        with ThreadPoolExecutor(max_workers=min(8, len(names) or 1)) as pool:
            return list(pool.map(self.status, names))

    def forget(self, name: str) -> None:
        with self._lock:
            self._cache.pop(name, None)


def view(data: dict[str, Any], job: Any) -> dict[str, Any]:
    """One workstation as pages and the API show it: state in words, price, uptime, autostop, links."""
    from padlab import card

    machine = data.get("machine") or {}
    state = data.get("state", "unknown")
    if job is not None and not job.done:
        state = {"start": "starting", "stop": "stopping"}.get(job.action, state)
    autostop = data.get("autostop") or {}
    uptime_s = data.get("uptime_s")
    return {
        "name": data["name"],
        "provider": data.get("provider"),
        "state": state,
        "url": data.get("url"),
        "juno_url": data.get("juno_url") or data.get("url"),
        "price_per_hour": machine.get("price_per_hour"),
        "price_source": machine.get("price_source"),
        "billed_while_down": machine.get("billed_while_down"),
        "uptime_s": uptime_s,
        "uptime": card.uptime_text(uptime_s) if uptime_s is not None else None,
        "autostop": autostop.get("summary"),
        "last_error": data.get("last_error") if state in ("error", "stopped") else None,
        "stop_reason": data.get("stop_reason") if state == "stopped" else None,
        "job": job.as_dict() if job is not None else None,
    }
