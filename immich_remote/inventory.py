"""The inventory: one YAML file describing the Immich server and the ML hosts.

Two formats are read, both into the same validated object graph (`Inventory`):

- the native format (`immich:`, `ssh:`, `defaults:`, `hosts:`, `groups:`), see inventory/*.yml;
- an Ansible-style inventory (`all:` with `vars`, `hosts`, `children`), where `ansible_host`,
  `ansible_user`, `ansible_port` and `ansible_ssh_private_key_file` map to our fields and our own
  settings may be given bare or prefixed `immich_remote_`; other Ansible variables are ignored.

Settings merge per host, later wins: `defaults` (or `all.vars`) < group vars < the host's entry.
Every error names the file, the line, the key path, and what was expected. The rest of the code
never sees raw YAML.
"""

from __future__ import annotations

import difflib
import fnmatch
import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import InputError, InventoryError
from .hwaccel import ACCEL_CHOICES, BACKENDS
from .urls import (
    DEFAULT_LOCAL_ML_URL,
    ML_CONTAINER_PORT,
    classify_address,
    derive_url,
    normalise_url,
    parse_ip,
)
from .yamlsource import line_of, load_yaml

DEFAULT_INVENTORY = "inventory/hosts.yml"
DEFAULT_REMOTE_DIR = "~/immich-remote-ml"
DEFAULT_MODEL_CACHE = "model-cache"
DEFAULT_PRIORITY = 100
DEFAULT_API_KEY_ENV = "IMMICH_API_KEY"

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_ENV_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_VOLUME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
# A DNS name as SSH and Docker take it (ASCII; internationalised names in their xn-- form).
_HOSTNAME_RE = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9_]([A-Za-z0-9_-]{0,62})(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,62}))*\.?$")
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
# The ML image reads these itself; setting them breaks it (reference/immich.md, section 6 and 11).
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


def _no_bool(value: Any) -> Any:
    """YAML reads yes/no/true/false as booleans, and pydantic would take them as 1/0 for a number."""
    if isinstance(value, bool):
        raise ValueError(f"expected a number, found the boolean {str(value).lower()}")
    return value


def did_you_mean(word: Any, choices: Iterable[str]) -> str:
    """` Did you mean 'x'?` for the closest choice, or ''."""
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" Did you mean '{close[0]}'?" if close else ""


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
    timeout: float = 10.0
    verify_tls: bool = True

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
    max_handshakes: int = Field(default=4, ge=1, le=64)

    @field_validator("connect_timeout", "command_timeout", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return parse_duration(value)

    @field_validator("max_handshakes", mode="before")
    @classmethod
    def _number(cls, value: Any) -> Any:
        return _no_bool(value)


class NativeFile(_Strict):
    immich: ImmichSettings
    ssh: SSHSettings = SSHSettings()
    defaults: HostSettings = HostSettings()
    hosts: dict[str, HostSettings]
    groups: dict[str, list[str]] = {}
    state_dir: str | None = None


# --- The resolved, validated object graph --------------------------------------------------------

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

    @property
    def model_cache_is_path(self) -> bool:
        return self.model_cache.startswith("/")


@dataclass(frozen=True)
class SSHOptions:
    known_hosts: Path | None
    config: Path | None
    connect_timeout: float
    command_timeout: float
    max_handshakes: int


@dataclass(frozen=True)
class Inventory:
    path: Path
    format: str  # "native" or "ansible"
    immich: ImmichServer
    ssh: SSHOptions
    hosts: tuple[Host, ...]
    groups: dict[str, tuple[str, ...]] = field(default_factory=dict)
    state_dir: Path | None = None

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
            if not matched:
                known = [h.name for h in self.hosts] + [f"{g} (group)" for g in self.groups]
                raise InputError(f"--limit/host '{pattern}' matches no host or group in {self.path}.",
                                 hint=f"Known: {', '.join(known) or 'none'}.")
            chosen |= matched
        return [h for h in self.hosts if h.name in chosen]


# --- Loading -----------------------------------------------------------------------------------------

def default_inventory_path() -> Path:
    return Path(os.environ.get("IMMICH_REMOTE_INVENTORY") or DEFAULT_INVENTORY)


def load_inventory(path: Path | str) -> Inventory:
    """Read, validate and resolve an inventory file. Raises InventoryError (exit 2) on any problem."""
    path = Path(path)
    data = load_yaml(path)
    if not isinstance(data, dict):
        raise InventoryError(f"{path}: expected a mapping at the top (with `immich:` and `hosts:`), "
                             f"found {_type_name(data) if data is not None else 'an empty file'}.",
                             hint="Start from inventory/example-workstation.yml.")
    if "all" in data and "hosts" not in data and "immich" not in data:
        return _Builder(path, data).from_ansible()
    return _Builder(path, data).from_native()


def _type_name(value: Any) -> str:
    if value is None:
        return "nothing"
    for kind, name in ((bool, "a boolean"), (Mapping, "a mapping"), (list, "a list"), (str, "a string"),
                       ((int, float), "a number"), (bytes, "binary data"), ((set, frozenset), "a set")):
        if isinstance(value, kind):
            return name
    return f"a {type(value).__name__}"  # a date or a timestamp (YAML reads 2024-01-01 as one)


def _short(value: Any) -> str:
    """A value for a message: plain containers, at most one line of 60 characters."""
    if value is None:
        return "(an empty value)"
    if isinstance(value, Mapping):
        value = dict(value)
    elif isinstance(value, list):
        value = list(value)
    text = " ".join(repr(value).split())
    return text if len(text) <= 60 else text[:57] + "..."


def _fields_at(model: type[BaseModel] | None, loc: tuple[Any, ...]) -> list[str]:
    """The keys the model accepts at `loc` (a path of field names into nested models)."""
    for part in loc:
        info = model.model_fields.get(part) if model is not None and isinstance(part, str) else None
        annotation = info.annotation if info is not None else None
        model = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    return list(model.model_fields) if model is not None else []


class _Builder:
    """Turns parsed YAML into an Inventory, keeping key paths for messages."""

    def __init__(self, path: Path, data: Any) -> None:
        self.path = path
        self.data = data
        self.base = path.resolve().parent

    # Errors ---------------------------------------------------------------------------------------
    def fail(self, where: tuple[Any, ...], message: str, hint: str | None = None) -> InventoryError:
        line = line_of(self.data, where)
        location = f"{self.path}:{line}" if line else str(self.path)
        key = ".".join(str(p) for p in where) or "(top level)"
        return InventoryError(f"{location}: {key}: {message}", hint=hint)

    def validate(self, model: type[BaseModel], value: Any, where: tuple[Any, ...]) -> Any:
        if value is None:
            value = {}
        if not isinstance(value, Mapping):
            raise self.fail(where, f"expected a mapping, found {_type_name(value)}.")
        try:
            return model.model_validate(dict(value))
        except ValidationError as exc:
            raise self._from_validation(exc, where, model) from None

    def _from_validation(self, exc: ValidationError, where: tuple[Any, ...],
                         model: type[BaseModel] | None = None) -> InventoryError:
        errors = exc.errors()
        messages = []
        for err in errors[:5]:
            loc = where + tuple(err["loc"])
            line = line_of(self.data, loc)
            location = f"{self.path}:{line}" if line else str(self.path)
            known = _fields_at(model, tuple(err["loc"][:-1])) if err["type"] == "extra_forbidden" else []
            messages.append(f"{location}: {'.'.join(str(p) for p in loc)}: {self._explain(err, known)}")
        more = f"\n(and {len(errors) - 5} more)" if len(errors) > 5 else ""
        return InventoryError("\n".join(messages) + more,
                              hint="See inventory/example-fleet.yml for every field with a comment.")

    @staticmethod
    def _explain(err: Mapping[str, Any], known: list[str] | None = None) -> str:
        kind, value = err["type"], err.get("input")
        if kind == "extra_forbidden":
            key = err["loc"][-1] if err["loc"] else ""
            suggestion = did_you_mean(key, known or [])
            if suggestion:
                return f"unknown key '{key}'.{suggestion}"
            return (f"unknown key '{key}'; remove it or check the spelling"
                    + (f" (known keys here: {', '.join(known)})." if known else "."))
        if kind == "invalid_key":
            return f"the key {_short(value)} is {_type_name(value)}; keys are names (text)."
        if kind == "missing":
            return "required but missing."
        if kind == "literal_error":
            expected = str(err.get("ctx", {}).get("expected", ""))
            return (f"'{value}' is not allowed; expected one of {expected}."
                    + did_you_mean(value, re.findall(r"'([^']*)'", expected)))
        if kind in ("model_type", "model_attributes_type", "dict_type"):
            return f"expected a mapping, found {_type_name(value)} {_short(value)}."
        if kind == "list_type":
            return f"expected a list, found {_type_name(value)} {_short(value)}."
        if kind.startswith(("int_", "float_", "bool_", "string_", "dict_", "list_")) and "ctx" not in err:
            return f"{err['msg'].rstrip('.').lower()}, found {_type_name(value)} {_short(value)}."
        if kind == "value_error":
            return str(err["msg"]).removeprefix("Value error, ") + ("" if str(err["msg"]).endswith(".") else ".")
        return f"{err['msg']} (found {_short(value)})."

    # Paths ----------------------------------------------------------------------------------------
    def file_path(self, value: str | None) -> Path | None:
        if not value:
            return None
        expanded = Path(os.path.expanduser(value))
        return expanded if expanded.is_absolute() else (self.base / expanded)

    # Native ---------------------------------------------------------------------------------------
    def from_native(self) -> Inventory:
        for required in ("immich", "hosts"):
            if required not in self.data:
                others = [k for k in self.data if isinstance(k, str) and k not in NativeFile.model_fields]
                close = difflib.get_close_matches(required, others, n=1, cutoff=0.6)
                if close:
                    raise self.fail((close[0],), f"unknown key '{close[0]}' and no `{required}:` section. "
                                    f"Did you mean '{required}'?",
                                    hint=f"Rename `{close[0]}:` to `{required}:`.")
                raise self.fail((), f"missing `{required}:` section.",
                                hint="An inventory needs `immich:` (the server) and `hosts:` (the ML hosts); "
                                "see inventory/example-workstation.yml.")
        raw_hosts = self.data.get("hosts")
        if not isinstance(raw_hosts, Mapping) or not raw_hosts:
            raise self.fail(("hosts",), "expected a mapping of host name -> settings with at least one host.")
        top = {k: v for k, v in self.data.items() if k not in ("hosts", "defaults", "groups")}
        top.setdefault("hosts", {})
        try:
            native = NativeFile.model_validate({**top, "hosts": {}})
        except ValidationError as exc:
            raise self._from_validation(exc, (), NativeFile) from None
        defaults = self.validate(HostSettings, self.data.get("defaults"), ("defaults",))
        layered: dict[str, list[tuple[HostSettings, tuple[Any, ...]]]] = {}
        for name, settings in raw_hosts.items():
            self.check_name(name, ("hosts", name))
            layered[name] = [(defaults, ("defaults",)),
                             (self.validate(HostSettings, settings, ("hosts", name)), ("hosts", name))]
        groups = self.native_groups(set(raw_hosts))
        return self.finish("native", native.immich, native.ssh, layered, groups, native.state_dir)

    def native_groups(self, host_names: set[str]) -> dict[str, tuple[str, ...]]:
        raw = self.data.get("groups") or {}
        if not isinstance(raw, Mapping):
            raise self.fail(("groups",), "expected a mapping of group name -> list of host names.")
        groups = {}
        for group, members in raw.items():
            self.check_name(group, ("groups", group))
            if group in host_names or group == "all":
                raise self.fail(("groups", group), f"'{group}' is already a host name (or reserved); "
                                "rename the group.")
            if not isinstance(members, list):
                raise self.fail(("groups", group), f"expected a list of host names, found {_type_name(members)}.")
            for i, member in enumerate(members):
                if not isinstance(member, str):
                    raise self.fail(("groups", group, i), f"expected a host name, found {_type_name(member)} "
                                    f"{_short(member)}.", hint=f"Write the group as a list of names, e.g. "
                                    f"`{group}: [{', '.join(sorted(host_names)[:2])}]`.")
                if member not in host_names:
                    raise self.fail(("groups", group, i), f"'{member}' is not a host in `hosts:`."
                                    + did_you_mean(member, host_names),
                                    hint=f"Known hosts: {', '.join(sorted(host_names))}.")
            groups[str(group)] = tuple(dict.fromkeys(str(m) for m in members))
        return groups

    def check_name(self, name: Any, where: tuple[Any, ...]) -> None:
        if isinstance(name, bool) or name is None:
            raise self.fail(where, f"'{name}' is not a valid name: YAML reads an unquoted yes/no/on/off/true/false "
                            "or ~ as a boolean or nothing.", hint="Quote the name, or choose another one.")
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise self.fail(where, f"'{name}' is not a valid name; use letters, digits, '-', '_' and '.'.")

    # Ansible --------------------------------------------------------------------------------------
    _ANSIBLE_ALIASES = {"ansible_host": "address", "ansible_user": "ssh_user", "ansible_port": "ssh_port",
                        "ansible_ssh_private_key_file": "ssh_key", "ansible_ssh_user": "ssh_user",
                        "ansible_ssh_port": "ssh_port", "ansible_ssh_host": "address"}

    def ansible_vars(self, raw: Any, where: tuple[Any, ...]) -> tuple[dict[str, Any], dict[str, tuple]]:
        """Our settings out of an Ansible vars mapping, with the source path of each one."""
        if raw is None:
            return {}, {}
        if not isinstance(raw, Mapping):
            raise self.fail(where, f"expected a mapping of variables, found {_type_name(raw)}.")
        fields = set(HostSettings.model_fields)
        picked: dict[str, Any] = {}
        origin: dict[str, tuple] = {}
        for key, value in raw.items():
            name = self._ANSIBLE_ALIASES.get(key) or (key[len("immich_remote_"):] if str(key).startswith(
                "immich_remote_") else key)
            if str(key).startswith("immich_remote_") and name not in fields and name != "ssh":
                raise self.fail(where + (key,), f"unknown setting '{key}'."
                                + did_you_mean(key, [f"immich_remote_{f}" for f in (*fields, "ssh")]),
                                hint="Settings prefixed immich_remote_ are immich-remote's own: "
                                f"{', '.join(sorted(fields))} (see inventory/example-fleet.yml).")
            if name in fields:
                picked[name] = value
                origin[name] = where + (key,)
        return picked, origin

    def from_ansible(self) -> Inventory:
        root = self.data["all"]
        if not isinstance(root, Mapping):
            raise self.fail(("all",), f"expected a mapping with vars/hosts/children, found {_type_name(root)}.")
        all_vars = root.get("vars") or {}
        if not isinstance(all_vars, Mapping):
            raise self.fail(("all", "vars"), "expected a mapping of variables.")
        if "immich" not in all_vars:
            raise self.fail(("all", "vars"), "missing `immich:` (the Immich server: url, api_key_env, ...)."
                            + did_you_mean("immich", [k for k in all_vars if isinstance(k, str)]),
                            hint="Add under all.vars: `immich: {url: http://immich.lan:2283, "
                            "api_key_env: IMMICH_API_KEY}`.")
        immich = self.validate(ImmichSettings, all_vars["immich"], ("all", "vars", "immich"))
        ssh = self.validate(SSHSettings, all_vars.get("immich_remote_ssh"), ("all", "vars", "immich_remote_ssh"))
        host_layers: dict[str, list[tuple[HostSettings, tuple]]] = {}
        memberships: dict[str, list[str]] = {}
        order: list[str] = []

        def visit(group: str | None, node: Any, where: tuple, inherited: list[tuple[HostSettings, tuple]]) -> set[str]:
            """Collect the hosts under `node` (descendants included) with their layered settings."""
            if node is None:
                return set()
            if not isinstance(node, Mapping):
                raise self.fail(where, f"expected a mapping with hosts/vars/children, found {_type_name(node)}.")
            unknown = set(node) - {"hosts", "vars", "children"}
            if unknown:
                key = sorted(unknown, key=str)[0]
                raise self.fail(where + (key,), f"unknown key '{key}'; an Ansible group holds only hosts, vars and "
                                "children." + did_you_mean(key, ["hosts", "vars", "children"]))
            picked, origin = self.ansible_vars(node.get("vars"), where + ("vars",))
            layers = inherited + ([(self.validate_picked(picked, origin, where + ("vars",)), where + ("vars",))]
                                  if picked and group else [])
            hosts = node.get("hosts") or {}
            if not isinstance(hosts, Mapping):
                raise self.fail(where + ("hosts",), "expected a mapping of host name -> variables.")
            members: set[str] = set()
            for name, host_vars in hosts.items():
                hw = where + ("hosts", name)
                self.check_name(name, hw)
                if name not in host_layers:
                    order.append(name)
                    host_layers[name] = []
                picked_h, origin_h = self.ansible_vars(host_vars, hw)
                host_layers[name].extend(layers)
                host_layers[name].append((self.validate_picked(picked_h, origin_h, hw), hw))
                members.add(name)
            children = node.get("children") or {}
            if not isinstance(children, Mapping):
                raise self.fail(where + ("children",), "expected a mapping of group name -> group.")
            for child, child_node in children.items():
                self.check_name(child, where + ("children", child))
                members |= visit(str(child), child_node, where + ("children", child), layers)
            if group:
                memberships.setdefault(group, []).extend(sorted(members, key=order.index))
            return members

        visit(None, root, ("all",), [])
        if not host_layers:
            raise self.fail(("all",), "no hosts found under all.hosts or all.children.*.hosts.")
        picked_all, origin_all = self.ansible_vars(all_vars, ("all", "vars"))
        base = self.validate_picked(picked_all, origin_all, ("all", "vars"))
        layered = {name: [(base, ("all", "vars"))] + self._dedupe(host_layers[name]) for name in order}
        groups = {g: tuple(dict.fromkeys(m)) for g, m in memberships.items()}
        clash = set(groups) & set(layered)
        if clash:
            raise self.fail(("all",), f"'{sorted(clash)[0]}' is both a group and a host; rename one.")
        return self.finish("ansible", immich, ssh, layered, groups, None)

    @staticmethod
    def _dedupe(layers: list[tuple[HostSettings, tuple]]) -> list[tuple[HostSettings, tuple]]:
        seen, result = set(), []
        for settings, where in layers:
            if where not in seen:
                seen.add(where)
                result.append((settings, where))
        return result

    def validate_picked(self, picked: dict[str, Any], origin: dict[str, tuple], where: tuple) -> HostSettings:
        try:
            return HostSettings.model_validate(picked)
        except ValidationError as exc:
            first = exc.errors()[0]
            field_name = first["loc"][0] if first["loc"] else None
            path = origin.get(field_name, where) + tuple(first["loc"][1:])
            raise self.fail(path, self._explain(first)) from None

    # Merge and resolve -------------------------------------------------------------------------------
    def finish(self, fmt: str, immich: ImmichSettings, ssh: SSHSettings,
               layered: dict[str, list[tuple[HostSettings, tuple]]], groups: dict[str, tuple[str, ...]],
               state_dir: str | None) -> Inventory:
        server = self.resolve_immich(immich, fmt)
        host_groups = {name: tuple(g for g, members in groups.items() if name in members) for name in layered}
        hosts = tuple(self.resolve_host(name, layers, host_groups[name], i)
                      for i, (name, layers) in enumerate(layered.items()))
        self.check_unique(hosts, layered)
        return Inventory(
            path=self.path, format=fmt, immich=server,
            ssh=SSHOptions(self.file_path(ssh.known_hosts), self.file_path(ssh.config), ssh.connect_timeout,
                           ssh.command_timeout, ssh.max_handshakes),
            hosts=hosts, groups=groups, state_dir=self.file_path(state_dir))

    def resolve_immich(self, s: ImmichSettings, fmt: str) -> ImmichServer:
        where = ("all", "vars", "immich") if fmt == "ansible" else ("immich",)
        sources = [k for k in ("api_key_env", "api_key_file", "api_key_command") if getattr(s, k)]
        if len(sources) > 1:
            raise self.fail(where + (sources[1],), f"give only one of api_key_env, api_key_file, api_key_command "
                            f"(found {', '.join(sources)}).")
        try:
            url = normalise_url(s.url, where="url")
        except InputError as exc:
            raise self.fail(where + ("url",), exc.message.removeprefix("url: "), exc.hint) from None
        try:
            local = normalise_url(s.local_ml_url, where="local_ml_url")
        except InputError as exc:
            raise self.fail(where + ("local_ml_url",), exc.message.removeprefix("local_ml_url: "), exc.hint) from None
        return ImmichServer(
            url=url, api_key_env=s.api_key_env or (None if sources else DEFAULT_API_KEY_ENV),
            api_key_file=self.file_path(s.api_key_file), api_key_command=s.api_key_command,
            local_ml_url=local, fallback=s.fallback, timeout=s.timeout, verify_tls=s.verify_tls,
            ssh_host=s.ssh_host, ssh_user=s.ssh_user, ssh_port=s.ssh_port, ssh_key=self.file_path(s.ssh_key))

    def resolve_host(self, name: str, layers: list[tuple[HostSettings, tuple]], groups: tuple[str, ...],
                     index: int) -> Host:
        merged: dict[str, Any] = {}
        origin: dict[str, tuple] = {}
        for settings, where in layers:
            for key in settings.model_fields_set:
                value = getattr(settings, key)
                if key == "env" and value is not None:
                    merged["env"] = {**(merged.get("env") or {}), **value}
                else:
                    merged[key] = value
                origin[key] = where + (key,)
        host_where = layers[-1][1]

        def at(key: str) -> tuple:
            return origin.get(key, host_where)

        address = merged.get("address")
        if not address or not address.strip():
            raise self.fail(host_where, "missing `address` (the IP or DNS name to reach this host over SSH).")
        address = self.check_address(address.strip(), at("address"), "address")
        accel = merged.get("accel") or "auto"
        arch = merged.get("arch")
        if arch and accel != "auto" and arch not in BACKENDS[accel].platforms:
            ok = ", ".join(n for n, b in BACKENDS.items() if arch in b.platforms)
            raise self.fail(at("accel"), f"accelerator '{accel}' has no image for {arch} (Immich publishes it for "
                            f"{'/'.join(BACKENDS[accel].platforms)} only).", hint=f"For {arch} use one of: {ok}.")
        bind = merged.get("bind_address")
        if not bind:
            if classify_address(address) == "name":
                raise self.fail(at("address"), f"address '{address}' is a name, so the ML port's bind address "
                                "cannot be derived.", hint="Set bind_address to the host's private IP that Immich "
                                "reaches (e.g. its LAN or Tailscale address); immich-remote never binds 0.0.0.0 "
                                "on its own.")
            bind = address
        elif classify_address(bind) == "name":
            raise self.fail(at("bind_address"), f"'{bind}' is not an IP address; Docker publishes ports on IPs.",
                            hint="Give the host's private IP that Immich reaches, e.g. 192.168.1.50 or fd00::50.")
        else:
            bind = self.check_address(bind.strip(), at("bind_address"), "bind_address")
        ml_port = merged.get("ml_port") or ML_CONTAINER_PORT
        raw_url = merged.get("url") or derive_url(address, ml_port)
        try:
            url = normalise_url(raw_url, where="url")
        except InputError as exc:
            raise self.fail(at("url"), exc.message.removeprefix("url: "), exc.hint) from None
        return Host(
            name=name, address=address, ssh_user=merged.get("ssh_user"), ssh_port=merged.get("ssh_port"),
            ssh_key=self.file_path(merged.get("ssh_key")), accel=accel, arch=arch, bind_address=bind,
            ml_port=ml_port, url=url, remote_dir=merged.get("remote_dir") or DEFAULT_REMOTE_DIR,
            model_cache=merged.get("model_cache") or DEFAULT_MODEL_CACHE, env=dict(merged.get("env") or {}),
            registry=merged.get("registry"), image_repository=merged.get("image_repository"),
            priority=DEFAULT_PRIORITY if merged.get("priority") is None else merged["priority"],
            health_timeout=merged.get("health_timeout") or 180.0,
            health_interval=merged.get("health_interval") or 10.0,
            groups=groups, index=index)

    def check_address(self, address: str, where: tuple, key: str) -> str:
        """An IP (IPv6 without brackets: they belong in URLs only) or a DNS name."""
        ip = parse_ip(address)
        if ip is not None:
            if address.startswith("[") != address.endswith("]"):
                raise self.fail(where, f"'{address}' has an unbalanced bracket.", hint=f"Write {key}: {ip}.")
            return str(ip)
        if ":" in address:
            raise self.fail(where, f"'{address}' is not an IP address or a host name (a port does not belong "
                            f"in {key}).", hint="Set the SSH port with ssh_port and the ML port with ml_port; "
                            "an IPv6 address goes in as it is, without a port, e.g. fd00::50.")
        if not _HOSTNAME_RE.match(address):
            raise self.fail(where, f"'{address}' is not an IP address or a host name.",
                            hint="Use an IPv4 address (192.168.1.50), an IPv6 address (fd00::50) or a DNS name of "
                            "letters, digits, '-' and '.' (internationalised names in their xn-- form).")
        return address

    def check_unique(self, hosts: tuple[Host, ...], layered: dict[str, list]) -> None:
        seen_url: dict[str, str] = {}
        seen_endpoint: dict[tuple, str] = {}
        for host in hosts:
            where = layered[host.name][-1][1]
            if host.url in seen_url:
                raise self.fail(where, f"URL {host.url} is also host '{seen_url[host.url]}''s URL; "
                                "each host needs its own.", hint="Give one of them another address or ml_port, "
                                "or remove the duplicate entry.")
            seen_url[host.url] = host.name
            endpoint = (host.address, host.ssh_port or 22, host.remote_dir, host.bind_address, host.ml_port)
            if endpoint in seen_endpoint:
                raise self.fail(where, f"same address, SSH port, directory and ML port as host "
                                f"'{seen_endpoint[endpoint]}': both would deploy to the same place.",
                                hint="Give one of them another remote_dir and ml_port, or remove the duplicate.")
            seen_endpoint[endpoint] = host.name
