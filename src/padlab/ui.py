"""Output for people (rich, on a terminal) and for scripts (plain text, JSON)."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Callable


def is_tty(stream: Any = None) -> bool:
    stream = stream or sys.stdout
    return hasattr(stream, "isatty") and stream.isatty()


def console(stderr: bool = False) -> Any:
    from rich.console import Console

    return Console(stderr=stderr)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def error(message: str) -> None:
    sys.stderr.write(f"padlab: error: {message}\n")


def warn(message: str) -> None:
    sys.stderr.write(f"padlab: warning: {message}\n")


@contextmanager
def progress(title: str) -> Iterator[Callable[[str], None]]:
    """Yields a stage callback: a spinner with elapsed time on a terminal, timestamped lines otherwise."""
    t0 = time.monotonic()
    if is_tty(sys.stderr):
        con = console(stderr=True)
        current = {"stage": title}
        with con.status(title) as status:

            def stage(name: str) -> None:
                if not name:
                    return
                current["stage"] = name
                status.update(f"{name} [dim]({time.monotonic() - t0:.0f}s)[/dim]")

            yield stage
        con.print(f"[dim]{title}: done in {time.monotonic() - t0:.1f}s[/dim]")
    else:

        def stage(name: str) -> None:
            if name:
                sys.stderr.write(f"[{time.monotonic() - t0:6.1f}s] {name}\n")
                sys.stderr.flush()

        yield stage
