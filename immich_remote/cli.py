"""The command line's root: the `immich-remote` group with its global options, the error handling
that turns our errors into one message and an exit code, and `main`. Each command's click
definition lives in its commands/<name>.py (listed in COMMANDS) and is registered below: a new
command module adds its name to the import and to the tuple.

Exit codes: 0 success, 1 a failure (a check, a host), 2 bad input, 3 Immich's config is locked by
IMMICH_CONFIG_FILE, 130 interrupted.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from . import __version__
from .app import App
from .commands import (
    advise,
    bench,
    check,
    config,
    deploy,
    drill,
    guard,
    init,
    inventory,
    jobs,
    ops_report,
    plan,
    remove,
    rollback,
    status,
    trust,
    upgrade,
)
from .errors import EXIT_INTERRUPTED, EXIT_TERMINATED, ImmichRemoteError

if TYPE_CHECKING:
    from .output import Output


def quiet_libraries(verbose: int) -> None:
    """paramiko logs tracebacks of failed handshakes; our errors already say what happened.
    With -vv they are shown (on stderr) for debugging."""
    import logging

    logger = logging.getLogger("paramiko")
    logger.propagate = False
    logger.handlers[:] = [logging.StreamHandler() if verbose >= 2 else logging.NullHandler()]


class _Group(click.Group):
    """Turns our errors into one clear message and an exit code, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ImmichRemoteError as exc:
            app = ctx.find_object(App)
            (app.out if app else _output()).error(exc)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            _output().error("interrupted")
            ctx.exit(EXIT_INTERRUPTED)


def _output() -> Output:
    from .output import Output

    return Output()


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
    from .output import Output

    ctx.obj = App(inventory_path=inventory, limit=limit, out=Output(json_mode=json_mode, verbose=verbose, quiet=quiet))
    quiet_libraries(verbose)


# Each command module lists its click commands in COMMANDS (`--help` shows them sorted by name).
for _module in (advise, bench, check, config, deploy, init, inventory, jobs, plan, remove, rollback, status, trust, upgrade,
                guard, ops_report, drill):
    for _command in _module.COMMANDS:
        cli.add_command(_command)

# The user guide page each command's --help points to (docs/ in the source and the sdist); default operations.
DOCS_PAGES = {"init": "getting-started", "deploy": "getting-started", "inventory": "getting-started",
              "render": "getting-started", "plan": "getting-started", "check": "hardware-acceleration",
              "trust": "security", "guard": "guard"}


def _point_to_docs(command: click.Command, page: str) -> None:
    if "Docs:" not in (command.epilog or ""):
        line = f"Docs: docs/{page}.md; errors explained: docs/troubleshooting.md"
        command.epilog = f"{command.epilog}\n\n{line}" if command.epilog else line
    for sub in getattr(command, "commands", {}).values():
        _point_to_docs(sub, page)


cli.epilog = "Docs: docs/getting-started.md (user guide: docs/), errors explained: docs/troubleshooting.md"
for _name, _command in cli.commands.items():
    _point_to_docs(_command, DOCS_PAGES.get(_name, "operations"))


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


__all__ = ["cli", "main"]
