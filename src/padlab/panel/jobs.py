"""Long actions (start, stop) run in a worker thread; pages and SSE streams read their stages.

The worker calls the same workstation functions as the CLI, so the same
state.action() lock keeps a panel start and a CLI `up` from making two machines.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

from padlab.errors import PadlabError

Stage = Callable[[str], None]


class Job:
    """One action on one workstation: its stages so far, and how it ended."""

    def __init__(self, name: str, action: str) -> None:
        self.name = name
        self.action = action
        self.started = time.time()
        self.stages: list[str] = []
        self.done = False
        self.error: str | None = None
        self.progress: dict[str, Any] | None = None  # a download's bytes, total and note, the latest
        self.result: dict[str, Any] | None = None
        self._secret: str | None = None  # a generated password, for the one page that shows it
        self._cond = threading.Condition()

    def stage(self, text: str) -> None:
        if text:
            with self._cond:
                self.stages.append(text)
                self._cond.notify_all()

    def keep_secret(self, value: str) -> None:
        self._secret = value

    def reveal_once(self) -> str | None:
        """The generated password for the first page that asks, then never again."""
        with self._cond:
            value, self._secret = self._secret, None
        return value

    def note(self, progress: dict[str, Any]) -> None:
        """The latest progress of a long step (a download's bytes): replaces the one before."""
        with self._cond:
            self.progress = dict(progress)
            self._cond.notify_all()

    def finish(self, error: str | None) -> None:
        with self._cond:
            self.done, self.error = True, error
            self._cond.notify_all()

    def since(self, seen: int, timeout: float) -> tuple[list[str], bool]:
        """Stages after the first `seen`, waiting up to timeout for one; and whether the job ended."""
        with self._cond:
            if len(self.stages) <= seen and not self.done:
                self._cond.wait(timeout)
            return self.stages[seen:], self.done

    def as_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "started_at": self.started,
            "stages": list(self.stages),
            "done": self.done,
            "error": self.error,
            "progress": self.progress,
        }


class Jobs:
    """The latest job per workstation; at most one running for each."""

    def __init__(self, on_done: Callable[[str], None] = lambda name: None) -> None:
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._on_done = on_done

    def get(self, name: str) -> Job | None:
        return self._jobs.get(name)

    def running(self, name: str) -> Job | None:
        job = self._jobs.get(name)
        return job if job and not job.done else None

    def start(self, name: str, action: str, work: Callable[..., Any], with_job: bool = False) -> Job:
        """Run work(stage) in a thread (work(stage, job) with with_job, for progress and a result)."""
        from padlab import state

        with self._lock:
            if self.running(name):
                raise PadlabError(
                    f"{name!r} is already {self._jobs[name].action}ing",
                    "wait for it to finish (see its page)",
                )
            if state.is_locked(name):
                raise PadlabError(
                    f"another padlab command is working on {name!r}", "wait for it to finish, then try again"
                )
            job = Job(name, action)
            self._jobs[name] = job
        threading.Thread(
            target=self._run, args=(job, work, with_job), name=f"panel-{action}-{name}", daemon=True
        ).start()
        return job

    def _run(self, job: Job, work: Callable[..., Any], with_job: bool) -> None:
        error = None
        try:
            result = work(job.stage, job) if with_job else work(job.stage)
            job.result = result if isinstance(result, dict) else None
        except PadlabError as exc:
            error = str(exc)
        except Exception as exc:  # shown on the page as one line, like the CLI's last resort
            error = f"internal error: {type(exc).__name__}: {exc}"
        finally:
            self._on_done(job.name)
            job.finish(error)
