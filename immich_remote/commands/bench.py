"""`immich-remote bench`: real `/predict` requests to each ML endpoint, task by task, timed.

Per target and task: one cold request (the model loads), then a warm run for `--duration` with as
many requests in flight as Immich's job concurrency (or `--concurrency`). The numbers (bench.py) are
pure; this module sends, times and prints. `run_bench` is also what `advise --measure` uses.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import click

from ..app import App, pass_app
from ..bench import TASKS
from ..errors import EXIT_FAILED, EXIT_INTERRUPTED, ImmichRemoteError
from ..options import DURATION, HOSTS_ARG, json_option

if TYPE_CHECKING:
    from ..bench import TaskRun
    from ..inventory import Host, Inventory
    from ..ml_api import MLEndpoint
    from ..rollout import Connections

LOCAL = "local"  # the target name of the Immich server's own ML
ERROR_PAUSE = 0.2  # after a failed request a worker waits this long, so a dead endpoint is not hammered


@click.command()
@HOSTS_ARG
@click.option("--local", "include_local", is_flag=True,
              help="Also benchmark the Immich server's own ML (immich.local_ml_url, through immich.ssh_host when set).")
@click.option("--duration", type=DURATION, default="20s", show_default=True, metavar="DURATION",
              help="Length of each task's warm run.")
@click.option("--concurrency", type=click.IntRange(1, 64), default=None, metavar="N",
              help="Requests in flight at once [default: Immich's job concurrency for the task's queue].")
@click.option("--task", "tasks", multiple=True, type=click.Choice(TASKS),
              help="Only these tasks (repeatable) [default: every task whose feature Immich has enabled].")
@click.option("--timeout", type=DURATION, default="2m", show_default=True, metavar="DURATION",
              help="Give up on one request after this long (a cold request may download the model).")
@click.option("--time-limit", type=DURATION, default="15m", show_default=True, metavar="DURATION",
              help="Stop the whole bench after this long and report what was measured.")
@click.option("--direct", is_flag=True,
              help="Reach each host's URL from this machine instead of through its SSH connection.")
@json_option
@pass_app
@click.pass_context
def bench(ctx: click.Context, app: App, host_names: tuple[str, ...], include_local: bool, duration: float,
          concurrency: int | None, tasks: tuple[str, ...], timeout: float, time_limit: float, direct: bool) -> None:
    """Measure each ML endpoint with the requests Immich would send.

    Real POST /predict requests, one task at a time: clip-image (smart search), clip-text (a
    search query), faces (detection + recognition) and ocr, with the model names from Immich's
    config and a synthetic image made here (never one of your photos). Each host is reached
    through its SSH connection, as the health gate does (the ML port stays private), or with
    --direct by its URL. Per task: the cold first request (model load), then a warm run at
    Immich's job concurrency: requests, errors, throughput per second, p50 and p95 latency,
    and a bar chart comparing the endpoints. Ctrl-C stops and prints what was measured.

    \b
    Examples:
      immich-remote bench --local                 # every host and the server's own ML
      immich-remote bench gpu-box --duration 1m --json
    Exit 0 when every request answered, 1 when some failed, 130 when interrupted.
    """
    ctx.exit(bench_command(app, host_names, include_local=include_local, duration=duration,
                           concurrency=concurrency, tasks=tasks, timeout=timeout, time_limit=time_limit,
                           direct=direct))


COMMANDS = (bench,)


@dataclass
class BenchResult:
    """{target: (url, {task: TaskRun})} in the order measured, and whether Ctrl-C stopped it."""

    targets: dict[str, tuple[str, dict[str, TaskRun]]] = field(default_factory=dict)
    tasks: list[str] = field(default_factory=list)
    concurrency: dict[str, int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)  # what was not measured and why
    interrupted: bool = False

    def data(self) -> dict[str, Any]:
        from ..bench import results_data

        data = results_data(self.targets)
        if self.interrupted:
            data["interrupted"] = True
        return data

    @property
    def ok(self) -> bool:
        return not self.interrupted and not self.skipped and all(
            run.errors == 0 and run.throughput for _, runs in self.targets.values() for run in runs.values())


def bench_command(app: App, names: tuple[str, ...], *, include_local: bool, duration: float,
                  concurrency: int | None, tasks: tuple[str, ...], timeout: float, time_limit: float,
                  direct: bool) -> int:
    from ..rollout import Connections

    inv = app.inventory
    hosts = app.hosts(names)
    config = read_config(app)
    with Connections(inv) as connections:
        result = run_bench(app, inv, connections, hosts, include_local=include_local, config=config, tasks=tasks,
                           duration=duration, concurrency=concurrency, timeout=timeout, time_limit=time_limit,
                           direct=direct)
    if app.json:
        app.out.data(result.data())
    else:
        print_chart(app, result, duration)
    if result.interrupted:
        return EXIT_INTERRUPTED
    return 0 if result.ok else EXIT_FAILED


def read_config(app: App) -> dict[str, Any] | None:
    """Immich's config (model names, job concurrency, enabled features); None with a warning when unreadable."""
    from ..immich_api import ImmichClient

    try:
        with ImmichClient(app.inventory.immich) as client:
            return client.get_config()
    except ImmichRemoteError as exc:
        app.out.warn(f"cannot read Immich's config ({exc.message}); using Immich's default models and concurrency.")
        return None


def run_bench(app: App, inv: Inventory, connections: Connections, hosts: Sequence[Host], *, include_local: bool,
              config: dict[str, Any] | None, tasks: Sequence[str], duration: float, concurrency: int | None,
              timeout: float, time_limit: float, direct: bool) -> BenchResult:
    """Every target, one after the other (so they do not compete for this machine), task by task."""
    from ..bench import concurrency_for, enabled_tasks, synthetic_png
    from ..ml_api import multipart, predict_entries

    result = BenchResult()
    if tasks:
        result.tasks = list(dict.fromkeys(tasks))
    else:
        result.tasks, off = enabled_tasks(config)
        for task, setting in off.items():
            app.out.info(f"{task}: not measured, {setting} is off in Immich's settings")
    result.concurrency = {t: concurrency or concurrency_for(t, config) for t in result.tasks}
    image = synthetic_png()
    payloads = {}
    for task in result.tasks:
        entries, needs_image = predict_entries(task, config)
        payloads[task] = multipart(entries, image=image if needs_image else None,
                                   text=None if needs_image else "a photo of a dog on a beach")
    deadline = time.monotonic() + time_limit
    targets: list[tuple[str, str, Callable[[], MLEndpoint]]] = [
        (h.name, h.url, lambda h=h: host_endpoint(connections, h, direct=direct)) for h in hosts]
    if include_local:
        targets.append((LOCAL, inv.immich.local_ml_url, lambda: local_endpoint(inv, connections)))
    try:
        for name, url, make in targets:
            runs: dict[str, TaskRun] = {}
            result.targets[name] = (url, runs)
            try:
                endpoint = make()
            except ImmichRemoteError as exc:
                app.out.warn(f"{name}: {exc.message}")
                result.skipped.append(f"{name}: {exc.message}")
                continue
            try:
                for task in result.tasks:
                    if time.monotonic() >= deadline:
                        result.skipped.append(f"{name} {task}: the time limit was reached")
                        continue
                    app.out.info(f"{name} ({endpoint.path}): {task}, cold request, then {duration:g} s at "
                                 f"concurrency {result.concurrency[task]}")
                    runs[task] = measure(endpoint, payloads[task], concurrency=result.concurrency[task],
                                         duration=duration, timeout=timeout, deadline=deadline)
                    if runs[task].interrupted:
                        raise KeyboardInterrupt
            finally:
                endpoint.close()
    except KeyboardInterrupt:
        result.interrupted = True
    return result


def host_endpoint(connections: Connections, host: Host, *, direct: bool) -> MLEndpoint:
    from ..ml_api import MLEndpoint

    if direct:
        return MLEndpoint(host.name, host.url)
    remote = connections.remote(host).connect()
    return MLEndpoint(host.name, host.url, remote=remote, address=host.bind_address, port=host.ml_port)


def local_endpoint(inv: Inventory, connections: Connections) -> MLEndpoint:
    """The server's own ML: from the Immich host through immich.ssh_host when set, else from here."""
    from ..ml_api import MLEndpoint

    url = inv.immich.local_ml_url
    server = connections.immich_host()
    if server is None:
        return MLEndpoint(LOCAL, url)
    parts = urlsplit(url)
    return MLEndpoint(LOCAL, url, remote=server.connect(), address=parts.hostname or "", port=parts.port or 80)


def measure(endpoint: MLEndpoint, payload: tuple[bytes, str], *, concurrency: int, duration: float,
            timeout: float, deadline: float) -> TaskRun:
    """The cold request, then `concurrency` workers sending back to back until `duration` (or the
    deadline) is over; each request in flight finishes. Ctrl-C during the warm run stops the workers
    and returns what was measured, marked `interrupted`."""
    from ..bench import TaskRun

    run = TaskRun(concurrency)
    body, content_type = payload

    def once() -> tuple[bool, str, float]:
        started = time.monotonic()
        try:
            status, answer = endpoint.predict(body, content_type, timeout=timeout)
            ok, why = status == 200, f"HTTP {status} {answer[:100]!r}"
        except (OSError, ValueError, ImmichRemoteError) as exc:
            ok, why = False, f"{type(exc).__name__}: {getattr(exc, 'message', None) or exc}"
        return ok, why, (time.monotonic() - started) * 1000

    ok, why, cold = once()
    if not ok:
        run.errors, run.error = 1, why
        return run
    run.cold_ms = cold
    lock = threading.Lock()
    stop = threading.Event()
    start = time.monotonic()
    end = min(start + duration, deadline)
    last = [start]

    def worker() -> None:
        while not stop.is_set() and time.monotonic() < end:
            ok, why, elapsed = once()
            with lock:
                last[0] = max(last[0], time.monotonic())
                if ok:
                    run.latencies_ms.append(elapsed)
                else:
                    run.errors += 1
                    run.error = run.error or why
            if not ok:
                stop.wait(ERROR_PAUSE)

    threads = [threading.Thread(target=worker, daemon=True, name=f"bench-{endpoint.name}-{i}")
               for i in range(concurrency)]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            while thread.is_alive():
                thread.join(0.2)  # short joins: Ctrl-C reaches this thread at once
    except KeyboardInterrupt:
        stop.set()
        run.interrupted = True
    run.seconds = last[0] - start
    return run


def print_chart(app: App, result: BenchResult, duration: float) -> None:
    """Per task: one bar per target (throughput), with its latencies, cold time and counts."""
    from ..bench import bar, ranking

    data = result.data()
    width = max([len(name) for name in result.targets] + [5])
    for task in result.tasks:
        app.out.line(f"{task}  (concurrency {result.concurrency.get(task, '?')}, warm run {duration:g} s)",
                     style="bold")
        ranked = ranking(data, task)
        top = ranked[0][1] if ranked else 0.0
        order = [name for name, _ in ranked] + [n for n in result.targets if n not in dict(ranked)]
        for name in order:
            figures = data["targets"][name]["tasks"].get(task)
            if figures is None:
                app.out.line(f"  {name:<{width}}  not measured")
                continue
            tp = figures["throughput_per_s"]
            if not tp:
                app.out.line(f"  {name:<{width}}  failed: {figures.get('error', 'no answer')}", style="red")
                continue
            cold = figures["cold_ms"]
            app.out.line(f"  {name:<{width}}  {bar(tp, top):<30}  {tp:7.2f}/s  p50 {figures['p50_ms']:.0f} ms  "
                         f"p95 {figures['p95_ms']:.0f} ms  cold {cold / 1000:.1f} s  "
                         f"{figures['requests']} requests, {figures['errors']} errors",
                         style="yellow" if figures["errors"] else None)
    for line in result.skipped:
        app.out.line(f"not measured: {line}", style="yellow")
    if result.interrupted:
        app.out.line("Interrupted: the figures above are what was measured until Ctrl-C.", style="yellow")
