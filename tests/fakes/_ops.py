"""Backend calls run off the request thread, in order per machine.

Real cloud APIs answer power requests at once and finish them later; running
backend calls on a worker keeps the fakes just as prompt even when a backend
boots a real VM, and one queue per machine keeps start/stop/destroy ordered.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass


@dataclass
class Op:
    """One queued backend call; ``kind`` lets the API show a transitional state."""

    kind: str
    future: Future[object]

    @property
    def running(self) -> bool:
        return not self.future.done()

    @property
    def error(self) -> BaseException | None:
        return self.future.exception() if self.future.done() else None


class MachineOps:
    """Per-machine FIFO of backend calls; failures are appended to ``errors``."""

    def __init__(self, errors: list[BaseException]) -> None:
        self._queues: dict[str, ThreadPoolExecutor] = {}
        self._retired: list[ThreadPoolExecutor] = []
        self._last: dict[str, Op] = {}
        self._lock = threading.Lock()
        self.errors = errors

    def submit(self, machine_id: str, kind: str, fn: Callable[[], object]) -> Op:
        with self._lock:
            queue = self._queues.get(machine_id)
            if queue is None:
                queue = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"fake-{machine_id}")
                self._queues[machine_id] = queue
            op = Op(kind, queue.submit(fn))
            self._last[machine_id] = op
        op.future.add_done_callback(self._collect)
        return op

    def after(self, machine_id: str, fn: Callable[[], object]) -> Callable[[], object]:
        """fn, run only once the machine's calls queued so far are done: deleting a snapshot
        never overtakes the destroy of the droplet it came from."""
        with self._lock:
            prior = self._last.get(machine_id)

        def run() -> object:
            if prior is not None:
                wait([prior.future])
            return fn()

        return run

    def pending(self, machine_id: str) -> str | None:
        """Kind of the latest call if it has not finished, else ``None``."""
        with self._lock:
            op = self._last.get(machine_id)
        return op.kind if op is not None and op.running else None

    def retire(self, machine_id: str) -> None:
        """Let the machine's queue drain and stop its thread (after a destroy was queued)."""
        with self._lock:
            queue = self._queues.pop(machine_id, None)
            if queue is not None:
                self._retired.append(queue)
        if queue is not None:
            queue.shutdown(wait=False)

    def close(self) -> None:
        """Finish every queued call; used when the fake server stops."""
        with self._lock:
            queues = [*self._queues.values(), *self._retired]
            self._queues.clear()
            self._retired.clear()
        for queue in queues:
            queue.shutdown(wait=True)

    def _collect(self, future: Future[object]) -> None:
        error = future.exception()
        if error is not None:
            with self._lock:
                self.errors.append(error)
