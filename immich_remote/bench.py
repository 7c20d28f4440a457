"""The numbers of `immich-remote bench`, pure: which tasks and concurrency Immich would use, the
synthetic image the requests carry, latency statistics, the JSON shape and the bar chart's rows.

The I/O (sending `/predict`, timing it, threads, Ctrl-C) is in commands/bench.py and ml_api.py.
"""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# The bench tasks (ml_api.BENCH_TASKS) and the job queue whose work each one is.
TASKS = ("clip-image", "clip-text", "faces", "ocr")
TASK_QUEUE = {"clip-image": "smartSearch", "clip-text": "smartSearch", "faces": "faceDetection", "ocr": "ocr"}
QUEUE_TASK = {"smartSearch": "clip-image", "faceDetection": "faces", "ocr": "ocr"}
# Immich's default job concurrency (server/src/config.ts, AdminConfigDto.job).
DEFAULT_CONCURRENCY = {"smartSearch": 2, "faceDetection": 2, "ocr": 1}
# The machineLearning.<feature> switch of each task.
TASK_FEATURE = {"clip-image": "clip", "clip-text": "clip", "faces": "facialRecognition", "ocr": "ocr"}


def concurrency_for(task: str, config: Mapping[str, Any] | None) -> int:
    """How many of this task's requests Immich runs at once: its queue's `job.<queue>.concurrency`."""
    queue = TASK_QUEUE[task]
    job = (config or {}).get("job") or {}
    value = (job.get(queue) or {}).get("concurrency") if isinstance(job.get(queue), Mapping) else None
    return value if isinstance(value, int) and value >= 1 else DEFAULT_CONCURRENCY[queue]


def enabled_tasks(config: Mapping[str, Any] | None) -> tuple[list[str], dict[str, str]]:
    """(the tasks whose feature Immich has on, {task: the setting that is off}); no config: all tasks."""
    if config is None:
        return list(TASKS), {}
    ml = config.get("machineLearning") or {}
    enabled, off = [], {}
    for task in TASKS:
        feature = TASK_FEATURE[task]
        if not ml.get("enabled", True):
            off[task] = "machineLearning.enabled"
        elif not (ml.get(feature) or {}).get("enabled", feature != "ocr"):
            off[task] = f"machineLearning.{feature}.enabled"
        else:
            enabled.append(task)
    return enabled, off


# --- statistics ---------------------------------------------------------------------------------------

def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100) with linear interpolation between the closest ranks; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass
class TaskRun:
    """One task on one endpoint: the cold first request, then the warm run at `concurrency`.

    `latencies_ms` are the warm requests that answered 200; `errors` the warm ones that did not;
    `seconds` runs from the warm run's start until its last request finished."""

    concurrency: int
    cold_ms: float | None = None
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    seconds: float = 0.0
    error: str | None = None  # the first failure, as said (a refused connection, HTTP 500 ...)
    interrupted: bool = False

    @property
    def requests(self) -> int:
        return len(self.latencies_ms) + self.errors

    @property
    def throughput(self) -> float | None:
        """Answered requests per second over the warm run (None before it ran)."""
        return len(self.latencies_ms) / self.seconds if self.seconds > 0 else None

    def to_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {"requests": self.requests, "errors": self.errors,
                                "throughput_per_s": _round(self.throughput, 3),
                                "p50_ms": _round(percentile(self.latencies_ms, 50), 1),
                                "p95_ms": _round(percentile(self.latencies_ms, 95), 1),
                                "cold_ms": _round(self.cold_ms, 1)}
        if self.error:
            data["error"] = self.error
        return data


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def results_data(targets: Mapping[str, tuple[str, Mapping[str, TaskRun]]]) -> dict[str, Any]:
    """`--json`: {"targets": {NAME: {"url": ..., "tasks": {TASK: {requests, errors, throughput_per_s,
    p50_ms, p95_ms, cold_ms}}}}} from {name: (url, {task: TaskRun})}."""
    return {"targets": {name: {"url": url, "tasks": {task: run.to_data() for task, run in runs.items()}}
                        for name, (url, runs) in targets.items()}}


def throughputs(data: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """{target: {task: throughput per s}} of a `results_data` object, measured values only (advise's input)."""
    found: dict[str, dict[str, float]] = {}
    for name, target in (data.get("targets") or {}).items():
        for task, figures in (target.get("tasks") or {}).items():
            value = figures.get("throughput_per_s")
            if isinstance(value, (int, float)) and value > 0:
                found.setdefault(name, {})[task] = float(value)
    return found


def ranking(data: Mapping[str, Any], task: str) -> list[tuple[str, float]]:
    """The targets that answered `task`, fastest first: [(name, throughput per s)]."""
    rows = [(name, values[task]) for name, values in throughputs(data).items() if task in values]
    return sorted(rows, key=lambda row: -row[1])


def bar(value: float, top: float, width: int = 30) -> str:
    """A bar of `width` cells for value/top, in eighths of a cell (at least a sliver for any value > 0)."""
    if top <= 0 or value <= 0:
        return ""
    eighths = max(1, round(value / top * width * 8))
    full, part = divmod(eighths, 8)
    return "█" * full + (" ▏▎▍▌▋▊▉"[part] if part else "")


# --- the synthetic image ----------------------------------------------------------------------------

def synthetic_png(width: int = 640, height: int = 480) -> bytes:
    """An RGB PNG made here, never a user's photo: a grey background, a face-like oval (skin tone,
    two eyes, a mouth) on the left and dark text-like bars on a white card on the right, so face
    detection and OCR have something shaped like their work. Encoded with zlib only."""
    skin, dark, white, grey = b"\xe0\xb0\x90", b"\x20\x20\x20", b"\xf8\xf8\xf8", b"\x80\x88\x90"
    cx, cy, rx, ry = width * 0.27, height * 0.5, width * 0.13, height * 0.24
    card = (int(width * 0.52), int(height * 0.25), int(width * 0.95), int(height * 0.75))
    rows = []
    for y in range(height):
        line = bytearray()
        for x in range(width):
            dx, dy = (x - cx) / rx, (y - cy) / ry
            if dx * dx + dy * dy <= 1:
                eye = any(((x - ex) / (rx * 0.16)) ** 2 + ((y - (cy - ry * 0.25)) / (ry * 0.08)) ** 2 <= 1
                          for ex in (cx - rx * 0.4, cx + rx * 0.4))
                mouth = abs(y - (cy + ry * 0.45)) < ry * 0.05 and abs(x - cx) < rx * 0.45
                line += dark if eye or mouth else skin
            elif card[0] <= x < card[2] and card[1] <= y < card[3]:
                in_line = (y - card[1]) % 30 in range(10, 20) and (x - card[0]) % 40 < 32
                line += dark if in_line else white
            else:
                line += grey
        rows.append(b"\x00" + bytes(line))  # filter type 0 per row
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(b"".join(rows), 9)) \
        + _chunk(b"IEND", b"")


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
