"""Pure planning: what each host should run, which files it gets, and the URL list Immich should have.

Nothing here opens a connection. A `Plan` is data: `plan --json` prints it, `deploy --dry-run` adds
the live state (remote files, current URL list) through the same functions, and the rollout code
executes it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field

from .errors import InputError
from .inventory import Host, Inventory, Pool
from .render import Rendering, render_host, render_target
from .urls import classify_address, foreign_urls, order_urls, url_key
from .versions import ImmichVersion


@dataclass
class FilePlan:
    name: str
    sha256: str
    size: int


@dataclass
class HostPlan:
    host: str
    ssh: str
    accel: str
    backend: str
    backend_resolved: bool
    image: str
    url: str
    bind: str
    priority: int
    remote_dir: str
    model_cache: str
    digest: str
    files: list[FilePlan]
    warnings: list[str] = field(default_factory=list)


@dataclass
class PoolPlan:
    """A pool: its URL (the one Immich gets), its balancer and members, and the balancer's files."""

    pool: str
    url: str
    balancer: str  # the host it runs on, or "immich"
    bind: str
    admin: str  # the runtime API, on the balancer host's loopback
    allow_from: list[str]  # the only sources HAProxy accepts on the pool's port (empty: any)
    priority: int
    image: str
    members: list[dict]  # host, weight, url (the member's own URL: the balancer's, never Immich's)
    remote_dir: str
    files: list[FilePlan]
    warnings: list[str] = field(default_factory=list)


@dataclass
class Plan:
    server_version: str
    fallback: str
    local_ml_url: str
    hosts: list[HostPlan]
    urls_before: list[str] | None
    urls_after: list[str]
    warnings: list[str] = field(default_factory=list)
    pools: list[PoolPlan] = field(default_factory=list)

    def to_data(self) -> dict:
        return asdict(self)


def ssh_target(host: Host) -> str:
    user = f"{host.ssh_user}@" if host.ssh_user else ""
    port = f":{host.ssh_port}" if host.ssh_port else ""
    return f"{user}{host.address}{port}"


def by_priority(hosts: Iterable[Host]) -> list[Host]:
    """Order in Immich's URL list: lower priority number first, then inventory order."""
    return sorted(hosts, key=lambda h: (h.priority, h.index))


def exposure_warnings(host: Host) -> list[str]:
    """What is unsafe or surprising about where this host's ML port listens."""
    kind = classify_address(host.bind_address)
    warnings = []
    if kind == "public":
        warnings.append(f"bind_address {host.bind_address} is a public address: the ML API has no "
                        "authentication, so anyone on the internet could send it requests; deploy refuses "
                        "this without --allow-public")
    elif kind == "unspecified":
        warnings.append(f"bind_address {host.bind_address} listens on every interface of the host; deploy "
                        "refuses this without --allow-public (give the host's private IP instead)")
    elif kind == "loopback" and classify_address(host.address) != "loopback":
        warnings.append(f"bind_address {host.bind_address} is loopback: only processes on {host.name} itself "
                        "(or an SSH tunnel) can reach the ML port")
    if host.url.startswith("https://"):
        warnings.append("the URL is https:// but the ML container speaks plain HTTP; this works only with a "
                        "TLS proxy in front of it")
    return warnings


def desired_urls(inventory: Inventory, *, current: Sequence[str] | None, registered: Iterable[Host],
                 removed: Iterable[Host] = ()) -> list[str]:
    """The URL list after a change.

    `registered`: targets whose URL must be in the list (healthy after this run, or already in it and not
    touched): hosts, and pools' balancers (a pool member is represented by its pool's URL, so a member in
    `registered` adds nothing); `removed`: targets whose URL must go. Other registrable targets keep
    whatever state they have in `current`; a pool member's own URL is always taken out.
    """
    registered = list(registered)
    removed = list(removed)
    removed_keys = {url_key(h.url) for h in removed}
    current = list(current or [])
    current_keys = {url_key(u) for u in current}
    members = {m for pool in inventory.pools for m in pool.member_names}
    keep = {h.name: h for h in registered if h.name not in members}
    for target in inventory.registrable:
        if url_key(target.url) in current_keys and url_key(target.url) not in removed_keys:
            keep.setdefault(target.name, target)
    remote = [h.url for h in by_priority(keep.values()) if url_key(h.url) not in removed_keys]
    # A removed host is managed even when it is no longer in the inventory: its URL must go, not be
    # kept as if someone had added it by hand. Members' own URLs are managed and never in `remote`.
    managed = [h.url for h in inventory.hosts] + [b.url for b in inventory.balancers] + [h.url for h in removed]
    return order_urls(current=current, remote=remote, managed=managed,
                      local=inventory.immich.local_ml_url, keep_local=inventory.immich.keep_local)


def global_warnings(inventory: Inventory, urls_before: Sequence[str] | None) -> list[str]:
    warnings = []
    if not inventory.immich.keep_local:
        warnings.append("fallback is remote-only: the local ML URL is not kept, so Smart Search, Face "
                        "Detection and OCR jobs FAIL while the remote hosts are down (rerun 'Missing' after)")
    local_key = url_key(inventory.immich.local_ml_url)
    for host in inventory.hosts:
        if url_key(host.url) == local_key:
            raise InputError(f"Host '{host.name}': its URL {host.url} is the same as immich.local_ml_url.",
                             hint="The local fallback and a remote host must be different endpoints.")
    if urls_before is not None:
        others = foreign_urls(urls_before, managed=[h.url for h in inventory.hosts],
                              local=inventory.immich.local_ml_url)
        if others:
            warnings.append("Immich's list has URLs this inventory does not manage; they are kept, after the "
                            f"remote hosts: {', '.join(others)}")
    return warnings


def plan_host(host: Host, version: ImmichVersion, *, backend: str | None = None, arch: str | None = None,
              armnn_firmware: bool = True) -> tuple[HostPlan, Rendering]:
    """Plan one host. `backend` is the probed choice; without it `auto` renders for CPU (with a warning)."""
    warnings = exposure_warnings(host)
    resolved = backend or (host.accel if host.accel != "auto" else None)
    if resolved is None:
        resolved = "cpu"
        warnings.append("accel is auto: rendered for cpu here; check/deploy probe the host and may pick a "
                        "GPU backend")
    rendering = render_host(host, version, resolved, arch=arch, armnn_firmware=armnn_firmware)
    return HostPlan(
        host=host.name, ssh=ssh_target(host), accel=host.accel, backend=resolved,
        backend_resolved=backend is not None or host.accel != "auto", image=rendering.image, url=host.url,
        bind=f"{host.bind_address}:{host.ml_port}", priority=host.priority, remote_dir=host.remote_dir,
        model_cache=host.model_cache, digest=rendering.digest,
        files=[FilePlan(f.name, f.sha256, len(f.content)) for f in rendering.files], warnings=warnings,
    ), rendering


def plan_offline(inventory: Inventory, hosts: Sequence[Host], version: ImmichVersion,
                 *, urls_before: Sequence[str] | None = None) -> Plan:
    """The plan without touching any host: rendering, hashes, the URL list Immich would get."""
    warnings = global_warnings(inventory, urls_before)
    host_plans = [plan_host(h, version)[0] for h in hosts]
    current = list(urls_before) if urls_before is not None else [inventory.immich.local_ml_url]
    if urls_before is None:
        warnings.append("Immich's current URL list was not read (offline); assumed the default: the local URL only")
    names = {h.name for h in hosts}
    pools = [p for p in inventory.pools if names & set(p.member_names)]
    after = desired_urls(inventory, current=current, registered=[*hosts, *(p.target for p in pools)])
    if not after:
        warnings.append("the URL list would be empty; Immich refuses that while machine learning is enabled")
    return Plan(server_version=str(version), fallback=inventory.immich.fallback,
                local_ml_url=inventory.immich.local_ml_url, hosts=host_plans,
                urls_before=list(urls_before) if urls_before is not None else None, urls_after=after,
                warnings=warnings, pools=[plan_pool(inventory, p, version) for p in pools])


def plan_pool(inventory: Inventory, pool: Pool, version: ImmichVersion) -> PoolPlan:
    rendering = render_target(pool.target, inventory, version, "cpu")
    warnings = []
    if not pool.allow_from:
        warnings.append("no source is known to restrict the pool's port to: anyone who reaches "
                        f"{pool.bind_address}:{pool.port} can use it (the ML API has no authentication); set the "
                        "pool's allow_from, or immich.server_address")
    for member in pool.members:
        host = inventory.host(member.host)
        if classify_address(host.bind_address) == "loopback" and host.address != pool.target.address:
            warnings.append(f"member {host.name} publishes its ML port on loopback ({host.bind_address}): the "
                            f"balancer on {pool.balancer_host} cannot reach it; give it a private bind_address")
    return PoolPlan(pool=pool.name, url=pool.url, balancer=pool.balancer_host, bind=f"{pool.bind_address}:{pool.port}",
                    admin=f"127.0.0.1:{pool.admin_port}", allow_from=list(pool.allow_from), priority=pool.priority,
                    image=pool.image,
                    members=[{"host": m.host, "weight": m.weight, "url": inventory.host(m.host).url}
                             for m in pool.members],
                    remote_dir=pool.target.remote_dir,
                    files=[FilePlan(f.name, f.sha256, len(f.content)) for f in rendering.files], warnings=warnings)

