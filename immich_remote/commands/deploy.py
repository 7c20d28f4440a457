"""`immich-remote deploy`: preflight, deploy every host in parallel, register the healthy ones.

The steps shared with `upgrade`, `rollback` and `remove` live here too: the Immich preflight, the
snapshot, running a per-host procedure with live progress, and registering the result in Immich.
The modules that do the work are imported inside the functions, so loading the CLI stays fast.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..app import App, pass_app
from ..errors import EXIT_CONFIG_LOCKED, EXIT_FAILED, EXIT_INTERRUPTED, ImmichRemoteError, InputError
from ..options import (
    HOSTS_ARG,
    allow_public_option,
    break_lock_option,
    dry_run_option,
    health_timeout_option,
    json_option,
    max_fail_option,
    parallel_option,
    remote_only_option,
    server_version_option,
    ship_image_option,
)
from .report import report  # the result report every changing command prints (re-exported for them)

if TYPE_CHECKING:
    from ..deploy import DeployOptions, HostContext
    from ..immich_api import ImmichClient
    from ..inventory import Host
    from ..preflight import ImmichReport
    from ..progress import Progress
    from ..rollout import Connections, HostResult, Rollout
    from ..snapshots import Snapshot
    from ..versions import ImmichVersion


@click.command()
@HOSTS_ARG
@server_version_option
@dry_run_option
@parallel_option
@max_fail_option
@allow_public_option
@remote_only_option
@break_lock_option
@ship_image_option
@click.option("--warm-models", is_flag=True, help="After the health check, load the models Immich uses.")
@click.option("--run-missing", is_flag=True, help="After registering, start the ML jobs for missing assets "
              "(force: false; never re-runs everything).")
@health_timeout_option
@click.option("--seed-cache-from", "seed_from", metavar="HOST", help="Copy HOST's model cache to the hosts "
              "(over SSH through this machine, verified by sha256) before their container starts.")
@click.option("--no-seed", is_flag=True, help="Do not copy another host's model cache to a new host (by default a "
              "new host gets the cache of a host that has the models Immich uses).")
@click.option("--force", "force_seed", is_flag=True, help="With --seed-cache-from: replace a model cache that is "
              "not empty and differs.")
@json_option
@pass_app
@click.pass_context
def deploy(ctx: click.Context, app: App, host_names: tuple[str, ...], server_version: str | None, dry_run: bool,
           parallel: int | None, max_fail: int, allow_public: bool, remote_only: bool, break_lock: bool,
           ship_image: bool, warm_models: bool, run_missing: bool, health_timeout: float | None,
           seed_from: str | None, no_seed: bool, force_seed: bool) -> None:
    """Deploy the ML container to the hosts and register them in Immich ahead of the local ML.

    Each host: preflight, lock, record the current state, upload a new release, pull the
    version-matched image while the old container keeps serving, `docker compose up -d`, and a
    health gate (container healthy AND /ping == pong). A host that fails is rolled back to what
    it ran before; the others carry on. Then Immich's machineLearning.urls becomes: remote hosts
    by priority, then the local URL as fallback. Nothing else in Immich's config changes. A
    second run with nothing changed touches nothing. A new host first gets the model cache of a
    host that has the models Immich uses, copied and verified (--seed-cache-from, --no-seed).

    \b
    Examples:
      immich-remote deploy --dry-run          # diffs and URL list, no change
      immich-remote deploy
      immich-remote deploy gpu-box --warm-models --run-missing
      immich-remote --limit gpus deploy --parallel 2 --max-fail 1
      immich-remote deploy new-box --seed-cache-from gpu-box   # models copied, not downloaded
    Exit 0 all hosts fine, 1 a host failed, 2 bad input, 3 config locked by IMMICH_CONFIG_FILE.
    """
    from ..deploy import DeployOptions

    check_seed_options(app, seed_from, no_seed, force_seed)
    options = DeployOptions(dry_run=dry_run, allow_public=allow_public, break_lock=break_lock, ship_image=ship_image,
                            warm_models=warm_models, health_timeout=health_timeout, seed_from=seed_from,
                            auto_seed=not no_seed, force_seed=force_seed)
    ctx.exit(deploy_command(app, host_names, server_version=server_version, options=options, parallel=parallel,
                            max_fail=max_fail, remote_only=remote_only, run_missing=run_missing))


COMMANDS = (deploy,)

REMOTE_ONLY_COST = ("remote-only drops the local ML URL: while the remote hosts are down, Smart Search, Face "
                    "Detection and OCR jobs FAIL (they are not retried; rerun 'Missing' afterwards), and "
                    "Duplicate Detection and Facial Recognition do not run for those assets.")


def check_seed_options(app: App, seed_from: str | None, no_seed: bool, force: bool) -> None:
    if seed_from is not None and no_seed:
        raise InputError("--seed-cache-from and --no-seed contradict each other.", hint="Pass one of them.")
    if force and seed_from is None:
        raise InputError("--force only applies with --seed-cache-from HOST: it lets the seed replace a model cache "
                         "that is not empty.", hint="Add --seed-cache-from HOST, or drop --force.")
    if seed_from is not None:
        try:
            app.inventory.host(seed_from)
        except InputError as exc:
            raise InputError(f"--seed-cache-from: {exc.message}", hint=exc.hint) from None


def confirm_fallback(app: App, remote_only: bool) -> None:
    inv = app.inventory
    if not inv.immich.keep_local:
        if not remote_only:
            raise InputError(f"{inv.path}: immich.fallback is remote-only, which needs --remote-only to confirm.",
                             hint=REMOTE_ONLY_COST)
        app.out.warn(REMOTE_ONLY_COST)


def immich_preflight(app: App, client: ImmichClient, *, pinned: ImmichVersion | None = None,
                     need_jobs: bool = False) -> ImmichReport:
    """The Immich-side checks; any failure stops the command before a host is touched."""
    from ..preflight import FAIL, immich_checks
    from .report import print_checks

    immich = immich_checks(client, pinned=pinned, need_jobs=need_jobs)
    if not immich.ok or immich.version is None or immich.config is None:
        if not app.json:
            print_checks(app, "Immich server", immich.checks)
        failing = next((c for c in immich.checks if c.status == FAIL), None)
        raise ImmichRemoteError(f"Immich preflight failed: {failing.detail if failing else 'no config read'}",
                                hint=(failing.fix if failing else None) or None)
    return immich


def start_snapshot(app: App, command: str, immich: ImmichReport, hosts: Sequence[Host]) -> Snapshot:
    from ..snapshots import new_snapshot

    snapshot = new_snapshot(app.inventory, command)
    snapshot.write_json("immich-config.json", immich.config)
    snapshot.update_meta(server_version=immich.version.tag if immich.version else None,
                         hosts=[h.name for h in hosts], urls_before=immich.config["machineLearning"]["urls"])
    return snapshot


def run_procedure(app: App, hosts: Sequence[Host], ctx_factory: Callable[[Connections, Progress], HostContext],
                  procedure: Callable[[HostContext, Host], HostResult], *, parallel: int | None,
                  title: str = "") -> list[HostResult]:
    from ..progress import Progress
    from ..rollout import Connections, run_hosts

    with Connections(app.inventory) as connections, Progress(
            [h.name for h in hosts], enabled=not app.json or app.out.verbose > 0, title=title,
            periodic=not app.out.quiet) as progress:
        ctx = ctx_factory(connections, progress)
        return run_hosts(hosts, lambda h: procedure(ctx, h), parallel=parallel, progress=progress)


def planned_urls(app: App, immich: ImmichReport, hosts: Sequence[Host]) -> list[str]:
    """Immich's URL list once these hosts are registered: the order results are shown in."""
    from ..plan import desired_urls

    return desired_urls(app.inventory, current=list(immich.config["machineLearning"]["urls"]), registered=hosts)


def roll_out(app: App, client: ImmichClient, immich: ImmichReport, hosts: Sequence[Host], *, options: DeployOptions,
             snapshot: Snapshot | None, pinned: bool, batch: int | None, max_fail: int | None,
             parallel: int | None) -> Rollout:
    """Deploy and upgrade: stage every host, swap a canary, then the rest; results in Immich's URL order.

    Every host runs `immich.version` (the server's, or the pinned one); an unpinned rollout stops if
    the server changes version under it (`version_watch`)."""
    from ..context import HostContext
    from ..deploy import prepare_and_stage, swap_host
    from ..pool import PoolGate, balancer_targets
    from ..progress import Progress
    from ..rollout import Connections, Rollout, canary_rollout, url_order

    balancers = balancer_targets(app.inventory, hosts)
    shown = url_order([*hosts, *balancers], planned_urls(app, immich, [*hosts, *balancers]))
    with Connections(app.inventory) as connections, Progress(
            [h.name for h in shown], enabled=not app.json or app.out.verbose > 0,
            periodic=not app.out.quiet) as progress:
        ctx = HostContext(app.inventory, immich.version, options, connections, progress, snapshot, immich.config)
        pools = PoolGate(app.inventory, connections.remote, progress.step)
        pooled = {b.name for b in balancers}
        ordered = [h for h in reversed(shown) if h.name not in pooled]
        rollout = canary_rollout(ordered, lambda h: prepare_and_stage(ctx, h),
                                 lambda staged: pools.around(staged.host, lambda: swap_host(ctx, staged)),
                                 command=options.command, batch=batch, max_fail=max_fail or 1, parallel=parallel,
                                 progress=progress, abandon=lambda h: connections.remote(h).close(),
                                 before_wave=version_watch(client, immich.version, pinned))
        results = list(rollout.results)
        if balancers:  # last and alone: a balancer's change is a short window in which Immich falls back
            after = canary_rollout(balancers, lambda h: prepare_and_stage(ctx, h), lambda staged: swap_host(ctx, staged),
                                   command=options.command, batch=1, max_fail=len(balancers), parallel=1,
                                   progress=progress, abandon=lambda h: connections.remote(h).close())
            results += after.results
            rollout = Rollout(results, rollout.canary, rollout.interrupted or after.interrupted)
    by_host = {r.host: r for r in rollout.results}
    return Rollout([by_host[h.name] for h in shown if h.name in by_host], rollout.canary, rollout.interrupted)


def with_balancers(app: App, hosts: Sequence[Host]) -> list[Host]:
    """The run's deploy targets: the hosts, then the balancer of each pool they belong to (pool.py)."""
    from ..pool import balancer_targets

    return [*hosts, *balancer_targets(app.inventory, hosts)]


def version_watch(client: ImmichClient, target: ImmichVersion, pinned: bool) -> Callable[[], str | None]:
    """Before each wave: has the server been upgraded (or downgraded) since the run began? Then stop,
    rather than put more hosts on a version the server no longer runs."""
    def moved() -> str | None:
        if pinned:
            return None
        try:
            now = client.version(fresh=True)
        except ImmichRemoteError:
            return None  # a server restarting is seen by registration; a version is what matters here
        if now != target:
            return f"the Immich server changed from {target.tag} to {now.tag} during the run"
        return None
    return moved


def report_interrupted(app: App, rollout: Rollout, snapshot: Snapshot | None, command: str) -> int:
    """After Ctrl-C / SIGTERM: what finished, what was abandoned, how to resume. Immich was not changed."""
    snapshot_path = close_snapshot(snapshot, rollout.results, {}) if snapshot else None
    report(app, rollout.results, {}, snapshot_path, canary=rollout.canary)
    app.out.warn(f"Interrupted. Hosts marked deployed/upgraded finished their swap; the others were not changed. "
                 f"Immich's URL list was not changed. Run `immich-remote {command}` again to finish.")
    return EXIT_INTERRUPTED


def register_hosts(app: App, client: ImmichClient, immich: ImmichReport, good: Sequence[Host], *,
                   snapshot: Snapshot | None, dry_run: bool = False, removed: Sequence[Host] = (),
                   restore_local: bool = False) -> tuple[dict[str, Any], int]:
    """Put the healthy hosts into Immich's URL list (only if it changes). Returns (report data, exit code)."""
    from ..deploy import register
    from ..immich_config import config_file_snippet
    from ..plan import desired_urls

    inv = app.inventory
    urls_before = list(immich.config["machineLearning"]["urls"])

    def compute(current: list[str]) -> list[str]:
        after = desired_urls(inv, current=current, registered=good, removed=removed)
        if not after and restore_local:
            after = [inv.immich.local_ml_url]
        if not after:
            raise ImmichRemoteError("This change would leave Immich with no machine-learning URL at all.",
                                    hint="Pass --restore-local to put the local ML URL back as the only one, "
                                    "or keep the local fallback (fallback: keep-local).")
        return after

    data: dict[str, Any] = {"version": immich.version.tag if immich.version else None, "urls_before": urls_before,
                            "locked": immich.locked}
    wanted = compute(urls_before)
    if dry_run:
        data.update(urls_after=wanted, changed=wanted != urls_before)
        return data, 0
    if immich.locked:
        data.update(urls_after=urls_before, changed=False, wanted=wanted)
        if wanted != urls_before:
            data["config_file_snippet"] = config_file_snippet(immich.config, wanted)
            return data, EXIT_CONFIG_LOCKED
        return data, 0
    try:
        before, after, changed = register(client, compute)
    except ImmichRemoteError as exc:
        if "no machine-learning URL" in exc.message:
            raise
        # The hosts are done; only Immich's answer failed. Nothing was written (set_ml_urls writes once,
        # after its reads, and verifies), so the next run finds the hosts unchanged and writes the list.
        data.update(urls_after=urls_before, changed=False, wanted=wanted,
                    error=exc.message + (f" ({exc.hint})" if exc.hint else ""))
        return data, EXIT_FAILED
    data.update(urls_before=before, urls_after=after, changed=changed)
    if snapshot:
        snapshot.update_meta(urls_after=after)
    return data, 0


def close_snapshot(snapshot: Snapshot, results: Sequence[HostResult], immich_data: dict[str, Any],
                   **meta: Any) -> Path | None:
    """Keep the snapshot with the results when something changed; drop it when the run changed nothing
    (hosts only refused, skipped or unchanged: no host was recorded, and Immich's URL list stayed)."""
    touched_a_host = (snapshot.path / "hosts").is_dir()
    if not immich_data.get("changed") and not touched_a_host:
        snapshot.discard()
        return None
    snapshot.update_meta(results=[r.to_data() for r in results], **meta)
    return snapshot.path


def deploy_command(app: App, names: tuple[str, ...], *, server_version: str | None, options: DeployOptions,
                   parallel: int | None, max_fail: int | None, remote_only: bool, run_missing: bool) -> int:
    from ..deploy import ok_hosts
    from ..immich_api import ImmichClient
    from ..versions import ImmichVersion

    inv = app.inventory
    hosts = app.hosts(names)
    confirm_fallback(app, remote_only)
    pinned = ImmichVersion.parse(server_version) if server_version else None
    with ImmichClient(inv.immich) as client:
        immich = immich_preflight(app, client, pinned=pinned, need_jobs=run_missing)
        version = immich.version
        snapshot = None if options.dry_run else start_snapshot(app, options.command, immich, hosts)
        app.out.info(f"Deploying Immich ML {version.tag} to {len(hosts)} host(s)"
                     + (" (dry run: nothing will change)" if options.dry_run else ""))
        rollout = roll_out(app, client, immich, hosts, options=options, snapshot=snapshot, pinned=pinned is not None,
                           batch=parallel, max_fail=max_fail, parallel=parallel)
        if rollout.interrupted:
            return report_interrupted(app, rollout, snapshot, "deploy")
        results = rollout.results
        by_name = {r.host: r for r in results}
        targets = with_balancers(app, hosts)
        good = ok_hosts(targets, results) if not options.dry_run else \
            [h for h in targets if h.name in by_name and by_name[h.name].status == "dry-run"]
        immich_data, code = register_hosts(app, client, immich, good, snapshot=snapshot, dry_run=options.dry_run)
        if run_missing and good and not options.dry_run and not code:
            code = start_missing_jobs(client, immich_data)
    snapshot_path = close_snapshot(snapshot, results, immich_data) if snapshot else None
    report(app, results, immich_data, snapshot_path, dry_run=options.dry_run, canary=rollout.canary)
    return code or (EXIT_FAILED if any(r.failed or r.status == "skipped" for r in results) else 0)


def start_missing_jobs(client: ImmichClient, immich_data: dict[str, Any]) -> int:
    """`--run-missing`, after the hosts are registered: start each ML queue's 'Missing' jobs. A failure
    (Immich down, slow or answering an error) stops there: the hosts stay as they are, the report says
    which queues started and which did not, and `jobs run-missing` finishes (force: false, so a queue
    that did start is only asked again). Returns the exit code."""
    from ..immich_api import ML_QUEUES

    started: list[str] = []
    for index, queue in enumerate(ML_QUEUES):
        try:
            client.start_missing(queue)
        except ImmichRemoteError as exc:
            immich_data["missing_failed"] = {queue: exc.message, **{q: "not tried" for q in ML_QUEUES[index + 1:]}}
            break
        started.append(queue)
    immich_data["missing_started"] = started
    return EXIT_FAILED if "missing_failed" in immich_data else 0
