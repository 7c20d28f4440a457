"""The inventory's YAML as pydantic models: what each section accepts, and the checks on single values.

The models only validate; merging the layers and deriving values is resolve.py's job. Every model forbids
unknown keys, so a misspelt key is an error with a suggestion (messages.explain words it).
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..hwaccel import ACCEL_CHOICES
from ..urls import DEFAULT_LOCAL_ML_URL

_ENV_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_VOLUME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
# The ML image reads these itself; setting them breaks it.
_RESERVED_ENV = {
    "IMMICH_PORT": "the container must listen on 3003; set ml_port to change the published port instead",
    "IMMICH_HOST": "a specific IP here leaves the container unhealthy; set bind_address instead",
}


def parse_duration(value: Any) -> float:
    """`2s`, `500ms`, `1.5m`, `1h` or a number of seconds -> seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, 500ms or 2m")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        match = _DURATION_RE.match(str(value))
        if not match:
            raise ValueError(f"'{value}' is not a duration; write it like 30s, 500ms or 2m")
        factor = {"ms": 0.001, "s": 1, None: 1, "m": 60, "h": 3600}[match.group(2)]
        seconds = float(match.group(1)) * factor
    if not math.isfinite(seconds):
        raise ValueError(f"'{value}' is not a duration; write it like 30s, 500ms or 2m")
    if seconds <= 0:
        raise ValueError("a duration must be positive")
    return seconds


def allow_from_list(value: Any) -> tuple[str, ...]:
    """`allow_from:` as normalised networks: one address/CIDR or a list of them (an address means /32 or /128).

    Refused: names (the rules match addresses), host bits set in a CIDR (a typo more often than not),
    and a network that allows everyone (that is `firewall: false`)."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not items:
        raise ValueError("expected an address or CIDR, or a list of them, e.g. [192.168.1.10, 10.0.0.0/24]")
    result = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, (str, int)):
            raise ValueError(f"'{item}' is not an address or CIDR")
        text = str(item).strip().strip("[]")
        try:
            network = ipaddress.ip_network(text, strict=True)
        except ValueError as exc:
            if "host bits set" in str(exc):
                loose = ipaddress.ip_network(text, strict=False)
                raise ValueError(f"'{text}' has host bits set; write the network as {loose} or the single "
                                 f"address as {text.split('/')[0]}") from None
            raise ValueError(f"'{text}' is not an IP address or CIDR (names are not allowed: the firewall "
                             "matches addresses), e.g. 192.168.1.10 or 10.0.0.0/24") from None
        if network.prefixlen == 0:
            raise ValueError(f"'{text}' allows every address; to leave the ML port open, set firewall: false")
        if str(network) not in result:
            result.append(str(network))
    return tuple(result)


def _no_bool(value: Any) -> Any:
    """YAML reads yes/no/true/false as booleans, and pydantic would take them as 1/0 for a number."""
    if isinstance(value, bool):
        raise ValueError(f"expected a number, found the boolean {str(value).lower()}")
    return value


def _env_mapping(value: Any) -> dict[str, str] | None:
    """`env:` as strings, refusing bad names, nested values and the variables the image sets itself."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ValueError("expected a mapping of VARIABLE: value")
    result = {}
    for key, item in value.items():
        if not isinstance(key, str) or not _ENV_RE.match(key):
            raise ValueError(f"'{key}' is not a valid environment variable name")
        if key in _RESERVED_ENV:
            raise ValueError(f"{key} must not be set: {_RESERVED_ENV[key]}")
        if isinstance(item, (dict, list)) or item is None:
            raise ValueError(f"{key}: expected a single value (string, number or boolean)")
        result[key] = ("true" if item else "false") if isinstance(item, bool) else str(item)
    return result


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=False, frozen=True)


class HostSettings(_Strict):
    """Everything that may be set per host, in `defaults`, or in group vars (all optional here)."""

    address: str | None = None
    ssh_user: str | None = None
    ssh_port: int | None = Field(default=None, ge=1, le=65535)
    ssh_key: str | None = None
    accel: Literal[ACCEL_CHOICES] | None = None  # type: ignore[valid-type]
    arch: Literal["amd64", "arm64"] | None = None
    bind_address: str | None = None
    ml_port: int | None = Field(default=None, ge=1, le=65535)
    url: str | None = None
    remote_dir: str | None = None
    model_cache: str | None = None
    env: dict[str, str] | None = None
    registry: str | None = None
    image_repository: str | None = None
    priority: int | None = None
    health_timeout: float | None = None
    health_interval: float | None = None
    allow_from: tuple[str, ...] | None = None  # addresses/CIDRs that may reach the ML port (firewall.py)
    firewall: bool | None = None

    @field_validator("allow_from", mode="before")
    @classmethod
    def _allow_from(cls, value: Any) -> Any:
        return None if value is None else allow_from_list(value)

    @field_validator("firewall", mode="before")
    @classmethod
    def _firewall(cls, value: Any) -> Any:
        if value is not None and not isinstance(value, bool):
            raise ValueError("expected true or false (false opts this host out of the ML-port firewall)")
        return value

    @field_validator("health_timeout", "health_interval", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return None if value is None else parse_duration(value)

    @field_validator("ssh_port", "ml_port", "priority", mode="before")
    @classmethod
    def _number(cls, value: Any) -> Any:
        return _no_bool(value)

    @field_validator("env", mode="before")
    @classmethod
    def _env(cls, value: Any) -> Any:
        return _env_mapping(value)

    @field_validator("model_cache")
    @classmethod
    def _cache(cls, value: str | None) -> str | None:
        if value is None or value.startswith("/"):
            return value
        if not _VOLUME_RE.match(value):
            raise ValueError("expected a Docker volume name (letters, digits, _ . -) or an absolute host path")
        return value


class ImmichSettings(_Strict):
    url: str
    api_key_env: str | None = None
    api_key_file: str | None = None
    api_key_command: str | None = None
    local_ml_url: str = DEFAULT_LOCAL_ML_URL
    fallback: Literal["keep-local", "remote-only"] = "keep-local"
    ssh_host: str | None = None
    ssh_user: str | None = None
    ssh_port: int | None = Field(default=None, ge=1, le=65535)
    ssh_key: str | None = None
    server_address: str | None = None  # the server's IP as the ML hosts see it: the firewall's default source
    timeout: float = 10.0
    verify_tls: bool = True

    @field_validator("server_address", mode="before")
    @classmethod
    def _server_address(cls, value: Any) -> Any:
        if value is None:
            return None
        try:
            return str(ipaddress.ip_address(str(value).strip().strip("[]")))
        except ValueError:
            raise ValueError(f"'{value}' is not an IP address; give the Immich server's IP as the ML hosts "
                             "see it (e.g. 192.168.1.10), which the ML-port firewall lets through") from None

    @field_validator("timeout", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return parse_duration(value)

    @field_validator("ssh_port", mode="before")
    @classmethod
    def _number(cls, value: Any) -> Any:
        return _no_bool(value)


class SSHSettings(_Strict):
    known_hosts: str | None = None
    config: str | None = None
    connect_timeout: float = 10.0
    command_timeout: float = 600.0
    max_handshakes: int = Field(default=8, ge=1, le=64)  # bounds this machine's CPU, not the hosts'

    @field_validator("connect_timeout", "command_timeout", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return parse_duration(value)

    @field_validator("max_handshakes", mode="before")
    @classmethod
    def _number(cls, value: Any) -> Any:
        return _no_bool(value)


DEFAULT_POOL_PORT = 3010
# HAProxy's LTS branch, pinned (mirrors: set `balancer_image`). The tests run Debian bookworm's 2.6 package.
DEFAULT_BALANCER_IMAGE = "haproxy:3.0.5"


class PoolMemberSettings(_Strict):
    host: str
    weight: int = Field(default=1, ge=1, le=256)

    @field_validator("weight", mode="before")
    @classmethod
    def _number(cls, value: Any) -> Any:
        return _no_bool(value)


class PoolSettings(_Strict):
    """One ML pool: several hosts behind one HAProxy URL (inventory/pools.py resolves it)."""

    members: list[str | PoolMemberSettings]
    balancer: str  # an inventory host, or `immich` (the Immich server's host, through immich.ssh_host)
    port: int = Field(default=DEFAULT_POOL_PORT, ge=1, le=65535)
    admin_port: int | None = Field(default=None, ge=1, le=65535)  # HAProxy's runtime API, on 127.0.0.1 only
    bind_address: str | None = None
    url: str | None = None
    priority: int = 0  # before the hosts' default (100): the pool first in Immich's list
    balancer_image: str = DEFAULT_BALANCER_IMAGE
    health_timeout: float | None = None
    allow_from: tuple[str, ...] | None = None  # who may use the pool's port (default: the balancer host's)

    @field_validator("allow_from", mode="before")
    @classmethod
    def _allow_from(cls, value: Any) -> Any:
        return None if value is None else allow_from_list(value)

    @field_validator("port", "admin_port", "priority", mode="before")
    @classmethod
    def _number(cls, value: Any) -> Any:
        return _no_bool(value)

    @field_validator("health_timeout", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return None if value is None else parse_duration(value)


class NativeFile(_Strict):
    """The native format's top level; `hosts` is validated one host at a time (see native.py)."""

    immich: ImmichSettings
    ssh: SSHSettings = SSHSettings()
    defaults: HostSettings = HostSettings()
    hosts: dict[str, HostSettings]
    groups: dict[str, list[str]] = {}
    pools: dict[str, Any] = {}  # validated pool by pool (inventory/pools.py)
    state_dir: str | None = None
