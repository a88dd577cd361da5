"""Fixtures for the fake-API contract tests: fast timers, one fake per test."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.fakes import FakeDigitalOcean, FakePaperspace, MemoryBackend

PAPERSPACE_KEY = "ps-test-key-0123456789"
DO_TOKEN = "dop_v1_test_token_0123456789"


@pytest.fixture
def backend() -> MemoryBackend:
    return MemoryBackend(boot_seconds=0.05, stop_seconds=0.05, snapshot_seconds=0.05)


@pytest.fixture
def paperspace(backend: MemoryBackend) -> Iterator[FakePaperspace]:
    with FakePaperspace(api_key=PAPERSPACE_KEY, backend=backend) as fake:
        yield fake


@pytest.fixture
def ps(paperspace: FakePaperspace) -> Iterator[httpx.Client]:
    """An httpx client authenticated against the Paperspace fake."""
    headers = {"Authorization": f"Bearer {PAPERSPACE_KEY}"}
    with httpx.Client(base_url=paperspace.url, headers=headers, timeout=5) as client:
        yield client


@pytest.fixture
def digitalocean(backend: MemoryBackend) -> Iterator[FakeDigitalOcean]:
    with FakeDigitalOcean(token=DO_TOKEN, backend=backend) as fake:
        yield fake


@pytest.fixture
def do(digitalocean: FakeDigitalOcean) -> Iterator[httpx.Client]:
    """An httpx client authenticated against the DigitalOcean fake."""
    headers = {"Authorization": f"Bearer {DO_TOKEN}"}
    with httpx.Client(base_url=digitalocean.url, headers=headers, timeout=5) as client:
        yield client
