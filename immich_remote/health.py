"""The health gate: a new container counts only when Docker says it is healthy AND `GET /ping`
answers `pong` on the published address, checked from the host itself through SSH.

It polls instead of `docker compose up --wait`: the real ML image's first health probe runs only
after its interval, and /ping is what the Immich server itself checks. Crash loops and an
`unhealthy` verdict fail at once, without waiting for the deadline.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from .deployment import ContainerState, parse_inspect
from .errors import ImmichRemoteError
from .hostcmd import HostPaths, compose_logs, inspect_containers, sh
from .inventory import Host
from .render import SERVICE_NAME
from .ssh import Remote

BROKEN_AFTER = 10.0  # seconds of HTTP answers other than pong before the gate gives up early


@dataclass
class GateResult:
    ok: bool
    detail: str
    seconds: float
    container: ContainerState | None = None
    logs: str = ""


def ping(remote: Remote, host: Host, *, timeout: float = 3.0) -> tuple[bool, str]:
    """(answered pong, what happened) for GET /ping on the host's bind address, from the host."""
    try:
        status, body = remote.http_get(host.bind_address, host.ml_port, "/ping", timeout=timeout)
    except (OSError, ValueError) as exc:
        return False, f"/ping: {exc or type(exc).__name__}"
    if status == 200 and body.strip() == b"pong":
        return True, "pong"
    return False, f"/ping answered HTTP {status} {body[:60]!r}"


def current_container(remote: Remote, image: str | None = None) -> ContainerState | None:
    containers = [c for c in parse_inspect(remote.run(sh(inspect_containers()), what="docker inspect").stdout)
                  if c.service == SERVICE_NAME]
    if image:
        matching = [c for c in containers if c.image == image]
        containers = matching or containers
    running = [c for c in containers if c.state == "running"]
    return (running or containers or [None])[0]


def wait_healthy(remote: Remote, host: Host, image: str, *, timeout: float | None = None,
                 poll: float = 0.5) -> GateResult:
    """Poll until the container running `image` is healthy and answers pong, or fail with the reason."""
    limit = timeout or host.health_timeout
    started = time.monotonic()
    detail = "no container yet"
    container = None
    wrong_answer_since: float | None = None  # /ping answers, but not pong: the service is up and broken
    while True:
        elapsed = time.monotonic() - started
        try:
            container = current_container(remote, image)
        except ImmichRemoteError as exc:
            return GateResult(False, f"cannot inspect the container: {exc.message}", elapsed)
        if container is None:
            detail = "no container was created"
            if elapsed > 20:
                return _failed(remote, host, detail, elapsed, container)
        elif container.image != image:
            detail = f"the running container still uses {container.image}"
        elif container.state in ("exited", "dead") or (container.state == "restarting") or container.restart_count > 2:
            detail = (f"the container is {container.state} (exit code {container.exit_code}, "
                      f"{container.restart_count} restarts)")
            return _failed(remote, host, detail, elapsed, container)
        elif container.health == "unhealthy":
            return _failed(remote, host, "Docker reports the container unhealthy (its /ping check fails)", elapsed,
                           container)
        elif container.state == "created":
            detail = "the container was created but not started"
            if elapsed > 10:
                return _failed(remote, host, detail, elapsed, container)
        else:
            answered, what = ping(remote, host)
            if answered and container.health in ("healthy", None):
                return GateResult(True, f"healthy, /ping answered pong after {elapsed:.1f}s", elapsed, container)
            detail = f"health {container.health or 'none'}, {what}"
            if what.startswith("/ping answered HTTP"):
                wrong_answer_since = wrong_answer_since or elapsed
                if elapsed - wrong_answer_since >= BROKEN_AFTER:
                    return _failed(remote, host, f"{what} for {BROKEN_AFTER:g}s", elapsed, container)
            else:
                wrong_answer_since = None
        if elapsed >= limit:
            return _failed(remote, host, f"not healthy within {limit:g}s ({detail})", elapsed, container)
        time.sleep(poll)


def _failed(remote: Remote, host: Host, detail: str, elapsed: float, container: ContainerState | None) -> GateResult:
    logs = ""
    try:
        logs = remote.run(compose_logs(HostPaths.for_dir(host.remote_dir), tail=20), check=False, timeout=20,
                          what="docker compose logs").stdout
    except ImmichRemoteError:
        pass
    return GateResult(False, detail, elapsed, container, logs.strip())
