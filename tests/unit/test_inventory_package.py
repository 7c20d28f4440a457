"""The inventory package's shape, and the merge of settings layers that both formats rely on."""

from __future__ import annotations

import ast
from pathlib import Path

import immich_remote.inventory as inventory
from immich_remote.inventory.resolve import merge_layers
from immich_remote.inventory.schema import HostSettings

PACKAGE = Path(inventory.__file__).parent
# What the rest of immich-remote and the tests import from immich_remote.inventory.
USED_NAMES = {"Host", "HostSettings", "ImmichServer", "ImmichSettings", "Inventory", "SSHOptions", "SSHSettings",
              "default_inventory_path", "load_inventory", "parse_duration"}
# The only modules outside the package that the inventory may import (none of them imports it back).
ALLOWED_OUTSIDE = {"errors", "urls", "hwaccel", "yamlsource", "names"}


def test_the_package_exports_every_name_used_elsewhere():
    assert set(inventory.__all__) >= USED_NAMES
    for name in inventory.__all__:
        assert hasattr(inventory, name), name


def test_each_module_is_small():
    sizes = {p.name: len(p.read_text().splitlines()) for p in PACKAGE.glob("*.py")}
    assert len(sizes) > 5
    assert max(sizes.values()) <= 300, sizes


def test_the_package_imports_only_leaf_modules_from_outside():
    for path in PACKAGE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level > 1:
                assert node.level == 2 and (node.module or "") in ALLOWED_OUTSIDE, (path.name, node.module)
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                assert not (node.module or "").startswith("immich_remote"), (path.name, node.module)
            elif isinstance(node, ast.Import):
                assert not any(a.name.startswith("immich_remote") for a in node.names), path.name


def test_later_layers_win_key_by_key_and_env_merges_per_variable():
    defaults = HostSettings(address="10.0.0.1", ml_port=3004, env={"A": "1", "B": "2"})
    group = HostSettings(ml_port=3005, env={"B": "3"})
    host = HostSettings(address="10.0.0.9", env={"C": "4"})
    merged = merge_layers([(defaults, ("defaults",)), (group, ("g", "vars")), (host, ("hosts", "h"))])
    assert merged.get("address") == "10.0.0.9" and merged.get("ml_port") == 3005
    assert merged.get("env") == {"A": "1", "B": "3", "C": "4"}
    assert merged.at("ml_port") == ("g", "vars", "ml_port")
    assert merged.at("env") == ("hosts", "h", "env")
    assert merged.at("url") == ("hosts", "h")  # unset: the host's own entry
    assert merged.get("url") is None


def test_an_explicit_null_resets_a_setting_from_a_lower_layer():
    merged = merge_layers([(HostSettings(remote_dir="/srv/ml", env={"A": "1"}), ("defaults",)),
                           (HostSettings(remote_dir=None, env=None), ("hosts", "h"))])
    assert merged.get("remote_dir") is None
    assert merged.get("env") is None
