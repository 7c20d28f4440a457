"""Live progress for multi-host runs: one line per host with its current step.

On a terminal a rich Live table redraws in place; elsewhere (CI logs, pipes) each step change is
one plain line on stderr; with --json nothing is printed unless -v. Thread-safe: hosts report
from worker threads.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Sequence

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from .output import STATUS_STYLE

FAILED_WORDS = {"failed", "rolled-back", "error", "skipped"}


class Progress:
    def __init__(self, hosts: Sequence[str], *, enabled: bool = True, title: str = "") -> None:
        self._lock = threading.RLock()
        self._steps = {h: "waiting" for h in hosts}
        self._started: dict[str, float] = {}
        self._done: dict[str, str] = {}
        self._ended: dict[str, float] = {}
        self.enabled = enabled
        self.title = title
        self._console = Console(stderr=True, highlight=False)
        self._live: Live | None = None
        self._tty = enabled and sys.stderr.isatty() and not self._console.is_dumb_terminal

    def __enter__(self) -> Progress:
        if self._tty:
            # get_renderable: redrawn on every refresh, so elapsed times count up while a step waits.
            self._live = Live(get_renderable=self._render, console=self._console, refresh_per_second=4,
                              transient=True)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(None, None, None)
            self._live = None

    def step(self, host: str, text: str) -> None:
        with self._lock:
            self._started.setdefault(host, time.monotonic())
            self._steps[host] = text
            self._emit(host, text)

    def note(self, text: str) -> None:
        """A message for the whole run (above the live table on a terminal)."""
        if self.enabled:
            with self._lock:
                self._console.print(Text(text, style="yellow"))

    def finish(self, host: str, status: str, detail: str = "") -> None:
        with self._lock:
            self._done[host] = status
            self._ended[host] = time.monotonic()
            self._steps[host] = f"{status}{': ' + detail if detail else ''}"
            self._emit(host, self._steps[host], final=True)

    def _emit(self, host: str, text: str, final: bool = False) -> None:
        # The live table redraws itself 4 times a second (never refresh it under our lock: deadlock).
        if not self.enabled or self._live is not None:
            return
        elapsed = time.monotonic() - self._started.get(host, time.monotonic())
        style = STATUS_STYLE.get(text.split(":")[0], "") if final else "dim"
        self._console.print(Text(f"{host}: ", style="bold") + Text(text, style=style)
                            + Text(f"  ({elapsed:.1f}s)" if final else "", style="dim"))

    def _render(self) -> Group:
        with self._lock:
            return self._view()

    def _view(self) -> Group:
        done = sum(1 for status in self._done.values() if status not in FAILED_WORDS)
        failed = sum(1 for status in self._done.values() if status in FAILED_WORDS)
        running = sum(1 for host in self._steps if host in self._started and host not in self._done)
        queued = len(self._steps) - done - failed - running
        overall = Text(f"{done} done, {running} running, {failed} failed, {queued} queued", style="dim")
        table = Table(title=self.title or None, box=None, show_header=False, pad_edge=False)
        table.add_column("host", style="bold")
        table.add_column("step")
        table.add_column("time", style="dim", justify="right")
        now = time.monotonic()
        spinner = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"[int(now * 8) % 10]
        for host, text in self._steps.items():
            ended = self._ended.get(host)
            elapsed = f"{(ended or now) - self._started[host]:.1f}s" if host in self._started else ""
            if host in self._started and host not in self._done:
                text = f"{spinner} {text}"
            style = STATUS_STYLE.get(self._done.get(host, ""), "")
            table.add_row(host, Text(text, style=style), elapsed)
        return Group(table, overall)
