"""Where the inventory is, and reading it: which format a file is in, and handing it to that format's reader."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import InventoryError
from ..yamlsource import load_yaml
from .ansible import from_ansible
from .messages import type_name
from .model import Inventory
from .native import from_native
from .source import Source

DEFAULT_INVENTORY = "inventory/hosts.yml"


def default_inventory_path() -> Path:
    return Path(os.environ.get("IMMICH_REMOTE_INVENTORY") or DEFAULT_INVENTORY)


def load_inventory(path: Path | str) -> Inventory:
    """Read, validate and resolve an inventory file. Raises InventoryError (exit 2) on any problem."""
    path = Path(path)
    data = load_yaml(path)
    if not isinstance(data, dict):
        raise InventoryError(f"{path}: expected a mapping at the top (with `immich:` and `hosts:`), "
                             f"found {type_name(data) if data is not None else 'an empty file'}.",
                             hint="Start from inventory/example-workstation.yml.")
    if "all" in data and "hosts" not in data and "immich" not in data:
        return from_ansible(Source(path, data))
    return from_native(Source(path, data))
