"""`immich-remote config snapshots` and `config restore`: what was recorded, and putting it back."""

from __future__ import annotations

import click

from ..app import App, pass_app
from ..errors import EXIT_CONFIG_LOCKED, ImmichRemoteError
from ..options import json_option


@click.group("config")
def config_group() -> None:
    """Immich's ML settings as recorded before each change."""


@config_group.command("snapshots")
@json_option
@pass_app
def config_snapshots(app: App) -> None:
    """List the snapshots recorded before each change (newest last).

    \b
    Example:
      immich-remote config snapshots
    """
    snapshots_command(app)


@config_group.command("restore")
@click.argument("snapshot", required=False)
@click.option("--all", "whole", is_flag=True, help="Restore the WHOLE recorded config, not only the ML URLs.")
@click.option("--dry-run", "-n", is_flag=True, help="Show what would change.")
@json_option
@pass_app
@click.pass_context
def config_restore(ctx: click.Context, app: App, snapshot: str | None, whole: bool, dry_run: bool) -> None:
    """Put Immich's ML URL list back as recorded in SNAPSHOT (default: the newest).

    Only machineLearning.urls changes unless --all. The current config is recorded first, so a
    restore can itself be undone.

    \b
    Example:
      immich-remote config restore                # newest snapshot
      immich-remote config restore 20261127T1015  # by (unique prefix of) name
    """
    ctx.exit(restore_command(app, snapshot, whole=whole, dry_run=dry_run))


COMMANDS = (config_group,)


def snapshots_command(app: App) -> None:
    from ..snapshots import list_snapshots, state_root

    rows = []
    for snap in list_snapshots(app.inventory):
        meta = snap.meta
        rows.append({"name": snap.name, "command": meta.get("command"), "by": meta.get("by"), "at": meta.get("at"),
                     "hosts": meta.get("hosts", []), "urls_before": meta.get("urls_before"),
                     "urls_after": meta.get("urls_after"), "has_config": (snap.path / "immich-config.json").exists(),
                     "path": str(snap.path)})
    if app.json:
        app.out.data({"state_dir": str(state_root(app.inventory)), "snapshots": rows})
        return
    if not rows:
        app.out.line(f"No snapshots yet in {state_root(app.inventory) / 'snapshots'}.")
        return
    app.out.table(["snapshot", "command", "by", "hosts", "URLs before"],
                  [(r["name"], r["command"], r["by"], ",".join(r["hosts"]), ", ".join(r["urls_before"] or []))
                   for r in rows], title=f"Snapshots in {state_root(app.inventory) / 'snapshots'}")


def restore_command(app: App, name: str | None, *, whole: bool, dry_run: bool) -> int:
    """Put back the ML URL list recorded in a snapshot (the whole config only with --all)."""
    from ..immich_api import ImmichClient
    from ..immich_config import config_file_snippet, with_ml_urls
    from ..snapshots import find_snapshot, new_snapshot

    snap = find_snapshot(app.inventory, name, with_file="immich-config.json")
    recorded = snap.read_json("immich-config.json")
    with ImmichClient(app.inventory.immich) as client:
        current = client.get_config()
        wanted = recorded if whole else with_ml_urls(current, recorded["machineLearning"]["urls"])
        before, after = current["machineLearning"]["urls"], wanted["machineLearning"]["urls"]
        changed_keys = sorted(k for k in set(current) | set(wanted) if current.get(k) != wanted.get(k))
        data = {"snapshot": snap.name, "whole_config": whole, "urls_before": before, "urls_after": after,
                "changed_sections": changed_keys, "dry_run": dry_run}
        code = 0
        if changed_keys and not dry_run:
            if client.config_locked():
                data["config_file_snippet"] = config_file_snippet(current, after)
                code = EXIT_CONFIG_LOCKED
            else:
                record = new_snapshot(app.inventory, "config-restore")
                record.write_json("immich-config.json", current)
                record.update_meta(urls_before=before, urls_after=after, restored_from=snap.name, hosts=[])
                client.put_config(wanted)
                saved = client.get_config()
                if (saved if whole else saved["machineLearning"]["urls"]) != (wanted if whole else after):
                    raise ImmichRemoteError("After restoring, Immich reports a different config than the snapshot's.")
                data["recorded_before"] = str(record.path)
    if app.json:
        app.out.data(data)
    else:
        verb = "would restore" if dry_run else ("restored" if changed_keys else "already matches")
        app.out.line(f"{verb} {'the whole config' if whole else 'machineLearning.urls'} from {snap.name}")
        app.out.line(f"  before: {', '.join(before)}")
        app.out.line(f"  after:  {', '.join(after)}")
        if whole and changed_keys:
            app.out.line(f"  sections that differ: {', '.join(changed_keys)}")
        if data.get("config_file_snippet"):
            app.out.warn("settings come from IMMICH_CONFIG_FILE; put this into that file and restart Immich:")
            app.out.line(data["config_file_snippet"])
    return code
