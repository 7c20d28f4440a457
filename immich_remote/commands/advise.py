"""`immich-remote advise`: gather the facts (probes, Immich's API, optionally bench figures) and print
the decision-table row that applies (advise.py decides, purely)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import click

from ..app import App, pass_app
from ..errors import EXIT_FAILED, EXIT_INTERRUPTED, ImmichRemoteError
from ..options import DURATION, json_option

if TYPE_CHECKING:
    from ..advise import Inputs, Machine
    from ..immich_api import ImmichClient
    from ..inventory import Host
    from ..ssh import Remote


@click.command()
@click.option("--measure", is_flag=True,
              help="Also run the bench (the local ML and every host) and estimate the time to clear each queue.")
@click.option("--duration", type=DURATION, default="10s", show_default=True, metavar="DURATION",
              help="With --measure: each task's warm run.")
@click.option("--timeout", type=DURATION, default="2m", show_default=True, metavar="DURATION",
              help="With --measure: give up on one request after this long.")
@json_option
@pass_app
@click.pass_context
def advise(ctx: click.Context, app: App, measure: bool, duration: float, timeout: float) -> None:
    """Should Immich's ML move, and where? The guide's decision table, with your numbers.

    Reads (never writes): the Immich server host's RAM, CPUs and GPUs (probed through
    immich.ssh_host when set), the library size (GET /api/server/statistics, key permission
    server.statistics), the ML queues' backlogs, which ML features are enabled, and every
    inventory host's probe (accelerator and usable backend, free memory, address class). With
    --measure, bench figures for the local ML and each host give the time to clear each queue.

    \b
    Rows: keep-local, small-host, large-import, gpu-host, public-or-shared (a refusal: a host
    with a public address or an ML port open on every interface is named with what would make
    it acceptable).
    Examples:
      immich-remote advise
      immich-remote advise --measure --json
    Exit 0 with advice, 1 for public-or-shared, 130 when interrupted.
    """
    ctx.exit(advise_command(app, measure=measure, duration=duration, timeout=timeout))


COMMANDS = (advise,)


def advise_command(app: App, *, measure: bool, duration: float, timeout: float) -> int:
    from ..advise import decide
    from ..rollout import Connections

    with Connections(app.inventory) as connections:
        inputs, config = gather(app, connections)
        if measure:
            interrupted = add_measurements(app, connections, inputs, config, duration=duration, timeout=timeout)
            if interrupted:
                return EXIT_INTERRUPTED
    advice = decide(inputs)
    if app.json:
        app.out.data(advice.to_data())
    else:
        app.out.line(f"Advice: {advice.row}", style="bold")
        app.out.line(advice.recommendation)
        app.out.line("Because:")
        for reason in advice.reasons:
            app.out.line(f"  - {reason}")
        if not measure and advice.estimates:
            app.out.line("Time to clear: run `immich-remote advise --measure` to measure the local ML and each host.")
    return EXIT_FAILED if advice.row == "public-or-shared" else 0


def gather(app: App, connections: Any) -> tuple[Inputs, dict[str, Any] | None]:
    """Everything advise reads; what cannot be read becomes a note, never a failure."""
    from ..advise import Inputs
    from ..immich_api import ImmichClient
    from ..inventory import DEFAULT_REMOTE_DIR

    inv = app.inventory
    notes: list[str] = []
    with ImmichClient(inv.immich) as client:
        config, queues, enabled, library = read_immich(client, notes)
    server = None
    remote = connections.immich_host()
    if remote is None:
        notes.append("the Immich server's host was not probed: set immich.ssh_host in the inventory")
    else:
        server = probe_machine(remote, "immich server", DEFAULT_REMOTE_DIR, {})
        if server.error:
            notes.append(f"the Immich server's host could not be probed: {server.error}")
            server = None
    hosts = app.hosts()

    def one(host: Host) -> Machine:
        addresses = {"address": host.address, "bind address": host.bind_address,
                     "URL host": urlsplit(host.url).hostname or ""}
        return probe_machine(connections.remote(host), host.name, host.remote_dir, addresses, ml_port=host.ml_port)

    with ThreadPoolExecutor(max_workers=max(1, min(len(hosts), 16))) as pool:
        machines = list(pool.map(one, hosts))
    return Inputs(server=server, hosts=machines, queues=queues, enabled=enabled, library=library, notes=notes), config


def read_immich(client: ImmichClient, notes: list[str]) -> tuple[dict[str, Any] | None, dict[str, int], list[str],
                                                                  dict[str, Any] | None]:
    """(config, {queue: backlog}, enabled queues, library statistics); each None/empty with a note when unreadable."""
    from ..jobs import backlog, enabled_ml_queues, ml_queue_counts

    config = queues = library = None
    try:
        config = client.get_config()
    except ImmichRemoteError as exc:
        notes.append(f"Immich's settings could not be read ({exc.message})")
    try:
        queues = ml_queue_counts(client.queue_statistics(), client.version())
    except ImmichRemoteError as exc:
        notes.append(f"the job queues could not be read ({exc.message})")
    try:
        library = client.server_statistics()
    except ImmichRemoteError as exc:
        notes.append(f"the library size could not be read ({exc.message})")
    counts = {name: backlog(c) for name, c in (queues or {}).items()}
    enabled = enabled_ml_queues(config, counts)[0] if config else list(counts)
    if config is not None:
        off = [q for q in counts if q not in enabled]
        if off:
            notes.append("ML queues switched off in Immich's settings: " + ", ".join(off))
        counts = {q: n for q, n in counts.items() if q in enabled}
    return config, counts, enabled, library


def probe_machine(remote: Remote, name: str, remote_dir: str, addresses: dict[str, str], *,
                  ml_port: int = 3003) -> Machine:
    """One host probe (the same script as every command's) as advise's Machine; a failure is kept as `error`."""
    from ..advise import Machine, machine_from_facts
    from ..facts import HostFacts, probe_script, split_sections
    from ..hostcmd import sh

    try:
        remote.connect()
        output = remote.run(sh(probe_script(remote_dir=remote_dir)), what="the host probe",
                            timeout=min(remote.command_timeout, 60)).stdout
    except ImmichRemoteError as exc:
        return Machine(name, addresses=addresses, error=exc.message)
    sections = split_sections(output)
    return machine_from_facts(name, HostFacts.from_sections(sections), free_text=sections.get("free", ""),
                              addresses=addresses, ml_port=ml_port)


def add_measurements(app: App, connections: Any, inputs: Inputs, config: dict[str, Any] | None, *,
                     duration: float, timeout: float) -> bool:
    """Bench the local ML and every reachable host on the tasks of the enabled queues; True when interrupted."""
    from ..bench import QUEUE_TASK, throughputs
    from .bench import run_bench

    tasks = [task for queue, task in QUEUE_TASK.items() if queue in inputs.enabled] or list(QUEUE_TASK.values())
    reachable = {m.name for m in inputs.hosts if m.error is None}
    hosts = [h for h in app.hosts() if h.name in reachable]
    result = run_bench(app, app.inventory, connections, hosts, include_local=True, config=config, tasks=tasks,
                       duration=duration, concurrency=None, timeout=timeout, time_limit=15 * 60, direct=False)
    inputs.measured = throughputs(result.data())
    inputs.notes += [f"not measured: {line}" for line in result.skipped]
    return result.interrupted
