"""Running one procedure across many hosts: bounded parallelism, a failure budget, one connection each.

`run_hosts` runs one procedure on every host at once (bounded by --parallel and the SSH handshake
limit). `canary_rollout` is how deploy and upgrade change hosts: stage all (read, decide, pull),
swap the least-used host alone first, then the rest in batches, primary URL last; a spent failure
budget leaves the remaining hosts untouched (`skipped`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .errors import ImmichRemoteError, InputError
from .inventory import Host, Inventory
from .progress import Progress
from .ssh import Remote, Target
from .urls import normalise_url

FAILED_STATUSES = {"failed", "rolled-back", "error"}
T = TypeVar("T")


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


def run_hosts(hosts: Sequence[Host], procedure: Callable[[Host], Any], *, parallel: int | None = None,
              progress: Progress | None = None) -> list[Any]:
    """Run `procedure` for every host, `parallel` at a time (default: all at once); results in host order.

    An ImmichRemoteError (or any exception) in one host becomes that host's `failed` result. A
    procedure may return something else than a HostResult (a staged host, say): that host is not
    finished yet, so the progress line stays as it is.
    """
    lock = threading.Lock()
    results: dict[str, Any] = {}

    def one(host: Host) -> None:
        started = time.monotonic()
        try:
            result = procedure(host)
        except ImmichRemoteError as exc:
            result = HostResult(host.name, "failed", exc.message, exc.hint or "")
        except Exception as exc:  # noqa: BLE001 - one host's bug must not take the others down
            result = HostResult(host.name, "failed", f"unexpected error: {type(exc).__name__}: {exc}")
        if not isinstance(result, HostResult):
            with lock:
                results[host.name] = result
            return
        result.duration = result.duration or (time.monotonic() - started)
        with lock:
            results[host.name] = result
        if progress:
            progress.finish(host.name, result.status, result.message if result.failed else "")

    workers = max(1, min(parallel or len(hosts) or 1, len(hosts) or 1))
    pool = ThreadPoolExecutor(max_workers=workers)
    try:
        futures = [pool.submit(one, host) for host in hosts]
        while not all(f.done() for f in futures):
            wait(futures, timeout=0.2)  # short waits: Ctrl-C reaches the main thread at once
    except BaseException:
        # Interrupted: start nothing new; what runs now goes on in its thread (the caller decides
        # whether to wait for it, see canary_rollout).
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return [results[h.name] for h in hosts]


# --- order -------------------------------------------------------------------------------------------------

def url_order(hosts: Sequence[Host], urls: Sequence[str]) -> list[Host]:
    """Hosts in the order Immich tries their URLs (the primary first); hosts not in `urls` last, by name."""
    position = {_canonical(url): i for i, url in enumerate(urls)}
    return sorted(hosts, key=lambda h: (position.get(_canonical(h.url), len(position)), h.name))


def _canonical(url: str) -> str:
    try:
        return normalise_url(url, where="URL")
    except InputError:  # a hand-made URL Immich holds; compare it as it is
        return url.rstrip("/").lower()


def waves(ordered: Sequence[T], batch: int) -> list[list[T]]:
    """Pure: a canary alone (the first of `ordered`), then the rest `batch` at a time."""
    if not ordered:
        return []
    rest = list(ordered[1:])
    return [[ordered[0]]] + [rest[i:i + batch] for i in range(0, len(rest), batch)]


@dataclass
class Rollout:
    """What a canary-first rollout did: a final result per host, in the order they were given."""

    results: list[HostResult]
    canary: str | None = None
    interrupted: bool = False


def canary_rollout(hosts: Sequence[Host], stage: Callable[[Host], Any], swap: Callable[[Any], HostResult], *,
                   command: str, batch: int | None = None, max_fail: int = 1, parallel: int | None = None,
                   progress: Progress | None = None, abandon: Callable[[Host], None] | None = None,
                   before_wave: Callable[[], str | None] | None = None) -> Rollout:
    """Stage every host at once (read, decide, pull: nothing changes), then swap the hosts that need it:
    the first of `hosts` that needs a change alone (the canary), then the others `batch` at a time.

    `hosts` come in rollout order: the host Immich uses least first (reverse URL order), so the
    primary URL swaps last and keeps serving longest. After `max_fail` failed swaps nothing more is
    started: the remaining hosts are `skipped` (untouched), with the command to continue.
    Hosts whose stage returns a HostResult (failed preflight, unchanged, dry run) are final there.

    Ctrl-C (or SIGTERM): nothing new starts; hosts still staging are abandoned at once (`abandon`
    closes their connection: a pull stops, the old container never stopped); a swap already under
    way is finished or rolled back (it holds the host's lock and must not leave it half done).
    The returned Rollout says `interrupted`, with every host's outcome so far.

    `before_wave`, asked before every wave after the first, may stop the rollout with a reason
    (the Immich server changed version under us): the remaining hosts are `skipped` with it.
    """
    final: dict[str, HostResult] = {}
    swapping: set[str] = set()
    guard = threading.Lock()
    canary: str | None = None

    def swap_one(host: Host, staged: Any) -> HostResult:
        with guard:
            swapping.add(host.name)
        try:
            result = swap(staged)
            with guard:  # kept here too: after Ctrl-C the main thread only waits for `swapping`
                final[host.name] = result
            return result
        finally:
            with guard:
                swapping.discard(host.name)

    def stage_one(host: Host) -> Any:
        result = stage(host)
        if isinstance(result, HostResult):  # final already (unchanged, refused): kept if Ctrl-C comes
            with guard:
                final[host.name] = result
        return result

    try:
        staged = run_hosts(hosts, stage_one, parallel=parallel, progress=progress)
        for host, result in zip(hosts, staged, strict=True):
            if isinstance(result, HostResult):
                final[host.name] = result
        pending = [(h, s) for h, s in zip(hosts, staged, strict=True) if not isinstance(s, HostResult)]
        canary = pending[0][0].name if len(pending) > 1 else None
        failed: list[str] = []
        plan = waves(pending, batch or len(pending) or 1)
        for index, wave in enumerate(plan):
            rest = [h for w in plan[index:] for h, _ in w]
            if len(failed) >= max_fail:
                skip_rest(final, rest, failed, canary, command, max_fail, progress)
                break
            stop = before_wave() if before_wave is not None and index > 0 else None
            if stop:
                for host in rest:
                    final[host.name] = HostResult(host.name, "skipped", f"not started: {stop}",
                                                  f"run `immich-remote {command}` again")
                    if progress:
                        progress.finish(host.name, "skipped", "not started")
                break
            by_name = {h.name: (h, s) for h, s in wave}
            done = run_hosts([h for h, _ in wave], lambda h, staged=by_name: swap_one(*staged[h.name]),
                             parallel=parallel, progress=progress)
            for result in done:
                final[result.host] = result
            failed += [r.host for r in done if r.failed]
            if index == 0 and canary is not None and progress is not None:  # the verdict before the rest go
                progress.note(canary_verdict(done[0], len(rest) - 1, batch or len(rest) - 1,
                                             stops=len(failed) >= max_fail, command=command))
    except KeyboardInterrupt:
        finish_interrupted(hosts, final, swapping, guard, abandon, command, progress)
        return Rollout([final[h.name] for h in hosts], canary, interrupted=True)
    return Rollout([final[h.name] for h in hosts], canary)


def canary_verdict(result: HostResult, others: int, batch: int, *, stops: bool, command: str = "deploy") -> str:
    """Pure: the line shown when the canary is done, before the other hosts start (or do not)."""
    window = f", window {result.window:.1f}s" if result.window is not None else ""
    status = "upgraded" if command == "upgrade" and result.status == "deployed" else result.status
    head = f"canary {result.host}: {status} in {result.duration:.1f}s{window}"
    if result.failed:
        head += f" ({result.message})" if result.message else ""
    if stops:
        return f"{head}; the other {others} host(s) are not started"
    return f"{head}; now the other {others} host(s), {min(batch, others)} at a time"


def finish_interrupted(hosts: Sequence[Host], final: dict[str, HostResult], swapping: set[str],
                       guard: threading.Lock, abandon: Callable[[Host], None] | None, command: str,
                       progress: Progress | None) -> None:
    """After Ctrl-C: abandon what only reads or pulls, wait for the swaps under way, mark the rest."""
    with guard:
        busy = set(swapping)
    for host in hosts:
        if host.name not in final and host.name not in busy and abandon is not None:
            abandon(host)
    if busy:
        if progress:
            progress.note(f"interrupted: finishing the swap under way on {', '.join(sorted(busy))} "
                          "(or rolling it back); Ctrl-C again to leave it to the host")
        try:
            while True:
                with guard:
                    if not swapping:
                        break
                time.sleep(0.1)
        except KeyboardInterrupt:
            pass
    if progress:
        progress.enabled = False  # abandoned workers still wind down; the summary says what happened
    resume = f"run `immich-remote {command}` again to finish (it picks up where this run stopped)"
    for host in hosts:
        if host.name not in final:
            final[host.name] = HostResult(host.name, "skipped", "abandoned: interrupted before its swap "
                                          "(nothing changed; the current container keeps serving)", resume)


def skip_rest(final: dict[str, HostResult], hosts: Sequence[Host], failed: Sequence[str], canary: str | None,
              command: str, max_fail: int, progress: Progress | None) -> None:
    why = (f"not started: the canary {canary} failed" if list(failed) == [canary]
           else f"not started: {len(failed)} host(s) failed ({', '.join(failed)})")
    others = ",".join(h.name for h in hosts)
    for host in hosts:
        final[host.name] = HostResult(host.name, "skipped", why,
                                      f"fix the cause and run `immich-remote {command}` again; to go on without "
                                      f"the failed host: `immich-remote --limit {others} {command}`, or allow more "
                                      f"failures with --max-fail {max_fail + 1}")
        if progress:
            progress.finish(host.name, "skipped", "not started")
