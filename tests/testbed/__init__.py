"""padlab's testbed: real Debian machines (systemd as PID 1) in systemd-nspawn, for integration tests.

See tests/testbed/README.md. The pytest fixtures live in tests.testbed.fixtures.
"""

from .host import TestbedError
from .machine import Machine
from .testbed import ClientNamespace, Testbed, TestbedUnavailable

__all__ = ["ClientNamespace", "Machine", "Testbed", "TestbedError", "TestbedUnavailable"]
