"""What every command gets: `App` (the global options, the output, the inventory loaded on first use)
and `pass_app`, the click decorator that hands it to a command.

Light on purpose: the inventory (pydantic) and rich are imported only when a command uses them, so
`immich-remote --help` stays fast.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import click

from .errors import InputError

if TYPE_CHECKING:
    from .inventory import Host, Inventory
    from .output import Output


@dataclass
class App:
    """What every command gets: the global options and the lazily loaded inventory."""

    inventory_path: Path | None  # None: $IMMICH_REMOTE_INVENTORY or inventory/hosts.yml
    limit: tuple[str, ...]
    out: Output
    _inventory: Inventory | None = field(default=None, repr=False)

    @property
    def json(self) -> bool:
        return self.out.json_mode

    @property
    def inventory(self) -> Inventory:
        if self._inventory is None:
            from .inventory import default_inventory_path, load_inventory

            self._inventory = load_inventory(self.inventory_path or default_inventory_path())
        return self._inventory

    def hosts(self, names: tuple[str, ...] = ()) -> list[Host]:
        """Hosts named on the command line (all when none), narrowed by --limit."""
        chosen = self.inventory.select(names)
        if self.limit:
            allowed = {h.name for h in self.inventory.select(self.limit)}
            chosen = [h for h in chosen if h.name in allowed]
            if not chosen:
                raise InputError(f"No host is both in {', '.join(names)} and in --limit {','.join(self.limit)}.")
        return chosen


pass_app = click.make_pass_decorator(App)
