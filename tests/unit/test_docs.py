"""The user guide: the five pages exist, the README links them, their links resolve, and every command's
--help ends with a guide page that exists."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from immich_remote.cli import cli

REPO = Path(__file__).resolve().parents[2]
GUIDE = ["getting-started", "hardware-acceleration", "security", "operations", "troubleshooting"]


def all_commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    for name, command in group.commands.items():
        found.append((*prefix, name))
        if isinstance(command, click.Group):
            found += all_commands(command, (*prefix, name))
    return found


@pytest.mark.parametrize("path", [(), *all_commands(cli)], ids=lambda p: " ".join(p) or "immich-remote")
def test_every_help_points_to_a_guide_page_that_exists(path):
    result = CliRunner().invoke(cli, [*path, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    pages = re.findall(r"docs/([\w.-]+\.md)", result.output.split("Docs:")[-1])
    assert pages, result.output
    for page in pages:
        assert (REPO / "docs" / page).is_file(), page


def test_the_readme_links_every_guide_page_in_order():
    readme = (REPO / "README.md").read_text()
    positions = [readme.find(f"(docs/{page}.md)") for page in GUIDE]
    assert -1 not in positions and positions == sorted(positions)


@pytest.mark.parametrize("page", GUIDE)
def test_guide_links_resolve(page):
    text = (REPO / "docs" / f"{page}.md").read_text()
    for target in re.findall(r"\]\(([^)#:]+\.md)(?:#[^)]*)?\)", text):
        assert (REPO / "docs" / target).resolve().is_file(), f"{page}.md links {target}"
