"""`remove` on one host: the steps come from `steps.plan_removal` (a dry run prints them); this module
executes them: `docker compose down` (the model cache stays unless purged), the compose files removed,
the removal recorded; releases and history stay for a later deploy or rollback."""

from __future__ import annotations

import json
import time

from .context import HostContext, probe
from .hostcmd import (
    append_history,
    cache_volume_name,
    compose_down,
    remove_files,
    volume_remove,
    write_state,
)
from .inventory import Host
from .rollout import HostResult
from .snapshots import utc_now, who
from .steps import plan_removal
from .swap import HostLock, record_host


def remove_host(ctx: HostContext, host: Host, *, purge_cache: bool) -> HostResult:
    """Plan the host's removal from what is there, then (unless a dry run) execute exactly those steps."""
    started = time.monotonic()
    remote = ctx.connections.remote(host)
    ctx.progress.step(host.name, "connecting")
    remote.connect()
    found = probe(remote, host)
    volume = None if host.model_cache_is_path else cache_volume_name(host.model_cache)
    plan = plan_removal(found.remote, purge_cache=purge_cache, cache_volume=volume)
    current = found.remote.container
    base = {"previous_image": current.image if current else None}
    notes = ["model cache kept" if not (purge_cache and volume) else f"model cache volume {volume} removed"]
    if purge_cache and host.model_cache_is_path:
        notes = [f"the model cache is a host path ({host.model_cache}): left in place, delete it by hand"]
    if ctx.options.dry_run:
        return HostResult(host.name, "dry-run", f"would remove: {plan.reason}" if plan.steps else "nothing deployed",
                          **base, details={"action": "remove", "steps": plan.names,
                                           "plan": [s.to_data() for s in plan.steps]})
    if not plan.steps:
        return HostResult(host.name, "unchanged", "nothing deployed", **base, details={"steps": []})
    paths = host.paths
    executed: list[str] = []
    record = {"current": None, "previous": found.remote.current_release, "command": "remove", "by": who(),
              "at": utc_now().isoformat(timespec="seconds"), "image": None}
    with HostLock(remote, paths, "remove", force=ctx.options.break_lock):
        executed.append("lock")
        for step in plan.steps[1:]:
            ctx.progress.step(host.name, step.detail)
            if step.name == "record":
                record_host(ctx, host, remote, paths, found)
            elif step.name == "down":
                down = compose_down(paths) if found.remote.files else \
                    ["docker", "compose", "-p", paths.project, "down", "--remove-orphans"]  # files gone, containers left
                remote.run(down, what="docker compose down")
            elif step.name == "purge":
                done = remote.run(volume_remove(volume), check=False, what="docker volume rm")
                if not done.ok:
                    notes = [f"model cache volume {volume} not removed: {done.stderr.strip()[:120]}"]
            elif step.name == "unlink":
                remote.run(remove_files(paths), what="removing the compose files")
            elif step.name == "state":
                remote.run(write_state(paths, json.dumps(record)), what="recording the removal")
            elif step.name == "history":
                remote.run(append_history(paths, json.dumps({**record, "event": "remove", "url": host.url,
                                                             "purge_cache": purge_cache})), check=False, what="history")
            executed.append(step.name)
    return HostResult(host.name, "removed", "; ".join(notes), **base, duration=time.monotonic() - started,
                      details={"steps": executed})
