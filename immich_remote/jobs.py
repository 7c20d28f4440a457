"""The ML job queues, as numbers: pure functions (no I/O) behind `immich-remote jobs`.

- `ml_queue_counts`: the ML queues out of either queue endpoint's answer (`GET /api/queues` from 2.4,
  `GET /api/jobs` before; reference/immich.md section 9), counts as integers.
- `enabled_ml_queues`: which ML queues Immich's config has switched on (the server's own rule,
  `server/src/utils/misc.ts`: every feature needs `machineLearning.enabled`; duplicate detection also
  needs smart search, because it compares CLIP embeddings).
- `throughput` / `eta` / `Rates`: jobs done per minute from the backlog's deltas between refreshes,
  and the time left at that rate.
- `choose_queues`: command-line queue names checked against the ML queues and what the server has.
- `QueuesReading`: one reading of the ML queues (with the rates measured up to it) and its JSON.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from .errors import ImmichAPIError, InputError
from .immich_api import ML_JOB_QUEUES
from .versions import ImmichVersion

COUNT_KEYS = ("active", "waiting", "delayed", "failed", "paused")

# queue -> the machineLearning.<feature>.enabled switches it needs (besides machineLearning.enabled).
QUEUE_FEATURES: dict[str, tuple[str, ...]] = {
    "smartSearch": ("clip",),
    "faceDetection": ("facialRecognition",),
    "facialRecognition": ("facialRecognition",),
    "duplicateDetection": ("clip", "duplicateDetection"),
    "ocr": ("ocr",),
}


def _count(value: Any) -> int:
    try:
        return max(0, int(value or 0))
    except (TypeError, ValueError):
        return 0


def _counts(statistics: Any, is_paused: Any) -> dict[str, Any]:
    stats = statistics if isinstance(statistics, Mapping) else {}
    counts: dict[str, Any] = {key: _count(stats.get(key)) for key in COUNT_KEYS}
    counts["isPaused"] = bool(is_paused)
    return counts


def ml_queue_counts(raw: Any, version: ImmichVersion) -> dict[str, dict[str, Any]]:
    """The ML queues the server has, in `ML_JOB_QUEUES` order: `{name: {active, waiting, delayed,
    failed, paused, isPaused}}`.

    `raw` is the body of `GET /api/queues` on 2.4+ (`[{name, isPaused, statistics}]`) or of the legacy
    `GET /api/jobs` before (`{name: {jobCounts, queueStatus: {isActive, isPaused}}}`).
    """
    found: dict[str, dict[str, Any]] = {}
    if version.has_queues_api:
        if not isinstance(raw, list):
            raise ImmichAPIError(f"GET /api/queues did not return a list of queues (Immich {version}); "
                                 "is immich.url the Immich server?")
        for queue in raw:
            if isinstance(queue, Mapping) and queue.get("name") in ML_JOB_QUEUES:
                found[queue["name"]] = _counts(queue.get("statistics"), queue.get("isPaused"))
    else:
        if not isinstance(raw, Mapping):
            raise ImmichAPIError(f"GET /api/jobs did not return the queues by name (Immich {version}); "
                                 "is immich.url the Immich server?")
        for name, queue in raw.items():
            if name in ML_JOB_QUEUES and isinstance(queue, Mapping):
                status = queue.get("queueStatus") if isinstance(queue.get("queueStatus"), Mapping) else {}
                found[name] = _counts(queue.get("jobCounts"), status.get("isPaused"))
    return {name: found[name] for name in ML_JOB_QUEUES if name in found}


def enabled_ml_queues(config: Mapping[str, Any], available: Iterable[str]) -> tuple[list[str], dict[str, str]]:
    """Which of the `available` ML queues Immich's config has switched on.

    Returns (the enabled queues in `ML_JOB_QUEUES` order, {disabled queue: the setting that is off}).
    A feature missing from the config (an older server) counts as off.
    """
    ml = config.get("machineLearning") if isinstance(config.get("machineLearning"), Mapping) else {}
    have = set(available)
    enabled: list[str] = []
    disabled: dict[str, str] = {}
    for name in ML_JOB_QUEUES:
        if name not in have:
            continue
        if not ml.get("enabled", False):
            disabled[name] = "machineLearning.enabled"
            continue
        off = [f for f in QUEUE_FEATURES[name] if not (isinstance(ml.get(f), Mapping) and ml[f].get("enabled"))]
        if off:
            disabled[name] = f"machineLearning.{off[0]}.enabled"
        else:
            enabled.append(name)
    return enabled, disabled


def choose_queues(names: Sequence[str], available: Iterable[str]) -> list[str]:
    """The queues a command works on: `names` (checked) or, when none, every ML queue the server has.

    An unknown name, or an ML queue this server does not have, is bad input (exit 2) naming the valid ones.
    """
    have = [n for n in ML_JOB_QUEUES if n in set(available)]
    check_queue_names(names)
    missing = [n for n in names if n not in have]
    if missing:
        raise InputError(f"This Immich server has no {', '.join(missing)} queue; its ML queues are: "
                         f"{', '.join(have) or 'none'}.")
    return list(dict.fromkeys(names)) if names else have


def check_queue_names(names: Sequence[str]) -> None:
    """Refuse names that are not ML queues (before anything is sent), naming the valid ones."""
    unknown = [n for n in names if n not in ML_JOB_QUEUES]
    if unknown:
        by_lower = {q.lower(): q for q in ML_JOB_QUEUES}
        guesses = [by_lower[n.lower()] for n in unknown if n.lower() in by_lower]
        hint = f"Did you mean {', '.join(guesses)}? Names are spelled as the API spells them." if guesses else None
        raise InputError(f"Not an ML queue: {', '.join(unknown)}. Valid: {', '.join(ML_JOB_QUEUES)}.", hint=hint)


# --- rates --------------------------------------------------------------------------------------------

def backlog(counts: Mapping[str, Any]) -> int:
    """Jobs not finished yet: active + waiting + delayed."""
    return _count(counts.get("active")) + _count(counts.get("waiting")) + _count(counts.get("delayed"))


def throughput(prev: Mapping[str, Any], now: Mapping[str, Any], seconds: float) -> float | None:
    """Jobs completed per minute between two readings of one queue, from the backlog's decrease.

    Never negative: a backlog that grew (new uploads queued faster than they are done) gives 0.
    None when no time passed (nothing to measure yet).
    """
    if seconds <= 0:
        return None
    return max(0.0, (backlog(prev) - backlog(now)) * 60.0 / seconds)


def eta(counts: Mapping[str, Any], per_minute: float | None) -> float | None:
    """Seconds until waiting + active jobs are done at `per_minute`: 0 with nothing left, None when
    the rate is unknown or 0 (no progress measured, so no honest estimate)."""
    left = _count(counts.get("waiting")) + _count(counts.get("active"))
    if left == 0:
        return 0.0
    if not per_minute or per_minute <= 0:
        return None
    return left * 60.0 / per_minute


class Rates:
    """Throughput per queue over a sliding window of readings, so one bursty refresh does not swing it.

    `add(at, queues)` records a reading (monotonic seconds, `ml_queue_counts` output) and returns
    `{name: {"throughput": per minute or None, "eta": seconds or None}}`, measured against the oldest
    reading inside `window` seconds, or the last one before it (so always at least the previous reading).
    """

    def __init__(self, window: float = 60.0) -> None:
        self.window = window
        self._readings: deque[tuple[float, Mapping[str, Mapping[str, Any]]]] = deque()

    def add(self, at: float, queues: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, float | None]]:
        while len(self._readings) > 1 and at - self._readings[1][0] >= self.window:
            self._readings.popleft()
        base = self._readings[0] if self._readings else None
        result: dict[str, dict[str, float | None]] = {}
        for name, counts in queues.items():
            rate = None
            if base is not None and name in base[1]:
                rate = throughput(base[1][name], counts, at - base[0])
            result[name] = {"throughput": rate, "eta": eta(counts, rate)}
        self._readings.append((at, dict(queues)))
        return result


def format_rate(per_minute: float | None) -> str:
    if per_minute is None:
        return "-"
    return f"{per_minute:.0f}/min" if per_minute >= 10 else f"{per_minute:.1f}/min"


def format_eta(seconds: float | None) -> str:
    """`12s`, `4m 05s`, `3h 12m`, `2d 4h`; `-` when unknown; `done` when nothing is left."""
    if seconds is None:
        return "-"
    if seconds <= 0:
        return "done"
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86400}d {s % 86400 // 3600}h"


@dataclass
class QueuesReading:
    """One reading of the ML queues (and, in a watch, the rates measured up to it)."""

    url: str
    version: ImmichVersion
    queues: dict[str, dict[str, Any]]
    at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    rates: dict[str, dict[str, float | None]] | None = None
    error: str | None = None

    @property
    def endpoint(self) -> str:
        return "/api/queues" if self.version.has_queues_api else "/api/jobs"

    def server_data(self) -> dict[str, Any]:
        return {"url": self.url, "version": str(self.version)}

    def to_data(self) -> dict[str, Any]:
        return {"server": self.server_data(), "queues": {name: dict(c) for name, c in self.queues.items()}}

    def to_watch_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {"at": self.at, **self.to_data()}
        for name, counts in data["queues"].items():
            rate = (self.rates or {}).get(name, {})
            counts["throughputPerMinute"] = _rounded(rate.get("throughput"))
            counts["etaSeconds"] = _rounded(rate.get("eta"))
        if self.error:
            data["error"] = self.error
        return data


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
