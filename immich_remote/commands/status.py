"""`immich-remote status`: one row per host, and the Immich side, read live."""

from __future__ import annotations

import time
from datetime import datetime
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

    from ..status import collect_pools

    hosts = app.hosts(names)
    if watch and not app.json:
        with Live(console=app.out.out, auto_refresh=False) as live:
            try:
                while True:
                    server, statuses, pools = collect_pools(app.inventory, hosts, parallel=parallel)
                    live.update(render(server, statuses, footer=f"every {watch:g}s, Ctrl-C to stop", pools=pools),
                                refresh=True)
                    time.sleep(watch)
            except KeyboardInterrupt:
                return 0
    server, statuses, pools = collect_pools(app.inventory, hosts, parallel=parallel)
    healthy = server.error is None and all(s.serving and s.version_matches is not False for s in statuses) \
        and all(p.ok for p in pools)
    if app.json:
        app.out.data({"immich": server.to_data(), "hosts": [s.to_data() for s in statuses],
                      "pools": [p.to_data() for p in pools], "ok": healthy})
    else:
        app.out.out.print(render(server, statuses, pools=pools))
    return 0 if healthy else EXIT_FAILED


STYLES = {"ok": "green", "warn": "yellow", "fail": "red"}


def cache_text(n: int | None) -> str:
    """The model cache's size for people: "1.2 GB", "empty (models load on first use)", "?"."""
    from ..humanize import human_bytes

    if n is None:
        return "?"
    return "empty (models load on first use)" if n == 0 else human_bytes(n)


def change_text(last: dict, locked_by: str | None, now: datetime | None = None) -> str:
    """ "upgrade 2 min ago by alice (v2.7.5)"; the ISO time stays in --json."""
    from ..humanize import relative_time

    if not last:
        text = "none recorded"
    else:
        text = f"{last.get('command', '?')} {relative_time(last.get('at'), now)} by {last.get('by', '?')}"
    return text + (f" [locked by {locked_by}]" if locked_by else "")


def render(server: ServerStatus, statuses: list[HostStatus], footer: str = "", pools: list | None = None) -> Group:
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    from ..status import container_verdict, version_verdict

    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("host", "container", "running", "ping", "registered", "cache", "last change"):
        table.add_column(column, overflow="fold")
    for s in statuses:
        level, what, why = container_verdict(s)
        container = Text(what, style=STYLES[level])
        if why:
            container.append(f": {why}", style=STYLES[level] if level == "fail" else "dim")
        version_level, version_why = version_verdict(s, server.version)
        running = Text(s.running_version or "-", style=STYLES[version_level] if s.running_version else "dim")
        if version_why:
            running.append(f" ({version_why})", style="dim")
        table.add_row(s.host, container, running, _ping(s), _position(s),
                      cache_text(s.cache_bytes) if s.reachable and s.kind == "ml" else "",
                      change_text(s.last_change, s.locked_by))
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
    for s in statuses:  # the ML API has no authentication: say where its port is open to everyone
        if s.firewall in ("off", "unset", "stopped"):
            lines.append(Text(f"{s.host}: {s.firewall_detail}", style="yellow"))
    parts = [table, Text(""), *lines]
    for pool in pools or []:
        parts += [Text(""), *pool_lines(pool)]
    if footer:
        parts.append(Text(footer, style="dim"))
    return Group(*parts)


def _ping(s: HostStatus) -> Text:
    from rich.text import Text

    if s.ping_ms is not None:
        return Text(f"{s.ping_ms:.0f} ms", style="green")
    return Text("no answer", style="red")


def pool_lines(pool) -> list:
    """A pool as its balancer sees it: each member's state and health, requests and errors."""
    from rich.text import Text

    head = f"pool {pool.name} at {pool.url} (balancer on {pool.balancer})"
    if pool.error:
        return [Text(f"{head}: the balancer does not answer: {pool.error}", style="red")]
    lines = [Text(f"{head}: {pool.current} request(s) in flight, {pool.requests} since it started", style="bold")]
    for m in pool.members:
        style = {"ready": "green", "drain": "yellow", "maint": "yellow"}.get(m["state"], "red")
        lines.append(Text(f"  {m['name']}: {m['state']} ({m['status']}, check {m['check'] or '-'}), weight "
                          f"{m['weight']}, {m['current']} in flight, {m['requests']} requests, {m['errors']} errors",
                          style=style))
    return lines


def _position(s: HostStatus) -> Text:
    from rich.text import Text

    if s.pool and not s.registered_position:
        return Text(f"via pool {s.pool}")
    if s.registered_position:
        return Text(f"#{s.registered_position}")
    return Text("no (not in Immich's URL list)", style="yellow")
