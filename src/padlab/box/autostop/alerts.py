"""Alerts the agent sends from the box itself, so they arrive while no padlab client runs.

An ntfy-compatible topic: one POST, the message as the body, a Title header.
The topic URL is a credential (whoever knows it reads the topic), so it lives in
a file of its own, 0600 and root's on system boxes; the config names only the file.
Each alert goes out once: state.json remembers what was sent.
"""

from __future__ import annotations

import time
import urllib.request

TIMEOUT_S = 10.0


def topic_url(conf: dict) -> str:
    path = (conf.get("alert") or {}).get("url_file")
    if not path:
        return ""
    try:
        with open(path) as fh:
            return fh.read().strip()
    except OSError:
        return ""


def send(conf: dict, title: str, text: str, tags: str, log) -> bool:
    """POST one alert; a failure is logged, never raised (an alert must not stop a stop)."""
    url = topic_url(conf)
    if not url:
        return False
    name = (conf.get("layout") or {}).get("name") or "box"
    req = urllib.request.Request(
        url,
        data=text.encode("utf-8"),
        headers={"Title": "padlab %s: %s" % (name, title), "Tags": tags},
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT_S) as resp:
            resp.read()
        log(time.time(), "alert sent: %s: %s" % (title, text))
        return True
    except Exception as exc:  # noqa: BLE001 - whatever failed, the log says so and the agent carries on
        log(time.time(), "alert FAILED (%s): %s: %s" % (exc, title, text))
        return False


def due(conf: dict, state: dict, now: float, booted: float) -> list:
    """(key, title, text, tags) for the timed alerts due now and not yet sent: long uptime, 80 % budget."""
    out = []
    alert = conf.get("alert") or {}
    after_s = alert.get("after_s")
    if after_s and booted and now - booted >= after_s and state.get("alerted_uptime") != booted:
        hours = (now - booted) / 3600.0
        out.append(
            ("alerted_uptime", booted, "up %.1f h" % hours,
             "this box has been up for %.1f h (your alert threshold is %.1f h)" % (hours, after_s / 3600.0),
             "hourglass")
        )  # fmt: skip
    warn_at = conf.get("budget_warn_at")
    if warn_at and now >= warn_at and state.get("alerted_budget") != warn_at:
        text = conf.get("budget_warn_text") or "80% of the budget is spent"
        if conf.get("deadline_at"):
            text += "; this box stops at %s" % time.strftime("%H:%M", time.localtime(conf["deadline_at"]))
        out.append(("alerted_budget", warn_at, "budget", text, "moneybag"))
    return out
