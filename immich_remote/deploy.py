"""Deploying one host in three phases, and registering the healthy hosts in Immich.

prepare (connect, probe, preflight, plan the steps: read-only) -> stage (the image, while the old
container serves) -> swap (swap.py executes the remaining steps; a failed gate rolls back). A
rollout runs prepare and stage on every host at once, then swaps a canary alone and the others in
batches (rollout.canary_rollout); `deploy_host` chains the three for one host (`rollback`).

Then all healthy hosts are registered at once (`register`): GET the config, set only
`machineLearning.urls`, PUT the whole object back, GET and verify.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from .context import DeployOptions, HostContext, Prepared, Probe, probe
from .deployment import DEPLOY, RESTART, UNCHANGED
from .errors import ImmichRemoteError, RemoteCommandError
from .hostcmd import release_lock
from .images import ensure_image
from .immich_api import ImmichClient
from .inventory import Host
from .preflight import FAIL, HostReport, host_checks
from .render import RenderedFile, Rendering
from .rollout import HostResult
from .seeding import plan_seed
from .ssh import Remote
from .steps import plan_steps
from .swap import read_release_meta, read_remote_files, swap_host, unified_diff
from .versions import ImmichVersion

# What the commands use (DeployOptions and HostContext live in context.py, swap_host in swap.py).
__all__ = ["DeployOptions", "HostContext", "deploy_host", "dry_run_result", "ok_hosts", "prepare_and_stage",
           "prepare_host", "previous_release", "probe", "register", "stage_host", "swap_host"]


def preflight_host(ctx: HostContext, host: Host) -> tuple[Remote, Probe, HostReport] | HostResult:
    """Connect, probe and check one host; a `failed` result names every failing check and its fix."""
    remote = ctx.connections.remote(host)
    ctx.progress.step(host.name, "connecting")
    remote.connect()
    ctx.progress.step(host.name, "probing")
    found = probe(remote, host)
    report = host_checks(host, found.facts, found.remote, ctx.version, allow_public=ctx.options.allow_public)
    if not report.ok or report.backend is None:
        failing = [c for c in report.checks if c.status == FAIL]
        return HostResult(host.name, "failed", "; ".join(f"{c.name}: {c.detail}" for c in failing),
                          "; ".join(c.fix for c in failing if c.fix),
                          details={"checks": [c.to_data() for c in report.checks]})
    return remote, found, report

def prepare_host(ctx: HostContext, host: Host) -> Prepared | HostResult:
    """Read-only (but for a stale lock on an unchanged host with --break-lock): preflight and the decision.
    Final results for a failed preflight, a dry run, or no change."""
    started = time.monotonic()
    checked = preflight_host(ctx, host)
    if isinstance(checked, HostResult):
        return checked
    remote, found, report = checked
    rendering = ctx.rendering_for(host, remote, found, report)
    seed = plan_seed(ctx, host, remote, found, rendering)
    if seed.refusal:
        running = found.remote.container
        return HostResult(host.name, "failed", f"model cache: {seed.refusal}", "nothing was changed on this host",
                          image=rendering.image, backend=rendering.backend,
                          previous_image=running.image if running else None)
    plan = plan_steps(rendering, found.remote, ship_image=ctx.options.ship_image,
                      warm_models=ctx.options.warm_models and host.service.is_ml, seed=seed.plan.detail if seed.plan else None)
    prepared = Prepared(host, remote, found, report, rendering, plan, seed=seed.plan)
    if ctx.options.dry_run:
        return dry_run_result(prepared)
    if plan.action == UNCHANGED:
        note = f"; {seed.note}" if seed.note else ""
        if ctx.options.break_lock and found.remote.lock:  # nothing to change but a lock a dead run left
            remote.run(release_lock(host.paths), timeout=30, what="removing the lock")
            note += f"; removed the lock left by {found.remote.lock.get('by', '?')} (--break-lock)"
        return HostResult(host.name, "unchanged", "same files, container serving" + note, **prepared.base,
                          duration=time.monotonic() - started, details={"steps": []})
    return prepared

def stage_host(ctx: HostContext, prepared: Prepared) -> Prepared | HostResult:
    """Put the image on the host while the old container keeps serving; nothing else changes."""
    host = prepared.host
    try:
        for step in prepared.plan.stage:  # the image: the only stage step
            ensure_image(ctx, prepared.remote, prepared.rendering.image,
                         lambda text: ctx.progress.step(host.name, text))
            prepared.executed.append(step.name)
    except RemoteCommandError as exc:
        serving = prepared.found.remote.container is not None and prepared.found.remote.container.serving
        full = "no space left on device" in f"{exc.message} {exc.stderr}".lower()
        return HostResult(host.name, "failed", exc.message.rstrip(".") + ("; the host's disk is full" if full else "")
                          + ("; nothing was changed, the current container keeps serving" if serving
                             else "; nothing was changed"),
                          "free space on the host's Docker disk (`docker system df`, `docker image prune`), then run "
                          "the same command again" if full else
                          "check the image name and the registry (or use --ship-image)", **prepared.base)
    ctx.progress.step(host.name, "ready to swap")
    return prepared

def prepare_and_stage(ctx: HostContext, host: Host) -> Prepared | HostResult:
    prepared = prepare_host(ctx, host)
    return stage_host(ctx, prepared) if isinstance(prepared, Prepared) else prepared

def deploy_host(ctx: HostContext, host: Host,
                around: Callable[[Host, Callable[[], HostResult]], HostResult] | None = None) -> HostResult:
    """All three phases for one host (rollback uses it; deploy and upgrade go through rollout.canary_rollout).
    `around` wraps the swap (pool.PoolGate.around: a pool member is drained at its balancer first)."""
    staged = prepare_and_stage(ctx, host)
    if not isinstance(staged, Prepared):
        return staged
    return around(host, lambda: swap_host(ctx, staged)) if around else swap_host(ctx, staged)

def dry_run_result(prepared: Prepared) -> HostResult:
    """What a deploy would do, with the real diff of the files on the host (none when they are the same)."""
    remote, action = prepared.remote, prepared.action
    paths = prepared.host.paths
    diffs = {}
    if action == DEPLOY:  # UNCHANGED and RESTART mean the files on the host are already these
        remote_files = read_remote_files(remote, paths)
        for name in sorted(set(remote_files) | {f.name for f in prepared.rendering.files}):
            new = prepared.rendering.file(name)
            diff = unified_diff(name, remote_files.get(name), new.content if new else None)
            if diff:
                diffs[name] = diff
    words = {UNCHANGED: "no change", RESTART: "would start the container again", DEPLOY: "would deploy"}
    plan = prepared.plan
    return HostResult(prepared.host.name, "dry-run", f"{words[action]}: {plan.reason}" if plan.steps else words[action],
                      **prepared.base, details={"action": action, "diff": diffs, "steps": plan.names,
                                                "plan": [s.to_data() for s in plan.steps]})

def register(client: ImmichClient, compute: Callable[[list[str]], list[str]]) -> tuple[list[str], list[str], bool]:
    """Apply `compute(current urls)` to Immich's config; (before, after, changed). No PUT when equal.

    `compute` is applied to the list as stored right before the write, so a URL someone adds while
    we deploy is kept (see ImmichClient.set_ml_urls, which also skips the write when nothing changes)."""
    replaced, saved = client.set_ml_urls(compute)
    before, after = list(replaced["machineLearning"]["urls"]), list(saved["machineLearning"]["urls"])
    return before, after, after != before


def ok_hosts(hosts: Sequence[Host], results: Sequence[HostResult]) -> list[Host]:
    good = {r.host for r in results if r.status in ("deployed", "unchanged", "restarted", "upgraded")}
    return [h for h in hosts if h.name in good]

def previous_release(ctx: HostContext, host: Host, remote: Remote, found: Probe, report: HostReport) -> Rendering:
    """`rollback`'s target: the files and image of the release before the current one, read from the host."""
    release = found.remote.previous_release
    if not release:
        raise ImmichRemoteError(f"Host '{host.name}': no previous deployment is recorded on the host.",
                                hint="Nothing to roll back to; deploy a version explicitly with --server-version.")
    paths = host.paths
    meta = read_release_meta(remote, paths, release)
    files: list[RenderedFile] = []
    for name in paths.managed:
        content = remote.read_file(f"{paths.release(release)}/{name}")
        if content is not None:
            files.append(RenderedFile(name, content))
    if not files or not meta.get("image"):
        raise ImmichRemoteError(f"Host '{host.name}': release {release} is incomplete on the host (no files or "
                                "release.json); cannot roll back to it.")
    version = ImmichVersion.parse(meta.get("version") or "0.0.0", source=f"release {release}")
    return Rendering(host=host.name, version=version, backend=meta.get("backend") or "cpu", image=meta["image"],
                     files=tuple(files))
