"""The names immich-remote uses on a host: the services it deploys (each a Compose project with its
service and managed files), and the layout of a service's project directory. A leaf: it imports nothing
from the project.

A *service* is the unit a deploy works on: one Compose project in one directory of one host, with the
files immich-remote owns there, the Compose service the health gate watches, and (when registered) the
URL Immich gets. The ML container is one (`ML`); a pool's load balancer is another (`balancer_service`).
One host may run several, each in its own directory.

Layout of a host's project directory (default ~/immich-remote-ml):

    docker-compose.yml, hwaccel.ml.yml     the active files; Compose runs from here
    .immich-remote/releases/<id>/          every deployed file set, with release.json (kept: a few)
    .immich-remote/state.json              {"current": <id>, "previous": <id>} for rollback
    .immich-remote/lock/owner              present while a run holds the host (mkdir is atomic)
    .immich-remote/history.jsonl           one JSON line per change
"""

from __future__ import annotations

from dataclasses import dataclass

COMPOSE_FILE = "docker-compose.yml"
OVERLAY_FILE = "hwaccel.ml.yml"
MANAGED_FILES = (COMPOSE_FILE, OVERLAY_FILE)  # every file immich-remote may own in a host's directory
PROJECT_NAME = "immich_remote_ml"  # the Compose project (its containers carry this label)
SERVICE_NAME = "immich-machine-learning"  # the ML service in docker-compose.yml
STATE_DIRNAME = ".immich-remote"


BALANCER_CONFIG_FILE = "haproxy.cfg"
BALANCER_SERVICE_NAME = "haproxy"


@dataclass(frozen=True)
class ServiceKind:
    """What kind of service a deploy target runs: its Compose project and service, and its files."""

    kind: str  # "ml" or "balancer"
    project: str  # the Compose project (its containers carry this label)
    service: str  # the Compose service the health gate watches
    managed: tuple[str, ...]  # every file immich-remote may own in the service's directory
    pool: str | None = None  # the balancer's pool

    @property
    def is_ml(self) -> bool:
        return self.kind == "ml"


ML = ServiceKind("ml", PROJECT_NAME, SERVICE_NAME, MANAGED_FILES)


def balancer_service(pool: str) -> ServiceKind:
    """The pool's HAProxy: its own project (so it never touches a host's ML container) and files."""
    return ServiceKind("balancer", f"immich_remote_pool_{pool.replace('-', '_').lower()}", BALANCER_SERVICE_NAME,
                       (COMPOSE_FILE, BALANCER_CONFIG_FILE), pool=pool)


def balancer_dir(pool: str) -> str:
    """Where a pool's balancer lives on its host (apart from the ML directory)."""
    return f"~/immich-remote-pool-{pool}"


def cache_volume_name(volume: str) -> str:
    """The engine-side name of the model-cache volume (Compose prefixes the project name)."""
    return f"{PROJECT_NAME}_{volume}"


def remote_path(remote_dir: str) -> str:
    """`~/x` -> `x`: SSH commands and SFTP both start in the login directory, and a relative path
    keeps `~` out of quoting trouble. Absolute and relative paths are kept."""
    if remote_dir in ("~", "~/"):
        return "."
    if remote_dir.startswith("~/"):
        return remote_dir[2:].rstrip("/") or "."
    return remote_dir.rstrip("/") or "/"


@dataclass(frozen=True)
class HostPaths:
    """The paths of one host's project directory (see the layout above), as SSH and SFTP use them."""

    root: str
    service: ServiceKind = ML

    @classmethod
    def for_dir(cls, remote_dir: str, service: ServiceKind = ML) -> HostPaths:
        return cls(remote_path(remote_dir), service)

    @property
    def project(self) -> str:
        return self.service.project

    @property
    def managed(self) -> tuple[str, ...]:
        return self.service.managed

    def join(self, *parts: str) -> str:
        return "/".join([self.root, *parts])

    @property
    def state_dir(self) -> str:
        return self.join(STATE_DIRNAME)

    @property
    def releases(self) -> str:
        return self.join(STATE_DIRNAME, "releases")

    def release(self, release_id: str) -> str:
        return self.join(STATE_DIRNAME, "releases", release_id)

    @property
    def state_file(self) -> str:
        return self.join(STATE_DIRNAME, "state.json")

    @property
    def lock(self) -> str:
        return self.join(STATE_DIRNAME, "lock")

    @property
    def history(self) -> str:
        return self.join(STATE_DIRNAME, "history.jsonl")

    @property
    def compose_file(self) -> str:
        return self.join(COMPOSE_FILE)
