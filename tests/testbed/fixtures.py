"""pytest plugin with the testbed fixtures; enable it with `pytest_plugins = ["tests.testbed.fixtures"]`.

Fixtures:
  testbed        session-scoped Testbed; everything it made is torn down at session end
                 (and by atexit if the session dies on Ctrl-C).
  machine        a fresh, bare bookworm machine for one test.
  make_machines  factory: make_machines(n, image="bookworm") boots n fresh machines in parallel.
  make_client    factory: make_client() gives a ClientNamespace removed after the test.

Tests using any of them get the `testbed` marker, so `-m testbed` / `-m "not testbed"` select them.
Without root or the host tools they skip, except under CI (env CI set), where they fail loudly.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator

import pytest

from .machine import Machine
from .testbed import ClientNamespace, Testbed, TestbedUnavailable

_names = itertools.count(1)


def _unique(prefix: str) -> str:
    """Names unique across concurrent pytest runs on one host (they share netns names)."""
    return f"{prefix}{os.getpid() % 100000}-{next(_names)}"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "testbed: boots systemd-nspawn machines (needs root; tests/testbed)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "testbed" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.testbed)


@pytest.fixture(scope="session")
def testbed() -> Iterator[Testbed]:
    try:
        bed = Testbed()
    except TestbedUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"{exc} (CI is set, so this is an error, not a skip)", pytrace=False)
        pytest.skip(str(exc))
    try:
        yield bed
    finally:
        bed.close()


@pytest.fixture
def make_machines(testbed: Testbed) -> Iterator[Callable[..., list[Machine]]]:
    made: list[Machine] = []

    def make(count: int = 1, image: str = "bookworm") -> list[Machine]:
        machines = testbed.machines([_unique("t") for _ in range(count)], image=image)
        made.extend(machines)
        return machines

    yield make
    for machine in made:
        machine.destroy()


@pytest.fixture
def machine(make_machines: Callable[..., list[Machine]]) -> Machine:
    return make_machines(1)[0]


@pytest.fixture
def make_client(testbed: Testbed) -> Iterator[Callable[..., ClientNamespace]]:
    made: list[ClientNamespace] = []

    def make(index: int | None = None) -> ClientNamespace:
        client = testbed.client_namespace(_unique("c"), index=index)
        made.append(client)
        return client

    yield make
    for client in made:
        client.remove()
