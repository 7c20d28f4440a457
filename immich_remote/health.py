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
from dataclasses import dataclass

from .deployment import ContainerState, parse_inspect
from .errors import ImmichRemoteError
from .hostcmd import HostPaths, compose_logs, inspect_containers, sh
from .inventory import Host
from .render import SERVICE_NAME
from .ssh import Remote

BROKEN_AFTER = 10.0  # seconds of HTTP answers other than pong before the gate gives up early
WATCH_INTERVAL = 0.1  # seconds between two /ping polls while a container is swapped
INSPECT_EVERY = 1.0  # seconds between two `docker inspect` while /ping does not answer yet
PING_TIMEOUT = 3.0


@dataclass
class GateResult:
    ok: bool
    detail: str
    seconds: float
    container: ContainerState | None = None
    logs: str = ""


def ping(remote: Remote, host: Host, *, timeout: float = PING_TIMEOUT) -> tuple[bool, str]:
    """(answered pong, what happened) for GET /ping on the host's bind address, from the host."""
    try:
        status, body = remote.http_get(host.bind_address, host.ml_port, "/ping", timeout=timeout)
    except (OSError, ValueError, ImmichRemoteError) as exc:
        return False, f"/ping: {getattr(exc, 'message', None) or exc or type(exc).__name__}"
    if status == 200 and body.strip() == b"pong":
        return True, "pong"
    return False, f"/ping answered HTTP {status} {body[:60]!r}"


class PingWatch:
    """Polls /ping from the host in a background thread and remembers when it answered.

    Use as a context manager around a swap. `window()` is the measured outage: from the last pong
    before the first failed poll to the first pong after it (None when it never went down, or
    never answered before the swap: a first deploy has no window).
    """

    def __init__(self, remote: Remote, host: Host, *, interval: float = WATCH_INTERVAL) -> None:
        self.remote, self.host, self.interval = remote, host, interval
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_pong_before_outage: float | None = None
        self.outage_seen_at: float | None = None
        self.first_pong_after_outage: float | None = None
        self.last_pong: float | None = None
        self.last_failure = "not polled yet"
        self.answered_before = False

    def __enter__(self) -> PingWatch:
        self._thread = threading.Thread(target=self._run, name=f"pingwatch-{self.host.name}", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=PING_TIMEOUT + 1)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            ok, what = ping(self.remote, self.host, timeout=min(PING_TIMEOUT, 1.0))
            self.record(started, ok, what)
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))

    def record(self, at: float, ok: bool, what: str) -> None:
        """One poll's outcome at `at` (monotonic seconds)."""
        with self._lock:
            if ok:
                if self.outage_seen_at is None:
                    self.answered_before = True
                    self.last_pong_before_outage = at
                elif self.first_pong_after_outage is None:
                    self.first_pong_after_outage = at
                self.last_pong = at
            else:
                self.last_failure = what
                if self.outage_seen_at is None and self.answered_before:
                    self.outage_seen_at = at

    def pong_since(self, since: float) -> bool:
        with self._lock:
            return self.last_pong is not None and self.last_pong >= since

    def window(self) -> float | None:
        with self._lock:
            if self.last_pong_before_outage is None:
                return None
            if self.outage_seen_at is None:
                return 0.0  # it never stopped answering
            if self.first_pong_after_outage is None:
                return None
            return self.first_pong_after_outage - self.last_pong_before_outage


def current_container(remote: Remote, image: str | None = None) -> ContainerState | None:
    containers = [c for c in parse_inspect(remote.run(sh(inspect_containers()), what="docker inspect").stdout)
                  if c.service == SERVICE_NAME]
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
                 watch: PingWatch | None = None) -> GateResult:
    """Poll until the container running `image` answers pong without having restarted, or fail with the reason.

    With a running `watch` its polls are used (every 0.1 s); without one the gate polls /ping itself.
    """
    limit = timeout or host.health_timeout
    started = time.monotonic()
    detail = "no answer yet"
    container: ContainerState | None = None
    wrong_answer_since: float | None = None  # /ping answers, but not pong: the service is up and broken
    next_inspect = started
    while True:
        now = time.monotonic()
        elapsed = now - started
        if watch is not None:
            answered, what = watch.pong_since(started), watch.last_failure
        else:
            answered, what = ping(remote, host)
        if answered or now >= next_inspect:
            try:
                container = current_container(remote, image)
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
        if elapsed >= limit:
            return _failed(remote, host, f"no pong within {limit:g}s ({detail}; {what})", elapsed, container)
        time.sleep(WATCH_INTERVAL if watch is not None else 0.2)


# Kept for callers that only need the verdict; the gate no longer waits for Docker's healthy status.
wait_healthy = wait_serving


def _failed(remote: Remote, host: Host, detail: str, elapsed: float, container: ContainerState | None) -> GateResult:
    logs = ""
    try:
        logs = remote.run(compose_logs(HostPaths.for_dir(host.remote_dir), tail=20), check=False, timeout=20,
                          what="docker compose logs").stdout
    except ImmichRemoteError:
        pass
    return GateResult(False, detail, elapsed, container, logs.strip())
