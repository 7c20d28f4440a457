"""`immich-remote inventory check` (alias `validate`): parse, validate and show the resolved inventory."""

from __future__ import annotations

import click

from ..app import App, pass_app
from ..options import json_option


@click.group("inventory")
def inventory_group() -> None:
    """Inspect the inventory."""


@inventory_group.command("check")
@json_option
@pass_app
def inventory_check(app: App) -> None:
    """Parse and validate the inventory, and show every host with its resolved settings.

    \b
    Example:
      immich-remote -i inventory/example-fleet.yml inventory check
    Exit 0 when valid, 2 with the file, line and key of the first problem otherwise.
    """
    inventory_report(app)


inventory_group.add_command(inventory_check, "validate")

COMMANDS = (inventory_group,)


def inventory_report(app: App) -> None:
    from ..plan import exposure_warnings, ssh_target

    inv = app.inventory
    hosts = app.hosts()
    warnings = {h.name: exposure_warnings(h) for h in hosts}
    if app.json:
        app.out.data({
            "inventory": str(inv.path),
            "format": inv.format,
            "valid": True,
            "immich": {"url": inv.immich.url, "api_key_source": inv.immich.api_key_source,
                       "local_ml_url": inv.immich.local_ml_url, "fallback": inv.immich.fallback,
                       "ssh_host": inv.immich.ssh_host},
            "hosts": [{"name": h.name, "ssh": ssh_target(h), "accel": h.accel, "arch": h.arch,
                       "bind_address": h.bind_address, "ml_port": h.ml_port, "url": h.url,
                       "remote_dir": h.remote_dir, "model_cache": h.model_cache, "env": h.env,
                       "registry": h.registry, "image_repository": h.image_repository,
                       "priority": h.priority, "groups": list(h.groups), "warnings": warnings[h.name]}
                      for h in hosts],
            "groups": {g: list(m) for g, m in inv.groups.items()},
        })
        return
    out = app.out
    out.line(f"{inv.path}: valid ({inv.format} format, {len(inv.hosts)} host{'s' if len(inv.hosts) != 1 else ''})",
             style="green")
    out.line(f"Immich server {inv.immich.url}; API key from {inv.immich.api_key_source}; "
             f"fallback {inv.immich.fallback} ({inv.immich.local_ml_url})")
    out.table(["host", "ssh", "accel", "bind", "url", "priority", "groups"],
              [(h.name, ssh_target(h), h.accel, f"{h.bind_address}:{h.ml_port}", h.url, h.priority,
                ",".join(h.groups)) for h in hosts])
    for name, items in warnings.items():
        for warning in items:
            out.warn(f"{name}: {warning}")
