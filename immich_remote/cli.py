"""The command line: thin click commands that parse options, call the modules that do the work,
and print the result for people or (with --json) for machines.

Exit codes: 0 success, 1 a failure (a check, a host), 2 bad input, 3 Immich's config is locked by
IMMICH_CONFIG_FILE, 130 interrupted.
"""

from __future__ import annotations

import logging
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path

import click

from . import __version__
from .errors import EXIT_BAD_INPUT, EXIT_INTERRUPTED, EXIT_TERMINATED, ImmichRemoteError, InputError
from .inventory import Host, Inventory, default_inventory_path, load_inventory
from .output import Output


@dataclass
class App:
    """What every command gets: the global options and the lazily loaded inventory."""

    inventory_path: Path
    limit: tuple[str, ...]
    out: Output
    _inventory: Inventory | None = field(default=None, repr=False)

    @property
    def json(self) -> bool:
        return self.out.json_mode

    @property
    def inventory(self) -> Inventory:
        if self._inventory is None:
            self._inventory = load_inventory(self.inventory_path)
        return self._inventory

    def hosts(self, names: tuple[str, ...] = ()) -> list[Host]:
        """Hosts named on the command line (all when none), narrowed by --limit."""
        chosen = self.inventory.select(names)
        if self.limit:
            allowed = {h.name for h in self.inventory.select(self.limit)}
            chosen = [h for h in chosen if h.name in allowed]
            if not chosen:
                raise InputError(f"No host is both in {', '.join(names)} and in --limit {','.join(self.limit)}.")
        return chosen


pass_app = click.make_pass_decorator(App)


def quiet_libraries(verbose: int) -> None:
    """paramiko logs tracebacks of failed handshakes; our errors already say what happened.
    With -vv they are shown (on stderr) for debugging."""
    logger = logging.getLogger("paramiko")
    logger.propagate = False
    logger.handlers[:] = [logging.StreamHandler() if verbose >= 2 else logging.NullHandler()]


def _complete_hosts(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """Shell completion of host and group names from the inventory."""
    try:
        root = ctx.find_root().params
        inventory = load_inventory(root.get("inventory") or default_inventory_path())
    except (ImmichRemoteError, OSError):
        return []
    names = [h.name for h in inventory.hosts] + list(inventory.groups)
    return [n for n in names if n.startswith(incomplete)]


HOSTS_ARG = click.argument("host_names", metavar="[HOST|GROUP]...", nargs=-1, shell_complete=_complete_hosts)


def json_option(func):  # noqa: ANN001, ANN201
    """`--json` after the subcommand too, for convenience (same as the global one)."""
    def callback(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
        if value:
            ctx.find_object(App).out.json_mode = True
    return click.option("--json", "json_flag", is_flag=True, expose_value=False, callback=callback,
                        help="Print the result as JSON on stdout.")(func)


def server_version_option(func):  # noqa: ANN001, ANN201
    return click.option("--server-version", metavar="X.Y.Z",
                        help="Pin this Immich version instead of asking the server (works offline).")(func)


class _Group(click.Group):
    """Turns our errors into one clear message and an exit code, never a traceback."""

    def invoke(self, ctx: click.Context):  # noqa: ANN201
        try:
            return super().invoke(ctx)
        except ImmichRemoteError as exc:
            app = ctx.find_object(App)
            (app.out if app else Output()).error(exc)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            Output().error("interrupted")
            ctx.exit(EXIT_INTERRUPTED)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("-i", "--inventory", type=click.Path(dir_okay=False, path_type=Path), envvar="IMMICH_REMOTE_INVENTORY",
              default=None, help="Inventory file [env IMMICH_REMOTE_INVENTORY; default inventory/hosts.yml].")
@click.option("--limit", "-l", multiple=True, metavar="PATTERN",
              help="Only these hosts or groups (names, globs, comma lists); repeatable.")
@click.option("--json", "json_mode", is_flag=True, help="Machine-readable JSON on stdout.")
@click.option("-v", "--verbose", count=True, help="More detail (repeat for more).")
@click.option("-q", "--quiet", is_flag=True, help="No progress messages.")
@click.version_option(__version__, prog_name="immich-remote")
@click.pass_context
def cli(ctx: click.Context, inventory: Path | None, limit: tuple[str, ...], json_mode: bool, verbose: int,
        quiet: bool) -> None:
    """Run Immich's machine learning on stronger hosts over SSH.

    immich-remote deploys the immich-machine-learning container to the hosts in an inventory,
    pinned to the Immich server's version, with the right hardware-acceleration overlay and a
    persistent model cache, and registers each host's URL in Immich ahead of the local ML, which
    stays as the fallback.

    \b
    Start here:
      immich-remote inventory check          # is the inventory valid?
      immich-remote plan --server-version 2.7.5
      immich-remote check                    # can every host run it?
      immich-remote deploy                   # do it

    Shell completion (bash): eval "$(_IMMICH_REMOTE_COMPLETE=bash_source immich-remote)"
    """
    ctx.obj = App(inventory_path=inventory or default_inventory_path(), limit=limit,
                  out=Output(json_mode=json_mode, verbose=verbose, quiet=quiet))
    quiet_libraries(verbose)


# --- inventory ------------------------------------------------------------------------------------

@cli.group("inventory")
def inventory_group() -> None:
    """Inspect the inventory."""


@inventory_group.command("check")
@json_option
@pass_app
def inventory_check(app: App) -> None:
    """Parse and validate the inventory, and show every host with its resolved settings.

    \b
    Example:
      immich-remote -i inventory/example-fleet.yml inventory check
    Exit 0 when valid, 2 with the file, line and key of the first problem otherwise.
    """
    from .commands.inventory import inventory_report
    inventory_report(app)


inventory_group.add_command(inventory_check, "validate")


# --- render and plan --------------------------------------------------------------------------------

@cli.command()
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
    from .commands.plan import render_command
    render_command(app, host_names, out_dir, server_version)


@cli.command()
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
    from .commands.plan import plan_command
    plan_command(app, host_names, server_version)


def parallel_option(func):  # noqa: ANN001, ANN201
    return click.option("--parallel", "-p", type=click.IntRange(1, 256), default=None, metavar="N",
                        help="Hosts worked on at the same time [default: all selected hosts; SSH handshakes are "
                        "bounded by ssh.max_handshakes].")(func)


# --- check, deploy, trust ----------------------------------------------------------------------------

@cli.command()
@HOSTS_ARG
@server_version_option
@click.option("--allow-public", is_flag=True, help="Accept a public or 0.0.0.0 bind address (the ML API has no auth).")
@parallel_option
@json_option
@pass_app
@click.pass_context
def check(ctx: click.Context, app: App, host_names: tuple[str, ...], server_version: str | None, allow_public: bool,
          parallel: int | None) -> None:
    """Preflight: can each host run the ML container, and may the key change Immich's settings?

    Per host: SSH and host key, Docker and Compose v2, CPU architecture, free disk, the
    accelerator really usable (accel: auto picks the best and says why), the ML port free or
    ours, the bind address private. On the Immich side: reachable, version, API key and its
    permissions, config not locked by a config file. With immich.ssh_host, each ML URL is also
    tried from the Immich server's own host. Nothing is changed.

    \b
    Example:
      immich-remote check
      immich-remote --limit gpus check --json
    Exit 0 when everything passes (warnings allowed), 1 when a check fails, 2 on bad input.
    """
    from .commands.check import check_command
    ctx.exit(check_command(app, host_names, server_version=server_version, allow_public=allow_public,
                           parallel=parallel))


@cli.command()
@HOSTS_ARG
@server_version_option
@click.option("--dry-run", "-n", is_flag=True, help="Show the file diffs, image change and URL list; change nothing.")
@parallel_option
@click.option("--max-fail", type=click.IntRange(1), default=1, show_default=True, metavar="N",
              help="Stop swapping hosts after N failed swaps (the canary failing alone stops the rollout by default).")
@click.option("--allow-public", is_flag=True, help="Accept a public or 0.0.0.0 bind address (the ML API has no auth).")
@click.option("--remote-only", is_flag=True, help="Confirm fallback: remote-only (drop the local ML URL).")
@click.option("--break-lock", is_flag=True, help="Take over a host lock left behind by a dead run.")
@click.option("--ship-image", is_flag=True, help="Stream the image from this machine's Docker over SSH (no pull).")
@click.option("--warm-models", is_flag=True, help="After the health check, load the models Immich uses.")
@click.option("--run-missing", is_flag=True, help="After registering, start the ML jobs for missing assets "
              "(force: false; never re-runs everything).")
@click.option("--health-timeout", metavar="DURATION", default=None,
              help="How long a new container may take to become healthy [inventory health_timeout, default 3m].")
@json_option
@pass_app
@click.pass_context
def deploy(ctx: click.Context, app: App, host_names: tuple[str, ...], server_version: str | None, dry_run: bool,
           parallel: int, max_fail: int | None, allow_public: bool, remote_only: bool, break_lock: bool,
           ship_image: bool, warm_models: bool, run_missing: bool, health_timeout: str | None) -> None:
    """Deploy the ML container to the hosts and register them in Immich ahead of the local ML.

    Each host: preflight, lock, record the current state, upload a new release, pull the
    version-matched image while the old container keeps serving, `docker compose up -d`, and a
    health gate (container healthy AND /ping == pong). A host that fails is rolled back to what
    it ran before; the others carry on. Then Immich's machineLearning.urls becomes: remote hosts
    by priority, then the local URL as fallback. Nothing else in Immich's config changes. A
    second run with nothing changed touches nothing.

    \b
    Examples:
      immich-remote deploy --dry-run          # diffs and URL list, no change
      immich-remote deploy
      immich-remote deploy gpu-box --warm-models --run-missing
      immich-remote --limit gpus deploy --parallel 2 --max-fail 1
    Exit 0 all hosts fine, 1 a host failed, 2 bad input, 3 config locked by IMMICH_CONFIG_FILE.
    """
    from .commands.deploy import deploy_command
    from .deploy import DeployOptions

    timeout = duration_option(health_timeout, "--health-timeout")
    options = DeployOptions(dry_run=dry_run, allow_public=allow_public, break_lock=break_lock, ship_image=ship_image,
                            warm_models=warm_models, health_timeout=timeout)
    ctx.exit(deploy_command(app, host_names, server_version=server_version, options=options, parallel=parallel,
                            max_fail=max_fail, remote_only=remote_only, run_missing=run_missing))


@cli.command()
@click.argument("host_name", metavar="HOST", shell_complete=_complete_hosts)
@click.option("--yes", "-y", is_flag=True, help="Record without asking (for scripts; check the fingerprint first!).")
@json_option
@pass_app
def trust(app: App, host_name: str, yes: bool) -> None:
    """Show a host's SSH host-key fingerprint and record it in known_hosts after you confirm.

    The key goes into the inventory's ssh.known_hosts file when set, else ~/.ssh/known_hosts.
    A host whose recorded key differs is refused (remove the old key with ssh-keygen -R first).
    Use `immich` as HOST for the Immich server's own ssh_host.

    \b
    Example:
      immich-remote trust gpu-box
    """
    from .commands.trust import trust_command
    trust_command(app, host_name, yes=yes)


def duration_option(value: str | None, name: str) -> float | None:
    from .inventory import parse_duration

    try:
        return parse_duration(value) if value else None
    except ValueError as exc:
        raise InputError(f"{name}: {exc}.") from None


# --- status, upgrade, rollback, remove -------------------------------------------------------------

@cli.command()
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
    from .commands.status import status_command
    ctx.exit(status_command(app, host_names, parallel=parallel, watch=watch))


@cli.command()
@HOSTS_ARG
@click.option("--to", "to_version", metavar="X.Y.Z", help="Target version [default: the server's].")
@click.option("--check", "check_only", is_flag=True, help="Change nothing; exit 1 if a host is not on the server's version.")
@click.option("--wait-server", is_flag=True, help="First wait for the server to come back from its own upgrade.")
@click.option("--wait-timeout", metavar="DURATION", default="15m", show_default=True, help="Deadline for --wait-server.")
@click.option("--batch", type=click.IntRange(1), default=1, show_default=True, help="Hosts swapped at the same time.")
@click.option("--max-fail", type=click.IntRange(1), default=1, show_default=True, metavar="N",
              help="Stop swapping hosts after N failed swaps (the canary failing alone stops the upgrade by default).")
@click.option("--health-timeout", metavar="DURATION", default=None, help="Health gate deadline per host.")
@click.option("--ship-image", is_flag=True, help="Stream the image from this machine's Docker over SSH (no pull).")
@click.option("--remote-only", is_flag=True, help="Confirm fallback: remote-only.")
@parallel_option
@json_option
@pass_app
@click.pass_context
def upgrade(ctx: click.Context, app: App, host_names: tuple[str, ...], to_version: str | None, check_only: bool,
            wait_server: bool, wait_timeout: str, batch: int, max_fail: int | None, health_timeout: str | None,
            ship_image: bool, remote_only: bool, parallel: int | None) -> None:
    """Bring every ML host to the Immich server's version (run it right after upgrading Immich).

    The new image is pre-pulled on all hosts in parallel first (nothing else changes), then hosts
    are swapped --batch at a time through deploy's health gate; while one swaps, Immich uses the
    next URL. Each host's unavailability window is measured. A host whose new version fails is
    rolled back to its previous tag on its own. The model cache is never touched.

    \b
    Examples:
      immich-remote upgrade --wait-server     # right after `docker compose pull && up -d` on the server
      immich-remote upgrade --check           # for cron/monitoring: exit 1 if a host is behind
      immich-remote upgrade --to 2.7.5 --batch 2 --max-fail 1
    """
    if check_only:
        from .commands.upgrade import check_only as upgrade_check
        ctx.exit(upgrade_check(app, host_names, parallel))
    from .commands.upgrade import upgrade_command
    ctx.exit(upgrade_command(app, host_names, to=to_version, wait_server=wait_server,
                             wait_timeout=duration_option(wait_timeout, "--wait-timeout") or 900.0, batch=batch,
                             max_fail=max_fail, parallel=parallel,
                             health_timeout=duration_option(health_timeout, "--health-timeout"),
                             ship_image=ship_image, remote_only=remote_only))


@cli.command()
@HOSTS_ARG
@click.option("--health-timeout", metavar="DURATION", default=None, help="Health gate deadline per host.")
@click.option("--break-lock", is_flag=True, help="Take over a host lock left behind by a dead run.")
@parallel_option
@json_option
@pass_app
@click.pass_context
def rollback(ctx: click.Context, app: App, host_names: tuple[str, ...], health_timeout: str | None, break_lock: bool,
             parallel: int | None) -> None:
    """Return hosts to their previous deployment (files and image tag), through the health gate.

    The previous release is kept on each host under .immich-remote/releases. Immich's URL list is
    not touched; to put that back, use `immich-remote config restore`.

    \b
    Example:
      immich-remote rollback gpu-box
    """
    from .commands.rollback import rollback_command
    ctx.exit(rollback_command(app, host_names, parallel=parallel,
                              health_timeout=duration_option(health_timeout, "--health-timeout"), break_lock=break_lock))


@cli.command()
@HOSTS_ARG
@click.option("--purge-cache", is_flag=True, help="Also delete the model-cache volume (models download again).")
@click.option("--restore-local", is_flag=True, help="In remote-only mode, put the local ML URL back when the last "
              "remote URL goes.")
@click.option("--break-lock", is_flag=True, help="Take over a host lock left behind by a dead run.")
@parallel_option
@json_option
@pass_app
@click.pass_context
def remove(ctx: click.Context, app: App, host_names: tuple[str, ...], purge_cache: bool, restore_local: bool,
           break_lock: bool, parallel: int | None) -> None:
    """Unregister hosts from Immich, then `docker compose down` on them.

    The URL goes first, so Immich stops sending work before the container stops; the local
    fallback is kept (or, in remote-only mode, removing the last URL needs --restore-local).
    The model cache is kept unless --purge-cache.

    \b
    Example:
      immich-remote remove old-box
    """
    from .commands.remove import remove_command
    ctx.exit(remove_command(app, host_names, purge_cache=purge_cache, restore_local=restore_local,
                            parallel=parallel, break_lock=break_lock))


# --- config -------------------------------------------------------------------------------------------

@cli.group("config")
def config_group() -> None:
    """Immich's ML settings as recorded before each change."""


@config_group.command("snapshots")
@json_option
@pass_app
def config_snapshots(app: App) -> None:
    """List the snapshots recorded before each change (newest last).

    \b
    Example:
      immich-remote config snapshots
    """
    from .commands.config import snapshots_command
    snapshots_command(app)


@config_group.command("restore")
@click.argument("snapshot", required=False)
@click.option("--all", "whole", is_flag=True, help="Restore the WHOLE recorded config, not only the ML URLs.")
@click.option("--dry-run", "-n", is_flag=True, help="Show what would change.")
@json_option
@pass_app
@click.pass_context
def config_restore(ctx: click.Context, app: App, snapshot: str | None, whole: bool, dry_run: bool) -> None:
    """Put Immich's ML URL list back as recorded in SNAPSHOT (default: the newest).

    Only machineLearning.urls changes unless --all. The current config is recorded first, so a
    restore can itself be undone.

    \b
    Example:
      immich-remote config restore                # newest snapshot
      immich-remote config restore 20261127T1015  # by (unique prefix of) name
    """
    from .commands.config import restore_command
    ctx.exit(restore_command(app, snapshot, whole=whole, dry_run=dry_run))


# --- jobs -----------------------------------------------------------------------------------------------

def _complete_queues(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    from .immich_api import ML_JOB_QUEUES
    return [q for q in ML_JOB_QUEUES if q.startswith(incomplete)]


QUEUES_ARG = click.argument("queues", metavar="[QUEUE]...", nargs=-1, shell_complete=_complete_queues)


@cli.group("jobs", invoke_without_command=True)
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
    from .commands.jobs import jobs_command
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
    from .commands.jobs import run_missing_command
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
    from .commands.jobs import pause_command
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
    from .commands.jobs import pause_command
    ctx.exit(pause_command(app, queues, paused=False))


def main() -> None:
    terminated = False

    def on_sigterm(signum: int, frame: object) -> None:
        # SIGTERM (systemd, `kill`, a CI timeout) stops a run the way Ctrl-C does: nothing new starts,
        # a swap under way is finished or rolled back, locks are released; the exit code is 143.
        nonlocal terminated
        terminated = True
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        cli.main(prog_name="immich-remote", standalone_mode=True)
    except KeyboardInterrupt:  # pragma: no cover - outside click's handling
        sys.exit(EXIT_TERMINATED if terminated else EXIT_INTERRUPTED)
    except SystemExit as exc:
        if terminated and exc.code == EXIT_INTERRUPTED:
            sys.exit(EXIT_TERMINATED)
        raise


__all__ = ["cli", "main", "App", "EXIT_BAD_INPUT"]
