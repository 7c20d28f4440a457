"""An Ansible-style inventory: `all:` with `vars`, `hosts` and `children`, read as it is.

`ansible_host`, `ansible_user`, `ansible_port` and `ansible_ssh_private_key_file` (and their older
`ansible_ssh_*` spellings) map to our fields; our own settings may be given bare or prefixed
`immich_remote_`; other Ansible variables are ignored. The server goes under `all.vars.immich`, the SSH
options under `all.vars.immich_remote_ssh`. A host's layers: `all.vars` < the vars of each group above it,
outermost first < the host's own variables.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from .messages import did_you_mean, explain, type_name
from .model import Inventory
from .resolve import Layers, build_inventory
from .schema import HostSettings, ImmichSettings, SSHSettings
from .source import Source, Where

ANSIBLE_ALIASES = {"ansible_host": "address", "ansible_user": "ssh_user", "ansible_port": "ssh_port",
                   "ansible_ssh_private_key_file": "ssh_key", "ansible_ssh_user": "ssh_user",
                   "ansible_ssh_port": "ssh_port", "ansible_ssh_host": "address"}
PREFIX = "immich_remote_"
_GROUP_KEYS = ["hosts", "vars", "children"]


def from_ansible(src: Source) -> Inventory:
    root = src.data["all"]
    if not isinstance(root, Mapping):
        raise src.fail(("all",), f"expected a mapping with vars/hosts/children, found {type_name(root)}.")
    all_vars = root.get("vars") or {}
    if not isinstance(all_vars, Mapping):
        raise src.fail(("all", "vars"), "expected a mapping of variables.")
    if "immich" not in all_vars:
        raise src.fail(("all", "vars"), "missing `immich:` (the Immich server: url, api_key_env, ...)."
                       + did_you_mean("immich", [k for k in all_vars if isinstance(k, str)]),
                       hint="Add under all.vars: `immich: {url: http://immich.lan:2283, "
                       "api_key_env: IMMICH_API_KEY}`.")
    immich = src.validate(ImmichSettings, all_vars["immich"], ("all", "vars", "immich"))
    ssh = src.validate(SSHSettings, all_vars.get("immich_remote_ssh"), ("all", "vars", "immich_remote_ssh"))
    tree = _Tree(src)
    tree.visit(None, root, ("all",), [])
    if not tree.layers:
        raise src.fail(("all",), "no hosts found under all.hosts or all.children.*.hosts.")
    picked_all, origin_all = ansible_vars(src, all_vars, ("all", "vars"))
    base = validate_picked(src, picked_all, origin_all, ("all", "vars"))
    layered = {name: [(base, ("all", "vars"))] + _dedupe(tree.layers[name]) for name in tree.order}
    groups = {g: tuple(dict.fromkeys(m)) for g, m in tree.memberships.items()}
    clash = set(groups) & set(layered)
    if clash:
        raise src.fail(("all",), f"'{sorted(clash)[0]}' is both a group and a host; rename one.")
    return build_inventory(src, "ansible", immich, ssh, layered, groups, None, all_vars.get(f"{PREFIX}pools"),
                           ("all", "vars", f"{PREFIX}pools"))


def ansible_vars(src: Source, raw: Any, where: Where) -> tuple[dict[str, Any], dict[str, Where]]:
    """Our settings out of an Ansible vars mapping, with the source path of each one."""
    if raw is None:
        return {}, {}
    if not isinstance(raw, Mapping):
        raise src.fail(where, f"expected a mapping of variables, found {type_name(raw)}.")
    fields = set(HostSettings.model_fields)
    picked: dict[str, Any] = {}
    origin: dict[str, Where] = {}
    for key, value in raw.items():
        prefixed = str(key).startswith(PREFIX)
        name = ANSIBLE_ALIASES.get(key) or (key[len(PREFIX):] if prefixed else key)
        if prefixed and name not in fields and name not in ("ssh", "pools"):
            raise src.fail(where + (key,), f"unknown setting '{key}'."
                           + did_you_mean(key, [f"{PREFIX}{f}" for f in (*fields, "ssh", "pools")]),
                           hint=f"Settings prefixed {PREFIX} are immich-remote's own: "
                           f"{', '.join(sorted(fields))} (see inventory/example-fleet.yml).")
        if name in fields:
            picked[name] = value
            origin[name] = where + (key,)
    return picked, origin


def validate_picked(src: Source, picked: dict[str, Any], origin: dict[str, Where], where: Where) -> HostSettings:
    """The picked settings as HostSettings; the first error points at the variable it came from."""
    try:
        return HostSettings.model_validate(picked)
    except ValidationError as exc:
        first = exc.errors()[0]
        field_name = first["loc"][0] if first["loc"] else None
        path = origin.get(field_name, where) + tuple(first["loc"][1:])
        raise src.fail(path, explain(first)) from None


def _dedupe(layers: Layers) -> Layers:
    """A host reached through two paths of groups gets each group's vars once, at the first place."""
    seen, result = set(), []
    for settings, where in layers:
        if where not in seen:
            seen.add(where)
            result.append((settings, where))
    return result


class _Tree:
    """Walks `all:` and its children: each host's layers of settings, each group's members (descendants too)."""

    def __init__(self, src: Source) -> None:
        self.src = src
        self.layers: dict[str, Layers] = {}
        self.memberships: dict[str, list[str]] = {}
        self.order: list[str] = []  # hosts in the order they first appear

    def visit(self, group: str | None, node: Any, where: Where, inherited: Layers) -> set[str]:
        """Collect the hosts under `node` (descendants included) with their layered settings."""
        if node is None:
            return set()
        self._check_group(node, where)
        picked, origin = ansible_vars(self.src, node.get("vars"), where + ("vars",))
        layers = inherited + ([(validate_picked(self.src, picked, origin, where + ("vars",)), where + ("vars",))]
                              if picked and group else [])
        members = self._add_hosts(node, where, layers)
        children = node.get("children") or {}
        if not isinstance(children, Mapping):
            raise self.src.fail(where + ("children",), "expected a mapping of group name -> group.")
        for child, child_node in children.items():
            self.src.check_name(child, where + ("children", child))
            members |= self.visit(str(child), child_node, where + ("children", child), layers)
        if group:
            self.memberships.setdefault(group, []).extend(sorted(members, key=self.order.index))
        return members

    def _check_group(self, node: Any, where: Where) -> None:
        if not isinstance(node, Mapping):
            raise self.src.fail(where, f"expected a mapping with hosts/vars/children, found {type_name(node)}.")
        unknown = set(node) - set(_GROUP_KEYS)
        if unknown:
            key = sorted(unknown, key=str)[0]
            raise self.src.fail(where + (key,), f"unknown key '{key}'; an Ansible group holds only hosts, vars "
                                "and children." + did_you_mean(key, _GROUP_KEYS))

    def _add_hosts(self, node: Mapping[str, Any], where: Where, layers: Layers) -> set[str]:
        """The group's own hosts, each given the group's layers and then its own variables."""
        hosts = node.get("hosts") or {}
        if not isinstance(hosts, Mapping):
            raise self.src.fail(where + ("hosts",), "expected a mapping of host name -> variables.")
        members: set[str] = set()
        for name, host_vars in hosts.items():
            hw = where + ("hosts", name)
            self.src.check_name(name, hw)
            if name not in self.layers:
                self.order.append(name)
                self.layers[name] = []
            picked, origin = ansible_vars(self.src, host_vars, hw)
            self.layers[name].extend(layers)
            self.layers[name].append((validate_picked(self.src, picked, origin, hw), hw))
            members.add(name)
        return members
