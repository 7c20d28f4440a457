"""`immich-remote jobs`: Immich's ML job queues; `jobs run-missing`, `jobs pause`, `jobs resume`.

Reading the queues sends only GET requests. The numbers come from `immich_remote.jobs` (pure).
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from ..errors import EXIT_FAILED, ImmichAPIError, ImmichPermissionError
from ..immich_api import ML_JOB_QUEUES, ImmichClient, queue_pause_request, start_missing_request
from ..jobs import (
    COUNT_KEYS,
    Rates,
    check_queue_names,
    choose_queues,
    enabled_ml_queues,
    format_eta,
    format_rate,
    ml_queue_counts,
)
from ..versions import ImmichVersion

if TYPE_CHECKING:
    from ..cli import App

# Indirections the tests replace to drive a watch without waiting.
_clock = time.monotonic
_sleep = time.sleep


@dataclass
class QueuesReading:
    """One reading of the ML queues (and, in a watch, the rates measured up to it)."""

    url: str
    version: ImmichVersion
    queues: dict[str, dict[str, Any]]
    at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    rates: dict[str, dict[str, float | None]] | None = None
    error: str | None = None

    @property
    def endpoint(self) -> str:
        return "/api/queues" if self.version.has_queues_api else "/api/jobs"

    def server_data(self) -> dict[str, Any]:
        return {"url": self.url, "version": str(self.version)}

    def to_data(self) -> dict[str, Any]:
        return {"server": self.server_data(), "queues": {name: dict(c) for name, c in self.queues.items()}}

    def to_watch_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {"at": self.at, **self.to_data()}
        for name, counts in data["queues"].items():
            rate = (self.rates or {}).get(name, {})
            counts["throughputPerMinute"] = _rounded(rate.get("throughput"))
            counts["etaSeconds"] = _rounded(rate.get("eta"))
        if self.error:
            data["error"] = self.error
        return data


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def read_queues(client: ImmichClient) -> QueuesReading:
    version = client.version()
    return QueuesReading(client.server.url, version, ml_queue_counts(client.queue_statistics(), version))


# --- jobs [--watch] --------------------------------------------------------------------------------

def jobs_command(app: App, *, watch: float | None) -> int:
    with ImmichClient(app.inventory.immich) as client:
        if watch is not None:
            return _watch(app, client, watch)
        reading = read_queues(client)
    if app.json:
        app.out.data(reading.to_data())
    else:
        app.out.out.print(render(reading))
    return 0


def _watch(app: App, client: ImmichClient, interval: float) -> int:
    """Refresh every `interval` seconds until Ctrl-C: rich Live on a terminal, a table (or, with
    --json, one JSON object per line) per refresh otherwise. A failed refresh keeps the last numbers
    on screen with the error; only the first reading, or a missing permission, ends the watch."""
    window = max(60.0, 3 * interval)
    rates = Rates(window=window)
    last: QueuesReading | None = None

    def refresh() -> QueuesReading:
        nonlocal last
        try:
            reading = read_queues(client)
        except ImmichPermissionError:
            raise
        except ImmichAPIError as exc:
            if last is None:
                raise
            _forget_version(client)  # the server may have been upgraded (another queue endpoint)
            return replace(last, at=datetime.now(timezone.utc).isoformat(timespec="seconds"), error=exc.message)
        reading.rates = rates.add(_clock(), reading.queues)
        last = reading
        return reading

    footer = f"every {interval:g}s; rate over the last {window:g}s; Ctrl-C to stop"
    try:
        if not app.json and app.out.out.is_terminal:
            with Live(console=app.out.out, auto_refresh=False) as live:
                while True:
                    live.update(render(refresh(), footer=footer), refresh=True)
                    _sleep(interval)
        while True:  # not a terminal: one table (or JSON line) per refresh
            reading = refresh()
            if app.json:
                sys.stdout.write(json.dumps(reading.to_watch_data()) + "\n")
                sys.stdout.flush()
            else:
                app.out.out.print(render(reading, footer=footer))
                app.out.out.print()
            _sleep(interval)
    except KeyboardInterrupt:
        return 0


def _forget_version(client: ImmichClient) -> None:
    try:
        client.version(fresh=True)
    except ImmichAPIError:
        pass


def _state(counts: dict[str, Any]) -> Text:
    if counts["isPaused"]:
        return Text("paused", style="yellow")
    if counts["active"]:
        return Text("running", style="green")
    if counts["waiting"] or counts["delayed"]:
        return Text("waiting", style="cyan")
    return Text("idle", style="dim")


def render(reading: QueuesReading, footer: str = "") -> Group:
    watching = reading.rates is not None
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("queue")
    table.add_column("state")
    for key in COUNT_KEYS:
        table.add_column(key, justify="right")
    if watching:
        table.add_column("done/min", justify="right")
        table.add_column("ETA", justify="right")
    for name, counts in reading.queues.items():
        cells: list[Any] = [name, _state(counts)]
        for key in COUNT_KEYS:
            style = "red" if key == "failed" and counts[key] else ""
            cells.append(Text(str(counts[key]), style=style))
        if watching:
            rate = (reading.rates or {}).get(name, {})
            cells += [format_rate(rate.get("throughput")), format_eta(rate.get("eta"))]
        table.add_row(*cells)
    head = Text(f"Immich {reading.version} at {reading.url}: ML job queues (GET {reading.endpoint})", style="bold")
    parts: list[Any] = [head]
    if reading.error:
        parts.append(Text(f"{reading.at}: refresh failed, numbers from the last reading: {reading.error}",
                          style="red"))
    parts.append(table if reading.queues else Text("This server lists none of the ML queues.", style="yellow"))
    failed = sum(c["failed"] for c in reading.queues.values())
    if failed:
        parts.append(Text(f"{failed} failed job(s): `immich-remote jobs run-missing` queues the assets they left "
                          "unprocessed.", style="yellow"))
    if any(c["isPaused"] for c in reading.queues.values()):
        parts.append(Text("Paused queues keep their jobs waiting: `immich-remote jobs resume` starts them again.",
                          style="yellow"))
    if footer:
        parts.append(Text(f"{reading.at}  {footer}", style="dim"))
    return Group(*parts)


# --- jobs run-missing ------------------------------------------------------------------------------

def run_missing_command(app: App, names: tuple[str, ...]) -> int:
    """`{"command": "start", "force": false}` to the named ML queues, or to those enabled in the config."""
    check_queue_names(names)
    with ImmichClient(app.inventory.immich) as client:
        reading = read_queues(client)
        skipped: dict[str, str] = {}
        if names:
            chosen = choose_queues(names, reading.queues)
        else:
            chosen, disabled = enabled_ml_queues(client.get_config(), reading.queues)
            for name in ML_JOB_QUEUES:
                if name not in reading.queues:
                    skipped[name] = f"no such queue in Immich {reading.version}"
                elif name in disabled:
                    skipped[name] = f"{disabled[name]} is false"
        sent = []
        for name in chosen:
            entry: dict[str, Any] = {"queue": name, **start_missing_request(name).to_data()}
            try:
                client.start_missing(name)
                entry["result"] = "started"
            except ImmichAPIError as exc:
                if exc.status != 400:  # unreachable, 401, a missing permission: stop here
                    raise
                already = "already running" in exc.message.lower()
                entry["result"] = "already-running" if already else "failed"
                entry["error"] = exc.message
            sent.append(entry)
    failed = [e for e in sent if e["result"] == "failed"]
    if app.json:
        app.out.data({"server": reading.server_data(), "sent": sent, "skipped": skipped, "ok": not failed})
    else:
        out = app.out
        out.line(f"Immich {reading.version} at {reading.url}: start missing ML jobs (force: false)", style="bold")
        if sent:
            out.table(["queue", "sent", "result"],
                      [(e["queue"], f"{e['method']} {e['path']} {json.dumps(e['body'])}",
                        _result_text(e)) for e in sent], status_column="result")
        else:
            out.line("No ML queue to start: nothing was sent.", style="yellow")
        for name, reason in skipped.items():
            out.line(f"  skipped {name}: {reason}", style="dim")
        if any(e["result"] == "already-running" for e in sent):
            out.line("A queue with active jobs refuses a start; run this again once it is idle "
                     "(`immich-remote jobs --watch`).", style="yellow")
    return EXIT_FAILED if failed else 0


def _result_text(entry: dict[str, Any]) -> str:
    if entry["result"] == "started":
        return "ok started"
    if entry["result"] == "already-running":
        return "skipped: already running"
    return f"failed: {entry.get('error', '')}"


# --- jobs pause / resume ---------------------------------------------------------------------------

def pause_command(app: App, names: tuple[str, ...], *, paused: bool) -> int:
    """Pause or resume the named ML queues (default: every ML queue the server has)."""
    check_queue_names(names)
    verb = "pause" if paused else "resume"
    with ImmichClient(app.inventory.immich) as client:
        reading = read_queues(client)
        chosen = choose_queues(names, reading.queues)
        sent = []
        for name in chosen:
            entry: dict[str, Any] = {"queue": name, **queue_pause_request(reading.version, name, paused).to_data(),
                                     "wasPaused": reading.queues[name]["isPaused"]}
            try:
                answer = client.set_queue_paused(name, paused)
            except ImmichAPIError as exc:
                if exc.status != 400:
                    raise
                entry.update(isPaused=None, ok=False, error=exc.message)
            else:
                now = _answer_paused(answer, reading.version)
                entry.update(isPaused=now, ok=now is paused)
                if now is not paused:
                    entry["error"] = f"the server answered isPaused={now}"
            sent.append(entry)
    failed = [e for e in sent if not e["ok"]]
    if app.json:
        app.out.data({"server": reading.server_data(), "command": verb, "sent": sent, "ok": not failed})
    else:
        app.out.line(f"Immich {reading.version} at {reading.url}: {verb} ML queues", style="bold")
        if not sent:
            app.out.line("This server lists none of the ML queues: nothing was sent.", style="yellow")
        else:
            app.out.table(["queue", "sent", "before", "now"],
                          [(e["queue"], f"{e['method']} {e['path']} {json.dumps(e['body'])}",
                            _paused_word(e["wasPaused"]),
                            ("ok " if e["ok"] else "failed ") + (_paused_word(e["isPaused"]) if e["isPaused"]
                                                                  is not None else e.get("error", "")))
                           for e in sent], status_column="now")
        if paused and sent and not failed:
            app.out.line("Jobs wait in the paused queues; `immich-remote jobs resume` starts them again.",
                         style="dim")
    return EXIT_FAILED if failed else 0


def _answer_paused(answer: Any, version: ImmichVersion) -> bool | None:
    """isPaused from `QueueResponseDto` (2.4+) or the legacy `{queueStatus: {isPaused}}`."""
    if not isinstance(answer, dict):
        return None
    value = answer.get("isPaused") if version.has_queues_api else (answer.get("queueStatus") or {}).get("isPaused")
    return value if isinstance(value, bool) else None


def _paused_word(value: bool | None) -> str:
    return "paused" if value else "running"
