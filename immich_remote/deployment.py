"""What is deployed on a host right now, read from the host (never from our own records alone),
and the pure decision of what a deploy has to do about it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .firewall import LABEL as FIREWALL_LABEL
from .names import SERVICE_NAME
from .versions import tag_from_image

if TYPE_CHECKING:
    from .render import Rendering


@dataclass
class ContainerState:
    """One container of our Compose project, from `docker inspect`."""

    name: str
    image: str
    state: str  # created, running, restarting, exited, paused, dead
    health: str | None  # starting, healthy, unhealthy; None without a healthcheck
    version: str | None  # the Immich version the image says it is (IMMICH_SOURCE_REF / IMMICH_BUILD_IMAGE)
    started_at: str | None
    restart_count: int
    exit_code: int | None
    service: str | None
    labels: dict[str, str] = field(default_factory=dict)
    published: list[str] = field(default_factory=list)  # "ip:port"
    volumes: list[str] = field(default_factory=list)  # volume names mounted at /cache
    restart_policy: str | None = None

    @property
    def serving(self) -> bool:
        """Running, and not known to be unhealthy (Docker's first healthcheck may not have run yet)."""
        return self.state == "running" and self.health != "unhealthy"


def parse_inspect(text: str) -> list[ContainerState]:
    """`docker inspect` JSON (an array) -> our containers. Garbage in -> empty list."""
    try:
        data = json.loads(text.strip() or "[]")
    except json.JSONDecodeError:
        return []
    containers = []
    for item in data if isinstance(data, list) else []:
        state = item.get("State") or {}
        config = item.get("Config") or {}
        labels = config.get("Labels") or {}
        env = dict(e.split("=", 1) for e in (config.get("Env") or []) if "=" in e)
        version = env.get("IMMICH_SOURCE_REF") or env.get("IMMICH_BUILD_IMAGE") or tag_from_image(config.get("Image", ""))
        health = (state.get("Health") or {}).get("Status") or None
        published = []
        for bindings in ((item.get("HostConfig") or {}).get("PortBindings") or {}).values():
            for b in bindings or []:
                published.append(f"{b.get('HostIp') or '0.0.0.0'}:{b.get('HostPort')}")
        volumes = [m.get("Name") for m in item.get("Mounts") or [] if m.get("Destination") == "/cache" and m.get("Name")]
        containers.append(ContainerState(
            name=(item.get("Name") or "").lstrip("/"), image=config.get("Image", ""), state=state.get("Status", ""),
            health=health, version=version, started_at=state.get("StartedAt"),
            restart_count=int(item.get("RestartCount") or 0), exit_code=state.get("ExitCode"),
            service=labels.get("com.docker.compose.service"), labels=labels, published=published, volumes=volumes,
            restart_policy=((item.get("HostConfig") or {}).get("RestartPolicy") or {}).get("Name")))
    return containers


@dataclass
class RemoteState:
    """The deployment as found on the host."""

    files: dict[str, str] = field(default_factory=dict)  # managed file -> sha256
    state: dict[str, Any] | None = None  # .immich-remote/state.json
    lock: dict[str, Any] | None = None
    releases: list[str] = field(default_factory=list)
    containers: list[ContainerState] = field(default_factory=list)

    @property
    def container(self) -> ContainerState | None:
        """The ML service's container (Compose may leave an old one behind while recreating)."""
        ours = [c for c in self.containers if c.service == SERVICE_NAME] or [
            c for c in self.containers if c.labels.get(FIREWALL_LABEL) != "true"]  # never the firewall
        running = [c for c in ours if c.state == "running"]
        return (running or ours or [None])[0]

    @property
    def current_release(self) -> str | None:
        return (self.state or {}).get("current")

    @property
    def previous_release(self) -> str | None:
        return (self.state or {}).get("previous")


def parse_deployment(text: str, containers_json: str) -> RemoteState:
    """The `deployment` and `containers` sections of the probe (see hostcmd.files_state)."""
    result = RemoteState(containers=parse_inspect(containers_json))
    section = "files"
    buf: dict[str, list[str]] = {"files": [], "state": [], "lock": [], "releases": []}
    for line in text.splitlines():
        marker = line.strip()
        if marker in ("--state--", "--lock--", "--releases--"):
            section = marker.strip("-")
            continue
        buf[section].append(line)
    for line in buf["files"]:
        parts = line.split()
        if len(parts) == 2 and len(parts[0]) == 64:
            result.files[parts[1].lstrip("*")] = parts[0]
    result.state = _json_or_none("\n".join(buf["state"]))
    result.lock = _json_or_none("\n".join(buf["lock"]))
    if result.lock is None and "".join(buf["lock"]).strip():
        result.lock = {"owner": "".join(buf["lock"]).strip()}
    result.releases = [r.strip() for r in buf["releases"] if r.strip() and not r.strip().startswith(".")]
    return result


def _json_or_none(text: str) -> dict[str, Any] | None:
    text = text.strip()
    if not text:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


# --- decisions -------------------------------------------------------------------------------------------

UNCHANGED = "unchanged"  # same files, container serving the same image: touch nothing
RESTART = "start"  # same files, but the container is missing, stopped or unhealthy: compose up again
DEPLOY = "deploy"  # new files (image, overlay, settings): new release


def decide(rendering: Rendering, remote: RemoteState) -> str:
    if remote.files != rendering.hashes:
        return DEPLOY
    container = remote.container
    if container is None or container.image != rendering.image or not container.serving:
        return RESTART
    return UNCHANGED
