"""Shared human output for command results: check lists and the per-host summary table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..app import App
    from ..preflight import Check
    from ..rollout import HostResult


def print_checks(app: App, title: str, checks: Sequence[Check]) -> None:
    app.out.table(["check", "result", "detail"], [(c.name, c.status, c.detail) for c in checks], title=title,
                  status_column="result")
    for c in checks:
        if c.status != "pass" and c.fix:
            app.out.line(f"  fix {c.name}: {c.fix}", style="yellow")


def print_results(app: App, results: Sequence[HostResult]) -> None:
    app.out.table(["host", "result", "image", "time", "detail"],
                  [(r.host, r.status, r.image or "", f"{r.duration:.1f}s",
                    r.message + (f" (window {r.window:.1f}s)" if r.window is not None else ""))
                   for r in results], status_column="result")
    for r in results:
        if r.failed and r.fix:
            app.out.line(f"  {r.host}: {r.fix}", style="yellow")
