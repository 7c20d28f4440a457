"""Shared click options: declared once, the same in every command; the Duration type."""

import click
import pytest
from click.testing import CliRunner

from immich_remote.cli import cli
from immich_remote.options import DURATION

SHARED = ("--json", "--server-version", "--parallel", "--max-fail", "--health-timeout", "--allow-public",
          "--remote-only", "--break-lock", "--ship-image")


def commands(group: click.Group = cli, path: str = "") -> dict[str, click.Command]:
    found: dict[str, click.Command] = {}
    for name, command in group.commands.items():
        found[f"{path}{name}"] = command
        if isinstance(command, click.Group):
            found.update(commands(command, f"{path}{name} "))
    return found


@pytest.mark.parametrize("option", SHARED)
def test_a_shared_option_is_the_same_in_every_command(option):
    declared = {name: param.to_info_dict() for name, command in commands().items() for param in command.params
                if option in getattr(param, "opts", ())}
    assert len(declared) >= 2, f"{option} is used by {sorted(declared)} only"
    first = next(iter(declared.values()))
    assert all(info == first for info in declared.values()), f"{option} differs between {sorted(declared)}"


@pytest.mark.parametrize("text,seconds", [("90", 90.0), ("90s", 90.0), ("3m", 180.0), ("1.5h", 5400.0),
                                          ("500ms", 0.5), (" 2m ", 120.0)])
def test_duration_reads_what_the_inventory_reads(text, seconds):
    assert DURATION.convert(text, None, None) == seconds


def test_an_empty_duration_is_not_given():
    assert DURATION.convert("", None, None) is None


def test_wait_timeout_defaults_to_15_minutes():
    upgrade = commands()["upgrade"]
    param = next(p for p in upgrade.params if p.name == "wait_timeout")
    with click.Context(upgrade) as ctx:
        assert param.type_cast_value(ctx, param.get_default(ctx)) == 900.0


@pytest.mark.parametrize("args,message", [
    (["deploy", "--health-timeout", "soon"], "'soon' is not a duration; write it like 30s, 500ms or 2m."),
    (["rollback", "--health-timeout", "-1s"], "is not a duration"),
    (["upgrade", "--wait-timeout", "0"], "a duration must be positive."),
    (["upgrade", "--health-timeout", "nan"], "is not a duration"),
])
def test_a_bad_duration_is_a_usage_error_naming_the_option(args, message):
    result = CliRunner().invoke(cli, ["-i", "does-not-matter.yml", *args])
    assert result.exit_code == 2
    assert f"Invalid value for '{args[1]}'" in result.output and message in result.output
    assert "Traceback" not in result.output
