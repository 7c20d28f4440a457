"""`immich-remote render` and `immich-remote plan`: what would be deployed, computed without side effects."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..app import App, pass_app
from ..errors import ImmichAPIError, InputError
from ..options import HOSTS_ARG, json_option, server_version_option

if TYPE_CHECKING:
    from ..versions import ImmichVersion


@click.command()
@HOSTS_ARG
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Write DIR/<host>/docker-compose.yml (and hwaccel.ml.yml).")
@server_version_option
@json_option
@pass_app
def render(app: App, host_names: tuple[str, ...], out_dir: Path, server_version: str | None) -> None:
    """Write the files each host would get, without touching any host.

    \b
    Example:
      immich-remote render --server-version 2.7.5 --out rendered/
      immich-remote render gpu-box --out rendered/     # version from the Immich server
    """
    render_command(app, host_names, out_dir, server_version)


@click.command()
@HOSTS_ARG
@server_version_option
@json_option
@pass_app
def plan(app: App, host_names: tuple[str, ...], server_version: str | None) -> None:
    """Show what a deploy would do: image, backend, files with hashes, and Immich's URL list.

    Offline with --server-version; otherwise the version (and, when an API key is available,
    the current URL list) come from the Immich server. Nothing is changed anywhere.

    \b
    Example:
      immich-remote plan --server-version 2.7.5 --json
    """
    plan_command(app, host_names, server_version)


COMMANDS = (render, plan)


def resolve_version(app: App, server_version: str | None) -> ImmichVersion:
    """`--server-version` when given, else the Immich server's own version (a public endpoint)."""
    from ..immich_api import ImmichClient
    from ..versions import ImmichVersion

    if server_version:
        return ImmichVersion.parse(server_version)
    with ImmichClient(app.inventory.immich, api_key="") as client:
        try:
            return client.version()
        except ImmichAPIError as exc:
            exc.hint = (exc.hint + "\n" if exc.hint else "") + "Or pin the version with --server-version X.Y.Z."
            raise


def render_command(app: App, host_names: tuple[str, ...], out_dir: Path, server_version: str | None) -> None:
    from ..plan import plan_host

    version = resolve_version(app, server_version)
    written = []
    for host in app.hosts(host_names):
        host_plan, rendering = plan_host(host, version)
        target = out_dir / host.name
        target.mkdir(parents=True, exist_ok=True)
        for stale in target.iterdir():
            if stale.is_file() and stale.name not in {f.name for f in rendering.files}:
                stale.unlink()
        for f in rendering.files:
            (target / f.name).write_bytes(f.content)
            written.append({"host": host.name, "path": str(target / f.name), "sha256": f.sha256})
        for warning in host_plan.warnings:
            app.out.warn(f"{host.name}: {warning}")
    if app.json:
        app.out.data({"server_version": str(version), "files": written})
        return
    app.out.table(["host", "file", "sha256"], [(w["host"], w["path"], w["sha256"][:16]) for w in written],
                  title=f"Rendered for Immich {version.tag}")


def read_current_urls(app: App) -> list[str] | None:
    """Immich's current URL list, or None when no API key is available (plan stays offline)."""
    from ..immich_api import ImmichClient

    server = app.inventory.immich
    if not (server.api_key_file or server.api_key_command or os.environ.get(server.api_key_env or "")):
        return None
    with ImmichClient(server) as client:
        try:
            return list(client.get_config()["machineLearning"]["urls"])
        except (ImmichAPIError, InputError, KeyError) as exc:
            app.out.warn(f"could not read Immich's current URL list: {exc}")
            return None


def plan_command(app: App, host_names: tuple[str, ...], server_version: str | None) -> None:
    from ..plan import plan_offline

    hosts = app.hosts(host_names)
    version = resolve_version(app, server_version)
    current = None if server_version else read_current_urls(app)
    result = plan_offline(app.inventory, hosts, version, urls_before=current)
    if app.json:
        app.out.data(result.to_data())
        return
    out = app.out
    out.line(f"Plan for Immich {version.tag} ({len(hosts)} host{'s' if len(hosts) != 1 else ''}, "
             f"fallback {result.fallback})", style="bold")
    for h in result.hosts:
        out.line(f"{h.host}  {h.ssh}  {h.backend}{'' if h.backend_resolved else ' (auto, not probed)'}", style="bold")
        out.line(f"  image  {h.image}")
        out.line(f"  bind   {h.bind}    url {h.url}    priority {h.priority}")
        out.line(f"  files  {', '.join(f'{f.name} {f.sha256[:12]}' for f in h.files)}  (in {h.remote_dir})")
    for p in result.pools:
        out.line(f"pool {p.pool}  balancer on {p.balancer}  {p.image}", style="bold")
        out.line(f"  bind   {p.bind}    url {p.url}    priority {p.priority}    runtime API {p.admin}")
        out.line(f"  allow  {', '.join(p.allow_from) or 'anyone (no source known)'}")
        members = ", ".join(f"{m['host']} (weight {m['weight']})" for m in p.members)
        out.line(f"  members  {members}: their own "
                 "URLs are the balancer's, not Immich's")
        out.line(f"  files  {', '.join(f'{f.name} {f.sha256[:12]}' for f in p.files)}  (in {p.remote_dir})")
        for warning in p.warnings:
            out.warn(f"pool {p.pool}: {warning}")
    before = result.urls_before if result.urls_before is not None else ["(not read)"]
    out.line("Immich machineLearning.urls:")
    out.line(f"  before: {', '.join(before)}")
    out.line(f"  after:  {', '.join(result.urls_after)}")
    for h in result.hosts:
        for warning in h.warnings:
            out.warn(f"{h.host}: {warning}")
    for warning in result.warnings:
        out.warn(warning)
