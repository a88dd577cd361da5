"""Durations as people type and read them ("45m", "2h", "1h30m"), shared by the client and the box."""

from __future__ import annotations

import math
import re

# Bounds shared by the client and the box. A hold longer than a week is a forgotten box, not a plan;
# an idle limit longer than a week is "off"; a hard cap is about a month at most.
MAX_KEEP_S = 7 * 86400
MAX_IDLE_S = 7 * 86400
MAX_UPTIME_S = 31 * 86400
# Any duration at all: a year. Past it, times stop being dates the box can print.
MAX_ANY_S = 366 * 86400

_UNITS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(min|s|m|h|d)")


def parse_duration(text: str, limit: float = MAX_ANY_S, what: str = "a duration") -> int | None:
    """Seconds for '45m', '2h', '1h30m' or '90' (minutes); None for 'off'; ValueError otherwise.

    Longer than limit (for `what`, e.g. "a keep hold") is a ValueError that says the limit.
    """
    raw = str(text).strip().lower()
    if raw in ("off", "none", "0", "no"):
        return None
    if re.fullmatch(r"\d+", raw):
        total = float(int(raw) * 60)
        pos = len(raw)
    else:
        pos, total = 0, 0.0
        for match in _PART.finditer(raw):
            if raw[pos : match.start()].strip():
                break
            total += float(match.group(1)) * _UNITS[match.group(2)]
            pos = match.end()
    if pos == 0 or raw[pos:].strip() or not total > 0:
        raise ValueError("cannot read %r as a duration; use e.g. 45m, 2h, 1h30m or off" % text)
    if not math.isfinite(total) or total > limit:
        raise ValueError("%s is at most %s; %r is longer" % (what, format_duration(limit), text))
    return int(round(total))


def format_duration(seconds: float | None) -> str:
    """'45 min', '2 h 5 min', '30 s'; 'off' for None."""
    if seconds is None:
        return "off"
    s = max(0, int(round(seconds)))
    if s < 60:
        return "%d s" % s
    minutes = s // 60
    if minutes < 60:
        return "%d min" % minutes
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return "%d h %d min" % (hours, minutes) if minutes else "%d h" % hours
    days, hours = divmod(hours, 24)
    return "%d d %d h" % (days, hours) if hours else "%d d" % days
