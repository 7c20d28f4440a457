"""`immich-remote deploy`: preflight, deploy every host in parallel, register the healthy ones."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..deploy import DeployOptions, HostContext, deploy_host, ok_hosts, register
from ..errors import EXIT_CONFIG_LOCKED, EXIT_FAILED, ImmichRemoteError, InputError
from ..immich_api import ML_QUEUES, ImmichClient, config_file_snippet
from ..plan import desired_urls
from ..preflight import FAIL, immich_checks
from ..progress import Progress
from ..rollout import Connections, HostResult, run_hosts
from ..snapshots import new_snapshot
from ..versions import ImmichVersion
from .report import print_checks, print_results

if TYPE_CHECKING:
    from ..cli import App

REMOTE_ONLY_COST = ("remote-only drops the local ML URL: while the remote hosts are down, Smart Search, Face "
                    "Detection and OCR jobs FAIL (they are not retried; rerun 'Missing' afterwards), and "
                    "Duplicate Detection and Facial Recognition do not run for those assets.")


def deploy_command(app: App, names: tuple[str, ...], *, server_version: str | None, options: DeployOptions,
                   parallel: int, max_fail: int | None, remote_only: bool, run_missing: bool) -> int:
    inv = app.inventory
    hosts = app.hosts(names)
    out = app.out
    if not inv.immich.keep_local:
        if not remote_only:
            raise InputError(f"{inv.path}: immich.fallback is remote-only, which needs --remote-only to confirm.",
                             hint=REMOTE_ONLY_COST)
        out.warn(REMOTE_ONLY_COST)
    pinned = ImmichVersion.parse(server_version) if server_version else None
    with ImmichClient(inv.immich) as client:
        immich = immich_checks(client, pinned=pinned, need_jobs=run_missing)
        if not immich.ok or immich.version is None or immich.config is None:
            print_checks(app, "Immich server", immich.checks)
            failing = next(c for c in immich.checks if c.status == FAIL)
            raise ImmichRemoteError(f"Immich preflight failed: {failing.detail}", hint=failing.fix or None)
        version = immich.version
        urls_before = list(immich.config["machineLearning"]["urls"])
        snapshot = None
        if not options.dry_run:
            snapshot = new_snapshot(inv, options.command)
            snapshot.write_json("immich-config.json", immich.config)
            snapshot.update_meta(server_version=version.tag, hosts=[h.name for h in hosts], urls_before=urls_before)
        out.info(f"Deploying Immich ML {version.tag} to {len(hosts)} host(s)"
                 + (" (dry run: nothing will change)" if options.dry_run else ""))
        with Connections(inv) as connections, Progress([h.name for h in hosts],
                                                       enabled=not app.json or app.out.verbose > 0) as progress:
            ctx = HostContext(inv, version, options, connections, progress, snapshot, immich.config)
            results = run_hosts(hosts, lambda h: deploy_host(ctx, h), parallel=parallel, max_fail=max_fail,
                                progress=progress)

        good = ok_hosts(hosts, results) if not options.dry_run else \
            [h for h in hosts if next(r for r in results if r.host == h.name).status == "dry-run"]

        def compute(current: list[str]) -> list[str]:
            after = desired_urls(inv, current=current, registered=good)
            if not after:
                raise ImmichRemoteError("This change would leave Immich with no machine-learning URL at all.",
                                        hint="Keep the local fallback (fallback: keep-local) or deploy a host first.")
            return after

        immich_data = {"version": version.tag, "urls_before": urls_before, "locked": immich.locked}
        code = EXIT_FAILED if any(r.failed for r in results) else 0
        wanted = compute(urls_before)
        if options.dry_run:
            immich_data.update(urls_after=wanted, changed=wanted != urls_before)
        elif immich.locked:
            immich_data.update(urls_after=urls_before, changed=False, wanted=wanted)
            if wanted != urls_before:
                immich_data["config_file_snippet"] = config_file_snippet(immich.config, wanted)
                code = EXIT_CONFIG_LOCKED
        else:
            before, after, changed = register(client, compute)
            immich_data.update(urls_before=before, urls_after=after, changed=changed)
            if snapshot:
                snapshot.update_meta(urls_after=after, results=[r.to_data() for r in results])
            if run_missing and good:
                immich_data["missing_started"] = [q for q in ML_QUEUES if client.start_missing(q) is not None]
    report(app, results, immich_data, snapshot.path if snapshot else None, dry_run=options.dry_run)
    return code


def report(app: App, results: list[HostResult], immich: dict, snapshot_path, *, dry_run: bool) -> None:
    if app.json:
        counts: dict[str, int] = {}
        for r in results:
            counts[r.status] = counts.get(r.status, 0) + 1
        app.out.data({"hosts": [r.to_data() for r in results], "immich": immich,
                      "summary": {"total": len(results), "failed": sum(r.failed for r in results), **counts},
                      "snapshot": str(snapshot_path) if snapshot_path else None})
        return
    out = app.out
    if dry_run:
        for r in results:
            out.line(f"{r.host}: {r.message}  ({r.previous_image or 'nothing running'} -> {r.image})", style="bold")
            for diff in r.details.get("diff", {}).values():
                out.line(diff.rstrip("\n"))
    print_results(app, results)
    before, after = immich["urls_before"], immich.get("urls_after", immich["urls_before"])
    out.line("Immich machineLearning.urls" + (" (would change)" if dry_run and immich.get("changed") else
                                              " (changed)" if immich.get("changed") else " (unchanged)") + ":")
    out.line(f"  before: {', '.join(before)}")
    out.line(f"  after:  {', '.join(immich.get('wanted', after))}")
    if immich.get("config_file_snippet"):
        out.warn("Immich's settings come from IMMICH_CONFIG_FILE, so the API cannot change them. Put this into that "
                 "file's machineLearning section, then restart the Immich server:")
        out.line(immich["config_file_snippet"])
    if immich.get("missing_started"):
        out.line(f"Started 'Missing' jobs (force: false): {', '.join(immich['missing_started'])}")
    if snapshot_path:
        out.info(f"Recorded before the change: {snapshot_path}")
