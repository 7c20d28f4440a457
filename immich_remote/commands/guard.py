"""`immich-remote guard`: pause the ML queues while no ML URL answers, resume them when one is back.

The decisions are `immich_remote.guard`'s (pure); this module reads (Immich's config and queues, each
URL's `/ping`), acts (pause, run-missing, resume) and logs each action with its time and reason.
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import click

from ..app import App, pass_app
from ..errors import EXIT_FAILED, ImmichAPIError, ImmichPermissionError, ImmichRemoteError
from ..options import DURATION, json_option

if TYPE_CHECKING:
    from ..guard import Decision, GuardMemory, UrlHealth
    from ..immich_api import ImmichClient
    from ..ssh import Remote

# Indirection the tests replace to drive the loop without waiting.
_sleep = time.sleep


@click.command()
@click.option("--interval", type=DURATION, default="10s", show_default=True, metavar="DURATION",
              help="Time between two checks (10s, 1m, ...).")
@click.option("--once", is_flag=True, help="One check (and the action it calls for), then exit: for cron and tests.")
@json_option
@pass_app
@click.pass_context
def guard(ctx: click.Context, app: App, interval: float, once: bool) -> None:
    """Keep ML jobs waiting, instead of failing, while no ML URL answers.

    Every --interval: reads Immich's ML URL list and its availability-check timeout, sends
    GET /ping to each URL as the server does (from here; a URL that does not answer here is
    tried from the Immich server's host when the inventory names immich.ssh_host), and reads the
    ML queues. When no URL answers it pauses the ML queues (Immich would fail their jobs); when
    one answers again it queues the missing jobs of the queues it paused (force: false) and
    resumes exactly those. What it paused is kept in guard.json in the state directory, so a
    restart changes nothing and a queue someone else paused is never resumed. Each action is
    logged with its time and reason; with --json one JSON object per line.

    Runs in the foreground until Ctrl-C or SIGTERM (both exit 0; paused queues stay paused until
    the guard runs again). docs/guard.md has a systemd unit and a compose service. The key needs
    the config and queue read permissions, queue.update (job.create before Immich 2.4) and job.create.

    \b
    Examples:
      immich-remote guard
      immich-remote guard --interval 30s --json
      immich-remote guard --once          # from cron; exit 1 when Immich could not be read
    """
    ctx.exit(guard_command(app, interval=interval, once=once))


COMMANDS = (guard,)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def state_path(app: App) -> Path:
    from ..guard import STATE_FILE
    from ..snapshots import state_root

    return state_root(app.inventory) / STATE_FILE


def load_memory(path: Path, server: str) -> GuardMemory:
    from ..guard import GuardMemory

    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        data = None
    except (OSError, ValueError) as exc:
        data = {"unreadable": str(exc)}
    return GuardMemory.from_data(data, server=server, source=str(path))


def save_memory(path: Path, memory: GuardMemory) -> None:
    """Atomically (temp file + rename), 0600, in the 0700 state directory."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temp = path.with_name(path.name + ".tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(json.dumps(memory.to_data(), indent=2) + "\n")
    os.replace(temp, path)


class Guard:
    """One guard run: the client, the memory, the log."""

    def __init__(self, app: App, client: ImmichClient, server_host: Remote | None, path: Path, *,
                 verbose_checks: bool) -> None:
        self.app, self.client, self.server_host, self.path = app, client, server_host, path
        self.memory = load_memory(path, app.inventory.immich.url)
        self.verbose_checks = verbose_checks
        self.permissions_checked = False
        self.last_states: dict[str, str] | None = None
        self.last_error: str | None = None

    # --- reading ----------------------------------------------------------------------------------
    def check_permissions(self) -> None:
        """Name a missing permission before the first outage needs it (read from /api-keys/me)."""
        from ..immich_api import queue_pause_request

        version = self.client.version()
        try:
            key = self.client.my_api_key()
        except ImmichAPIError as exc:
            if exc.status == 404:  # no /api-keys/me on this server: the permissions show when used
                self.permissions_checked = True
                return
            raise
        needed = [self.client.endpoint.read_permission, self.client.queue_read_permission,
                  queue_pause_request(version, "smartSearch", True).permission, "job.create"]
        missing = key.missing(*dict.fromkeys(needed))
        if missing:
            raise ImmichPermissionError(
                f"The API key lacks permission {' and '.join(missing)}: the guard could not pause, resume or "
                "start the ML queues.", hint="Edit the key in Immich (Account Settings > API Keys) and grant "
                f"{' and '.join(missing)} (or `all`); the key's user must be an admin.")
        self.permissions_checked = True

    def url_health(self, url: str, timeout: float) -> UrlHealth:
        from ..guard import url_health
        from ..ml_api import ping_direct, ping_via

        here = ping_direct(url, timeout=timeout)
        via = None
        parts = urlsplit(url)
        if not here[0] and self.server_host is not None and parts.scheme == "http" and parts.hostname:
            try:
                status, _body = ping_via(self.server_host, parts.hostname, parts.port or 80, timeout=timeout)
                via = (200 <= status < 300, f"HTTP {status}")  # the server counts any 2xx as healthy
            except ImmichRemoteError as exc:
                via = (False, exc.message)
            except (OSError, ValueError) as exc:
                via = (False, str(exc) or type(exc).__name__)
        return url_health(url, here, via)

    # --- one check --------------------------------------------------------------------------------
    def tick(self) -> bool:
        """One check and the action it calls for. False when Immich could not be read or an action failed."""
        from ..guard import check_timeout, decide, ml_urls, remember
        from ..jobs import enabled_ml_queues
        from .jobs import _forget_version, read_queues

        at = _now()
        try:
            if not self.permissions_checked:
                self.check_permissions()
            config = self.client.get_config()
            reading = read_queues(self.client)
        except ImmichPermissionError:
            raise
        except ImmichAPIError as exc:
            if exc.status == 401:
                raise
            _forget_version(self.client)  # the server may come back upgraded (another queue endpoint)
            if exc.message != self.last_error or self.verbose_checks:  # a long Immich outage: logged once
                self.log({"at": at, "action": "error", "ok": False,
                          "reason": f"cannot read Immich: {exc.message}; nothing changed, tried again every check"})
            self.last_error = exc.message
            return False
        ml_enabled, urls = ml_urls(config)
        timeout = check_timeout(config)
        health = [self.url_health(url, timeout) for url in urls]
        enabled, _disabled = enabled_ml_queues(config, reading.queues)
        decision = decide(ml_enabled=ml_enabled, health=health, queues=reading.queues,
                          remembered=self.memory.paused, enabled=enabled)
        entry: dict[str, Any] = {"at": at, **decision.to_data(), "urls": [h.to_data() for h in health]}
        ok = True
        if decision.action == "pause":
            ok = self.pause(decision, entry, at)
        elif decision.action == "resume":
            ok = self.resume(decision, entry)
        elif decision.forget:
            self.store(remember(self.memory, decision))
        entry["remembered"] = list(self.memory.paused)
        entry["ok"] = ok
        states = {h.url: h.state for h in health}
        if decision.action != "none" or not ok or states != self.last_states or self.last_error or \
                self.verbose_checks:
            self.log(entry)
        self.last_states, self.last_error = states, None
        return ok

    def store(self, memory: GuardMemory) -> None:
        if memory.to_data() != self.memory.to_data() or (memory.paused and not self.path.exists()):
            save_memory(self.path, memory)
        self.memory = memory

    def pause(self, decision: Decision, entry: dict[str, Any], at: str) -> bool:
        """Remember the queues first (a crash after a PUT must not leave a queue the guard forgot), then pause."""
        from ..guard import GuardMemory, remember

        self.store(remember(self.memory, decision, paused=decision.pause, at=at))
        refused, results = [], []
        for queue in decision.pause:
            try:
                self.client.set_queue_paused(queue, True)
            except ImmichAPIError as exc:
                results.append({"queue": queue, "paused": False, "error": exc.message})
                if exc.status is not None and 400 <= exc.status < 500:  # refused: not paused, not the guard's
                    refused.append(queue)
                # otherwise the outcome is unknown: kept, and forgotten later if it turns out running
                continue
            results.append({"queue": queue, "paused": True})
        if refused:
            self.store(GuardMemory(self.memory.server, [q for q in self.memory.paused if q not in refused],
                                   self.memory.since, self.memory.reason))
        entry["results"] = results
        return all(r["paused"] for r in results)

    def resume(self, decision: Decision, entry: dict[str, Any]) -> bool:
        """Queue the missing jobs while the queue is still paused (a queue with active jobs refuses a
        start), then resume exactly the queues the guard paused."""
        from ..guard import remember

        results: list[dict[str, Any]] = []
        for queue in decision.run_missing:
            try:
                self.client.start_missing(queue)
                results.append({"queue": queue, "runMissing": "started", "body": {"command": "start", "force": False}})
            except ImmichAPIError as exc:
                if exc.status != 400:
                    entry["results"] = results + [{"queue": queue, "runMissing": "failed", "error": exc.message}]
                    return False  # Immich went away: the next check tries again (the queues stay paused)
                already = "already running" in exc.message.lower()
                results.append({"queue": queue, "runMissing": "already-running" if already else "failed",
                                "error": exc.message})
        resumed = []
        for queue in decision.resume:
            try:
                self.client.set_queue_paused(queue, False)
            except ImmichAPIError as exc:
                results.append({"queue": queue, "resumed": False, "error": exc.message})
                continue
            resumed.append(queue)
            results.append({"queue": queue, "resumed": True})
        self.store(remember(self.memory, decision, resumed=resumed))
        entry["results"] = results
        return len(resumed) == len(decision.resume)

    # --- output -----------------------------------------------------------------------------------
    def log(self, entry: dict[str, Any]) -> None:
        if self.app.json:
            sys.stdout.write(json.dumps(entry) + "\n")
            sys.stdout.flush()
            return
        action = entry["action"]
        queues = entry.get("pause") or entry.get("resume") or []
        what = f"{action} {', '.join(queues)}" if queues else ("check" if action == "none" else action)
        style = {"pause": "yellow", "resume": "green", "error": "red"}.get(action)
        self.app.out.line(f"{entry['at']}  {what}: {entry['reason']}", style=style)
        for result in entry.get("results", []):
            if result.get("error"):
                self.app.out.line(f"    {result['queue']}: {result['error']}", style="red")
            elif result.get("runMissing"):
                self.app.out.line(f'    {result["queue"]}: missing jobs queued (PUT /api/jobs/{result["queue"]} '
                                  '{"command": "start", "force": false})', style="dim")


def guard_command(app: App, *, interval: float, once: bool) -> int:
    from ..immich_api import ImmichClient
    from ..rollout import Connections

    inventory = app.inventory
    path = state_path(app)
    with ImmichClient(inventory.immich) as client, Connections(inventory) as connections:
        server_host = connections.immich_host()
        run = Guard(app, client, server_host, path, verbose_checks=once or app.out.verbose > 0)
        held = ", ".join(run.memory.paused) or "none"
        where = "from here and from the Immich server's host" if server_host else "from here"
        app.out.info(f"guard: Immich at {inventory.immich.url}; ML URLs checked {where} "
                     f"{'once' if once else f'every {interval:g}s'}; state {path} (queues it paused: {held})")
        try:
            while True:
                ok = run.tick()
                if once:
                    return 0 if ok else EXIT_FAILED
                _sleep(interval)
        except KeyboardInterrupt:
            held = ", ".join(run.memory.paused)
            app.out.info("guard stopped" + (f"; the queues it paused stay paused until it runs again: {held}"
                                            if held else ""))
            return 0
