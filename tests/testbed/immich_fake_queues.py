"""Job queues of the fake Immich server: statistics, pause state and the recorded commands.

Behaviour follows ``QueueService`` (``runCommandLegacy``/``start``/``getByName``) and the DTOs of SDK
2.7.5/3.2.2: ``QueueResponseDto {name, isPaused, statistics}``, the legacy ``{jobCounts, queueStatus:
{isActive, isPaused}}`` with ``isActive = statistics.active > 0``; ``start`` answers 400
``Job is already running`` while the queue has active jobs and ``Invalid job name: <name>`` for queues
that cannot be started.
"""

from __future__ import annotations

import copy
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from .immich_fake_config import STARTABLE_QUEUES

STAT_KEYS = ("active", "completed", "delayed", "failed", "paused", "waiting")

ABSENT: Any = type("Absent", (), {"__repr__": lambda self: "ABSENT"})()


class QueueCommandError(Exception):
    """A command the service refuses with 400 (the message is the server's)."""


@dataclass
class JobCommand:
    """One ``PUT /jobs/{name}`` that reached the service. ``force`` is ``ABSENT`` when not sent."""

    name: str
    command: str
    force: Any
    body: dict
    status: int
    error: str | None = None
    at: float = field(default_factory=time.time)

    @property
    def force_sent(self) -> bool:
        return self.force is not ABSENT

    def to_json(self) -> dict:
        data = {"name": self.name, "command": self.command, "body": self.body, "status": self.status}
        data["forceSent"] = self.force_sent
        if self.force_sent:
            data["force"] = self.force
        if self.error:
            data["error"] = self.error
        return data


class QueueBoard:
    """All queues of one server."""

    def __init__(self, names: list[str]) -> None:
        self._lock = threading.Lock()
        self._names = list(names)
        self._stats = {name: dict.fromkeys(STAT_KEYS, 0) for name in names}
        self._paused = dict.fromkeys(names, False)
        self._commands: list[JobCommand] = []

    @property
    def names(self) -> list[str]:
        return list(self._names)

    def set(self, name: str, *, is_paused: bool | None = None, **stats: int) -> None:
        """Test hook: set some statistics (``active=1, failed=3``) and/or the paused flag of a queue."""
        unknown = set(stats) - set(STAT_KEYS)
        if name not in self._stats or unknown:
            raise KeyError(f"unknown queue {name!r} or statistics {sorted(unknown)}")
        with self._lock:
            self._stats[name].update({k: int(v) for k, v in stats.items()})
            if is_paused is not None:
                self._paused[name] = bool(is_paused)

    def queue(self, name: str) -> dict:
        """``QueueResponseDto``."""
        with self._lock:
            return {"name": name, "isPaused": self._paused[name], "statistics": dict(self._stats[name])}

    def queues(self) -> list[dict]:
        return [self.queue(name) for name in self._names]

    def legacy(self, name: str) -> dict:
        """``QueueResponseLegacyDto``."""
        queue = self.queue(name)
        stats = queue["statistics"]
        return {
            "jobCounts": stats,
            "queueStatus": {"isActive": stats["active"] > 0, "isPaused": queue["isPaused"]},
        }

    def legacy_all(self) -> dict:
        """``QueuesResponseLegacyDto`` (keyed by queue name)."""
        return {name: self.legacy(name) for name in self._names}

    def run(self, name: str, command: str, force: Any, body: dict) -> dict:
        """Run a validated command; record it; return the legacy queue response.

        Raises :class:`QueueCommandError` for the service's 400s (the attempt is recorded too).
        """
        error = None
        with self._lock:
            stats = self._stats[name]
            if command == "start":
                if stats["active"] > 0:
                    error = "Job is already running"
                elif name not in STARTABLE_QUEUES:
                    error = f"Invalid job name: {name}"
            elif command == "pause":
                self._paused[name] = True
            elif command == "resume":
                self._paused[name] = False
            elif command == "empty":
                stats["waiting"] = 0
                stats["delayed"] = 0
            elif command == "clear-failed":
                stats["failed"] = 0
            self._commands.append(
                JobCommand(name, command, force, copy.deepcopy(body), 400 if error else 200, error)
            )
        if error:
            raise QueueCommandError(error)
        return self.legacy(name)

    def commands(self) -> list[JobCommand]:
        with self._lock:
            return list(self._commands)

    def clear_commands(self) -> None:
        with self._lock:
            self._commands.clear()

    def snapshot(self) -> dict:
        """Everything, JSON-ready (for ``/_fake/state`` and the state file)."""
        with self._lock:
            return {
                name: {"isPaused": self._paused[name], "statistics": dict(self._stats[name])}
                for name in self._names
            }
