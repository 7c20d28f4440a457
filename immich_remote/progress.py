"""Live progress for multi-host runs: one line per host with its current step.

On a terminal a rich Live table redraws in place 4 times a second: per host a spinner, the step,
what it waits for, the bytes of a pull or upload with a bar, rate and ETA, the open unavailability
window of a swap, and the elapsed time counting up; below it done / running / failed / queued.
Elsewhere (CI logs, pipes) each step change is one plain line on stderr, and a transfer adds a
progress line at most every PLAIN_EVERY seconds per host. With --json step lines are printed only
with -v, transfer lines unless -q (`periodic`). Thread-safe: hosts report from worker threads.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from .humanize import human_bytes, human_duration, human_rate, text_bar
from .output import STATUS_STYLE

FAILED_WORDS = {"failed", "rolled-back", "error", "skipped"}
PLAIN_EVERY = 3.0  # seconds between two progress lines of one host off a terminal
RATE_WINDOW = 5.0
DONE_WORDS = {"pulling": "pulled", "extracting": "pulled", "sending": "sent", "seeding": "seeded"}  # seconds of samples behind the rate (and so the ETA)


@dataclass
class Transfer:
    """Bytes moving for one host (a pull, an upload): what, how far, and recent samples for the rate."""

    what: str
    done: int = 0
    total: int | None = None
    at_least: bool = False  # the total is a lower bound (some sizes are not known yet)
    started: float = 0.0
    samples: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=200))

    def add(self, at: float, done: int, total: int | None, at_least: bool = False) -> None:
        self.done, self.total, self.at_least = done, total or None, at_least
        self.samples.append((at, done))
        while len(self.samples) > 2 and at - self.samples[0][0] > RATE_WINDOW:
            self.samples.popleft()

    def rate(self, now: float) -> float | None:
        """Bytes per second over the last RATE_WINDOW seconds (None until there are two samples 0.5 s apart)."""
        if len(self.samples) < 2:
            return None
        (first_at, first), (last_at, last) = self.samples[0], self.samples[-1]
        span = max(now, last_at) - first_at
        return (last - first) / span if span >= 0.5 else None

    def fraction(self) -> float | None:
        return min(self.done / self.total, 1.0) if self.total else None

    def eta(self, now: float) -> float | None:
        rate = self.rate(now)
        if not self.total or self.at_least or not rate or rate <= 0:
            return None
        return max(self.total - self.done, 0) / rate

    def size(self) -> str:
        """ "120 MB / 200 MB", "120 MB / ≥150 MB" while sizes are missing, "120 MB" without a total."""
        if not self.total:
            return human_bytes(self.done)
        return f"{human_bytes(self.done)} / {'≥' if self.at_least else ''}{human_bytes(self.total)}"

    def summary(self, now: float) -> str:
        """ "120 MB / 200 MB (60%), 35 MB/s, ETA 2.3s": the plain-line form."""
        parts = [self.size()]
        fraction = self.fraction()
        if fraction is not None:
            parts[0] += f" ({fraction:.0%})"
        rate, eta = self.rate(now), self.eta(now)
        if rate is not None:
            parts.append(human_rate(rate))
        if eta is not None:
            parts.append(f"ETA {human_duration(eta)}")
        return ", ".join(parts)


class Progress:
    def __init__(self, hosts: Sequence[str], *, enabled: bool = True, title: str = "",
                 periodic: bool | None = None) -> None:
        self._lock = threading.RLock()
        self._steps = {h: "waiting" for h in hosts}
        self._started: dict[str, float] = {}
        self._done: dict[str, str] = {}
        self._ended: dict[str, float] = {}
        self._transfers: dict[str, Transfer] = {}
        self._outages: dict[str, Callable[[], float | None]] = {}
        self._last_line: dict[str, float] = {}
        self.enabled = enabled
        self.periodic = enabled if periodic is None else periodic
        self.title = title
        self._console = Console(stderr=True, highlight=False, soft_wrap=True)
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
        self.stop()

    def stop(self) -> None:
        """End the live view (the terminal is as before it); later reports print nothing live."""
        live, self._live = self._live, None
        if live is not None:
            live.__exit__(None, None, None)

    def step(self, host: str, text: str) -> None:
        with self._lock:
            self._started.setdefault(host, time.monotonic())
            self._steps[host] = text
            self._end_transfer(host)
            self._emit(host, text)

    def transfer(self, host: str, done: int, total: int | None, what: str = "pulling", *,
                 at_least: bool = False) -> None:
        """Bytes moved so far for the host's current step (a pull: downloaded, then extracted)."""
        now = time.monotonic()
        with self._lock:
            current = self._transfers.get(host)
            if current is None or current.what != what:
                if current is None:
                    self._last_line[host] = now  # the first periodic line after PLAIN_EVERY seconds
                current = self._transfers[host] = Transfer(what, started=current.started if current else now)
            current.add(now, done, total, at_least)
            if self._live is None and self.periodic and now - self._last_line.get(host, 0.0) >= PLAIN_EVERY:
                self._last_line[host] = now
                self._console.print(Text(f"{host}: ", style="bold") + Text(f"{what}: {current.summary(now)}",
                                                                           style="dim"))

    def _end_transfer(self, host: str) -> None:
        """Off a terminal, a finished transfer leaves one line: how much, how long, how fast."""
        transfer = self._transfers.pop(host, None)
        if transfer is None or self._live is not None or not self.periodic or not transfer.done:
            return
        took = time.monotonic() - transfer.started
        self._console.print(Text(f"{host}: ", style="bold") + Text(
            f"{DONE_WORDS.get(transfer.what, transfer.what)} {human_bytes(transfer.done)} in {human_duration(took)}"
            + (f" ({human_rate(transfer.done / took)})" if took > 0 else ""), style="dim"))

    def watching(self, host: str, outage: Callable[[], float | None]) -> None:
        """While the host swaps: `outage()` gives the seconds without a serving container so far."""
        with self._lock:
            self._outages[host] = outage

    def note(self, text: str) -> None:
        """A message for the whole run (above the live table on a terminal)."""
        if self.enabled:  # printed without our lock: the live view's redraw holds its lock, then takes ours
            self._console.print(Text(text, style="yellow"))

    def finish(self, host: str, status: str, detail: str = "") -> None:
        with self._lock:
            self._done[host] = status
            self._ended[host] = time.monotonic()
            self._transfers.pop(host, None)
            self._outages.pop(host, None)
            self._steps[host] = f"{status}{': ' + detail if detail else ''}"
            self._emit(host, self._steps[host], final=True)

    def _emit(self, host: str, text: str, final: bool = False) -> None:
        # The live table redraws itself 4 times a second (never refresh it under our lock: deadlock).
        if not self.enabled or self._live is not None:
            return
        started = self._started.get(host)
        took = f"  ({time.monotonic() - started:.1f}s)" if final and started is not None else ""
        style = STATUS_STYLE.get(text.split(":")[0], "") if final else "dim"
        self._console.print(Text(f"{host}: ", style="bold") + Text(text, style=style) + Text(took, style="dim"))

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
        table.add_column("host", style="bold", no_wrap=True)
        table.add_column("step", overflow="ellipsis", no_wrap=True, max_width=70)
        table.add_column("progress", no_wrap=True)
        table.add_column("time", style="dim", justify="right", no_wrap=True)
        now = time.monotonic()
        spinner = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"[int(now * 8) % 10]
        for host, text in self._steps.items():
            ended = self._ended.get(host)
            elapsed = human_duration((ended or now) - self._started[host]) if host in self._started else ""
            if host in self._started and host not in self._done:
                text = f"{spinner} {text}"
            style = STATUS_STYLE.get(self._done.get(host, ""), "")
            table.add_row(host, Text(text, style=style), self._extra(host, now), elapsed)
        return Group(table, overall)

    def _extra(self, host: str, now: float) -> Text:
        """The progress cell: a transfer's bar and numbers, or the open unavailability window."""
        transfer = self._transfers.get(host)
        if transfer is not None:
            cell = Text(text_bar(transfer.fraction()) + " ", style="magenta")
            cell.append(("extracting " if transfer.what == "extracting" else "") + transfer.size())
            rate, eta = transfer.rate(now), transfer.eta(now)
            if rate is not None:
                cell.append(f"  {human_rate(rate)}", style="dim")
            if eta is not None:
                cell.append(f"  ETA {human_duration(eta)}", style="dim")
            return cell
        outage = self._outages.get(host)
        if outage is not None:
            seconds = outage()
            if seconds is not None:
                return Text(f"window {seconds:.1f}s", style="yellow")
        return Text("")
