"""Output for people (rich: tables, colour only on a terminal, NO_COLOR respected) and for machines (--json).

Data goes to stdout; messages, progress and errors go to stderr, so `--json | jq` always works.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from .errors import ImmichRemoteError

STATUS_STYLE = {
    "ok": "green", "pass": "green", "deployed": "green", "unchanged": "cyan", "upgraded": "green", "reverted": "green", "removed": "green", "restarted": "green",
    "warn": "yellow", "skipped": "yellow", "rolled-back": "yellow", "dry-run": "cyan",
    "fail": "red", "failed": "red", "error": "red",
}


class Output:
    def __init__(self, *, json_mode: bool = False, verbose: int = 0, quiet: bool = False) -> None:
        self.json_mode = json_mode
        self.verbose = verbose
        self.quiet = quiet
        # Off a terminal (pipes, CI logs) rich would wrap at 80 columns; long lines read better.
        self.out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 160)
        self.err = Console(stderr=True, highlight=False, soft_wrap=True, width=None if sys.stderr.isatty() else 160)

    # machine-readable ---------------------------------------------------------------------------
    def data(self, payload: Any) -> None:
        sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")
        sys.stdout.flush()

    # human-readable --------------------------------------------------------------------------------
    def line(self, text: str = "", *, style: str | None = None) -> None:
        if not self.json_mode:
            self.out.print(Text(text, style=style or ""))

    def info(self, text: str) -> None:
        """A progress or context message (stderr, so it never mixes with data)."""
        if not self.quiet:
            self.err.print(Text(text, style="dim"))

    def warn(self, text: str) -> None:
        self.err.print(Text("warning: ", style="bold yellow") + Text(text))

    def error(self, exc: ImmichRemoteError | str) -> None:
        message = exc.message if isinstance(exc, ImmichRemoteError) else str(exc)
        hint = exc.hint if isinstance(exc, ImmichRemoteError) else None
        self.err.print(Text("error: ", style="bold red") + Text(message))
        if hint:
            self.err.print(Text(hint, style="yellow"))

    def table(self, columns: Sequence[str], rows: Iterable[Sequence[Any]], *, title: str | None = None,
              status_column: str | None = None) -> None:
        if self.json_mode:
            return
        table = Table(title=title, title_justify="left", header_style="bold", box=None, pad_edge=False)
        for column in columns:
            table.add_column(column, overflow="fold")
        status_index = columns.index(status_column) if status_column in columns else None
        for row in rows:
            cells = []
            for i, cell in enumerate(row):
                text = "" if cell is None else str(cell)
                style = STATUS_STYLE.get(text.split()[0], "") if (i == status_index and text) else ""
                cells.append(Text(text, style=style))
            table.add_row(*cells)
        self.out.print(table)
