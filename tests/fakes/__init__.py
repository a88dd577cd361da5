"""Strict fakes of the Paperspace v1 and DigitalOcean v2 APIs, served on 127.0.0.1 for tests.

``FakePaperspace`` and ``FakeDigitalOcean`` speak the providers' wire formats;
how their machines run is delegated to a ``MachineBackend`` (``MemoryBackend``
by default), so end-to-end tests can swap in real VMs.
"""

from ._http import RecordedRequest
from .backend import BackendState, MachineBackend, MachineSpec, MemoryBackend
from .digitalocean import FakeDigitalOcean
from .paperspace import FakePaperspace

__all__ = [
    "BackendState",
    "FakeDigitalOcean",
    "FakePaperspace",
    "MachineBackend",
    "MachineSpec",
    "MemoryBackend",
    "RecordedRequest",
]
