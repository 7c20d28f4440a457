"""`immich-remote init`, the pure part: from the answers (given as flags, typed at the prompts, or found
by probing) to the commented native-format inventory text, plus the small decisions init proposes:
which permissions the key needs, which address the ML port should bind, what to run next.

Nothing here opens a connection or touches a file; commands/init.py asks, probes and writes.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from .errors import InputError
from .urls import ML_CONTAINER_PORT, classify_address, derive_url, parse_ip

KEY_SOURCES = ("api_key_env", "api_key_file", "api_key_command")
DEFAULT_LOCAL_ML = "http://immich-machine-learning:3003"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_PLAIN_RE = re.compile(r"^[A-Za-z0-9_./~+][A-Za-z0-9_./~@%+:=-]*(?<!:)$")
_YAML_WORDS = {"yes", "no", "on", "off", "true", "false", "null", "y", "n", "~"}
# Where the ML port may listen, best first: a LAN address, then VPN/CGNAT (Tailscale), then IPv6 ULA.
_BIND_PREFERENCE = ("private", "cgnat", "ula")


@dataclass
class InitHost:
    """One ML host as init will write it. `notes` become comments above the host's entry."""

    name: str
    address: str
    ssh_port: int | None = None
    accel: str = "auto"
    bind_address: str | None = None  # None: derived from `address` by the inventory
    url: str | None = None  # None: derived from `address` and the port
    verified: bool = False  # connected and probed
    notes: list[str] = field(default_factory=list)


@dataclass
class InitAnswers:
    immich_url: str
    key_source: str = "api_key_env"  # one of KEY_SOURCES
    key_value: str = "IMMICH_API_KEY"  # the variable's name, the file's path or the command (never the key)
    ssh_user: str | None = None
    ssh_key: str | None = None
    known_hosts: str | None = None
    hosts: list[InitHost] = field(default_factory=list)
    server_version: str | None = None  # what the server said, for the header comment
    written_by: str = ""  # e.g. "immich-remote 0.1.0 on 2026-12-07"


def parse_host_spec(text: str) -> tuple[str, str, int | None]:
    """`NAME=ADDRESS`, `NAME=ADDRESS:PORT` or `NAME=[IPv6]:PORT` -> (name, address, ssh port or None)."""
    name, sep, rest = text.partition("=")
    name, rest = name.strip(), rest.strip()
    if not sep or not name or not rest:
        raise InputError(f"--host '{text}': expected NAME=ADDRESS (e.g. gpu-box=192.168.1.50, or "
                         "gpu-box=192.168.1.50:2222 for another SSH port).")
    if not _NAME_RE.match(name) or name.lower() in _YAML_WORDS:
        raise InputError(f"--host '{text}': '{name}' is not a usable host name; use letters, digits, '-', '_' "
                         "and '.' (and not yes/no/true/false).")
    port: int | None = None
    if rest.startswith("["):  # [fd00::50]:2222
        inner, _, tail = rest[1:].partition("]")
        address = inner
        if tail:
            port = _port(text, tail.removeprefix(":"))
    elif rest.count(":") == 1:  # 192.168.1.50:2222 or gpu-box:2222
        address, _, tail = rest.partition(":")
        port = _port(text, tail)
    else:  # a name, an IPv4 address, or a bare IPv6 address
        address = rest
    if not address:
        raise InputError(f"--host '{text}': the address is empty.")
    return name, address, port


def _port(text: str, value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= 65535:
        raise InputError(f"--host '{text}': '{value}' is not an SSH port (1-65535).")
    return int(value)


def needed_permissions(admin_config_api: bool, queues_api: bool) -> list[tuple[str, str, bool]]:
    """(permission, what for, required) for this server: reading and saving the config is required; reading
    the queues and starting jobs only for `jobs` and `deploy --run-missing`."""
    prefix = "adminConfig" if admin_config_api else "systemConfig"
    return [
        (f"{prefix}.read", "read Immich's settings", True),
        (f"{prefix}.update", "save the ML URLs", True),
        ("queue.read" if queues_api else "job.read", "show the ML queues (`jobs`)", False),
        ("job.create", "start missing ML jobs (`jobs run-missing`, `deploy --run-missing`)", False),
    ]


def permission_verdict(granted: Iterable[str], needed: list[tuple[str, str, bool]]) -> tuple[list[str], list[str]]:
    """(missing required, missing optional) permission lines, each `name (what for)`; `all` grants everything."""
    have = set(granted)
    missing = [(p, why, req) for p, why, req in needed if "all" not in have and p not in have]
    return ([f"{p} ({why})" for p, why, req in missing if req], [f"{p} ({why})" for p, why, req in missing if not req])


def propose_bind(address: str, host_addresses: Iterable[str]) -> tuple[str | None, str]:
    """Where the ML port should listen, from the SSH address and the addresses the host has.

    The SSH address when it is one of the host's private addresses (then nothing needs writing: the
    inventory derives it); otherwise the host's best private address (LAN, then VPN/CGNAT, then ULA).
    Never a public, wildcard or loopback address: the ML API has no authentication.
    Returns (address or None when there is none to propose, why).
    """
    addresses = sorted({a for a in host_addresses if parse_ip(a) is not None}, key=_bind_rank)
    kind = classify_address(address)
    if address in addresses and kind in _BIND_PREFERENCE:
        return address, f"{address} is the address you reach the host on, and a {kind} one"
    for wanted in _BIND_PREFERENCE:
        for candidate in addresses:
            if classify_address(candidate) == wanted:
                return candidate, f"the host's {wanted} address (it has {', '.join(addresses)})"
    if kind in _BIND_PREFERENCE:
        return address, f"{address} is private (the host's own addresses are unknown)"
    return None, f"the host has no private address ({', '.join(addresses) or 'none found'})"


def _bind_rank(address: str) -> tuple:
    """Order among a host's addresses: IPv4 first, Docker's own bridges (the `.1` gateway of a 172.16/12
    network: docker0 is 172.17.0.1) last, then numerically."""
    ip = parse_ip(address)
    assert ip is not None
    bridge = ip.version == 4 and ip in ipaddress.ip_network("172.16.0.0/12") and address.endswith(".1")
    return ip.version, bridge, int(ip)


def host_url(host: InitHost, port: int = ML_CONTAINER_PORT) -> str | None:
    """The URL to write when the derived one (from `address`) would not reach the bind address: a loopback
    or name address bound elsewhere (SSH through a tunnel or jump host). None: the derived URL is right."""
    if host.bind_address and host.bind_address != host.address and classify_address(host.address) == "loopback":
        return derive_url(host.bind_address, port)
    return None


def scalar(value: object) -> str:
    """A YAML scalar: plain when that reads back as the same string, else double-quoted (JSON is valid YAML)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    text = str(value)
    if _PLAIN_RE.match(text) and text.lower() not in _YAML_WORDS and not _looks_numeric(text):
        return text
    return "".join(ch if _yaml_printable(ch) else f"\\u{ord(ch):04x}" if ord(ch) < 0x10000 else f"\\U{ord(ch):08x}"
                   for ch in json.dumps(text, ensure_ascii=False))


def _yaml_printable(ch: str) -> bool:
    """What YAML keeps as it is inside quotes (anything else, line breaks included, is written as an escape)."""
    o = ord(ch)
    return (0x20 <= o <= 0x7E or 0xA0 <= o <= 0xD7FF or 0xE000 <= o <= 0xFFFD or o >= 0x10000) and \
        o not in (0x2028, 0x2029)


def _looks_numeric(text: str) -> bool:
    try:
        float(text.replace("_", ""))
    except ValueError:
        return bool(re.fullmatch(r"[-+]?(0[xob][0-9a-fA-F_]+|[0-9_]+(:[0-9_]+)+|\.(inf|nan))|\d{4}-\d.*", text,
                                 flags=re.IGNORECASE))
    return True


def render_inventory(answers: InitAnswers, *, path: str = "inventory/hosts.yml") -> str:
    """The commented native-format inventory; it loads back through inventory/ unchanged."""
    if not answers.hosts:
        raise InputError("init needs at least one host (--host NAME=ADDRESS).")
    i = f"-i {path} " if path != "inventory/hosts.yml" else ""
    out = [f"# immich-remote inventory, written by `immich-remote init`{' (' + answers.written_by + ')' if answers.written_by else ''}.",
           "# Every field is explained in inventory/example-fleet.yml and docs/getting-started.md.",
           "# Next:",
           f"#   immich-remote {i}check              # can every host run it? may the key save the URLs?",
           f"#   immich-remote {i}deploy --dry-run   # what deploy would change",
           f"#   immich-remote {i}deploy",
           ""]
    version = f" (Immich {answers.server_version} when this file was written)" if answers.server_version else ""
    out += [f"# The Immich server whose Smart Search, Face Detection and OCR jobs the hosts take over{version}.",
            "immich:",
            f"  url: {scalar(answers.immich_url)}",
            "  # Where the API key comes from; the key itself is never written here.",
            "  # One of api_key_env (a variable), api_key_file (a file holding only the key, chmod 600),",
            "  # api_key_command (prints the key, e.g. `pass show immich/api-key`).",
            f"  {answers.key_source}: {scalar(answers.key_value)}",
            "  # The server's own ML container stays LAST in Immich's URL list: the fallback when the hosts are off.",
            f"  local_ml_url: {DEFAULT_LOCAL_ML}",
            "  fallback: keep-local            # or remote-only (jobs fail while every host is down)",
            ""]
    if answers.known_hosts:
        out += ["ssh:",
                "  # Host keys are recorded here (by init and `immich-remote trust`) and always checked.",
                f"  known_hosts: {scalar(answers.known_hosts)}",
                ""]
    out += ["defaults:"]
    if answers.ssh_user:
        out.append(f"  ssh_user: {scalar(answers.ssh_user)}  # in the `docker` group on each host; key-only SSH")
    else:
        out.append("  # ssh_user: deploy              # default: ~/.ssh/config, else your local user name")
    if answers.ssh_key:
        out.append(f"  ssh_key: {scalar(answers.ssh_key)}")
    else:
        out.append("  # ssh_key: ~/.ssh/id_ed25519    # default: ssh-agent and your usual keys")
    out += ["", "hosts:"]
    for host in answers.hosts:
        out += _host_lines(host)
    return "\n".join(out) + "\n"


def _host_lines(host: InitHost) -> list[str]:
    lines = [f"  {host.name}:"]
    lines += [f"    # {note}" for note in host.notes]
    lines.append(f"    address: {scalar(host.address)}")
    if host.ssh_port:
        lines.append(f"    ssh_port: {host.ssh_port}")
    lines.append(f"    accel: {scalar(host.accel):<22}# auto | cpu | cuda | rocm | openvino | openvino-wsl | armnn | rknn")
    lines.append("    # The ML port listens on this address only: the ML API has no authentication.")
    if host.bind_address and host.bind_address != host.address:
        lines.append(f"    bind_address: {scalar(host.bind_address)}")
    else:
        lines.append(f"    # bind_address: {host.address}   # default: address")
    lines.append(f"    ml_port: {ML_CONTAINER_PORT}")
    url = host.url or host_url(host)
    if url:
        lines.append(f"    url: {scalar(url)}   # what Immich calls")
    lines.append("")
    return lines


def next_steps(path: str, *, key_env_unset: str | None, untrusted: list[str], unverified: list[str]) -> list[str]:
    """The commands to run after init, in order."""
    i = f"-i {path} " if path != "inventory/hosts.yml" else ""
    steps = []
    if key_env_unset:
        steps.append(f"export {key_env_unset}=...                      # the API key (Account Settings > API Keys)")
    steps += [f"immich-remote {i}trust {name}" for name in untrusted]
    steps += [f"immich-remote {i}check" + (f"    # verifies {', '.join(unverified)}" if unverified else ""),
              f"immich-remote {i}deploy --dry-run",
              f"immich-remote {i}deploy"]
    return steps
