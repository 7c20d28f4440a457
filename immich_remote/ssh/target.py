"""What names a host for SSH, and what a command gave back (the ssh package's leaf)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class CommandResult:
    command: str
    stdout: str
    stderr: str
    exit_status: int
    duration: float

    @property
    def ok(self) -> bool:
        return self.exit_status == 0


@dataclass(frozen=True)
class Target:
    """Where to connect: a name for messages plus what OpenSSH would need."""

    label: str
    address: str
    user: str | None = None
    port: int | None = None
    key: Path | None = None
