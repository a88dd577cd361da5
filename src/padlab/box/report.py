"""Step results and progress, so the client can show stages and a JSON report."""

from __future__ import annotations

import json
import select
import sys
import threading
import time
from typing import Any

ASK_TIMEOUT_S = 120  # the client answers at once (padlab's CA signs a CSR in milliseconds)
_EVENTS = threading.Lock()  # one event line at a time on stderr: steps run in threads (bootstrap.Alongside)


class BoxError(Exception):
    """A failure with a one-line message and a fix the user can act on."""

    def __init__(self, message: str, fix: str = "", code: str = "error") -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix
        self.code = code


class Report:
    """Collects changed/unchanged per step; streams stage events to stderr."""

    def __init__(self) -> None:
        self.steps: list[dict[str, Any]] = []
        self.warnings: list[str] = []
        self.data: dict[str, Any] = {}
        self._t0 = self._mark = time.monotonic()

    def stage(self, name: str) -> None:
        """Tell the client a (possibly slow) stage began; one JSON line on stderr."""
        event = {"event": "stage", "stage": name, "elapsed": round(time.monotonic() - self._t0, 2)}
        with _EVENTS:
            sys.stderr.write(json.dumps(event) + "\n")
            sys.stderr.flush()

    def step(self, name: str, changed: bool, detail: str = "") -> None:
        """Record a step; "s" is the time since the previous step, so benchmarks can name where it went."""
        now = time.monotonic()
        self.steps.append(
            {"name": name, "changed": bool(changed), "detail": detail, "s": round(now - self._mark, 3)}
        )
        self._mark = now

    def warn(self, message: str) -> None:
        self.warnings.append(message)

    def ask(self, question: str, **fields: Any) -> dict:
        """Ask the client, which reads this on stderr and answers one JSON line on stdin (only where the
        request says it answers: `answers`); {} when it gave no answer (closed, or a line not JSON)."""
        with _EVENTS:
            sys.stderr.write(json.dumps(dict(event="ask", ask=question, **fields)) + "\n")
            sys.stderr.flush()
        try:
            # Bounded: a client that never answers costs this `up` a one-line failure, not forever.
            ready, _, _ = select.select([sys.stdin], [], [], ASK_TIMEOUT_S)
            if not ready:
                return {}
            answer = json.loads(sys.stdin.buffer.readline() or b"{}")
        except (OSError, ValueError):
            return {}
        return answer if isinstance(answer, dict) else {}

    def aside(self) -> Report:
        """A report for steps run alongside the main ones (in a thread); merge() adds them after."""
        return Report()

    def merge(self, other: Report) -> None:
        """Steps run alongside, each with its own time, marked so that no one adds it to the total."""
        for step in other.steps:
            self.steps.append(dict(step, alongside=True))
        self.warnings.extend(other.warnings)
        self.data.update(other.data)

    @property
    def changed(self) -> bool:
        return any(s["changed"] for s in self.steps)

    def as_dict(self) -> dict[str, Any]:
        out = {"ok": True, "changed": self.changed, "steps": self.steps, "warnings": self.warnings}
        out.update(self.data)
        out["elapsed"] = round(time.monotonic() - self._t0, 3)
        return out
