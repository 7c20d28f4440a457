"""`immich-remote remove HOST...`: unregister the hosts' URLs, then take their containers down."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from ..app import App, pass_app
from ..errors import EXIT_FAILED, InputError
from ..options import HOSTS_ARG, break_lock_option, dry_run_option, json_option, parallel_option

if TYPE_CHECKING:
    from ..context import HostContext
    from ..inventory import Host
    from ..rollout import HostResult


@click.command()
@HOSTS_ARG
@click.option("--purge-cache", is_flag=True, help="Also delete the model-cache volume (models download again).")
@click.option("--restore-local", is_flag=True, help="In remote-only mode, put the local ML URL back when the last "
              "remote URL goes.")
@break_lock_option
@dry_run_option
@parallel_option
@json_option
@pass_app
@click.pass_context
def remove(ctx: click.Context, app: App, host_names: tuple[str, ...], purge_cache: bool, restore_local: bool,
           break_lock: bool, dry_run: bool, parallel: int | None) -> None:
    """Unregister hosts from Immich, then `docker compose down` on them.

    The URL goes first, so Immich stops sending work before the container stops; the local
    fallback is kept (or, in remote-only mode, removing the last URL needs --restore-local).
    The model cache is kept unless --purge-cache.

    \b
    Example:
      immich-remote remove old-box
    """
    ctx.exit(remove_command(app, host_names, purge_cache=purge_cache, restore_local=restore_local,
                            parallel=parallel, break_lock=break_lock, dry_run=dry_run))


COMMANDS = (remove,)


def remove_member(ctx: HostContext, host: Host, purge_cache: bool) -> HostResult:
    """A pool member: drained at its balancer and taken out of the rotation before its container goes."""
    from ..pool import PoolGate
    from ..remove import remove_host

    return PoolGate(ctx.inventory, ctx.connections.remote).removing(
        host, lambda: remove_host(ctx, host, purge_cache=purge_cache))


def remove_command(app: App, names: tuple[str, ...], *, purge_cache: bool, restore_local: bool, parallel: int | None,
                   break_lock: bool, dry_run: bool = False) -> int:
    from ..context import DeployOptions, HostContext
    from ..immich_api import ImmichClient
    from ..remove import remove_host
    from ..versions import ImmichVersion
    from .deploy import (
        close_snapshot,
        immich_preflight,
        register_hosts,
        report,
        run_procedure,
        start_snapshot,
    )

    if not names:
        raise InputError("Name the host(s) to remove (`immich-remote remove HOST`); there is no remove-all default.")
    inv = app.inventory
    hosts = app.hosts(names)
    with ImmichClient(inv.immich) as client:
        immich = immich_preflight(app, client)
        snapshot = None if dry_run else start_snapshot(app, "remove", immich, hosts)
        # Unregister first, so that Immich stops sending work before the containers go away.
        immich_data, code = register_hosts(app, client, immich, [], snapshot=snapshot, removed=hosts,
                                           restore_local=restore_local, dry_run=dry_run)
    if code:  # config locked: leave the hosts running until the URL is out of the config file
        report(app, [], immich_data, snapshot.path if snapshot else None, title="Nothing removed yet")
        return code
    options = DeployOptions(break_lock=break_lock, command="remove", dry_run=dry_run)
    results = run_procedure(
        app, hosts, lambda conns, progress: HostContext(inv, immich.version or ImmichVersion(0, 0, 0), options, conns,
                                                        progress, snapshot),
        lambda ctx, host: remove_member(ctx, host, purge_cache) if not dry_run and inv.pool_of(host.name)
        else remove_host(ctx, host, purge_cache=purge_cache), parallel=parallel)
    if dry_run:
        report(app, results, immich_data, None, dry_run=True, title="Remove (dry run: nothing changed)")
        return EXIT_FAILED if any(r.failed for r in results) else 0
    snapshot_path = close_snapshot(
        snapshot, results, immich_data, removed=[{"host": h.name, "address": h.address, "url": h.url} for h in hosts],
        note="Remove these hosts from the inventory too, or the next deploy brings them back.")
    report(app, results, immich_data, snapshot_path, title="Removed")
    if not app.json:
        app.out.line(f"Now remove {', '.join(h.name for h in hosts)} from {inv.path}, or the next deploy brings "
                     "them back.", style="yellow")
    return EXIT_FAILED if any(r.failed for r in results) else 0
