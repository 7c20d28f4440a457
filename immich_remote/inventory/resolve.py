"""From validated settings to the resolved objects: merging the layers of each host, the defaults, the
derived URL and bind address, and the checks that need the whole inventory (one URL, one place per host).

Both formats end here: each hands over the server settings and, per host, its layers of settings in order
(later wins), each with the key path it came from so that an error points at the right line.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any

from ..errors import InputError
from ..hwaccel import BACKENDS
from ..urls import ML_CONTAINER_PORT, classify_address, derive_url, normalise_url, parse_ip
from .model import Host, ImmichServer, Inventory, SSHOptions
from .pools import resolve_pools
from .schema import HostSettings, ImmichSettings, SSHSettings
from .source import Source, Where

DEFAULT_REMOTE_DIR = "~/immich-remote-ml"
DEFAULT_MODEL_CACHE = "model-cache"
DEFAULT_PRIORITY = 100
DEFAULT_API_KEY_ENV = "IMMICH_API_KEY"
DEFAULT_HEALTH_TIMEOUT = 180.0
DEFAULT_HEALTH_INTERVAL = 10.0

# A DNS name as SSH and Docker take it (ASCII; internationalised names in their xn-- form).
_HOSTNAME_RE = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9_]([A-Za-z0-9_-]{0,62})(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,62}))*\.?$")

Layers = list[tuple[HostSettings, Where]]  # one host's settings, lowest first, each with its key path


def build_inventory(src: Source, fmt: str, immich: ImmichSettings, ssh: SSHSettings, layered: dict[str, Layers],
                    groups: dict[str, tuple[str, ...]], state_dir: str | None, pools: Any = None,
                    pools_where: Where = ("pools",)) -> Inventory:
    """The Inventory, hosts in the order of `layered`; `fmt` is "native" or "ansible"."""
    server = resolve_immich(src, immich, fmt)
    host_groups = {name: tuple(g for g, members in groups.items() if name in members) for name in layered}
    hosts = tuple(resolve_host(src, name, layers, host_groups[name], i, server=server)
                  for i, (name, layers) in enumerate(layered.items()))
    check_unique(src, hosts, layered)
    resolved_pools, hosts = resolve_pools(src, pools, pools_where, hosts, server, groups,
                                          health_timeout=DEFAULT_HEALTH_TIMEOUT)
    return Inventory(
        path=src.path, format=fmt, immich=server,
        ssh=SSHOptions(src.file_path(ssh.known_hosts), src.file_path(ssh.config), ssh.connect_timeout,
                       ssh.command_timeout, ssh.max_handshakes),
        hosts=hosts, groups=groups, state_dir=src.file_path(state_dir), pools=resolved_pools)


def _normalised_url(src: Source, value: str, key: str, where: Where) -> str:
    """normalise_url, its error pointed at `where`."""
    try:
        return normalise_url(value, where=key)
    except InputError as exc:
        raise src.fail(where, exc.message.removeprefix(f"{key}: "), exc.hint) from None


def resolve_immich(src: Source, s: ImmichSettings, fmt: str) -> ImmichServer:
    where = ("all", "vars", "immich") if fmt == "ansible" else ("immich",)
    sources = [k for k in ("api_key_env", "api_key_file", "api_key_command") if getattr(s, k)]
    if len(sources) > 1:
        raise src.fail(where + (sources[1],), f"give only one of api_key_env, api_key_file, api_key_command "
                       f"(found {', '.join(sources)}).")
    url = _normalised_url(src, s.url, "url", where + ("url",))
    local = _normalised_url(src, s.local_ml_url, "local_ml_url", where + ("local_ml_url",))
    return ImmichServer(
        url=url, api_key_env=s.api_key_env or (None if sources else DEFAULT_API_KEY_ENV),
        api_key_file=src.file_path(s.api_key_file), api_key_command=s.api_key_command,
        local_ml_url=local, fallback=s.fallback, timeout=s.timeout, verify_tls=s.verify_tls,
        ssh_host=s.ssh_host, ssh_user=s.ssh_user, ssh_port=s.ssh_port, ssh_key=src.file_path(s.ssh_key),
        server_address=s.server_address)


@dataclass(frozen=True)
class Merged:
    """One host's settings after merging its layers, with the key path each one came from."""

    values: dict[str, Any]
    origin: dict[str, Where]
    where: Where  # the host's own entry: where an error about an unset key points

    def get(self, key: str) -> Any:
        return self.values.get(key)

    def at(self, key: str) -> Where:
        return self.origin.get(key, self.where)


def merge_layers(layers: Layers) -> Merged:
    """Later layers win, key by key; `env` merges variable by variable."""
    merged: dict[str, Any] = {}
    origin: dict[str, Where] = {}
    for settings, where in layers:
        for key in settings.model_fields_set:
            value = getattr(settings, key)
            if key == "env" and value is not None:
                merged["env"] = {**(merged.get("env") or {}), **value}
            else:
                merged[key] = value
            origin[key] = where + (key,)
    return Merged(merged, origin, layers[-1][1])


def resolve_host(src: Source, name: str, layers: Layers, groups: tuple[str, ...], index: int, *,
                 server: ImmichServer | None = None) -> Host:
    s = merge_layers(layers)
    address = _address(src, s)
    accel = s.get("accel") or "auto"
    arch = s.get("arch")
    _check_platform(src, s, accel, arch)
    bind = _bind_address(src, s, address)
    ml_port = s.get("ml_port") or ML_CONTAINER_PORT
    url = _normalised_url(src, s.get("url") or derive_url(address, ml_port), "url", s.at("url"))
    allow_from, allow_origin = _allow_from(src, s, bind, server)
    return Host(
        name=name, address=address, ssh_user=s.get("ssh_user"), ssh_port=s.get("ssh_port"),
        ssh_key=src.file_path(s.get("ssh_key")), accel=accel, arch=arch, bind_address=bind,
        ml_port=ml_port, url=url, remote_dir=s.get("remote_dir") or DEFAULT_REMOTE_DIR,
        model_cache=s.get("model_cache") or DEFAULT_MODEL_CACHE, env=dict(s.get("env") or {}),
        registry=s.get("registry"), image_repository=s.get("image_repository"),
        priority=DEFAULT_PRIORITY if s.get("priority") is None else s.get("priority"),
        health_timeout=s.get("health_timeout") or DEFAULT_HEALTH_TIMEOUT,
        health_interval=s.get("health_interval") or DEFAULT_HEALTH_INTERVAL,
        groups=groups, index=index, firewall=s.get("firewall") is not False, allow_from=allow_from,
        allow_from_origin=allow_origin)


def _allow_from(src: Source, s: Merged, bind: str, server: ImmichServer | None) -> tuple[tuple[str, ...], str]:
    """Who may reach the ML port: `allow_from`, else immich.server_address, else immich.ssh_host when it is
    an IP that is not loopback (a name or a loopback address says nothing about the server as this host
    sees it). Every network must be of the bind address's family: the rules match one family."""
    given = s.get("allow_from")
    if given:
        networks, origin, where = tuple(given), "allow_from", s.at("allow_from")
    elif server is not None and server.server_address:
        networks, origin, where = (_single(server.server_address),), "immich.server_address", None
    else:
        ssh_ip = parse_ip(server.ssh_host) if server is not None and server.ssh_host else None
        if ssh_ip is None or ssh_ip.is_loopback:
            return (), ""
        networks, origin, where = (_single(str(ssh_ip)),), "immich.ssh_host", None
    family = ipaddress.ip_address(bind).version
    wrong = [n for n in networks if ipaddress.ip_network(n).version != family]
    if wrong and s.get("firewall") is not False:
        raise src.fail(where or s.at("bind_address"), f"{origin} {', '.join(wrong)} is IPv"
                       f"{ipaddress.ip_network(wrong[0]).version}, but this host's ML port is published on "
                       f"IPv{family} address {bind}: the firewall could never let it through.",
                       hint=f"Give allow_from the IPv{family} address(es) the Immich server uses to reach {bind}.")
    return networks, origin


def _single(address: str) -> str:
    return str(ipaddress.ip_network(address))


def _address(src: Source, s: Merged) -> str:
    address = s.get("address")
    if not address or not address.strip():
        raise src.fail(s.where, "missing `address` (the IP or DNS name to reach this host over SSH).")
    return check_address(src, address.strip(), s.at("address"), "address")


def _check_platform(src: Source, s: Merged, accel: str, arch: str | None) -> None:
    """An explicit accelerator must have an image for an explicit architecture."""
    if arch and accel != "auto" and arch not in BACKENDS[accel].platforms:
        ok = ", ".join(n for n, b in BACKENDS.items() if arch in b.platforms)
        raise src.fail(s.at("accel"), f"accelerator '{accel}' has no image for {arch} (Immich publishes it for "
                       f"{'/'.join(BACKENDS[accel].platforms)} only).", hint=f"For {arch} use one of: {ok}.")


def _bind_address(src: Source, s: Merged, address: str) -> str:
    """bind_address as given (an IP), or the address when that is an IP; never 0.0.0.0 by itself."""
    bind = s.get("bind_address")
    if not bind:
        if classify_address(address) == "name":
            raise src.fail(s.at("address"), f"address '{address}' is a name, so the ML port's bind address "
                           "cannot be derived.", hint="Set bind_address to the host's private IP that Immich "
                           "reaches (e.g. its LAN or Tailscale address); immich-remote never binds 0.0.0.0 "
                           "on its own.")
        return address
    if classify_address(bind) == "name":
        raise src.fail(s.at("bind_address"), f"'{bind}' is not an IP address; Docker publishes ports on IPs.",
                       hint="Give the host's private IP that Immich reaches, e.g. 192.168.1.50 or fd00::50.")
    return check_address(src, bind.strip(), s.at("bind_address"), "bind_address")


def check_address(src: Source, address: str, where: Where, key: str) -> str:
    """An IP (IPv6 without brackets: they belong in URLs only) or a DNS name."""
    ip = parse_ip(address)
    if ip is not None:
        if address.startswith("[") != address.endswith("]"):
            raise src.fail(where, f"'{address}' has an unbalanced bracket.", hint=f"Write {key}: {ip}.")
        return str(ip)
    if ":" in address:
        raise src.fail(where, f"'{address}' is not an IP address or a host name (a port does not belong "
                       f"in {key}).", hint="Set the SSH port with ssh_port and the ML port with ml_port; "
                       "an IPv6 address goes in as it is, without a port, e.g. fd00::50.")
    if not _HOSTNAME_RE.match(address):
        raise src.fail(where, f"'{address}' is not an IP address or a host name.",
                       hint="Use an IPv4 address (192.168.1.50), an IPv6 address (fd00::50) or a DNS name of "
                       "letters, digits, '-' and '.' (internationalised names in their xn-- form).")
    return address


def check_unique(src: Source, hosts: tuple[Host, ...], layered: dict[str, Layers]) -> None:
    """No two hosts with the same URL, and no two deploying to the same place."""
    seen_url: dict[str, str] = {}
    seen_endpoint: dict[tuple, str] = {}
    for host in hosts:
        where = layered[host.name][-1][1]
        if host.url in seen_url:
            raise src.fail(where, f"URL {host.url} is also host '{seen_url[host.url]}''s URL; "
                           "each host needs its own.", hint="Give one of them another address or ml_port, "
                           "or remove the duplicate entry.")
        seen_url[host.url] = host.name
        endpoint = (host.address, host.ssh_port or 22, host.remote_dir, host.bind_address, host.ml_port)
        if endpoint in seen_endpoint:
            raise src.fail(where, f"same address, SSH port, directory and ML port as host "
                           f"'{seen_endpoint[endpoint]}': both would deploy to the same place.",
                           hint="Give one of them another remote_dir and ml_port, or remove the duplicate.")
        seen_endpoint[endpoint] = host.name
