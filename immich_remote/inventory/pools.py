"""`pools:`: several ML hosts behind one HAProxy URL. Validation against the resolved hosts, the pool's URL,
and its balancer as a deploy target (a `Host` whose service is the pool's balancer, names.balancer_service).

A host is in one pool at most; Immich gets the pool's URL, never a member's own; the balancer runs on one
of the inventory's hosts or on the Immich server's own host (`balancer: immich`, through immich.ssh_host).
The balancer uses the host's network (no Docker port publishing), so it reaches members on the same host
through the host's own addresses and its runtime API listens on the host's 127.0.0.1 only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from ..errors import InputError
from ..names import balancer_dir, balancer_service
from ..urls import classify_address, derive_url, normalise_url, parse_ip, url_key
from .model import Host, ImmichServer, Pool, PoolMember
from .schema import PoolMemberSettings, PoolSettings
from .source import Source, Where

IMMICH = "immich"  # `balancer: immich`: the Immich server's own host


def resolve_pools(src: Source, raw: Any, where: Where, hosts: tuple[Host, ...], server: ImmichServer,
                  groups: Mapping[str, tuple[str, ...]], *, health_timeout: float) -> tuple[tuple[Pool, ...],
                                                                                          tuple[Host, ...]]:
    """The pools, and the hosts with each member's firewall opened to its balancer."""
    if not raw:
        return (), hosts
    if not isinstance(raw, Mapping):
        raise src.fail(where, "expected a mapping of pool name -> {members, balancer, port, ...}.")
    by_name = {h.name: h for h in hosts}
    pools: list[Pool] = []
    member_of: dict[str, str] = {}
    for index, (name, value) in enumerate(raw.items()):
        at = where + (name,)
        src.check_name(name, at)
        if name in by_name or name in groups or name == IMMICH:
            raise src.fail(at, f"'{name}' is already a host or group name (or reserved); a pool needs its own "
                           "name (it names the balancer in tables and in --limit).")
        settings = src.validate(PoolSettings, value, at)
        members = _members(src, settings, at, by_name, member_of, name)
        target = _target(src, name, settings, at, by_name, server, health_timeout)
        _check_ports(src, target, settings, at, hosts, server)
        pools.append(Pool(name=name, members=members, balancer_host=settings.balancer, port=settings.port,
                          admin_port=_admin_port(settings), image=settings.balancer_image,
                          target=dataclasses.replace(target, index=-len(raw) + index),
                          allow_from=_pool_allow(settings, by_name)))
    return tuple(pools), tuple(_open_to_balancer(h, pools) for h in hosts)


def _pool_allow(settings: PoolSettings, by_name: dict[str, Host]) -> tuple[str, ...]:
    """Who may use the pool: `allow_from`, else the balancer host's own (allow_from, immich.server_address or
    immich.ssh_host). `balancer: immich` has no default: the server's container reaches its own host through
    a Docker network address, so the source must be given."""
    if settings.allow_from:
        return tuple(settings.allow_from)
    host = by_name.get(settings.balancer)
    return host.allow_from if host is not None and host.firewall else ()


def _admin_port(settings: PoolSettings) -> int:
    return settings.admin_port or (settings.port + 1)


def _members(src: Source, s: PoolSettings, at: Where, by_name: dict[str, Host], member_of: dict[str, str],
             pool: str) -> tuple[PoolMember, ...]:
    if not s.members:
        raise src.fail(at + ("members",), "a pool needs at least one member (an inventory host).")
    members: list[PoolMember] = []
    for i, item in enumerate(s.members):
        member = item if isinstance(item, PoolMemberSettings) else PoolMemberSettings(host=item)
        if member.host not in by_name:
            raise src.fail(at + ("members", i), f"'{member.host}' is not a host in this inventory.",
                           hint=f"Known hosts: {', '.join(by_name) or 'none'}.")
        if member.host in member_of:
            other = member_of[member.host]
            raise src.fail(at + ("members", i), f"host '{member.host}' is "
                           + ("listed twice in this pool." if other == pool else f"already in pool '{other}'; "
                              "a host can be in one pool at most."))
        member_of[member.host] = pool
        members.append(PoolMember(member.host, member.weight))
    return tuple(members)


def _target(src: Source, name: str, s: PoolSettings, at: Where, by_name: dict[str, Host], server: ImmichServer,
            health_timeout: float) -> Host:
    """The balancer as a deploy target on its host: the host's SSH settings, the pool's address and URL."""
    if s.balancer == IMMICH:
        if not server.ssh_host:
            raise src.fail(at + ("balancer",), "`balancer: immich` runs the balancer on the Immich server's own "
                           "host, but immich.ssh_host is not set.",
                           hint="Set immich.ssh_host (and ssh_user) so immich-remote can reach that host, or "
                           "put the balancer on one of the ML hosts.")
        base = Host(name=name, address=server.ssh_host, ssh_user=server.ssh_user, ssh_port=server.ssh_port,
                    ssh_key=server.ssh_key, accel="cpu", arch=None, bind_address="", ml_port=s.port, url="",
                    remote_dir="", model_cache="", env={}, registry=None, image_repository=None, priority=0,
                    health_timeout=health_timeout, health_interval=10.0, firewall=False)
        default_bind = server.server_address or _private_ip(server.ssh_host)
    elif s.balancer in by_name:
        base = by_name[s.balancer]
        default_bind = base.bind_address
    else:
        raise src.fail(at + ("balancer",), f"'{s.balancer}' is not a host in this inventory.",
                       hint=f"Give one of the hosts ({', '.join(by_name)}) or `immich` for the Immich server's host.")
    bind = s.bind_address or default_bind
    if not bind or parse_ip(bind) is None:
        raise src.fail(at + ("bind_address",), f"the pool's bind address {'is missing' if not bind else repr(bind)}"
                       f"{'' if not bind else ' is not an IP address'}: HAProxy listens on one private IP of its "
                       "host.", hint="Set bind_address to the balancer host's private IP that Immich reaches.")
    bind = str(parse_ip(bind))
    url = s.url or derive_url(bind, s.port)
    try:
        url = normalise_url(url, where="url")
    except InputError as exc:
        raise src.fail(at + ("url",), exc.message.removeprefix("url: "), exc.hint) from None
    return dataclasses.replace(
        base, name=name, bind_address=bind, ml_port=s.port, url=url, remote_dir=balancer_dir(name),
        model_cache="", env={}, registry=None, image_repository=None, accel="cpu", priority=s.priority,
        health_timeout=s.health_timeout or health_timeout, service=balancer_service(name),
        firewall=False, allow_from=(), allow_from_origin="", groups=())


def _private_ip(address: str | None) -> str | None:
    ip = parse_ip(address or "")
    return str(ip) if ip is not None and classify_address(str(ip)) != "loopback" else None


def _check_ports(src: Source, target: Host, s: PoolSettings, at: Where, hosts: tuple[Host, ...],
                 server: ImmichServer) -> None:
    """The pool's ports must not collide with an ML port on the same host, nor its URL with another's."""
    admin = _admin_port(s)
    if admin == s.port:
        raise src.fail(at + ("admin_port",), f"admin_port {admin} is the pool's own port.",
                       hint="Give the runtime API another port (default: port + 1).")
    for host in hosts:
        same_machine = host.address == target.address and (host.ssh_port or 22) == (target.ssh_port or 22)
        if same_machine and host.ml_port in (s.port, admin) and host.bind_address in (target.bind_address,
                                                                                      "0.0.0.0", "::"):
            key = "port" if host.ml_port == s.port else "admin_port"
            raise src.fail(at + (key,), f"port {host.ml_port} is already host '{host.name}''s ML port on the "
                           "same machine.", hint="Give the pool another port (default 3010) or admin_port.")
        if url_key(host.url) == url_key(target.url):
            raise src.fail(at + ("url",), f"the pool's URL {target.url} is also host '{host.name}''s URL.")
    if url_key(server.local_ml_url) == url_key(target.url):
        raise src.fail(at + ("url",), f"the pool's URL {target.url} is immich.local_ml_url.")


def _open_to_balancer(host: Host, pools: list[Pool]) -> Host:
    """A member whose ML port is firewalled must let its balancer in: add the balancer host's address."""
    pool = next((p for p in pools if host.name in p.member_names), None)
    if pool is None or not host.firewall or not host.allow_from:
        return host
    ip = parse_ip(pool.target.address) or parse_ip(pool.bind_address)
    if ip is None or ip.version != (parse_ip(host.bind_address) or ip).version:
        return host
    network = f"{ip}/{ip.max_prefixlen}"
    if network in host.allow_from:
        return host
    return dataclasses.replace(host, allow_from=host.allow_from + (network,),
                               allow_from_origin=f"{host.allow_from_origin} + pool {pool.name}'s balancer")
