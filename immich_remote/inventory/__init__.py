"""The inventory: one YAML file describing the Immich server and the ML hosts.

Two formats are read, both into the same validated object graph (`Inventory`):

- the native format (`immich:`, `ssh:`, `defaults:`, `hosts:`, `groups:`), see inventory/*.yml;
- an Ansible-style inventory (`all:` with `vars`, `hosts`, `children`), where `ansible_host`,
  `ansible_user`, `ansible_port` and `ansible_ssh_private_key_file` map to our fields and our own
  settings may be given bare or prefixed `immich_remote_`; other Ansible variables are ignored.

Settings merge per host, later wins: `defaults` (or `all.vars`) < group vars < the host's entry.
Every error names the file, the line, the key path, and what was expected. The rest of the code
never sees raw YAML.

The modules, each importing only those above it:

- schema.py: the pydantic models of the YAML and their single-value checks (durations, env, ...);
- model.py: the resolved dataclasses (Inventory, Host, ImmichServer, SSHOptions);
- messages.py: wording of errors (type names, suggestions, pydantic errors as sentences);
- source.py: the file being read: line-precise errors, validation, relative paths, names;
- pools.py: `pools:` checked against the resolved hosts, each balancer as a deploy target;
- resolve.py: layers of settings -> Host / ImmichServer / Inventory, defaults, derived URL and bind
  address, uniqueness checks;
- native.py and ansible.py: the two formats, each ending in resolve.build_inventory;
- load.py: the default path, and load_inventory, which picks the format.
"""

from __future__ import annotations

from .load import DEFAULT_INVENTORY, default_inventory_path, load_inventory
from .messages import did_you_mean
from .model import Host, ImmichServer, Inventory, Pool, PoolMember, SSHOptions
from .resolve import DEFAULT_API_KEY_ENV, DEFAULT_MODEL_CACHE, DEFAULT_PRIORITY, DEFAULT_REMOTE_DIR
from .schema import HostSettings, ImmichSettings, NativeFile, SSHSettings, parse_duration

__all__ = [
    "DEFAULT_API_KEY_ENV",
    "DEFAULT_INVENTORY",
    "DEFAULT_MODEL_CACHE",
    "DEFAULT_PRIORITY",
    "DEFAULT_REMOTE_DIR",
    "Host",
    "HostSettings",
    "ImmichServer",
    "ImmichSettings",
    "Inventory",
    "NativeFile",
    "Pool",
    "PoolMember",
    "SSHOptions",
    "SSHSettings",
    "default_inventory_path",
    "did_you_mean",
    "load_inventory",
    "parse_duration",
]
