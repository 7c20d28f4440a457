"""Running one procedure across many hosts: bounded parallelism, a failure budget, one connection each.

A failing host never blocks or undoes the others. With `max_fail`, hosts that have not started
when the budget is spent are reported as `skipped` instead of being started.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from .errors import ImmichRemoteError
from .inventory import Host, Inventory
from .progress import Progress
from .ssh import Remote, Target

DEFAULT_PARALLEL = 5
FAILED_STATUSES = {"failed", "rolled-back", "error"}


@dataclass
class HostResult:
    """The outcome for one host, as shown in the summary table and in --json."""

    host: str
    status: str  # deployed, unchanged, restarted, upgraded, rolled-back, failed, skipped, ...
    message: str = ""
    fix: str = ""
    image: str | None = None
    previous_image: str | None = None
    backend: str | None = None
    duration: float = 0.0
    window: float | None = None  # seconds without a serving container (old stopped -> new /ping ok)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.status in FAILED_STATUSES

    def to_data(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if k != "details"}
        data["duration"] = round(self.duration, 2)
        if self.window is not None:
            data["window"] = round(self.window, 2)
        data.update(self.details)
        return data


class Connections:
    """One `Remote` per host for the whole run, sharing a bound on SSH handshakes in flight."""

    def __init__(self, inventory: Inventory) -> None:
        self.inventory = inventory
        self._gate = threading.Semaphore(inventory.ssh.max_handshakes)
        self._remotes: dict[str, Remote] = {}
        self._lock = threading.Lock()

    def remote(self, host: Host) -> Remote:
        with self._lock:
            if host.name not in self._remotes:
                self._remotes[host.name] = self._make(Target(host.name, host.address, host.ssh_user, host.ssh_port,
                                                             host.ssh_key))
            return self._remotes[host.name]

    def immich_host(self) -> Remote | None:
        server = self.inventory.immich
        if not server.ssh_host:
            return None
        with self._lock:
            if "@immich" not in self._remotes:
                self._remotes["@immich"] = self._make(Target("immich server", server.ssh_host, server.ssh_user,
                                                             server.ssh_port, server.ssh_key))
            return self._remotes["@immich"]

    def _make(self, target: Target) -> Remote:
        ssh = self.inventory.ssh
        return Remote(target, known_hosts=[ssh.known_hosts] if ssh.known_hosts else [], ssh_config=ssh.config,
                      connect_timeout=ssh.connect_timeout, command_timeout=ssh.command_timeout,
                      handshake_gate=self._gate)

    def close(self) -> None:
        for remote in self._remotes.values():
            remote.close()
        self._remotes.clear()

    def __enter__(self) -> Connections:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def run_hosts(hosts: Sequence[Host], procedure: Callable[[Host], HostResult], *, parallel: int = DEFAULT_PARALLEL,
              max_fail: int | None = None, progress: Progress | None = None) -> list[HostResult]:
    """Run `procedure` for every host, `parallel` at a time; results in inventory order.

    An ImmichRemoteError (or any exception) in one host becomes that host's `failed` result.
    """
    failures = 0
    lock = threading.Lock()
    results: dict[str, HostResult] = {}

    def one(host: Host) -> None:
        nonlocal failures
        with lock:
            if max_fail is not None and failures >= max_fail:
                results[host.name] = HostResult(host.name, "skipped", f"not started: {failures} host(s) failed "
                                                f"(--max-fail {max_fail})")
                if progress:
                    progress.finish(host.name, "skipped", "failure budget spent")
                return
        started = time.monotonic()
        try:
            result = procedure(host)
        except ImmichRemoteError as exc:
            result = HostResult(host.name, "failed", exc.message, exc.hint or "")
        except Exception as exc:  # noqa: BLE001 - one host's bug must not take the others down
            result = HostResult(host.name, "failed", f"unexpected error: {type(exc).__name__}: {exc}")
        result.duration = result.duration or (time.monotonic() - started)
        with lock:
            results[host.name] = result
            if result.failed:
                failures += 1
        if progress:
            progress.finish(host.name, result.status, result.message if result.failed else "")

    with ThreadPoolExecutor(max_workers=max(1, min(parallel, len(hosts) or 1))) as pool:
        list(pool.map(one, hosts))
    return [results[h.name] for h in hosts]
