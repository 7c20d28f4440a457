"""The server side of Immich's machine-learning routing, as the fake server runs it.

Mirrors ``immich-app/immich:server/src/repositories/machine-learning.repository.ts``:

- ``setup(config)`` (on start and after every config save) stops the old timer, forgets the health of
  URLs no longer listed and, when ML and ``availabilityChecks`` are both enabled, pings every URL now
  and then every ``interval`` ms (each ``GET new URL('/ping', url)`` aborted after ``timeout`` ms,
  healthy iff 2xx). Health changes are logged as ``Machine learning server became healthy (<url>).``
- A prediction tries the healthy URLs in configured order, then the rest in configured order (with
  checks disabled every URL counts as healthy). 2xx marks the URL healthy and returns; anything else
  marks it unhealthy and tries the next; if all fail: ``Machine learning request '<entries>' failed for
  all URLs``.

Deviations, on purpose: HTTP goes through ``http.client`` (no proxy, like Node's fetch); ``/predict`` gets
a generous timeout (Immich sets none) so a test cannot hang; check results for URLs that are no longer
configured are dropped; the interval is clamped to at least 10 ms.
"""

from __future__ import annotations

import copy
import http.client
import json
import logging
import struct
import threading
import time
import uuid
import zlib
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .immich_fake_validation import MISSING, whatwg_origin_join

LOG = logging.getLogger("immich_fake.ml")

TASKS = ("clip", "clip-textual", "facial-recognition", "ocr")
MIN_INTERVAL_S = 0.01


class PredictionError(RuntimeError):
    """Every URL failed (or ML is disabled); the message is the server's."""


@dataclass
class Attempt:
    """One try of one URL during a prediction."""

    url: str
    status: int | None = None
    error: str | None = None

    def to_json(self) -> dict:
        return {"url": self.url, "status": self.status, "error": self.error}


@dataclass
class PredictionResult:
    """The answer of the URL that served a prediction."""

    url: str
    status: int
    body: Any
    entries: dict = field(default_factory=dict)
    attempts: list[Attempt] = field(default_factory=list)

    def to_json(self) -> dict:
        return {
            "url": self.url,
            "status": self.status,
            "body": self.body,
            "entries": self.entries,
            "attempts": [a.to_json() for a in self.attempts],
        }


def tiny_png(size: int = 32) -> bytes:
    """A valid grey ``size``x``size`` PNG, built with the standard library only."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + bytes([128]) * (size * 3) for _ in range(size))
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def build_request(
    task: str, ml_config: dict, text: str = "a photo of a cat", language: Any = "en"
) -> tuple[dict, dict]:
    """The ``entries`` object and the input (``{"image": bytes}`` or ``{"text": str}``) for ``task``,
    built like the server's ``encodeImage``/``encodeText``/``detectFaces``/``ocr``. ``language`` is
    ``encodeText``'s (``MISSING``: absent, so ``JSON.stringify`` leaves ``options`` empty)."""
    if task == "clip":
        return {"clip": {"visual": {"modelName": ml_config["clip"]["modelName"]}}}, {"image": tiny_png()}
    if task == "clip-textual":
        options = {} if language is MISSING else {"language": language}
        entries = {"clip": {"textual": {"modelName": ml_config["clip"]["modelName"], "options": options}}}
        return entries, {"text": text}
    if task == "facial-recognition":
        face = ml_config["facialRecognition"]
        entries = {
            "facial-recognition": {
                "detection": {"modelName": face["modelName"], "options": {"minScore": face["minScore"]}},
                "recognition": {"modelName": face["modelName"]},
            }
        }
        return entries, {"image": tiny_png()}
    if task == "ocr":
        ocr = ml_config["ocr"]
        entries = {
            "ocr": {
                "detection": {
                    "modelName": ocr["modelName"],
                    "options": {"minScore": ocr["minDetectionScore"], "maxResolution": ocr["maxResolution"]},
                },
                "recognition": {
                    "modelName": ocr["modelName"],
                    "options": {"minScore": ocr["minRecognitionScore"]},
                },
            }
        }
        return entries, {"image": tiny_png()}
    raise ValueError(f"unknown task {task!r}; use one of {TASKS}")


def encode_multipart(entries: dict, payload: dict) -> tuple[bytes, str]:
    """A ``multipart/form-data`` body like Node's ``FormData``: ``entries`` then ``image`` (a Blob,
    filename ``blob``) or ``text``."""
    boundary = f"----formdata-fake-{uuid.uuid4().hex}"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="entries"\r\n\r\n'.encode()
        + json.dumps(entries, separators=(",", ":")).encode()
        + b"\r\n"
    ]
    if "image" in payload:
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="blob"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n".encode()
            + payload["image"]
            + b"\r\n"
        )
    else:
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="text"\r\n\r\n'.encode()
            + payload["text"].encode()
            + b"\r\n"
        )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def http_request(
    method: str, url: str, *, body: bytes | None = None, headers: dict | None = None, timeout: float
) -> tuple[int, bytes]:
    """One HTTP request without proxies; raises ``OSError``/``http.client.HTTPException`` on failure
    and ``TimeoutError`` when the whole exchange took longer than ``timeout`` seconds."""
    parts = urlsplit(url)
    conn_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    started = time.monotonic()
    conn = conn_class(parts.hostname, parts.port, timeout=timeout)
    try:
        target = parts.path or "/"
        conn.request(method, target, body=body, headers=headers or {})
        response = conn.getresponse()
        data = response.read()
    finally:
        conn.close()
    if time.monotonic() - started > timeout:
        raise TimeoutError(f"request to {url} took longer than {timeout}s")
    return response.status, data


class MLRouter:
    """Health checks and URL selection for ``machineLearning`` (one per fake server)."""

    def __init__(self, *, predict_timeout: float = 30.0) -> None:
        self.predict_timeout = predict_timeout
        self._lock = threading.RLock()
        self._config: dict | None = None
        self._healthy: dict[str, bool] = {}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []  # timers and pings, joined on teardown
        self._closed = False
        self._log: list[dict] = []
        self._pings: list[dict] = []
        self._predictions: list[dict] = []

    # --- setup / teardown -------------------------------------------------------------------------

    def setup(self, ml_config: dict) -> None:
        """Apply a (new) ``machineLearning`` config, like the server does on boot and on config update."""
        with self._lock:
            self._closed = False
            self._stop.set()  # clearInterval: the old timer ends; its in-flight pings may still land
            self._config = copy.deepcopy(ml_config)
            urls = list(self._config.get("urls") or [])
            for url in list(self._healthy):
                if url not in urls:
                    del self._healthy[url]
            checks = self._config.get("availabilityChecks") or {}
            if not self._config.get("enabled") or not checks.get("enabled"):
                return
            stop = threading.Event()
            self._stop = stop
            interval = max(float(checks.get("interval", 30000)) / 1000.0, MIN_INTERVAL_S)
            timeout = max(float(checks.get("timeout", 2000)) / 1000.0, 0.001)
            timer = threading.Thread(
                target=self._run_timer,
                args=(stop, urls, interval, timeout),
                name="immich-fake-ml-checks",
                daemon=True,
            )
            timer.start()
            self._track(timer)

    def teardown(self, join_timeout: float = 2.0, ping_grace: float = 0.1) -> None:
        """Stop the timer for good and wait for it (at most ``join_timeout`` s).

        In-flight pings get ``ping_grace`` seconds: a ping stuck in DNS resolution (the default URL's
        ``immich-machine-learning`` host) cannot be interrupted; it is a daemon thread whose late
        result is ignored once the router is closed.
        """
        with self._lock:
            self._closed = True
            self._stop.set()
            threads, self._threads = self._threads, []
        deadline = time.monotonic() + join_timeout
        grace = time.monotonic() + ping_grace
        for thread in threads:
            if thread is threading.current_thread():
                continue
            is_timer = thread.name == "immich-fake-ml-checks"
            thread.join(max(0.0, (deadline if is_timer else grace) - time.monotonic()))

    def _track(self, thread: threading.Thread) -> None:
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)

    def _run_timer(self, stop: threading.Event, urls: list[str], interval: float, timeout: float) -> None:
        while not stop.is_set():
            for url in urls:
                thread = threading.Thread(
                    target=self._check, args=(url, timeout), name="immich-fake-ml-ping", daemon=True
                )
                thread.start()
                self._track(thread)
            stop.wait(interval)

    def _check(self, url: str, timeout: float) -> None:
        target = whatwg_origin_join(url, "/ping")
        healthy, status, error = False, None, None
        if target is None:
            error = "Invalid URL"
        else:
            try:
                status, _ = http_request("GET", target, timeout=timeout)
                healthy = 200 <= status < 300
            except (OSError, http.client.HTTPException) as exc:
                error = f"{type(exc).__name__}: {exc}"
        with self._lock:
            if self._closed:
                return
            self._pings.append(
                {"url": url, "healthy": healthy, "status": status, "error": error, "at": time.time()}
            )
            if self._config is not None and url in (self._config.get("urls") or []):
                self._set_healthy(url, healthy)

    # --- health -----------------------------------------------------------------------------------

    def _set_healthy(self, url: str, healthy: bool) -> None:
        with self._lock:
            if self._healthy.get(url) is not healthy:
                self._record(
                    "log", f"Machine learning server became {'healthy' if healthy else 'unhealthy'} ({url})."
                )
            self._healthy[url] = healthy

    def _is_healthy(self, url: str) -> bool:
        checks = (self._config or {}).get("availabilityChecks") or {}
        if not checks.get("enabled"):
            return True
        return bool(self._healthy.get(url))

    def _record(self, level: str, message: str) -> None:
        self._log.append({"level": level, "message": message, "at": time.time()})
        LOG.info(message) if level == "log" else LOG.warning(message)

    def health(self) -> dict[str, bool]:
        """URL -> last known health (URLs never checked are absent)."""
        with self._lock:
            return dict(self._healthy)

    def order(self) -> list[str]:
        """The order in which a prediction would try the URLs right now."""
        with self._lock:
            urls = list((self._config or {}).get("urls") or [])
            return [u for u in urls if self._is_healthy(u)] + [u for u in urls if not self._is_healthy(u)]

    # --- prediction -------------------------------------------------------------------------------

    def predict(self, task: str = "clip", text: str = "a photo of a cat", language: Any = "en") -> PredictionResult:
        """Run one prediction through the configured URLs exactly as the server routes it."""
        with self._lock:
            config = copy.deepcopy(self._config)
        if not config or not config.get("enabled"):
            raise PredictionError("Machine learning is disabled")
        entries, payload = build_request(task, config, text, language)
        body, content_type = encode_multipart(entries, payload)
        attempts: list[Attempt] = []
        record = {"task": task, "entries": entries, "attempts": attempts, "url": None, "error": None}
        for url in self.order():
            attempt = Attempt(url)
            attempts.append(attempt)
            target = whatwg_origin_join(url, "/predict")
            try:
                if target is None:
                    raise ValueError("Invalid URL")
                status, data = http_request(
                    "POST",
                    target,
                    body=body,
                    headers={"Content-Type": content_type},
                    timeout=self.predict_timeout,
                )
                attempt.status = status
                if 200 <= status < 300:
                    self._set_healthy(url, True)
                    result = PredictionResult(url, status, _decode(data), entries, attempts)
                    record["url"] = url
                    self._store_prediction(record)
                    return result
                message = f'Machine learning request to "{url}" failed with status {status}'
            except (OSError, ValueError, http.client.HTTPException) as exc:
                attempt.error = f"{type(exc).__name__}: {exc}"
                message = f'Machine learning request to "{url}" failed: {exc}'
            with self._lock:
                self._record("warn", message)
            self._set_healthy(url, False)
        error = f"Machine learning request '{json.dumps(entries, separators=(',', ':'))}' failed for all URLs"
        record["error"] = error
        self._store_prediction(record)
        with self._lock:
            self._record("error", error)
        raise PredictionError(error)

    def _store_prediction(self, record: dict) -> None:
        with self._lock:
            stored = dict(record, attempts=[a.to_json() for a in record["attempts"]])
            self._predictions.append(stored)

    # --- logs -------------------------------------------------------------------------------------

    def log(self) -> list[dict]:
        with self._lock:
            return copy.deepcopy(self._log)

    def pings(self) -> list[dict]:
        with self._lock:
            return copy.deepcopy(self._pings)

    def predictions(self) -> list[dict]:
        with self._lock:
            return copy.deepcopy(self._predictions)

    def clear_logs(self) -> None:
        with self._lock:
            self._log.clear()
            self._pings.clear()
            self._predictions.clear()


def _decode(data: bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return data.decode("utf-8", "replace")
