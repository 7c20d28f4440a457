"""The ML pool's balancer (HAProxy), pure: its config, its runtime API's commands and their parsers.

`config_context(spec)` is the validated input of templates/haproxy.cfg.j2 (render.haproxy_config renders it,
with the other templates). The runtime API (the
`stats socket`, one command per TCP connection) is spoken by balancer_api.py; here are the command lines it
sends (`show stat`, `show servers state ml`, `set server ml/<member> state|weight`) and the parsers of the
answers: `parse_stat` (per member: status, admin state, weight, sessions, requests, errors, last check),
`parse_totals` (the frontend and the backend), `member_state` and `drained`. No I/O.
"""

from __future__ import annotations

import csv
import io
import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from .errors import InputError

CONFIG_FILE = "haproxy.cfg"
CONFIG_PATH = "/usr/local/etc/haproxy/haproxy.cfg"  # where the official image reads it
FRONTEND = "pool"
BACKEND = "ml"
STATES = ("ready", "drain", "maint")  # what `set server ... state` accepts
MAX_WEIGHT = 256  # HAProxy's limit for a server weight
BUFSIZE = 1024 * 1024  # see the template: /predict bodies (10-500 kB) fit whole, so they can be retried
MAXCONN = 256

# Inventory host names (letters, digits, `-`, `_`, `.`): also valid HAProxy server names, safe unquoted in the
# config and in `ml/<name>` on the runtime API.
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_HOST_RE = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9_.-]{0,252})$")

# srv_admin_state bits of `show servers state` (management.txt)
_ADMF_MAINT = 0x01 | 0x02 | 0x04 | 0x20 | 0x40  # forced, inherited, config, resolution, fqdn-set maintenance
_ADMF_DRAIN = 0x08 | 0x10  # forced or inherited drain
_UP_WORDS = ("UP", "DRAIN", "NOLB", "no")  # first word of a status that serves ("no check": up, unchecked)


class ConfigValueError(InputError, ValueError):
    """A member name, address, port or weight that cannot go into the config or the runtime API (exit 2)."""


@dataclass(frozen=True)
class Member:
    """A pool member: its inventory host name, the address and port the balancer reaches its ML on."""

    name: str
    address: str
    port: int
    weight: int = 1


@dataclass(frozen=True)
class BalancerSpec:
    """Everything the balancer's config depends on. Durations are seconds."""

    pool: str
    listen_port: int
    admin_port: int
    members: tuple[Member, ...]
    check_interval: float = 2.0
    fall: int = 2
    rise: int = 2
    check_timeout: float = 5.0
    bufsize: int = BUFSIZE
    maxconn: int = MAXCONN
    bind_address: str = "*"  # the pool's private IP (the balancer runs on the host's network); "*" in tests
    allow_from: tuple[str, ...] = ()  # networks that may use the pool (the Immich server); empty: anyone
    admin_address: str = "127.0.0.1"  # the runtime API: the host's loopback only


def check_name(name: str) -> str:
    """`name` if it is a safe member (server) name, else ConfigValueError."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ConfigValueError(
            f"'{name}' cannot be a balancer member name: use letters, digits, '-', '_' and '.' only, "
            "starting with a letter or digit (at most 100 characters)."
        )
    return name


def _check_port(what: str, port: int) -> int:
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise ConfigValueError(f"{what} {port!r} is not a TCP port (1-65535).")
    return port


def _server_address(member: Member) -> str:
    """`address:port` as a `server` line wants it (IPv6 in brackets)."""
    try:
        ip = ipaddress.ip_address(member.address)
    except ValueError:
        if not _HOST_RE.match(member.address):
            raise ConfigValueError(
                f"Member '{member.name}': address '{member.address}' is neither an IP address nor a host name."
            ) from None
        return f"{member.address}:{member.port}"
    return f"[{ip}]:{member.port}" if ip.version == 6 else f"{ip}:{member.port}"


def _check_weight(name: str, weight: int) -> int:
    if isinstance(weight, bool) or not isinstance(weight, int) or not 1 <= weight <= MAX_WEIGHT:
        raise ConfigValueError(
            f"Member '{name}': weight {weight!r} must be a whole number from 1 to {MAX_WEIGHT} "
            "(to take a member out of rotation, drain it)."
        )
    return weight


def duration(seconds: float) -> str:
    """Seconds -> an HAProxy time (`2s`, `500ms`, `10m`)."""
    ms = round(seconds * 1000)
    if ms <= 0:
        raise ConfigValueError(f"duration {seconds!r} s must be positive.")
    if ms % 60000 == 0:
        return f"{ms // 60000}m"
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


def _network(value: str) -> str:
    """An address or CIDR for the frontend's source ACL (validated: it goes into the config verbatim)."""
    import ipaddress

    try:
        return str(ipaddress.ip_network(value, strict=False))
    except ValueError:
        raise ConfigValueError(f"allow_from '{value}' is not an address or CIDR.") from None


def config_context(spec: BalancerSpec) -> dict[str, object]:
    """The template's variables, validated: names, addresses, ports, weights, check settings."""
    if not spec.members:
        raise ConfigValueError(f"Pool '{spec.pool}' has no members.")
    seen: set[str] = set()
    members = []
    for member in spec.members:
        check_name(member.name)
        if member.name in seen:
            raise ConfigValueError(f"Pool '{spec.pool}': member '{member.name}' is listed twice.")
        seen.add(member.name)
        _check_port(f"Member '{member.name}': port", member.port)
        address, _, port = _server_address(member).rpartition(":")
        members.append({"name": member.name, "address": address, "port": int(port),
                        "weight": _check_weight(member.name, member.weight)})
    _check_port("listen_port", spec.listen_port)
    _check_port("admin_port", spec.admin_port)
    if spec.listen_port == spec.admin_port:
        raise ConfigValueError(f"Pool '{spec.pool}': the listen and admin ports are both {spec.listen_port}.")
    for what, count in (("fall", spec.fall), ("rise", spec.rise)):
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ConfigValueError(f"Pool '{spec.pool}': {what} {count!r} must be a whole number of at least 1.")
    return {
        "pool": spec.pool.replace("\n", " "),
        "listen_port": spec.listen_port,
        "admin_port": spec.admin_port,
        "bind_address": f"[{spec.bind_address}]" if ":" in spec.bind_address else spec.bind_address,
        "admin_address": spec.admin_address,
        "allow_from": [_network(n) for n in spec.allow_from],
        "members": members,
        "check_interval": duration(spec.check_interval),
        "check_timeout": duration(spec.check_timeout),
        "fall": spec.fall,
        "rise": spec.rise,
        "bufsize": spec.bufsize,
        "maxconn": spec.maxconn,
    }


# --- the runtime API: command lines -------------------------------------------------------------------

SHOW_STAT = "show stat"
SHOW_SERVERS_STATE = f"show servers state {BACKEND}"


def set_state_command(name: str, state: str) -> str:
    if state not in STATES:
        raise ConfigValueError(f"member state '{state}' is not one of {', '.join(STATES)}.")
    return f"set server {BACKEND}/{check_name(name)} state {state}"


def set_weight_command(name: str, weight: int) -> str:
    if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= MAX_WEIGHT:
        raise ConfigValueError(f"Member '{name}': weight {weight!r} must be a whole number from 0 to {MAX_WEIGHT}.")
    return f"set server {BACKEND}/{check_name(name)} weight {weight}"


# --- the runtime API: answers ---------------------------------------------------------------------------


@dataclass(frozen=True)
class MemberStat:
    """One member as the balancer sees it (a `show stat` server row, admin state exact when merged with
    `show servers state`)."""

    name: str
    status: str  # UP, DOWN, MAINT, DRAIN, NOLB, "UP 1/2" (going down), "DOWN 1/2" (going up), "no check"
    admin: str  # ready, drain or maint
    weight: int
    scur: int  # requests being served now
    qcur: int  # requests queued for it
    requests: int  # total requests (req_tot, else stot)
    eresp: int  # response errors (the member failed or closed while answering)
    econ: int  # connection errors
    retries: int  # wretr
    redispatches: int  # wredis
    check_status: str  # L7OK, L4CON, L4TOUT, L7STS, L7RSP... (empty before the first check)
    lastchg: int  # seconds since the last UP/DOWN change

    @property
    def healthy(self) -> bool:
        """Its health checks pass (UP, or UP with a failing check still below `fall`)."""
        return self.status.split(" ")[0] in _UP_WORDS


@dataclass(frozen=True)
class ProxyTotals:
    """The frontend's or the backend's line of `show stat`."""

    name: str
    status: str
    scur: int
    requests: int
    errors: int  # ereq (frontend) or eresp + econ (backend)


@dataclass(frozen=True)
class PoolStats:
    members: list[MemberStat] = field(default_factory=list)
    frontend: ProxyTotals | None = None
    backend: ProxyTotals | None = None

    def member(self, name: str) -> MemberStat | None:
        return next((m for m in self.members if m.name == name), None)


def _rows(csv_text: str) -> list[dict[str, str]]:
    text = csv_text.lstrip()
    if not text.startswith("# pxname,"):
        raise ValueError(f"not `show stat` output: {text[:80]!r}")
    return list(csv.DictReader(io.StringIO(text[2:])))


def _int(row: dict[str, str], key: str) -> int:
    value = (row.get(key) or "").strip()
    return int(value) if value.lstrip("-").isdigit() else 0


def _requests(row: dict[str, str]) -> int:
    """HTTP requests (`req_tot`, HAProxy 2.x has it for servers too), else sessions (`stot`)."""
    return _int(row, "req_tot") if (row.get("req_tot") or "").strip() else _int(row, "stot")


def parse_servers_state(text: str) -> dict[str, tuple[int, int]]:
    """`show servers state` -> {member: (srv_op_state, srv_admin_state)}."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines or lines[0].strip() != "1":
        raise ValueError(f"not `show servers state` output (format 1): {text[:80]!r}")
    states = {}
    for line in lines[1:]:
        if line.startswith("#"):
            continue
        words = line.split()
        if len(words) >= 7 and words[1] == BACKEND:
            states[words[3]] = (int(words[5]), int(words[6]))
    return states


def _admin(status: str, bits: int | None) -> str:
    if bits is not None:
        return "maint" if bits & _ADMF_MAINT else "drain" if bits & _ADMF_DRAIN else "ready"
    word = status.split(" ")[0]  # without `show servers state`: DRAIN of a DOWN member is not visible
    return "maint" if word == "MAINT" else "drain" if word == "DRAIN" else "ready"


def parse_stat(csv_text: str, servers_state: str | None = None) -> list[MemberStat]:
    """The members of backend `ml` in `show stat` output, in config order.

    With `servers_state` (the answer to SHOW_SERVERS_STATE) the admin state is exact; from the status
    alone a drained member that is also down reads "ready".
    """
    admin_bits = {name: bits for name, (_, bits) in parse_servers_state(servers_state).items()} \
        if servers_state is not None else {}
    members = []
    for row in _rows(csv_text):
        if row.get("pxname") != BACKEND or row.get("svname") in ("FRONTEND", "BACKEND"):
            continue
        status = row.get("status", "")
        members.append(MemberStat(
            name=row["svname"],
            status=status,
            admin=_admin(status, admin_bits.get(row["svname"])),
            weight=_int(row, "weight"),
            scur=_int(row, "scur"),
            qcur=_int(row, "qcur"),
            requests=_requests(row),
            eresp=_int(row, "eresp"),
            econ=_int(row, "econ"),
            retries=_int(row, "wretr"),
            redispatches=_int(row, "wredis"),
            check_status=(row.get("check_status") or "").removeprefix("* "),
            lastchg=_int(row, "lastchg"),
        ))
    return members


def parse_totals(csv_text: str) -> tuple[ProxyTotals | None, ProxyTotals | None]:
    """(frontend `pool`, backend `ml`) totals from `show stat` output."""
    frontend = backend = None
    for row in _rows(csv_text):
        requests = _requests(row)
        if row.get("pxname") == FRONTEND and row.get("svname") == "FRONTEND":
            frontend = ProxyTotals(FRONTEND, row.get("status", ""), _int(row, "scur"), requests, _int(row, "ereq"))
        elif row.get("pxname") == BACKEND and row.get("svname") == "BACKEND":
            backend = ProxyTotals(BACKEND, row.get("status", ""), _int(row, "scur"), requests,
                                  _int(row, "eresp") + _int(row, "econ"))
    return frontend, backend


def parse_pool_stats(csv_text: str, servers_state: str | None = None) -> PoolStats:
    frontend, backend = parse_totals(csv_text)
    return PoolStats(parse_stat(csv_text, servers_state), frontend, backend)


def member_state(stat: MemberStat) -> str:
    """"maint" (out by hand), "down" (failing its health checks), "drain" (healthy, no new requests) or
    "ready" (healthy, in rotation)."""
    if stat.admin == "maint":
        return "maint"
    if not stat.healthy:
        return "down"
    return stat.admin


def drained(stats: PoolStats | Iterable[MemberStat], name: str) -> bool:
    """True when member `name` has no request in flight or queued (scur and qcur both 0)."""
    members = stats.members if isinstance(stats, PoolStats) else stats
    for member in members:
        if member.name == name:
            return member.scur == 0 and member.qcur == 0
    raise KeyError(name)


def command_error(answer: str) -> str | None:
    """The error line of a runtime API answer to a `set` command (empty on success), else None."""
    text = answer.strip()
    return text.splitlines()[0] if text else None
