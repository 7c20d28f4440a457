"""Seeding a host's model cache from another host: the reads that decide (`plan_seed`, in the
read-only prepare phase, so the dry run shows the `seed` step) and the copy (`seed_cache`, the
swap's `do_seed`). What to run and what to decide is in cache_seed.py; this is its I/O, over the
hosts' own SSH connections (ssh.Remote.stream_out on the source piped into stream_in on the target)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

from .cache_seed import (
    Manifest,
    SeedDecision,
    cache_mount,
    clear_cache,
    decide_seed,
    finish_cache,
    hold_container,
    parse_manifest,
    read_cache,
    receive_cache,
    send_cache,
    wanted_models,
)
from .context import HostContext, Prepared, Probe
from .deployment import RESTART
from .errors import ImmichRemoteError, RemoteCommandError, SSHError
from .hostcmd import compose_up
from .humanize import human_bytes, human_duration, human_rate
from .inventory import Host
from .names import HostPaths
from .render import Rendering
from .ssh import Remote

LISTING_TIMEOUT = 300.0  # sha256 of a few GB of models takes seconds; a host that takes minutes is stuck


def read_manifest(ctx: HostContext, host: Host, remote: Remote, images: Sequence[str], *,
                  checksums: bool) -> Manifest:
    """A host's cache manifest (read once per run and kind; reading never creates the volume)."""
    key = (host.name, checksums)
    with ctx.cache_guard:
        lock = ctx.cache_locks.setdefault(key, threading.Lock())
    with lock:  # hosts staging at once wait for the one reading this manifest instead of reading it again
        if key not in ctx.caches:
            out = remote.run(read_cache(cache_mount(host.model_cache), images, checksums=checksums),
                             timeout=min(remote.command_timeout, LISTING_TIMEOUT), what="reading the model cache")
            ctx.caches[key] = parse_manifest(out.stdout)
    return ctx.caches[key]


def plan_seed(ctx: HostContext, host: Host, remote: Remote, found: Probe, rendering: Rendering) -> SeedDecision:
    """Read-only: should this host's cache be seeded, and from which host? (cache_seed.decide_seed)"""
    opts = ctx.options
    explicit = opts.seed_from
    new_host = found.remote.container is None
    if not host.service.is_ml:  # a pool's balancer has no model cache
        return SeedDecision()
    if (explicit is None and not (opts.auto_seed and new_host)) or explicit == host.name:
        return SeedDecision()
    images = [rendering.image]
    # Named source: the caches may have to be compared, so with checksums (as cheap as without when empty).
    target = read_manifest(ctx, host, remote, images, checksums=explicit is not None)
    if explicit is None and not target.empty:
        return SeedDecision()
    full = explicit is not None and not target.empty  # the caches are compared: checksums on both sides
    sources: dict[str, Manifest] = {}
    for other in ctx.inventory.hosts:
        if other.name == host.name or (explicit is not None and other.name != explicit):
            continue
        try:
            ctx.progress.step(host.name, f"reading {other.name}'s model cache")
            sources[other.name] = read_manifest(ctx, other, ctx.connections.remote(other), images, checksums=full)
        except ImmichRemoteError:
            if explicit is not None:
                raise  # the host the user named must answer; an automatic candidate may be down
            ctx.caches[(other.name, full)] = Manifest(state="unreachable")  # asked once per run
    return decide_seed(host.name, target, explicit=explicit, force=opts.force_seed, new_host=new_host,
                       sources=sources, models=wanted_models(ctx.immich_config))


def _counted(chunks: Iterable[bytes], total: list[int], report: Callable[[int], None]) -> Iterator[bytes]:
    for chunk in chunks:
        total[0] += len(chunk)
        report(total[0])
        yield chunk


def seed_cache(ctx: HostContext, prepared: Prepared) -> dict[str, object]:
    """Copy the planned source's cache into this host's, then compare both manifests (sizes and
    sha256). A copy that fails or differs is removed from the target cache again (it was empty, or
    --force said it may be replaced) and raises RemoteCommandError, which rolls the host back."""
    plan, host, remote = prepared.seed, prepared.host, prepared.remote
    assert plan is not None
    source_host = ctx.inventory.host(plan.source)
    image, mount = prepared.rendering.image, cache_mount(host.model_cache)
    quick, paths = min(remote.command_timeout, 120.0), HostPaths.for_dir(host.remote_dir)
    try:
        source = ctx.connections.remote(source_host).connect()
        remote.run(hold_container(paths), timeout=quick,
                   what="creating the container and its cache volume")
        if prepared.found.remote.container is not None and not plan.overwrite:
            # A container ran on it since the plan's read and may have filled it (with no container,
            # only another run could, and the host's lock keeps it out).
            now = parse_manifest(remote.run(read_cache(mount, [image], checksums=False), timeout=LISTING_TIMEOUT,
                                            what="reading the model cache").stdout)
            if not now.empty:
                raise RemoteCommandError(f"Host '{host.name}': its model cache is no longer empty "
                                         f"({now.summary()}); not overwritten (--force replaces it).")
    except RemoteCommandError:
        raise
    except SSHError as exc:  # the source does not answer: a step failure, so the host is rolled back
        raise RemoteCommandError(exc.message, hint=exc.hint) from None
    started, streamed = time.monotonic(), [0]
    expected = plan.source_cache.size  # the files' bytes; tar's headers add a little, so never below `done`

    def report(done: int) -> None:
        ctx.progress.transfer(host.name, done, max(expected, done) or None, "seeding")
    try:
        remote.stream_in(receive_cache(mount, image, overwrite=plan.overwrite),
                         _counted(source.stream_out(send_cache(cache_mount(source_host.model_cache), [image]),
                                                    what=f"reading the model cache of {plan.source}"), streamed,
                                  report),
                         what=f"unpacking the model cache from {plan.source}")
        copied = time.monotonic() - started
        ctx.progress.step(host.name, "verifying the seeded model cache")
        ctx.caches.pop((plan.source, True), None)  # read it again now: it is what was copied
        with ThreadPoolExecutor(max_workers=1) as pool:  # both hosts hash at once
            wanted = pool.submit(read_manifest, ctx, source_host, source, [image], checksums=True)
            got = parse_manifest(remote.run(read_cache(mount, [image], checksums=True), timeout=LISTING_TIMEOUT,
                                            what="reading the seeded model cache").stdout)
            want = wanted.result()
        if not got.matches(want):
            raise RemoteCommandError(f"Host '{host.name}': the copied model cache differs from {plan.source}'s ("
                                     + "; ".join(got.differences(want)) + ")")
        remote.run(finish_cache(mount, image), timeout=quick, what="marking the model cache complete")
    except (RemoteCommandError, SSHError, OSError, EOFError) as exc:
        emptied = remote.run(clear_cache(mount, image), check=False, timeout=quick, what="emptying the model cache")
        if prepared.action == RESTART:  # no other release to go back to: start this one again on its cache
            remote.run(compose_up(paths), check=False, timeout=quick, what="docker compose up")
        message = getattr(exc, "message", None) or f"Host '{host.name}': the copy stopped: {exc or type(exc).__name__}"
        raise RemoteCommandError(message + ("; the unfinished copy was removed from the host's model cache" if
                                            emptied.ok and "removed" in emptied.stdout else ""),
                                 stderr=getattr(exc, "stderr", "")) from None
    seconds = time.monotonic() - started
    return {"from": plan.source, "files": len(want.files), "bytes": want.size, "stream_bytes": streamed[0],
            "copy_seconds": round(copied, 2), "seconds": round(seconds, 2), "verified": "size and sha256",
            "summary": f"model cache seeded from {plan.source}: {len(want.files)} files, {human_bytes(want.size)} "
                       f"in {human_duration(seconds)} ({human_rate(streamed[0] / max(copied, 1e-3))}), sha256 verified"}
