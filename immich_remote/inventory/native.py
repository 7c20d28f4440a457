"""The native format: `immich:`, `ssh:`, `defaults:`, `hosts:`, `groups:`, `state_dir:` (see inventory/*.yml).

Each host has two layers of settings: `defaults`, then its own entry.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping

from pydantic import ValidationError

from .messages import did_you_mean, short, type_name
from .model import Inventory
from .resolve import Layers, build_inventory
from .schema import HostSettings, NativeFile
from .source import Source


def from_native(src: Source) -> Inventory:
    _check_sections(src)
    raw_hosts = src.data.get("hosts")
    if not isinstance(raw_hosts, Mapping) or not raw_hosts:
        raise src.fail(("hosts",), "expected a mapping of host name -> settings with at least one host.")
    top = {k: v for k, v in src.data.items() if k not in ("hosts", "defaults", "groups")}
    try:
        native = NativeFile.model_validate({**top, "hosts": {}})
    except ValidationError as exc:
        raise src.from_validation(exc, (), NativeFile) from None
    defaults = src.validate(HostSettings, src.data.get("defaults"), ("defaults",))
    layered: dict[str, Layers] = {}
    for name, settings in raw_hosts.items():
        src.check_name(name, ("hosts", name))
        layered[name] = [(defaults, ("defaults",)),
                         (src.validate(HostSettings, settings, ("hosts", name)), ("hosts", name))]
    groups = native_groups(src, set(raw_hosts))
    return build_inventory(src, "native", native.immich, native.ssh, layered, groups, native.state_dir,
                           src.data.get("pools"))


def _check_sections(src: Source) -> None:
    """`immich:` and `hosts:` are required; a near miss (`host:`) is named as such."""
    for required in ("immich", "hosts"):
        if required not in src.data:
            others = [k for k in src.data if isinstance(k, str) and k not in NativeFile.model_fields]
            close = difflib.get_close_matches(required, others, n=1, cutoff=0.6)
            if close:
                raise src.fail((close[0],), f"unknown key '{close[0]}' and no `{required}:` section. "
                               f"Did you mean '{required}'?",
                               hint=f"Rename `{close[0]}:` to `{required}:`.")
            raise src.fail((), f"missing `{required}:` section.",
                           hint="An inventory needs `immich:` (the server) and `hosts:` (the ML hosts); "
                           "see inventory/example-workstation.yml.")


def native_groups(src: Source, host_names: set[str]) -> dict[str, tuple[str, ...]]:
    """`groups:` as group name -> host names, each group a list of hosts defined in `hosts:`."""
    raw = src.data.get("groups") or {}
    if not isinstance(raw, Mapping):
        raise src.fail(("groups",), "expected a mapping of group name -> list of host names.")
    groups = {}
    for group, members in raw.items():
        src.check_name(group, ("groups", group))
        if group in host_names or group == "all":
            raise src.fail(("groups", group), f"'{group}' is already a host name (or reserved); "
                           "rename the group.")
        if not isinstance(members, list):
            raise src.fail(("groups", group), f"expected a list of host names, found {type_name(members)}.")
        for i, member in enumerate(members):
            if not isinstance(member, str):
                raise src.fail(("groups", group, i), f"expected a host name, found {type_name(member)} "
                               f"{short(member)}.", hint=f"Write the group as a list of names, e.g. "
                               f"`{group}: [{', '.join(sorted(host_names)[:2])}]`.")
            if member not in host_names:
                raise src.fail(("groups", group, i), f"'{member}' is not a host in `hosts:`."
                               + did_you_mean(member, host_names),
                               hint=f"Known hosts: {', '.join(sorted(host_names))}.")
        groups[str(group)] = tuple(dict.fromkeys(str(m) for m in members))
    return groups
