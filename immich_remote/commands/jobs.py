"""`immich-remote jobs`: Immich's ML job queues; `jobs run-missing`, `jobs pause`, `jobs resume`.

Reading the queues sends only GET requests. The numbers come from `immich_remote.jobs` (pure).
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import click

from ..app import App, pass_app
from ..errors import EXIT_FAILED, ImmichAPIError, ImmichPermissionError, InputError
from ..options import json_option

if TYPE_CHECKING:
    from rich.console import Group
    from rich.text import Text

    from ..immich_api import ImmichClient
    from ..jobs import QueuesReading
    from ..versions import ImmichVersion

# Indirections the tests replace to drive a watch without waiting.
_clock = time.monotonic
_sleep = time.sleep


def _complete_queues(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    from ..immich_api import ML_JOB_QUEUES
    return [q for q in ML_JOB_QUEUES if q.startswith(incomplete)]


QUEUES_ARG = click.argument("queues", metavar="[QUEUE]...", nargs=-1, shell_complete=_complete_queues)


@click.group("jobs", invoke_without_command=True)
@click.option("--watch", "-w", metavar="[SECONDS]", type=click.FloatRange(min=0.5), is_flag=False, flag_value=5.0,
              default=None, help="Refresh every SECONDS (default 5) until Ctrl-C, with jobs done per minute and "
              "an ETA per queue. With --json: one JSON object per line.")
@json_option
@pass_app
@click.pass_context
def jobs_group(ctx: click.Context, app: App, watch: float | None) -> None:
    """Immich's ML job queues: counts, and (subcommands) run-missing, pause, resume.

    Without a subcommand: the ML queues the server has (smartSearch, faceDetection,
    facialRecognition, duplicateDetection, ocr) with their active, waiting, delayed, failed and
    paused counts and whether each queue is paused, read with GET only (/api/queues from Immich
    2.4, /api/jobs before; the key needs queue.read, or job.read before 2.4).

    \b
    Examples:
      immich-remote jobs
      immich-remote jobs --watch          # during a big import: rate and ETA, every 5 s
      immich-remote jobs --watch 30 --json
    """
    if ctx.invoked_subcommand is not None:
        if watch is not None:
            raise InputError("--watch is for the queue table: `immich-remote jobs --watch`, without a subcommand.")
        return
    ctx.exit(jobs_command(app, watch=watch))


@jobs_group.command("run-missing")
@QUEUES_ARG
@json_option
@pass_app
@click.pass_context
def jobs_run_missing(ctx: click.Context, app: App, queues: tuple[str, ...]) -> None:
    """Queue the assets the ML jobs have not processed yet (Immich's "Missing" button).

    Sends PUT /api/jobs/QUEUE {"command": "start", "force": false} to each queue; never
    force: true (that re-processes everything, and on faceDetection deletes the detected faces).
    Default: the ML queues whose feature is enabled in Immich's settings (smartSearch: clip;
    faceDetection and facialRecognition: facialRecognition; duplicateDetection: clip and
    duplicateDetection; ocr: ocr; all need machineLearning.enabled). A queue with active jobs
    refuses the start and is reported as already running. The key needs job.create, the
    queue-read permission, and (for the default list) the config-read permission.

    \b
    Examples:
      immich-remote jobs run-missing                # after ML was down: the enabled queues
      immich-remote jobs run-missing smartSearch ocr --json
    Exit 0 when every queue was started (or is already running), 1 when the server refused one.
    """
    ctx.exit(run_missing_command(app, queues))


@jobs_group.command("pause")
@QUEUES_ARG
@json_option
@pass_app
@click.pass_context
def jobs_pause(ctx: click.Context, app: App, queues: tuple[str, ...]) -> None:
    """Pause ML queues (default: all the server has): their jobs wait instead of running.

    While no ML URL answers, Immich fails ML jobs rather than keeping them; a paused queue keeps
    them waiting. Sends PUT /api/queues/QUEUE {"isPaused": true} (key: queue.update) on Immich
    2.4+, PUT /api/jobs/QUEUE {"command": "pause"} (key: job.create) before.

    \b
    Examples:
      immich-remote jobs pause                      # before taking the ML host down
      immich-remote jobs pause smartSearch --json
    """
    ctx.exit(pause_command(app, queues, paused=True))


@jobs_group.command("resume")
@QUEUES_ARG
@json_option
@pass_app
@click.pass_context
def jobs_resume(ctx: click.Context, app: App, queues: tuple[str, ...]) -> None:
    """Resume paused ML queues (default: all the server has).

    Sends PUT /api/queues/QUEUE {"isPaused": false} (key: queue.update) on Immich 2.4+,
    PUT /api/jobs/QUEUE {"command": "resume"} (key: job.create) before.

    \b
    Examples:
      immich-remote jobs resume                     # the ML host is back
      immich-remote jobs resume faceDetection --json
    """
    ctx.exit(pause_command(app, queues, paused=False))


COMMANDS = (jobs_group,)


def read_queues(client: ImmichClient) -> QueuesReading:
    from ..jobs import QueuesReading, ml_queue_counts

    version = client.version()
    return QueuesReading(client.server.url, version, ml_queue_counts(client.queue_statistics(), version))


# --- jobs [--watch] --------------------------------------------------------------------------------

def jobs_command(app: App, *, watch: float | None) -> int:
    from ..immich_api import ImmichClient

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
    from rich.live import Live

    from ..jobs import Rates

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
    from rich.text import Text

    if counts["isPaused"]:
        return Text("paused", style="yellow")
    if counts["active"]:
        return Text("running", style="green")
    if counts["waiting"] or counts["delayed"]:
        return Text("waiting", style="cyan")
    return Text("idle", style="dim")


def render(reading: QueuesReading, footer: str = "") -> Group:
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    from ..jobs import COUNT_KEYS, format_eta, format_rate

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
    from ..immich_api import ML_JOB_QUEUES, ImmichClient, start_missing_request
    from ..jobs import check_queue_names, choose_queues, enabled_ml_queues

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
    from ..immich_api import ImmichClient, queue_pause_request
    from ..jobs import check_queue_names, choose_queues

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
