"""pytest fixtures for the test bed (registered through `pytest_plugins` in tests/conftest.py).

- `testbed` (session): one bed with 3 hosts for the whole run, torn down at the end. With
  IMMICH_REMOTE_KEEP_BED=1 it is started detached and left running; the end of the run prints how to remove it.
- `bed_hosts`: the session's hosts for one test; any fault the test left (pause, stop, partition, ...)
  is undone afterwards.
- `fresh_hosts`: the same, wiped first (no inner containers, images, volumes or files of `deploy`).
- `more_hosts`: `more_hosts(n)` adds n hosts for one test and removes them after it.

A machine that cannot run the bed fails these fixtures (never a skip) with what to install or start.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from .bed import Host, TestBed, cleanup_stale
from .prereqs import missing_prerequisites

KEEP_ENV = "IMMICH_REMOTE_KEEP_BED"
SESSION_HOSTS = 3


@pytest.fixture(scope="session")
def testbed(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[TestBed]:
    """The session's bed: registry, local ML stub and 3 hosts (ml1..ml3)."""
    problems = missing_prerequisites()
    if problems:
        problems.append("all of the above: `sudo scripts/install-system.sh` (Debian 12)")
        pytest.fail("The test bed cannot start on this machine:\n- " + "\n- ".join(problems), pytrace=False)
    cleanup_stale()
    keep = os.environ.get(KEEP_ENV) == "1"
    bed = TestBed(tmp_path_factory.mktemp("testbed"), detached=keep)
    bed.start(hosts=SESSION_HOSTS)
    yield bed
    if keep:
        reporter = request.config.pluginmanager.get_plugin("terminalreporter")
        message = f"{KEEP_ENV}=1: bed {bed.id} left running; state in {bed.workdir}/bed.json; remove it with "
        message += f"`python -m tests.testbed down --dir {bed.workdir}`"
        if reporter:
            reporter.write_line(message)
    else:
        bed.teardown()


@pytest.fixture
def bed_hosts(testbed: TestBed) -> Iterator[list[Host]]:
    """The session hosts; every fault injected by the test is undone after it."""
    hosts = testbed.hosts[:SESSION_HOSTS]
    yield hosts
    _each(Host.recover, hosts)


@pytest.fixture
def fresh_hosts(bed_hosts: list[Host]) -> list[Host]:
    """The session hosts, wiped clean before the test (and recovered after it, see `bed_hosts`)."""
    _each(Host.wipe, bed_hosts)
    return bed_hosts


@pytest.fixture
def more_hosts(testbed: TestBed) -> Iterator[Callable[[int], list[Host]]]:
    """A function adding n fresh hosts to the bed; all of them are removed after the test."""
    added: list[Host] = []

    def add(count: int) -> list[Host]:
        hosts = testbed.add_hosts(count)
        added.extend(hosts)
        return hosts

    yield add
    if added:
        testbed.remove_hosts(added)


def _each(action: Callable[[Host], None], hosts: list[Host]) -> None:
    """Apply `action` to all hosts in parallel; the first error is raised."""
    with ThreadPoolExecutor(max_workers=max(len(hosts), 1)) as pool:
        list(pool.map(action, hosts))
