"""Shared pytest configuration.

Fixtures live next to what they serve:
- tests/testbed/fixtures.py       the Docker-in-Docker test bed (real sshd, Docker, Compose v2, registry)
- tests/testbed/fake_fixtures.py  the Immich server fake
- tests/unit/local_sshd.py        a real OpenSSH server on 127.0.0.1 (Docker-free SSH tests)
"""

pytest_plugins = [
    "tests.testbed.fixtures",
    "tests.testbed.fake_fixtures",
    "tests.unit.local_sshd",
]
