"""`immich-remote drill`: the planned-reboot test of the user's guide, as pure parts (no I/O).

The drill takes one host's ML away, asks Immich for a smart search while it is down (the server
embeds the query through its own ML URL list, so the answer shows what Immich does without the
host), brings the host back through the health gate, searches again and compares the queues.

- `STEPS`: the steps in order, with what each proves.
- `expectation`: what the fallback mode promises for a search while the host is down, from the mode
  and Immich's URL list (keep-local: the local URL serves; remote-only: it fails unless Immich has
  another URL).
- `verdict`: whether Immich behaved as promised (the exit code), with the plain-words notes. A
  remote-only drill whose search failed as promised passes (exit 0), and says that ML jobs fail
  while the host is down.
- `failed_during`: failed-job deltas per queue; `Timings`; the command lines the drill runs on a host.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from .names import PROJECT_NAME, SERVICE_NAME, HostPaths
from .urls import url_key

METHODS = ("stop", "reboot")
STOP, REBOOT = METHODS

# (name, what it does) in order; the table shows every step, run or not.
STEPS: tuple[tuple[str, str], ...] = (
    ("record", "queue counts, Immich's URL list, a smart search while all is up"),
    ("take down", "stop the host's ML container (stop) or reboot the host (reboot)"),
    ("search while down", "a smart search through Immich while the host is down"),
    ("bring back", "start it again (or wait for the reboot) through the health gate"),
    ("search after", "a smart search again; failed jobs during the drill"),
    ("run-missing", "queue the assets that failed (force: false)"),
)
STEP_NAMES = tuple(name for name, _ in STEPS)

# What the drill waits for at most. A search is answered in well under a second while an ML URL
# answers at once; a reboot takes minutes on real hardware.
SEARCH_DEADLINE = 60.0  # seconds of retries while Immich itself does not answer (not for HTTP errors)
DOWN_DEADLINE = 120.0  # seconds until a rebooting host stops answering
REBOOT_DEADLINE = 600.0  # seconds until a rebooted host answers SSH again


def probe_query() -> str:
    """A query Immich has not seen: the server caches embeddings per query text (LRU of 100), and a
    cached query would be answered without asking any ML URL, proving nothing."""
    return f"immich-remote drill {uuid.uuid4().hex[:12]}"


# --- what runs on the host ------------------------------------------------------------------------

def _compose(paths: HostPaths, has_files: bool, *args: str) -> list[str]:
    """Compose addressed like `remove` does: by the active files, or by the project name alone when
    the files are gone but the containers are left (Compose finds them by their project label)."""
    if has_files:
        return ["docker", "compose", "--project-directory", paths.root, "-f", paths.compose_file, *args]
    return ["docker", "compose", "-p", PROJECT_NAME, *args]


def stop_command(paths: HostPaths, has_files: bool) -> list[str]:
    """`docker compose stop` of the ML service only (other services of the project, such as the
    firewall's, keep running): the container stays (same image, same restart count), nothing is removed."""
    return _compose(paths, has_files, "stop", SERVICE_NAME)


def start_command(paths: HostPaths, has_files: bool) -> list[str]:
    return _compose(paths, has_files, "start", SERVICE_NAME)


def reboot_command() -> list[str]:
    """`sudo -n`: never waits for a password prompt nobody sees; fails at once instead."""
    return ["sudo", "-n", "reboot"]


# --- what the fallback mode promises ---------------------------------------------------------------

@dataclass(frozen=True)
class Expectation:
    served: bool  # whether a smart search must succeed while the host is down
    others: tuple[str, ...]  # the URLs Immich can still use
    why: str

    def to_data(self) -> dict[str, Any]:
        return {"servedWhileDown": self.served, "otherUrls": list(self.others), "why": self.why}


def url_position(urls: Sequence[str], host_url: str) -> int | None:
    """1-based position of the host's URL in Immich's list (compared normalised), None when absent."""
    keys = [url_key(u) for u in urls]
    key = url_key(host_url)
    return keys.index(key) + 1 if key in keys else None


def expectation(fallback: str, urls: Sequence[str], host_url: str, local_url: str) -> Expectation:
    """What Immich should do while the host is down, from the fallback mode and Immich's URL list."""
    others = tuple(u for u in urls if url_key(u) != url_key(host_url))
    if fallback == "keep-local":
        if url_key(local_url) in {url_key(u) for u in others}:
            why = f"keep-local: Immich falls back to its local ML ({local_url}) while the host is down"
        else:
            why = (f"keep-local promises the local ML ({local_url}), but it is not in Immich's URL list; "
                   "`immich-remote deploy` puts it back")
        return Expectation(True, others, why)
    if others:
        return Expectation(True, others, f"remote-only, but Immich still has {len(others)} other ML URL(s) to use")
    return Expectation(False, others, "remote-only: the host's URL is the only one in Immich's list, so Immich "
                       "has no ML while it is down")


# --- outcomes and the verdict ------------------------------------------------------------------------

@dataclass
class SearchOutcome:
    """One smart search through Immich: answered (2xx), or the HTTP status / error it ended with."""

    ok: bool
    seconds: float
    status: int | None = None
    error: str = ""
    tries: int = 1

    @property
    def ml_failed(self) -> bool:
        """Immich answered 500: every ML URL failed (the server's `failed for all URLs`)."""
        return not self.ok and self.status == 500

    def to_data(self) -> dict[str, Any]:
        return {"ok": self.ok, "seconds": round(self.seconds, 2), "status": self.status, "error": self.error or None,
                "tries": self.tries}


@dataclass
class Step:
    name: str
    ok: bool | None = None  # None: not run
    seconds: float | None = None
    detail: str = ""

    @property
    def result(self) -> str:
        return "skipped" if self.ok is None else "ok" if self.ok else "failed"

    def to_data(self) -> dict[str, Any]:
        return {"step": self.name, "result": self.result,
                "seconds": None if self.seconds is None else round(self.seconds, 2), "detail": self.detail}


def new_steps() -> dict[str, Step]:
    return {name: Step(name) for name in STEP_NAMES}


@dataclass
class Timings:
    """Monotonic seconds of the drill's moments; the durations a person cares about."""

    down_started: float | None = None  # the stop or reboot command was sent
    down: float | None = None  # the host no longer answered /ping
    fallback_answered: float | None = None  # Immich answered the search while down (success or error)
    back_started: float | None = None  # `start` sent (stop) or SSH answered again (reboot)
    back: float | None = None  # the health gate saw pong

    @staticmethod
    def _span(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else round(max(0.0, b - a), 2)

    def to_data(self) -> dict[str, float | None]:
        return {"fallbackAnswered": self._span(self.down, self.fallback_answered),
                "downtime": self._span(self.down_started, self.back),
                "timeBack": self._span(self.back_started, self.back)}


def failed_during(before: Mapping[str, Mapping[str, Any]], after: Mapping[str, Mapping[str, Any]]) -> dict[str, int]:
    """Jobs that failed between two readings of the ML queues, per queue (only queues that grew)."""
    grown = {}
    for name, counts in after.items():
        delta = int(counts.get("failed", 0)) - int((before.get(name) or {}).get("failed", 0))
        if delta > 0:
            grown[name] = delta
    return grown


@dataclass
class Verdict:
    ok: bool
    headline: str
    notes: list[str] = field(default_factory=list)

    def to_data(self) -> dict[str, Any]:
        return asdict(self)


JOBS_FAIL = ("While {host} is down, Immich has no ML URL that answers: Smart Search, Face Detection and OCR "
             "jobs FAIL (Immich does not keep them waiting), and the assets they were for stay unprocessed "
             "until `immich-remote jobs run-missing`.")


def verdict(*, host: str, fallback: str, expect: Expectation, down: SearchOutcome | None, back_ok: bool,
            back_detail: str, after: SearchOutcome | None, failed: Mapping[str, int]) -> Verdict:
    """Whether Immich behaved as its fallback mode promises (exit 0) and what to tell the admin.

    keep-local (or remote-only with other URLs): the search while down must succeed. remote-only with
    the host as the only URL: the search must fail with Immich's "every URL failed" (500), and the
    drill says plainly that ML jobs fail while the host is down; that is the promised behaviour, so it
    passes. Either way the host must come back and Immich must answer a search again afterwards.
    """
    notes: list[str] = []
    problems: list[str] = []
    if down is None:
        problems.append(f"{host} was not taken down, so nothing was proven")
    elif expect.served and down.ok:
        notes.append(f"While {host} was down Immich answered a smart search after {down.seconds:.1f}s "
                     f"({expect.why}).")
    elif expect.served:
        problems.append(f"while {host} was down Immich could not answer a smart search "
                        f"({_search_error(down)}); {expect.why}")
    elif down.ml_failed:
        notes.append(JOBS_FAIL.format(host=host))
    elif down.ok:
        problems.append(f"Immich answered a smart search while {host} was down although it has no other ML URL: "
                        "the host was not really down, or Immich's URL list changed during the drill")
    else:
        problems.append(f"while {host} was down the smart search failed otherwise than Immich's 'every ML URL "
                        f"failed' ({_search_error(down)})")
    if down is not None and not back_ok:
        problems.append(f"{host} did not come back: {back_detail}")
    elif after is not None and not after.ok:
        problems.append(f"after {host} came back Immich still could not answer a smart search ({_search_error(after)})")
    total = sum(failed.values())
    if total:
        listed = ", ".join(f"{n} {q}" for q, n in failed.items())
        notes.append(f"{total} ML job(s) failed during the drill ({listed}): `immich-remote jobs run-missing` "
                     "queues the assets they were for.")
    if problems:
        return Verdict(False, "FAILED: " + "; ".join(problems) + ".", notes)
    if expect.served:
        return Verdict(True, f"PASSED: {fallback}: Immich kept serving while {host} was down, and {host} is "
                       "serving again.", notes)
    return Verdict(True, f"PASSED (as remote-only promises): ML jobs fail while {host} is down; {host} is serving "
                   "again.", notes)


def _search_error(outcome: SearchOutcome) -> str:
    if outcome.ml_failed:
        return "HTTP 500: every ML URL in Immich's list failed"
    if outcome.status:
        return f"HTTP {outcome.status}: {outcome.error}"
    return outcome.error or "no answer"
