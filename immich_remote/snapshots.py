"""Local records: a timestamped snapshot of everything a command is about to change.

Each snapshot directory holds Immich's whole config as read before the change (it contains
secrets such as OAuth and SMTP passwords, so directories are 0700 and files 0600), each host's
remote files as they were, and `meta.json` (command, who, when, URL lists before and after,
per-host results). `config restore` and `rollback` read them back.

Where: $IMMICH_REMOTE_STATE_DIR, else the inventory's `state_dir`, else
$XDG_STATE_HOME/immich-remote/<inventory name>-<hash of its path> (~/.local/state/...).
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import shutil
import socket
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .errors import InputError
from .inventory import Inventory


def who() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def stamp(moment: datetime | None = None) -> str:
    """A sortable, filesystem-safe UTC timestamp: 20261127T101500Z."""
    return (moment or utc_now()).strftime("%Y%m%dT%H%M%SZ")


def state_root(inventory: Inventory) -> Path:
    if os.environ.get("IMMICH_REMOTE_STATE_DIR"):
        return Path(os.environ["IMMICH_REMOTE_STATE_DIR"]).expanduser()
    if inventory.state_dir:
        return inventory.state_dir
    base = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    digest = hashlib.sha1(str(inventory.path.resolve()).encode()).hexdigest()[:8]
    return base / "immich-remote" / f"{inventory.path.stem}-{digest}"


def _private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.chmod(0o700)
    return path


def _private_write(path: Path, data: bytes) -> None:
    _private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


@dataclass
class Snapshot:
    path: Path

    @property
    def name(self) -> str:
        return self.path.name

    def write_json(self, relative: str, data: Any) -> None:
        _private_write(self.path / relative, (json.dumps(data, indent=2) + "\n").encode())

    def write_bytes(self, relative: str, data: bytes) -> None:
        _private_write(self.path / relative, data)

    def read_json(self, relative: str) -> Any:
        try:
            return json.loads((self.path / relative).read_text())
        except FileNotFoundError:
            return None

    def update_meta(self, **fields: Any) -> None:
        meta = self.read_json("meta.json") or {}
        meta.update(fields)
        self.write_json("meta.json", meta)

    def discard(self) -> None:
        """Drop a snapshot of a run that changed nothing (so the list holds only real changes)."""
        shutil.rmtree(self.path, ignore_errors=True)

    @property
    def meta(self) -> dict[str, Any]:
        return self.read_json("meta.json") or {}


def new_snapshot(inventory: Inventory, command: str) -> Snapshot:
    root = _private_dir(state_root(inventory) / "snapshots")
    base = f"{stamp()}-{command}"
    path, n = root / base, 1
    while path.exists():
        n += 1
        path = root / f"{base}-{n}"
    _private_dir(path)
    snapshot = Snapshot(path)
    snapshot.write_json("meta.json", {"command": command, "by": who(), "at": utc_now().isoformat(timespec="seconds"),
                                      "inventory": str(inventory.path.resolve())})
    return snapshot


def list_snapshots(inventory: Inventory) -> list[Snapshot]:
    root = state_root(inventory) / "snapshots"
    if not root.is_dir():
        return []
    return [Snapshot(p) for p in sorted(root.iterdir()) if p.is_dir() and (p / "meta.json").exists()]


def find_snapshot(inventory: Inventory, name: str | None, *, with_file: str) -> Snapshot:
    """A snapshot by name (or unique prefix), or the newest that holds `with_file`."""
    snapshots = [s for s in list_snapshots(inventory) if (s.path / with_file).exists()]
    if not snapshots:
        raise InputError(f"No snapshot with {with_file} in {state_root(inventory) / 'snapshots'}.",
                         hint="Snapshots are recorded by deploy, upgrade, remove and config restore.")
    if name is None:
        return snapshots[-1]
    matches = [s for s in snapshots if s.name == name] or [s for s in snapshots if s.name.startswith(name)]
    if len(matches) != 1:
        raise InputError(f"Snapshot '{name}' {'is ambiguous' if matches else 'not found'}.",
                         hint="List them with `immich-remote config snapshots`.")
    return matches[0]
