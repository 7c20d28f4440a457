"""The health gate: a new container counts as soon as it is running, has not restarted, and answers
`GET /ping` = `pong` on the published address, checked from the host itself through SSH.

It does not wait for Docker's health status: Docker runs its first healthcheck only after the
interval, long after the service answers. /ping is what the Immich server itself checks. Docker's
healthcheck stays in the compose file for `status` and restarts, and an `unhealthy` verdict, a crash
loop or a wrong answer still fail the gate at once, without waiting for the deadline.

`PingWatch` polls /ping every 0.1 s in the background while a container is swapped, so the
unavailability window reported is the one a client saw (last pong of the old container -> first
pong of the new one), not the time until the gate happened to look.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from .deployment import ContainerState, parse_inspect
from .errors import ImmichRemoteError
from .hostcmd import compose_logs, inspect_containers, sh
from .inventory import Host
from .ml_api import ping
from .names import ML, HostPaths
from .ssh import Remote

BROKEN_AFTER = 10.0  # seconds of HTTP answers other than pong before the gate gives up early
WATCH_INTERVAL = 0.1  # seconds between two /ping polls while a container is swapped
INSPECT_EVERY = 1.0  # seconds between two `docker inspect` while /ping does not answer yet


@dataclass
class GateResult:
    ok: bool
    detail: str
    seconds: float
    container: ContainerState | None = None
    logs: str = ""


class PingWatch:
    """Polls /ping from the host in the background and remembers when it answered.

    A poll starts every `interval` whether or not the previous one has finished (a connection that
    hangs during the swap must not hide the moment the new container answers), as a client polling
    every 0.1 s would see it; see `record` for how samples are timed. Use as a
    context manager around a swap. `window()` is the measured outage: from the last pong before the
    failed poll to the first pong after it, the longest such outage (None on a first deploy: nothing
    answered before).
    """

    def __init__(self, remote: Remote, host: Host, *, interval: float = WATCH_INTERVAL,
                 poll_timeout: float = 2.0) -> None:
        self.remote, self.host, self.interval, self.poll_timeout = remote, host, interval, poll_timeout
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._samples: list[tuple[float, bool, str]] = []  # (request started, pong, what)

    def __enter__(self) -> PingWatch:
        self._thread = threading.Thread(target=self._run, name=f"pingwatch-{self.host.name}", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.poll_timeout + 1)

    def _run(self) -> None:
        with ThreadPoolExecutor(max_workers=max(2, int(self.poll_timeout / self.interval)),
                                thread_name_prefix=f"ping-{self.host.name}") as pool:
            while not self._stop.is_set():
                at = time.monotonic()
                pool.submit(self._poll, at)
                self._stop.wait(max(0.0, self.interval - (time.monotonic() - at)))

    def _poll(self, at: float) -> None:
        ok, what = ping(self.remote, self.host, timeout=self.poll_timeout)
        self.record(time.monotonic() if ok else at, ok, what)

    def record(self, at: float, ok: bool, what: str) -> None:
        """One poll's outcome (monotonic seconds): a pong counts when it arrived (a request held by a
        proxy while nothing listens proves nothing until it is answered), a failure when it was tried."""
        with self._lock:
            self._samples.append((at, ok, what))

    @property
    def last_failure(self) -> str:
        with self._lock:
            failures = [s for s in sorted(self._samples) if not s[1]]
        return failures[-1][2] if failures else "no answer yet"

    def pong_since(self, since: float) -> bool:
        with self._lock:
            return any(ok and at >= since for at, ok, _ in self._samples)

    def window(self) -> float | None:
        with self._lock:
            samples = sorted(self._samples)
        return outage_window([(at, ok) for at, ok, _ in samples])

    def window_so_far(self, now: float | None = None) -> float | None:
        """The outage as it stands (for the live view): as `window()` once closed, last pong -> now while
        open; None before it starts and on a first deploy (nothing answered before)."""
        with self._lock:
            samples = sorted((at, ok) for at, ok, _ in self._samples)
        first_failure = next((i for i, (_, ok) in enumerate(samples) if not ok), None)
        if not first_failure:  # None: no failure yet; 0: nothing answered before (a first deploy)
            return None
        closed = outage_window(samples)
        if closed is not None:
            return closed
        last_ok = max(at for at, ok in samples if ok)  # the outage still open started after this pong
        return (now or time.monotonic()) - last_ok


def outage_window(samples: list[tuple[float, bool]]) -> float | None:
    """Pure: from (time, answered) samples in time order, the longest outage (last pong before a failure
    -> first pong after it); 0.0 when it never failed, None when it never answered before failing or never
    came back. The longest, not the first: a single poll lost on the way (the SSH channel, not the service)
    before the swap must not stand for the swap's window."""
    if not samples or not samples[0][1]:
        return None  # nothing answered before the swap (a first deploy): there is no window to measure
    longest, last_ok, failing = 0.0, samples[0][0], False
    for at, ok in samples:
        if ok:
            if failing:
                longest, failing = max(longest, at - last_ok), False
            last_ok = at
        else:
            failing = True
    return None if failing else longest


def current_container(remote: Remote, image: str | None = None, paths: HostPaths | None = None) -> ContainerState | None:
    """The container of the service at `paths` (default: the ML service), preferring one running `image`."""
    service = paths.service if paths is not None else ML
    # A short bound: `docker inspect` answers in well under a second; one that hangs means the host does.
    listing = remote.run(sh(inspect_containers(service.project)), what="docker inspect",
                         timeout=min(remote.command_timeout, 30))
    containers = [c for c in parse_inspect(listing.stdout) if c.service == service.service]
    if image:
        matching = [c for c in containers if c.image == image]
        containers = matching or containers
    running = [c for c in containers if c.state == "running"]
    return (running or containers or [None])[0]


def container_verdict(container: ContainerState | None, image: str, elapsed: float) -> tuple[str, str]:
    """Pure: ("fail" | "wait" | "running", why) for what `docker inspect` shows `elapsed` s after `up`."""
    if container is None:
        return ("fail" if elapsed > 20 else "wait"), "no container was created"
    if container.image != image:
        return "wait", f"the running container still uses {container.image}"
    if container.state in ("exited", "dead", "restarting") or container.restart_count > 0:
        return "fail", (f"the container is {container.state} (exit code {container.exit_code}, "
                        f"{container.restart_count} restarts)")
    if container.health == "unhealthy":
        return "fail", "Docker reports the container unhealthy (its /ping check fails)"
    if container.state == "created":
        return ("fail" if elapsed > 10 else "wait"), "the container was created but not started"
    if container.state != "running":
        return "wait", f"the container is {container.state}"
    return "running", "running"


def wait_serving(remote: Remote, host: Host, image: str, *, timeout: float | None = None,
                 watch: PingWatch | None = None, report: Callable[[str], None] | None = None) -> GateResult:
    """Poll until the container running `image` answers pong without having restarted, or fail with the reason.

    With a running `watch` its polls are used (every 0.1 s); without one the gate polls /ping itself.
    `report` hears what the gate is waiting for whenever that changes ("connection refused", ...).
    """
    limit = timeout or host.health_timeout
    started = time.monotonic()
    detail = "no answer yet"
    container: ContainerState | None = None
    wrong_answer_since: float | None = None  # /ping answers, but not pong: the service is up and broken
    next_inspect = started
    reported: tuple[str, str] | None = None
    while True:
        now = time.monotonic()
        elapsed = now - started
        if watch is not None:
            answered, what = watch.pong_since(started), watch.last_failure
        else:
            answered, what = ping(remote, host)
        if answered or now >= next_inspect:
            try:
                container = current_container(remote, image, host.paths)
            except ImmichRemoteError as exc:
                return GateResult(False, f"cannot inspect the container: {exc.message}", elapsed)
            next_inspect = time.monotonic() + INSPECT_EVERY
            verdict, why = container_verdict(container, image, elapsed)
            if verdict == "fail":
                return _failed(remote, host, why, elapsed, container)
            if verdict == "running" and answered:
                return GateResult(True, f"/ping answered pong {elapsed:.1f}s after start", elapsed, container)
            detail = why if verdict == "wait" else what
        if what.startswith("/ping answered HTTP"):
            wrong_answer_since = wrong_answer_since or elapsed
            if elapsed - wrong_answer_since >= BROKEN_AFTER:
                return _failed(remote, host, f"{what} for {BROKEN_AFTER:g}s", elapsed, container)
        else:
            wrong_answer_since = None
        if report is not None and (detail, what) != reported:
            reported = (detail, what)
            report(what if detail in ("running", "no answer yet", what) else f"{detail}; {what}")
        if elapsed >= limit:
            return _failed(remote, host, f"no pong within {limit:g}s ({detail}; {what})", elapsed, container)
        time.sleep(WATCH_INTERVAL if watch is not None else 0.2)


def _failed(remote: Remote, host: Host, detail: str, elapsed: float, container: ContainerState | None) -> GateResult:
    logs = ""
    try:
        logs = remote.run(compose_logs(host.paths, tail=20), check=False, timeout=20,
                          what="docker compose logs").stdout
    except ImmichRemoteError:
        pass
    return GateResult(False, detail, elapsed, container, logs.strip())
