"""`immich-remote status`: one row per host, and the Immich side, read live."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import click

from ..app import App, pass_app
from ..errors import EXIT_FAILED
from ..options import HOSTS_ARG, json_option, parallel_option

if TYPE_CHECKING:
    from rich.console import Group
    from rich.text import Text

    from ..status import HostStatus, ServerStatus


@click.command()
@HOSTS_ARG
@click.option("--watch", "-w", metavar="SECONDS", type=float, default=None, help="Redraw every SECONDS until Ctrl-C.")
@parallel_option
@json_option
@pass_app
@click.pass_context
def status(ctx: click.Context, app: App, host_names: tuple[str, ...], watch: float | None, parallel: int | None) -> None:
    """Show what runs where, read live from the hosts and the Immich server.

    Per host: reachable, container state and health, the running image's version (from the
    container itself) against the server's, /ping latency from here, its position in Immich's
    URL list, model-cache size, and the last change (who, when, what). Then the server's
    version, its URL list in order, and which URL it would use now.

    \b
    Example:
      immich-remote status
      immich-remote status --watch 5
    Exit 0 when every host serves the server's version, 1 otherwise.
    """
    ctx.exit(status_command(app, host_names, parallel=parallel, watch=watch))


COMMANDS = (status,)


def status_command(app: App, names: tuple[str, ...], *, parallel: int | None, watch: float | None) -> int:
    from rich.live import Live

    from ..status import collect

    hosts = app.hosts(names)
    if watch and not app.json:
        with Live(console=app.out.out, auto_refresh=False) as live:
            try:
                while True:
                    server, statuses = collect(app.inventory, hosts, parallel=parallel)
                    live.update(render(server, statuses, footer=f"every {watch:g}s, Ctrl-C to stop"), refresh=True)
                    time.sleep(watch)
            except KeyboardInterrupt:
                return 0
    server, statuses = collect(app.inventory, hosts, parallel=parallel)
    healthy = server.error is None and all(s.serving and s.version_matches is not False for s in statuses)
    if app.json:
        app.out.data({"immich": server.to_data(), "hosts": [s.to_data() for s in statuses], "ok": healthy})
    else:
        app.out.out.print(render(server, statuses))
    return 0 if healthy else EXIT_FAILED


def _size(n: int | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return "?"


def render(server: ServerStatus, statuses: list[HostStatus], footer: str = "") -> Group:
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("host", "container", "running", "server", "ping", "registered", "cache", "last change"):
        table.add_column(column)
    for s in statuses:
        if not s.reachable:
            table.add_row(s.host, Text("unreachable", style="red"), "", "", _ping(s), _position(s), "",
                          Text(s.error or "", style="red"))
            continue
        container = Text(f"{s.state or 'none'}" + (f" ({s.health})" if s.health else ""),
                         style="green" if s.state == "running" and s.health in (None, "healthy") else "red")
        match = Text(s.running_version or "?", style="green" if s.version_matches else
                     "red" if s.version_matches is False else "")
        last = s.last_change
        change = f"{last.get('command', '')} {last.get('at', '')} by {last.get('by', '?')}" if last else "none recorded"
        if s.locked_by:
            change += f" [locked by {s.locked_by}]"
        table.add_row(s.host, container, match, server.version or "?", _ping(s), _position(s), _size(s.cache_bytes),
                      change)
    lines = [Text(f"Immich {server.version or '?'} at {server.url}" + (f" - {server.error}" if server.error else ""),
                  style="bold" if not server.error else "red"),
             Text(f"fallback: {server.fallback}; machineLearning.urls, in the order Immich tries them:")]
    for i, url in enumerate(server.urls or [], 1):
        marker = "  <- would be used now" if url == server.would_use else ""
        lines.append(Text(f"  {i}. {url}  [{server.url_health.get(url, '')}]{marker}",
                          style="green" if marker else ""))
    if server.urls is not None and server.would_use is None:
        lines.append(Text("  no URL answers /ping from this machine (the server may still reach its local one)",
                          style="yellow"))
    parts = [table, Text(""), *lines]
    if footer:
        parts.append(Text(footer, style="dim"))
    return Group(*parts)


def _ping(s: HostStatus) -> Text:
    from rich.text import Text

    if s.ping_ms is not None:
        return Text(f"{s.ping_ms:.0f} ms", style="green")
    return Text("no answer", style="red")


def _position(s: HostStatus) -> str:
    return f"#{s.registered_position}" if s.registered_position else "no"
