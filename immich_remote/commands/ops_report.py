"""`immich-remote report`: the ops record (Markdown or JSON), from live facts and the local snapshots.

(commands/report.py holds the shared output helpers for command results; this is the `report` command.)
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import click

from ..app import App, pass_app
from ..errors import InputError
from ..options import HOSTS_ARG, parallel_option


@click.command("report")
@HOSTS_ARG
@click.option("--format", "fmt", type=click.Choice(["markdown", "json"]), default=None,
              help="Markdown (default) or JSON [--json: json].")
@click.option("--out", "-o", "out_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write to FILE (0600: the record names hosts and paths) instead of standard output.")
@parallel_option
@pass_app
def report(app: App, host_names: tuple[str, ...], fmt: str | None, out_file: Path | None,
           parallel: int | None) -> None:
    """The operations record to keep with your notes: what runs where, and how to undo it.

    Read live, with the code `status` uses: every ML host with its address, backend, running
    version, bind address, firewall state and model cache (where, size); Immich's ML URL list in
    the order it tries them; the fallback mode in plain words; the last deploy or upgrade (who,
    when, what) with the snapshot that restores Immich's settings as they were before it; what
    to do after updating the Immich server; what to back up. Read-only: nothing is changed.

    \b
    Examples:
      immich-remote report --out ops/immich-ml.md
      immich-remote report --format json
    """
    from ..report import to_markdown

    data = collect_report(app, host_names, parallel=parallel)

    as_json = fmt == "json" or (fmt is None and app.json)
    text = json.dumps(data, indent=2, default=str) + "\n" if as_json else to_markdown(data)
    if out_file is None:
        click.echo(text, nl=False)
        return
    try:
        out_file.parent.mkdir(parents=True, exist_ok=True)
        out_file.write_text(text)
        out_file.chmod(0o600)
    except OSError as exc:
        raise InputError(f"--out {out_file}: cannot write it ({exc.strerror}).",
                         hint="Choose a file in a directory you can write to.") from None
    app.out.info(f"report written to {out_file}")


COMMANDS = (report,)


def collect_report(app: App, names: tuple[str, ...], *, parallel: int | None) -> dict:
    from ..guard import STATE_FILE
    from ..report import host_facts, last_rollout, report_data
    from ..snapshots import list_snapshots, state_root
    from ..status import collect_pools
    from .guard import load_memory

    inventory = app.inventory
    hosts = app.hosts(names)
    server, statuses, pools = collect_pools(inventory, hosts, parallel=parallel)
    by_name = {s.host: s for s in statuses}  # the hosts, then each pool's balancer
    facts = [host_facts(host, by_name[host.name].to_data(), server.version) for host in hosts]
    snapshots = [(s.name, str(s.path), s.meta) for s in list_snapshots(inventory)]
    guard_file, guard = state_root(inventory) / STATE_FILE, None
    if guard_file.exists():
        try:
            guard = load_memory(guard_file, inventory.immich.url).to_data()
        except InputError as exc:
            guard = {"paused": [], "error": exc.message}
    return report_data(generated_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                       inventory_path=str(inventory.path), state_dir=str(state_root(inventory)),
                       server=server.to_data(), local_url=inventory.immich.local_ml_url, hosts=facts,
                       last=last_rollout(snapshots), guard=guard, pools=[p.to_data() for p in pools])
