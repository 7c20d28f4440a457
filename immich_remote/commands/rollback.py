"""`immich-remote rollback [HOST...]`: return hosts to their previous deployment (files and tag)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from ..app import App, pass_app
from ..errors import EXIT_FAILED, ImmichRemoteError
from ..options import (
    HOSTS_ARG,
    break_lock_option,
    dry_run_option,
    health_timeout_option,
    json_option,
    parallel_option,
)

if TYPE_CHECKING:
    from ..progress import Progress
    from ..rollout import Connections


@click.command()
@HOSTS_ARG
@health_timeout_option
@break_lock_option
@dry_run_option
@parallel_option
@json_option
@pass_app
@click.pass_context
def rollback(ctx: click.Context, app: App, host_names: tuple[str, ...], health_timeout: float | None, break_lock: bool,
             dry_run: bool, parallel: int | None) -> None:
    """Return hosts to their previous deployment (files and image tag), through the health gate.

    The previous release is kept on each host under .immich-remote/releases. Immich's URL list is
    not touched; to put that back, use `immich-remote config restore`.

    \b
    Example:
      immich-remote rollback gpu-box
    """
    ctx.exit(rollback_command(app, host_names, parallel=parallel, health_timeout=health_timeout, break_lock=break_lock,
                              dry_run=dry_run))


COMMANDS = (rollback,)


def rollback_command(app: App, names: tuple[str, ...], *, parallel: int | None, health_timeout: float | None,
                     break_lock: bool, dry_run: bool = False) -> int:
    """Each host goes back to the release before its current one, through the same health gate as deploy
    (a failing rollback restores what ran). Immich's URL list is left alone: see `config restore`."""
    from ..deploy import DeployOptions, HostContext, deploy_host, previous_release
    from ..immich_api import ImmichClient
    from ..pool import PoolGate
    from ..snapshots import new_snapshot
    from ..versions import ImmichVersion
    from .deploy import close_snapshot, report, run_procedure

    inv = app.inventory
    hosts = app.hosts(names)
    server_version: ImmichVersion | None = None
    with ImmichClient(inv.immich, api_key="") as client:
        try:
            server_version = client.version()
        except ImmichRemoteError as exc:
            app.out.warn(f"cannot read the Immich server's version ({exc.message}); rolling back anyway")
    snapshot = None if dry_run else new_snapshot(inv, "rollback")
    if snapshot:
        snapshot.update_meta(hosts=[h.name for h in hosts])
    options = DeployOptions(health_timeout=health_timeout, break_lock=break_lock, command="rollback", dry_run=dry_run)
    gates: list[PoolGate] = []

    def context(conns: Connections, progress: Progress) -> HostContext:
        gates.append(PoolGate(inv, conns.remote, progress.step))  # pool members roll back one at a time, drained
        return HostContext(inv, server_version or ImmichVersion(0, 0, 0), options, conns, progress, snapshot,
                           target=previous_release)

    results = run_procedure(app, hosts, context, lambda ctx, host: deploy_host(ctx, host, gates[0].around),
                            parallel=parallel)
    for r in results:
        if r.status == "deployed":
            r.status = "reverted"
            r.message = f"now serving {r.image} again"
            if server_version and r.image and server_version.tag not in r.image:
                r.message += f" (the server runs {server_version.tag}: versions differ)"
    if dry_run:
        report(app, results, {}, None, dry_run=True, title="Rollback (dry run: nothing changed)")
        return EXIT_FAILED if any(r.failed for r in results) else 0
    snapshot_path = close_snapshot(snapshot, results, {})
    report(app, results, {}, snapshot_path, title="Rollback (Immich's URL list is not touched; see `config restore`)")
    return EXIT_FAILED if any(r.failed for r in results) else 0
