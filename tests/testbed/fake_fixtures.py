"""Pytest fixtures for the fake Immich server and stub ML endpoints (loaded from tests/conftest.py).

- ``immich_fake_factory(version="2.7.5", **kwargs)`` -> a started :class:`FakeImmichServer`.
- ``immich_fake`` / ``immich_fake_v3``: a started 2.7.5 / 3.2.2 fake with one admin key ``all``
  (``immich_api_key``).
- ``stub_ml_factory(name="ml")`` -> a started :class:`StubMLServer` (an ML endpoint).
- ``immich_fake_process_factory(**kwargs)`` -> a started :class:`FakeImmichProcess` (separate process).

Everything a factory started is stopped at teardown.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.testbed.immich_fake import DEFAULT_API_KEY, ApiKey, FakeImmichServer
from tests.testbed.immich_fake_ml_stub import StubMLServer
from tests.testbed.immich_fake_process import FakeImmichProcess

__all__ = [
    "ApiKey",
    "immich_api_key",
    "immich_fake",
    "immich_fake_factory",
    "immich_fake_process_factory",
    "immich_fake_v3",
    "stub_ml_factory",
]


@pytest.fixture
def immich_api_key() -> str:
    """The secret of the default admin key (permission ``all``) of ``immich_fake``/``immich_fake_v3``."""
    return DEFAULT_API_KEY


@pytest.fixture
def immich_fake_factory() -> Iterator[Callable[..., FakeImmichServer]]:
    """Start fakes with any :class:`FakeImmichServer` arguments; all are stopped at teardown."""
    started: list[FakeImmichServer] = []

    def make(version: str = "2.7.5", **kwargs) -> FakeImmichServer:
        fake = FakeImmichServer(version, **kwargs).start()
        started.append(fake)
        return fake

    yield make
    for fake in reversed(started):
        fake.stop()


@pytest.fixture
def immich_fake(immich_fake_factory: Callable[..., FakeImmichServer]) -> FakeImmichServer:
    """A running Immich 2.7.5 fake."""
    return immich_fake_factory("2.7.5")


@pytest.fixture
def immich_fake_v3(immich_fake_factory: Callable[..., FakeImmichServer]) -> FakeImmichServer:
    """A running Immich 3.2.2 fake."""
    return immich_fake_factory("3.2.2")


@pytest.fixture
def stub_ml_factory() -> Iterator[Callable[..., StubMLServer]]:
    """Start stub ML endpoints on 127.0.0.1; all are stopped at teardown."""
    started: list[StubMLServer] = []

    def make(name: str = "ml") -> StubMLServer:
        stub = StubMLServer(name).start()
        started.append(stub)
        return stub

    yield make
    for stub in reversed(started):
        stub.stop()


@pytest.fixture
def immich_fake_process_factory(tmp_path: Path) -> Iterator[Callable[..., FakeImmichProcess]]:
    """Start the fake as a child process (``python -m tests.testbed.immich_fake``); stopped at teardown."""
    started: list[FakeImmichProcess] = []

    def make(**kwargs) -> FakeImmichProcess:
        workdir = kwargs.pop("workdir", tmp_path / f"immich-fake-{len(started)}")
        process = FakeImmichProcess(workdir, **kwargs).start()
        started.append(process)
        return process

    yield make
    for process in reversed(started):
        process.stop()
