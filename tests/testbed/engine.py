"""Running commands for the test bed: the docker CLI and a few tools, always with a timeout.

Every failure raises `BedError` whose message holds the command line and its stderr, so a broken bed
says what broke instead of failing three steps later.
"""

from __future__ import annotations

import logging
import shlex
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

log = logging.getLogger("tests.testbed")


class BedError(RuntimeError):
    """A test-bed step failed; the message names the command and what it printed."""


def run(
    cmd: Sequence[str | Path],
    *,
    timeout: float = 60,
    input: str | None = None,
    check: bool = True,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run `cmd`, capture its output as text, and raise `BedError` on timeout or (with check) failure."""
    words = [str(word) for word in cmd]
    try:
        proc = subprocess.run(
            words, input=input, capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd
        )
    except subprocess.TimeoutExpired as exc:
        raise BedError(f"timed out after {timeout:g} s: {shlex.join(words)}") from exc
    except FileNotFoundError as exc:
        raise BedError(f"command not found: {words[0]} (needed for: {shlex.join(words)})") from exc
    if check and proc.returncode != 0:
        output = (proc.stderr.strip() or proc.stdout.strip())[-2000:]
        raise BedError(f"{shlex.join(words)} failed (exit {proc.returncode}): {output}")
    return proc


def shell_pipeline(script: str, *, timeout: float) -> None:
    """Run a bash pipeline (with pipefail) such as `zstd -dc x | docker load`; raise on any stage failing."""
    run(["bash", "-o", "pipefail", "-c", script], timeout=timeout)


def docker(*args: str | Path, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the docker CLI against the machine's engine."""
    return run(["docker", *args], timeout=timeout, check=check)


def image_present(tag: str) -> bool:
    """Whether the machine's engine has an image with this tag."""
    return docker("image", "inspect", "--format", "{{.Id}}", tag, check=False).returncode == 0
