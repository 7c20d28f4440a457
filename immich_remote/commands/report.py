"""Shared output for command results: check lists, the per-host summary table, and the whole report of a
changing command (deploy, upgrade, rollback, remove): the table, the canary, Immich's URL list, --json."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

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


def report(app: App, results: list[HostResult], immich: dict[str, Any], snapshot_path: Path | None, *,
           dry_run: bool = False, title: str = "", canary: str | None = None) -> None:
    if app.json:
        counts: dict[str, int] = {}
        for r in results:
            counts[r.status] = counts.get(r.status, 0) + 1
        app.out.data({"hosts": [r.to_data() for r in results], "immich": immich, "canary": canary,
                      "summary": {"total": len(results), "failed": sum(r.failed for r in results), **counts},
                      "snapshot": str(snapshot_path) if snapshot_path else None})
        return
    out = app.out
    if dry_run:
        for r in results:
            out.line(f"{r.host}: {r.message}  ({r.previous_image or 'nothing running'} -> {r.image})", style="bold")
            for number, step in enumerate(r.details.get("plan", []), 1):
                out.line(f"  {number:2}. {step['name']:<8} {step['detail']}")
            for diff in r.details.get("diff", {}).values():
                out.line(diff.rstrip("\n"))
    if title:
        out.line(title, style="bold")
    print_results(app, results)
    if canary and not dry_run:
        verdict = next((r.status for r in results if r.host == canary), "?")
        out.info(f"Canary: {canary} (the host Immich uses least) went first, alone: {verdict}.")
    if not immich:
        if snapshot_path:
            out.info(f"Recorded before the change: {snapshot_path}")
        return
    before, after = immich["urls_before"], immich.get("urls_after", immich["urls_before"])
    if immich.get("error"):
        state = "not applied: Immich did not answer as expected"
    elif immich.get("locked") and immich.get("wanted", before) != before:
        state = "not applied: locked by IMMICH_CONFIG_FILE"
    elif dry_run:
        state = "would change" if immich.get("changed") else "unchanged"
    else:
        state = "changed" if immich.get("changed") else "unchanged"
    out.line(f"Immich machineLearning.urls ({state}):")
    out.line(f"  before: {', '.join(before)}")
    out.line(f"  {'wanted' if 'wanted' in immich and state.startswith('not applied') else 'after'}:  "
             f"{', '.join(immich.get('wanted', after))}")
    if immich.get("error"):
        out.warn(f"Immich's URL list was NOT changed: {immich['error']}. The hosts above are as the table says; "
                 f"run the same command again when Immich answers: it finds them unchanged and only writes the "
                 f"URL list.")
    if immich.get("config_file_snippet"):
        out.warn("Immich's settings come from IMMICH_CONFIG_FILE, so the API cannot change them. Put this into that "
                 "file's machineLearning section, then restart the Immich server:")
        out.line(immich["config_file_snippet"])
    if immich.get("missing_started"):
        out.line(f"Started 'Missing' jobs (force: false): {', '.join(immich['missing_started'])}")
    if immich.get("missing_failed"):
        failed = "; ".join(f"{queue}: {why}" for queue, why in immich["missing_failed"].items())
        out.warn(f"'Missing' jobs not started (or not confirmed): {failed}. The hosts and the URL list above are "
                 "done; start the jobs with `immich-remote jobs run-missing` when Immich answers (a queue that did "
                 "start is left as it is).")
    if snapshot_path:
        out.info(f"Recorded before the change: {snapshot_path}")
