"""`immich-remote upgrade`: move every ML host to the server's version, safely.

1. (--wait-server) wait for the server to come back from its own upgrade with a new version;
2. connect, probe and pull the new image on every host at once (no container touched);
3. swap the host Immich uses least alone (the canary), then the others `--batch` at a time in
   reverse URL order (the primary last), through deploy's health gate; a failing host is rolled
   back by itself and stops the rollout (`--max-fail` raises that budget); each host's window
   (last pong of the old container -> first pong of the new one, polled every 0.1 s) is measured;
4. keep the URL list right (normally unchanged).
`upgrade --check` changes nothing and exits 1 when a host is not on the server's version.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import click

from ..app import App, pass_app
from ..errors import EXIT_FAILED, ImmichAPIError, ImmichRemoteError, VersionError
from ..options import (
    DURATION,
    HOSTS_ARG,
    break_lock_option,
    dry_run_option,
    health_timeout_option,
    json_option,
    max_fail_option,
    parallel_option,
    remote_only_option,
    ship_image_option,
)

if TYPE_CHECKING:
    from ..immich_api import ImmichClient
    from ..versions import ImmichVersion

WAIT_TIMEOUT = 900.0  # --wait-timeout's default, 15m


@click.command()
@HOSTS_ARG
@click.option("--to", "to_version", metavar="X.Y.Z", help="Target version [default: the server's].")
@click.option("--check", "check_only", is_flag=True, help="Change nothing; exit 1 if a host is not on the server's version.")
@click.option("--wait-server", is_flag=True, help="First wait for the server to come back from its own upgrade.")
@click.option("--wait-timeout", type=DURATION, metavar="DURATION", default="15m", show_default=True,
              help="Deadline for --wait-server.")
@click.option("--batch", type=click.IntRange(1), default=1, show_default=True, help="Hosts swapped at the same time.")
@dry_run_option
@max_fail_option
@health_timeout_option
@ship_image_option
@remote_only_option
@break_lock_option
@parallel_option
@json_option
@pass_app
@click.pass_context
def upgrade(ctx: click.Context, app: App, host_names: tuple[str, ...], to_version: str | None, check_only: bool,
            wait_server: bool, wait_timeout: float | None, batch: int, dry_run: bool, max_fail: int,
            health_timeout: float | None, ship_image: bool, remote_only: bool, break_lock: bool,
            parallel: int | None) -> None:
    """Bring every ML host to the Immich server's version (run it right after upgrading Immich).

    The new image is pre-pulled on all hosts in parallel first (nothing else changes), then hosts
    are swapped --batch at a time through deploy's health gate; while one swaps, Immich uses the
    next URL. Each host's unavailability window is measured. A host whose new version fails is
    rolled back to its previous tag on its own. The model cache is never touched.

    \b
    Examples:
      immich-remote upgrade --wait-server     # right after `docker compose pull && up -d` on the server
      immich-remote upgrade --check           # for cron/monitoring: exit 1 if a host is behind
      immich-remote upgrade --to 2.7.5 --batch 2 --max-fail 1
    """
    if check_only:
        ctx.exit(upgrade_check(app, host_names, parallel))
    ctx.exit(upgrade_command(app, host_names, to=to_version, wait_server=wait_server,
                             wait_timeout=wait_timeout or WAIT_TIMEOUT, batch=batch, max_fail=max_fail,
                             parallel=parallel, health_timeout=health_timeout, ship_image=ship_image,
                             remote_only=remote_only, dry_run=dry_run, break_lock=break_lock))


COMMANDS = (upgrade,)


def upgrade_check(app: App, names: tuple[str, ...], parallel: int | None) -> int:
    """`upgrade --check`: exit 1 when a host does not run the server's version; change nothing."""
    from ..status import collect

    server, statuses = collect(app.inventory, app.hosts(names), parallel=parallel)
    statuses = [s for s in statuses if s.kind == "ml"]  # a pool's balancer is not pinned to Immich's version
    if server.version is None:
        raise ImmichRemoteError(f"Cannot read the Immich server's version: {server.error}")
    behind = [s for s in statuses if s.running_version != server.version]
    if app.json:
        app.out.data({"server_version": server.version, "ok": not behind,
                      "hosts": [{"host": s.host, "running": s.running_version, "reachable": s.reachable,
                                 "error": s.error, "up_to_date": s.running_version == server.version}
                                for s in statuses]})
    else:
        for s in statuses:
            state = "up to date" if s.running_version == server.version else \
                f"BEHIND: runs {s.running_version or 'nothing'}" if s.reachable else f"unreachable: {s.error}"
            app.out.line(f"{s.host}: {state}", style="green" if s.running_version == server.version else "red")
        app.out.line(f"Immich server: {server.version}. "
                     + ("Every host matches." if not behind else f"{len(behind)} host(s) need `immich-remote upgrade`."))
    return EXIT_FAILED if behind else 0


def wait_for_server(app: App, client: ImmichClient, baseline: set[str], timeout: float, *,
                    deadline: float | None = None, last: str | None = None) -> ImmichVersion:
    """Poll the public version endpoint until it answers with a version the hosts do not run yet, until
    `deadline` (default: `timeout` from now). A request under way may overrun it by `immich.timeout`.
    `last`: what the server answered before (reading the hosts' versions asked it too)."""
    deadline = deadline or time.monotonic() + timeout
    last = last or "no answer yet"
    app.out.info(f"Waiting up to {timeout:g}s for the Immich server to answer with a new version "
                 f"(hosts run {', '.join(sorted(baseline)) or 'nothing'})...")
    while time.monotonic() < deadline:
        try:
            version = client.version(fresh=True)
            if version.tag not in baseline:
                return version
            last = f"still {version.tag}"
        except (ImmichAPIError, VersionError) as exc:
            last = exc.message
        time.sleep(max(0.0, min(3.0, deadline - time.monotonic())))
    raise ImmichRemoteError(f"The Immich server did not come back with a new version within {timeout:g}s ({last.rstrip('.')}); "
                            "no host was changed.",
                            hint="Finish the server's upgrade first, or run upgrade without --wait-server.")


def upgrade_command(app: App, names: tuple[str, ...], *, to: str | None, wait_server: bool, wait_timeout: float,
                    batch: int, max_fail: int | None, parallel: int | None, health_timeout: float | None,
                    ship_image: bool, remote_only: bool, dry_run: bool = False, break_lock: bool = False) -> int:
    from ..deploy import DeployOptions, ok_hosts
    from ..immich_api import ImmichClient
    from ..status import collect
    from ..versions import ImmichVersion
    from .deploy import (
        close_snapshot,
        confirm_fallback,
        immich_preflight,
        register_hosts,
        report,
        report_interrupted,
        roll_out,
        start_snapshot,
        with_balancers,
    )

    inv = app.inventory
    hosts = app.hosts(names)
    confirm_fallback(app, remote_only)
    with ImmichClient(inv.immich) as client:
        if wait_server:
            deadline = time.monotonic() + wait_timeout  # reading the hosts' versions counts too
            server, statuses = collect(inv, hosts, parallel=parallel)
            wait_for_server(app, client, {s.running_version for s in statuses if s.running_version}, wait_timeout,
                            deadline=deadline, last=server.error)
        pinned = ImmichVersion.parse(to, source="--to") if to else None
        immich = immich_preflight(app, client, pinned=pinned)
        target = immich.version
        snapshot = None if dry_run else start_snapshot(app, "upgrade", immich, hosts)
        options = DeployOptions(health_timeout=health_timeout, ship_image=ship_image, command="upgrade",
                                dry_run=dry_run, break_lock=break_lock)
        app.out.info(f"Upgrading {len(hosts)} host(s) to Immich ML {target.tag}: every image is pulled first, "
                     f"then the least-used host swaps alone (canary), then the rest {batch} at a time"
                     + (" (dry run: nothing will change)" if dry_run else ""))
        rollout = roll_out(app, client, immich, hosts, options=options, snapshot=snapshot, pinned=pinned is not None,
                           batch=batch, max_fail=max_fail, parallel=parallel)
        if rollout.interrupted:
            return report_interrupted(app, rollout, snapshot, "upgrade")
        ordered = rollout.results
        for result in ordered:
            if result.status == "deployed":
                result.status = "upgraded"
        targets = with_balancers(app, hosts)
        good = [h for h in targets if h.name in {r.host for r in ordered if r.status == "dry-run"}] if dry_run \
            else ok_hosts(targets, ordered)
        immich_data, code = register_hosts(app, client, immich, good, snapshot=snapshot, dry_run=dry_run)
    if dry_run:
        report(app, ordered, immich_data, None, dry_run=True, title=f"Upgrade to {target.tag} (dry run)")
        return code or (EXIT_FAILED if any(r.failed for r in ordered) else 0)
    snapshot_path = close_snapshot(snapshot, ordered, immich_data, target=target.tag)
    report(app, ordered, immich_data, snapshot_path, title=f"Upgrade to {target.tag}", canary=rollout.canary)
    if not app.json:
        on = {}
        for r in ordered:
            image = r.image if r.status in ("upgraded", "unchanged", "restarted") else r.previous_image
            on.setdefault(image or "nothing", []).append(r.host)
        for image, names_on in on.items():
            app.out.line(f"  on {image}: {', '.join(names_on)}")
    return code or (EXIT_FAILED if any(r.failed or r.status == "skipped" for r in ordered) else 0)
