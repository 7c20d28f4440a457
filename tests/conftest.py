"""Shared pytest configuration.

Fixtures live next to what they serve:
- tests/testbed/fixtures.py       the Docker-in-Docker test bed (real sshd, Docker, Compose v2, registry)
- tests/testbed/fake_fixtures.py  the Immich server fake
"""

pytest_plugins = [
    "tests.testbed.fixtures",
    "tests.testbed.fake_fixtures",
]
