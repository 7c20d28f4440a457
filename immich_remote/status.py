"""What is running where, read live: per host from the host itself (the running container, not our
records), and on the Immich side the version and URL list, and which URL the server would use now.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from .deployment import ContainerState, RemoteState, parse_deployment
from .errors import ImmichRemoteError
from .facts import sections_script, split_sections
from .firewall import firewall_status
from .hostcmd import cache_usage, files_state, inspect_containers, sh
from .immich_api import ImmichClient
from .inventory import Host, Inventory
from .ml_api import ping_direct
from .rollout import Connections, HostResult, run_hosts
from .urls import url_key
from .versions import ImmichVersion

if TYPE_CHECKING:
    from .pool import PoolStatus


def status_script(host: Host) -> str:
    paths = host.paths
    sections = {"deployment": files_state(paths), "containers": inspect_containers(paths.project)}
    if host.service.is_ml:  # a pool's balancer has no model cache
        sections["cache"] = cache_usage(host.model_cache)
    return sections_script(sections)


@dataclass
class HostStatus:
    host: str
    url: str
    reachable: bool
    error: str | None = None
    state: str | None = None
    health: str | None = None
    image: str | None = None
    running_version: str | None = None
    version_matches: bool | None = None
    ping_ms: float | None = None
    ping_error: str | None = None
    registered_position: int | None = None  # 1-based place in Immich's URL list
    cache_bytes: int | None = None
    cache_volume: str | None = None
    last_change: dict[str, Any] = field(default_factory=dict)
    locked_by: str | None = None
    firewall: str | None = None  # on, stopped, off, unset, loopback (firewall.firewall_status)
    firewall_detail: str = ""
    restart_count: int | None = None
    exit_code: int | None = None
    started_at: str | None = None  # ISO time the container started (Docker's)
    kind: str = "ml"  # "ml", or "balancer" for a pool's balancer (its row is named after the pool)
    pool: str | None = None  # the pool this host is a member of: Immich reaches it through the pool's URL

    @property
    def serving(self) -> bool:
        """Running, answering /ping, and not reported unhealthy (Docker's first check may still be pending)."""
        return self.reachable and self.state == "running" and self.health != "unhealthy" and self.ping_ms is not None

    def to_data(self) -> dict[str, Any]:
        return asdict(self)


def read_host(connections: Connections, host: Host) -> tuple[RemoteState, int | None]:
    remote = connections.remote(host)
    output = remote.run(sh(status_script(host)), what="reading the deployment", timeout=60).stdout
    sections = split_sections(output)
    size = sections.get("cache", "").strip().split()
    return (parse_deployment(sections.get("deployment", ""), sections.get("containers", "[]")),
            _size_bytes(size[0]) if size else None)


def _size_bytes(text: str) -> int | None:
    """`du -sb` bytes, or Docker's human size ("1.2GB", "583MB", "0B")."""
    if text.isdigit():
        return int(text)
    units = {"B": 1, "kB": 1e3, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12}
    for unit in sorted(units, key=len, reverse=True):
        if text.endswith(unit):
            try:
                return int(float(text[: -len(unit)]) * units[unit])
            except ValueError:
                return None
    return None


def ping_from_here(url: str, *, timeout: float = 3.0) -> tuple[float | None, str | None]:
    """(latency in ms, error) of GET <url>/ping from this machine; a latency only for pong."""
    ok, latency, error = ping_direct(url, timeout=timeout)
    return (latency, None) if ok else (None, error)


def host_status(connections: Connections, host: Host, server_version: ImmichVersion | None,
                urls: list[str] | None) -> HostStatus:
    status = HostStatus(host.name, host.url, reachable=False, kind=host.service.kind)
    keys = [url_key(u) for u in urls or []]
    if url_key(host.url) in keys:
        status.registered_position = keys.index(url_key(host.url)) + 1
    status.ping_ms, status.ping_error = ping_from_here(host.url)
    try:
        remote_state, status.cache_bytes = read_host(connections, host)
    except ImmichRemoteError as exc:
        status.error = exc.message
        return status
    status.reachable = True
    container: ContainerState | None = remote_state.container
    if container is not None:
        status.state, status.health, status.image = container.state, container.health, container.image
        status.restart_count, status.exit_code = container.restart_count, container.exit_code
        status.started_at = container.started_at
        status.running_version = container.version
        status.cache_volume = (container.volumes or [None])[0]
        if server_version and container.version and host.service.is_ml:
            status.version_matches = container.version == server_version.tag
    status.firewall, status.firewall_detail = firewall_status(
        host, {c.service or "": c.state for c in remote_state.containers})
    state = remote_state.state or {}
    status.last_change = {k: state.get(k) for k in ("command", "by", "at", "image", "version") if state.get(k)}
    if remote_state.lock:
        status.locked_by = f"{remote_state.lock.get('by', '?')} ({remote_state.lock.get('command', '?')})"
    return status


@dataclass
class ServerStatus:
    url: str
    version: str | None = None
    error: str | None = None
    urls: list[str] | None = None
    fallback: str = "keep-local"
    url_health: dict[str, str] = field(default_factory=dict)  # url -> "pong 3.1 ms" / error, from this machine
    would_use: str | None = None

    def to_data(self) -> dict[str, Any]:
        return asdict(self)


def server_status(inventory: Inventory, *, read_urls: bool = True) -> ServerStatus:
    result = ServerStatus(inventory.immich.url, fallback=inventory.immich.fallback)
    with ImmichClient(inventory.immich) as client:
        try:
            result.version = client.version().tag
            if read_urls:
                result.urls = list(client.get_config()["machineLearning"]["urls"])
        except ImmichRemoteError as exc:
            result.error = exc.message
    return result


def routing(server: ServerStatus, pings: dict[str, tuple[float | None, str | None]]) -> None:
    """Which URL Immich would use now: the first healthy one in order (as its availability checks do),
    judged from this machine; a URL that does not answer here may still answer from the server."""
    for url in server.urls or []:
        latency, error = pings.get(url_key(url)) or ping_from_here(url)
        server.url_health[url] = f"pong {latency:.0f} ms" if latency is not None else f"no answer here ({error})"
        if latency is not None and server.would_use is None:
            server.would_use = url


def collect(inventory: Inventory, hosts: list[Host], *, parallel: int | None) -> tuple[ServerStatus, list[HostStatus]]:
    """The server and every host; the balancer of each pool with a member in `hosts` is a row too (see
    `collect_pools` for the members as the balancer sees them)."""
    server, statuses, _ = collect_pools(inventory, hosts, parallel=parallel)
    return server, statuses


def collect_pools(inventory: Inventory, hosts: list[Host], *, parallel: int | None
                  ) -> tuple[ServerStatus, list[HostStatus], list[PoolStatus]]:
    from .pool import balancer_targets, pool_status

    server = server_status(inventory)
    version = ImmichVersion.parse(server.version) if server.version else None
    targets = [*hosts, *balancer_targets(inventory, hosts)]
    statuses: dict[str, HostStatus] = {}
    pools: dict[str, PoolStatus] = {}
    with Connections(inventory) as connections:
        def one(host: Host) -> HostResult:
            statuses[host.name] = host_status(connections, host, version, server.urls)
            pool = inventory.pool_of(host.name)
            statuses[host.name].pool = pool.name if pool else None
            if host.service.pool:
                pools[host.name] = pool_status(inventory.pool(host.service.pool), connections.remote(host))
            return HostResult(host.name, "ok")
        run_hosts(targets, one, parallel=parallel)
    ordered = [statuses[h.name] for h in targets]
    routing(server, {url_key(s.url): (s.ping_ms, s.ping_error) for s in ordered})
    return server, ordered, [pools[h.name] for h in targets if h.name in pools]


OK, WARN, FAIL = "ok", "warn", "fail"


def container_verdict(s: HostStatus) -> tuple[str, str, str]:
    """Pure: (level, what, why) of a host's container for `status`: level ok / warn / fail, `why` empty
    only when all is well. Every state that is not healthy says why and, where one exists, the fix."""
    if not s.reachable:
        return FAIL, "unreachable", s.error or "no SSH answer"
    if s.state is None:
        return WARN, "not deployed", "no immich-remote container on this host (`immich-remote deploy`)"
    what = s.state + (f" ({s.health})" if s.health and s.state == "running" else "")
    restarts = f", {s.restart_count} restart{'s' if s.restart_count != 1 else ''}" if s.restart_count else ""
    if s.state in ("exited", "dead"):
        return FAIL, what, f"stopped (exit code {s.exit_code}{restarts}); see `docker compose logs` on the host"
    if s.state == "restarting":
        return FAIL, what, f"crash loop (exit code {s.exit_code}{restarts}); see `docker compose logs` on the host"
    if s.state != "running":
        return FAIL, what, "not running; `immich-remote deploy` starts it again"
    if s.health == "unhealthy":
        return FAIL, what, "Docker's /ping check fails inside the container"
    if s.ping_ms is None:
        return FAIL, what, f"/ping does not answer from here: {s.ping_error or 'no answer'}"
    if s.health == "starting":
        return WARN, what, "Docker's first health check has not run yet" + restarts
    if s.restart_count:
        return WARN, what, f"restarted {s.restart_count} time(s) since it was created"
    return OK, what, ""


def version_verdict(s: HostStatus, server_version: str | None) -> tuple[str, str]:
    """Pure: (level, why) of the running version against the server's."""
    if s.kind != "ml":  # a balancer's image is pinned on its own, not to Immich's version
        return OK, ""
    if s.running_version is None:
        return (WARN, "") if s.state is None else (WARN, "the image does not say its version")
    if s.version_matches is False:
        return FAIL, f"server runs {server_version}: `immich-remote upgrade`"
    return OK, ""
