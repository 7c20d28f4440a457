"""Click options and arguments that several commands share, each declared once, and the `Duration`
parameter type (`90`, `500ms`, `90s`, `3m`, `1.5h`, read as the inventory reads its durations).

Each `*_option` is a decorator: `@parallel_option` on a command adds `--parallel/-p` to it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from .app import App
from .errors import ImmichRemoteError

F = TypeVar("F", bound=Callable[..., Any])


class Duration(click.ParamType):
    """A duration in seconds (float), written as the inventory's durations are: `90` (seconds),
    `500ms`, `90s`, `3m`, `1.5h`. An empty value counts as not given (None). A bad value is a usage
    error (exit 2) that names the option."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float | None:
        if value is None or isinstance(value, float):
            return value
        if value == "":
            return None
        from .inventory import parse_duration

        try:
            return parse_duration(value)
        except ValueError as exc:
            self.fail(f"{exc}.", param, ctx)


DURATION = Duration()


def complete_hosts(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """Shell completion of host and group names from the inventory."""
    from .inventory import default_inventory_path, load_inventory

    try:
        root = ctx.find_root().params
        inventory = load_inventory(root.get("inventory") or default_inventory_path())
    except (ImmichRemoteError, OSError):
        return []
    names = [h.name for h in inventory.hosts] + list(inventory.groups)
    return [n for n in names if n.startswith(incomplete)]


HOSTS_ARG = click.argument("host_names", metavar="[HOST|GROUP]...", nargs=-1, shell_complete=complete_hosts)


def json_option(func: F) -> F:
    """`--json` after the subcommand too, for convenience (same as the global one)."""
    def callback(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
        if value:
            ctx.find_object(App).out.json_mode = True
    return click.option("--json", "json_flag", is_flag=True, expose_value=False, callback=callback,
                        help="Print the result as JSON on stdout.")(func)


server_version_option = click.option(
    "--server-version", metavar="X.Y.Z", help="Pin this Immich version instead of asking the server (works offline).")

parallel_option = click.option(
    "--parallel", "-p", type=click.IntRange(1, 256), default=None, metavar="N",
    help="Hosts worked on at the same time [default: all selected hosts; SSH handshakes are bounded by "
    "ssh.max_handshakes].")

max_fail_option = click.option(
    "--max-fail", type=click.IntRange(1), default=1, show_default=True, metavar="N",
    help="Stop swapping hosts after N failed swaps (the canary failing alone stops the rollout by default).")

health_timeout_option = click.option(
    "--health-timeout", type=DURATION, metavar="DURATION", default=None,
    help="How long a new container may take to become healthy [inventory health_timeout, default 3m].")

allow_public_option = click.option(
    "--allow-public", is_flag=True, help="Accept a public or 0.0.0.0 bind address (the ML API has no auth).")

remote_only_option = click.option(
    "--remote-only", is_flag=True, help="Confirm fallback: remote-only (drop the local ML URL).")

break_lock_option = click.option(
    "--break-lock", is_flag=True, help="Take over a host lock left behind by a dead run.")

dry_run_option = click.option(
    "--dry-run", "-n", is_flag=True, help="Show what each host would do (its steps, file diffs) and the URL list; change nothing.")

ship_image_option = click.option(
    "--ship-image", is_flag=True, help="Stream the image from this machine's Docker over SSH (no pull).")
