"""`remove` on one host: `docker compose down` (the model cache stays unless purged), the compose
files removed, the removal recorded; releases and history stay for a later deploy or rollback."""

from __future__ import annotations

import json

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
from .names import PROJECT_NAME, HostPaths
from .rollout import HostResult
from .snapshots import utc_now, who
from .swap import HostLock, record_host


def remove_host(ctx: HostContext, host: Host, *, purge_cache: bool) -> HostResult:
    """`docker compose down` on the host (the model cache volume stays unless `purge_cache`), our active
    files removed; releases and history stay on the host so a later deploy or rollback can use them."""
    remote = ctx.connections.remote(host)
    ctx.progress.step(host.name, "connecting")
    remote.connect()
    found = probe(remote, host)
    paths = HostPaths.for_dir(host.remote_dir)
    current = found.remote.container
    with HostLock(remote, paths, "remove", force=ctx.options.break_lock):
        record_host(ctx, host, remote, paths, found)
        ctx.progress.step(host.name, "docker compose down")
        if found.remote.files:
            remote.run(compose_down(paths), what="docker compose down")
        elif found.remote.containers:  # files gone but containers left: Compose finds them by project name
            remote.run(["docker", "compose", "-p", PROJECT_NAME, "down", "--remove-orphans"], what="docker compose down")
        notes = []
        if purge_cache:
            if host.model_cache_is_path:
                notes.append(f"the model cache is a host path ({host.model_cache}): left in place, delete it by hand")
            else:
                volume = cache_volume_name(host.model_cache)
                done = remote.run(volume_remove(volume), check=False, what="docker volume rm")
                notes.append(f"model cache volume {volume} " + ("removed" if done.ok else f"not removed: "
                                                                  f"{done.stderr.strip()[:120]}"))
        else:
            notes.append("model cache kept")
        record = {"current": None, "previous": found.remote.current_release, "command": "remove", "by": who(),
                  "at": utc_now().isoformat(timespec="seconds"), "image": None}
        remote.run(remove_files(paths), what="removing the compose files")
        remote.run(write_state(paths, json.dumps(record)), what="recording the removal")
        remote.run(append_history(paths, json.dumps({**record, "event": "remove", "url": host.url,
                                                     "purge_cache": purge_cache})), check=False, what="history")
    return HostResult(host.name, "removed", "; ".join(notes), previous_image=current.image if current else None)
