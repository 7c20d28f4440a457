"""The resolved, validated object graph the rest of immich-remote works with (never raw YAML)."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError
from ..names import ML, HostPaths, ServiceKind


@dataclass(frozen=True)
class ImmichServer:
    url: str
    api_key_env: str | None
    api_key_file: Path | None
    api_key_command: str | None
    local_ml_url: str
    fallback: str
    timeout: float
    verify_tls: bool
    ssh_host: str | None = None
    ssh_user: str | None = None
    ssh_port: int | None = None
    ssh_key: Path | None = None
    server_address: str | None = None  # the server's IP as the ML hosts see it (the firewall's default source)

    @property
    def keep_local(self) -> bool:
        return self.fallback == "keep-local"

    @property
    def api_key_source(self) -> str:
        """Where the key comes from, for messages (never the key itself)."""
        if self.api_key_file:
            return f"file {self.api_key_file}"
        if self.api_key_command:
            return f"command `{self.api_key_command}`"
        return f"environment variable {self.api_key_env}"


@dataclass(frozen=True)
class Host:
    """One ML host with every setting resolved."""

    name: str
    address: str
    ssh_user: str | None
    ssh_port: int | None
    ssh_key: Path | None
    accel: str
    arch: str | None
    bind_address: str
    ml_port: int
    url: str
    remote_dir: str
    model_cache: str
    env: dict[str, str]
    registry: str | None
    image_repository: str | None
    priority: int
    health_timeout: float
    health_interval: float
    groups: tuple[str, ...] = ()
    index: int = 0  # position in the inventory, breaks priority ties
    firewall: bool = True  # False: `firewall: false`, the host opted out of the ML-port firewall
    allow_from: tuple[str, ...] = ()  # networks that may reach the ML port; empty: no source known
    allow_from_origin: str = ""  # where allow_from came from: the key, for messages
    service: ServiceKind = ML  # what this deploy target runs (names.py): the ML container, or a pool's balancer

    @property
    def model_cache_is_path(self) -> bool:
        return self.model_cache.startswith("/")

    @property
    def paths(self) -> HostPaths:
        """The service's project directory on the host, with its Compose project and managed files."""
        return HostPaths.for_dir(self.remote_dir, self.service)


@dataclass(frozen=True)
class SSHOptions:
    known_hosts: Path | None
    config: Path | None
    connect_timeout: float
    command_timeout: float
    max_handshakes: int


@dataclass(frozen=True)
class PoolMember:
    host: str
    weight: int = 1


@dataclass(frozen=True)
class Pool:
    """Several ML hosts behind one HAProxy URL. Immich gets the pool's URL, never a member's own."""

    name: str
    members: tuple[PoolMember, ...]
    balancer_host: str  # an inventory host's name, or "immich"
    port: int
    admin_port: int  # HAProxy's runtime API, on the balancer host's 127.0.0.1 only
    image: str
    target: Host  # the balancer as a deploy target: its host's SSH settings, service = balancer_service(name)
    allow_from: tuple[str, ...] = ()  # sources HAProxy accepts on the pool's port; empty: any (a warning)

    @property
    def member_names(self) -> tuple[str, ...]:
        return tuple(m.host for m in self.members)

    @property
    def bind_address(self) -> str:
        return self.target.bind_address

    @property
    def url(self) -> str:
        """The URL Immich gets for the whole pool."""
        return self.target.url

    @property
    def priority(self) -> int:
        """Its place in Immich's URL list (the target's, as `plan.desired_urls` orders targets)."""
        return self.target.priority


@dataclass(frozen=True)
class Inventory:
    path: Path
    format: str  # "native" or "ansible"
    immich: ImmichServer
    ssh: SSHOptions
    hosts: tuple[Host, ...]
    groups: dict[str, tuple[str, ...]] = field(default_factory=dict)
    state_dir: Path | None = None
    pools: tuple[Pool, ...] = ()

    def pool_of(self, host: str) -> Pool | None:
        """The pool a host is a member of (a host is in one pool at most)."""
        return next((p for p in self.pools if host in p.member_names), None)

    def pool(self, name: str) -> Pool | None:
        return next((p for p in self.pools if p.name == name), None)

    @property
    def balancers(self) -> tuple[Host, ...]:
        """Every pool's balancer as a deploy target."""
        return tuple(p.target for p in self.pools)

    @property
    def registrable(self) -> tuple[Host, ...]:
        """The targets whose URL Immich may get: each pool's balancer, and every host outside a pool."""
        return self.balancers + tuple(h for h in self.hosts if self.pool_of(h.name) is None)

    def target(self, name: str) -> Host:
        """A host, or a pool's balancer by the pool's name."""
        pool = self.pool(name)
        return pool.target if pool is not None else self.host(name)

    def host(self, name: str) -> Host:
        for host in self.hosts:
            if host.name == name:
                return host
        raise InputError(f"{self.path}: no host named '{name}'.",
                         hint=f"Known hosts: {', '.join(h.name for h in self.hosts) or 'none'}.")

    def select(self, patterns: Iterable[str] = ()) -> list[Host]:
        """Hosts matching any of the names, group names or glob patterns (all hosts when empty).

        Comma-separated lists are accepted (`--limit gpus,nuc`). Unknown names are an error, so a
        typo never silently selects nothing.
        """
        wanted = [p.strip() for item in patterns for p in str(item).split(",") if p.strip()]
        if not wanted or "all" in wanted:
            return list(self.hosts)
        chosen: set[str] = set()
        for pattern in wanted:
            matched = {h.name for h in self.hosts if fnmatch.fnmatchcase(h.name, pattern)}
            for group, members in self.groups.items():
                if fnmatch.fnmatchcase(group, pattern):
                    matched.update(members)
            for pool in self.pools:  # a pool's name selects its members (and so its balancer)
                if fnmatch.fnmatchcase(pool.name, pattern):
                    matched.update(pool.member_names)
            if not matched:
                known = ([h.name for h in self.hosts] + [f"{g} (group)" for g in self.groups]
                         + [f"{p.name} (pool)" for p in self.pools])
                raise InputError(f"--limit/host '{pattern}' matches no host or group in {self.path}.",
                                 hint=f"Known: {', '.join(known) or 'none'}.")
            chosen |= matched
        return [h for h in self.hosts if h.name in chosen]
