"""Shared pytest configuration.

Fixtures live next to what they serve:
- tests/testbed/fixtures.py       the Docker-in-Docker test bed (real sshd, Docker, Compose v2, registry)
- tests/testbed/fake_fixtures.py  the Immich server fake
- tests/unit/local_sshd.py        a real OpenSSH server on 127.0.0.1 (Docker-free SSH tests)

Hypothesis profiles (the property tests in tests/unit/test_properties.py and test_init.py):
- "suite" (the default): 100 examples per property, new random ones on every run, no example database.
  Fewer were measured to reach fewer of the loader's error paths (40: 5-9 lines of inventory/ less).
- "thorough": 1,000 examples per property, for a change to the inventory loader or the URL rules:
  `pytest --hypothesis-profile=thorough tests/unit/test_properties.py` (or HYPOTHESIS_PROFILE=thorough).
"""

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# No deadline: a loaded CI machine is not a bug. No database: no .hypothesis/ directory in the checkout.
_COMMON = {"deadline": None, "database": None, "suppress_health_check": [HealthCheck.too_slow]}
settings.register_profile("suite", max_examples=100, **_COMMON)
settings.register_profile("thorough", max_examples=1000, **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "suite"))

pytest_plugins = [
    "tests.testbed.fixtures",
    "tests.testbed.fake_fixtures",
    "tests.unit.local_sshd",
]

DOCKER_FREE = "not integration"
INTEGRATION = Path(__file__).parent / "integration"


def pytest_ignore_collect(collection_path, config):
    """`-m "not integration"` selects nothing under tests/integration (every file there is marked integration:
    tests/unit/test_suite.py checks it), so those files are not imported at all (about 1 s per process)."""
    if config.option.markexpr.strip() == DOCKER_FREE and collection_path == INTEGRATION:
        return True
    return None


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the options
def pytest_cmdline_main(config):
    """The whole Docker-free suite (`pytest -m "not integration"`, `make test-unit`) runs in one worker process
    per CPU plus one (pytest-xdist), each test file in one of them: its tests wait on sshd, subprocesses and
    sockets as much as they compute, so one more process than cores keeps the cores busy (2 cores: 54 s in
    one process, 29 s in two, 25 s in three). Anything else runs in this one process, as before: the integration tests above
    all (they share one test bed), a chosen file or test, `-n 0`, --pdb, or a machine without pytest-xdist."""
    if hasattr(config, "workerinput") or not config.pluginmanager.hasplugin("xdist") or (os.cpu_count() or 1) < 2:
        return  # a worker itself, no xdist, or nothing to share the work with
    option = config.option
    whole_suite = config.args_source == config.ArgsSource.TESTPATHS
    if (option.markexpr.strip() == DOCKER_FREE and whole_suite and option.numprocesses is None
            and not option.usepdb and not option.collectonly and not getattr(option, "looponfail", False)):
        option.numprocesses = (os.cpu_count() or 2) + 1
        option.dist = "loadfile"
