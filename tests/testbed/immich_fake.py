"""A fake Immich server for the tests of immich-remote (stdlib only).

It serves the part of the Immich API that immich-remote uses, with Immich's semantics: ``x-api-key``
auth with per-key permissions and an admin flag, the NestJS order of checks (route -> 401 -> 403 ->
body validation 400 -> service checks such as the ``IMMICH_CONFIG_FILE`` lock), whole-object config
validation per major version (see :mod:`immich_fake_schema`), version-gated routes, job queues, and the
server's ML URL routing (see :mod:`immich_fake_ml`). Everything it receives is logged for assertions.
``GET /api-keys/me`` returns the calling key's record (any valid key, no permission needed), and
``change_config_on_read`` plays another admin saving settings while a client is between requests.

In-process::

    with FakeImmichServer("2.7.5", api_keys=[ApiKey("secret")]) as fake:
        httpx.get(fake.api_url + "/server/version")

Standalone (state under ``/_fake/``)::

    python -m tests.testbed.immich_fake --port 2283 --version 2.7.5 --api-key-file key.txt
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import re
import secrets
import signal
import string
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .immich_fake_config import (
    DEFAULT_ML_URL,
    ImmichVersion,
    default_config,
    fill_defaults,
    has_admin_config_api,
    has_queues_api,
    queue_names,
)
from .immich_fake_http import BackgroundHTTPServer
from .immich_fake_ml import MLRouter, PredictionError, PredictionResult
from .immich_fake_queues import ABSENT, JobCommand, QueueBoard, QueueCommandError
from .immich_fake_schema import config_schema, queue_command_schema, queue_name_schema
from .immich_fake_search import SearchError, SmartSearch, smart_search_schema
from .immich_fake_validation import (
    CLASS_VALIDATOR,
    MISSING,
    ZOD,
    Bool,
    Node,
    Obj,
    Optional,
    render_class_validator,
    render_zod,
    validate,
)

LOG = logging.getLogger("immich_fake")

DEFAULT_API_KEY = "immich-fake-admin-key"
REDACTED = "<redacted>"
LOCKED_MESSAGE = "Cannot update configuration while IMMICH_CONFIG_FILE is in use"
LOG_LEVEL_MESSAGE = "Logging cannot be changed while the environment variable IMMICH_LOG_LEVEL is set."
AUTHENTICATED_ONLY = "<authenticated>"
"""``Route.permission`` of a route that needs a valid key but no permission.

Immich's ``@Authenticated({ permission: false })``: any known key may call it, whatever its permissions
and whether or not its user is an admin. The angle brackets keep it apart from every real permission.
"""


def _iso_now() -> str:
    """A timestamp as Immich serialises dates (JavaScript ``toISOString()``: UTC, milliseconds, ``Z``)."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class ApiKey:
    """An API key: its secret, its permissions (``"all"`` grants everything) and its user's admin flag.

    ``id``, ``created_at`` and ``updated_at`` are what ``GET /api-keys/me`` reports besides name and
    permissions (the secret itself is never returned by Immich).
    """

    secret: str
    permissions: tuple[str, ...] = ("all",)
    admin: bool = True
    name: str = "immich-remote test key"
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    created_at: str = field(default_factory=_iso_now)
    updated_at: str | None = None

    def grants(self, permission: str) -> bool:
        return "all" in self.permissions or permission in self.permissions

    def to_response(self) -> dict:
        """``ApiKeyResponseDto`` (``mapKey`` in the server): never the secret."""
        return {
            "id": self.id,
            "name": self.name,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at or self.created_at,
            "permissions": list(self.permissions),
        }


@dataclass
class RecordedRequest:
    """One request as the fake received it (the API key header/query value is redacted)."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any
    status: int = 0
    at: float = field(default_factory=time.time)

    def to_json(self) -> dict:
        return {
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "headers": self.headers,
            "body": self.body,
            "status": self.status,
            "at": self.at,
        }


class HttpError(Exception):
    """An error response: ``payload`` is the message (str/list) or, with ``raw``, the whole body."""

    def __init__(self, status: int, payload: Any, *, raw: bool = False) -> None:
        super().__init__(f"{status}: {payload}")
        self.status, self.payload, self.raw = status, payload, raw


@dataclass(frozen=True)
class Route:
    """``permission=None`` marks a public route, :data:`AUTHENTICATED_ONLY` one that needs a valid key only."""

    method: str
    pattern: str
    handler: str
    permission: str | None = None
    admin: bool = False
    available: Callable[[ImmichVersion], bool] = lambda version: True

    def match(self, method: str, path: str) -> dict[str, str] | None:
        if method != self.method:
            return None
        regex = "^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", self.pattern) + "/?$"
        found = re.match(regex, path)
        return found.groupdict() if found else None


ROUTES = [
    Route("GET", "/api/api-keys/me", "my_api_key", AUTHENTICATED_ONLY),
    Route("GET", "/api/server/version", "version"),
    Route("GET", "/api/server/ping", "ping"),
    Route("GET", "/api/server/features", "features"),
    Route("GET", "/api/server/about", "about", "server.about"),
    Route("GET", "/api/server/statistics", "statistics", "server.statistics", True),
    Route("GET", "/api/system-config", "get_config", "systemConfig.read", True),
    Route("PUT", "/api/system-config", "put_config", "systemConfig.update", True),
    Route("GET", "/api/system-config/defaults", "get_defaults", "systemConfig.read", True),
    Route("GET", "/api/admin/config", "get_config", "adminConfig.read", True, has_admin_config_api),
    Route("PUT", "/api/admin/config", "put_config", "adminConfig.update", True, has_admin_config_api),
    Route(
        "GET", "/api/admin/config/defaults", "get_defaults", "adminConfig.read", True, has_admin_config_api
    ),
    Route("GET", "/api/queues", "get_queues", "queue.read", True, has_queues_api),
    Route("GET", "/api/queues/{name}", "get_queue", "queue.read", True, has_queues_api),
    Route("PUT", "/api/queues/{name}", "update_queue", "queue.update", True, has_queues_api),
    Route("GET", "/api/jobs", "get_jobs", "job.read", True),
    Route("PUT", "/api/jobs/{name}", "job_command", "job.create", True),
    Route("POST", "/api/search/smart", "smart_search", "asset.read"),  # see immich_fake_search
]


@dataclass
class PendingChange:
    """A config change another admin makes while a client works (see ``change_config_on_read``)."""

    reads_left: int
    changes: dict


def deep_merged(base: dict, changes: dict) -> dict:
    """``base`` with ``changes`` merged in recursively (dicts merge, anything else replaces)."""
    out = copy.deepcopy(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merged(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _correlation_id() -> str:
    return "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8))


class FakeImmichServer:
    """The fake server. Construct, ``start()`` (or use as a context manager), ``stop()``.

    Args:
        version: server version, e.g. ``"2.7.5"``, ``"3.2.2"``, ``"3.0.0-rc.1"``.
        api_keys: accepted keys; default one admin key ``DEFAULT_API_KEY`` with ``all``.
        config: initial config (missing keys are filled from the version's defaults); with
            ``locked`` it plays the ``IMMICH_CONFIG_FILE`` content.
        locked: the server runs with ``IMMICH_CONFIG_FILE`` (updates refused, ``configFile: true``).
        env_log_level: ``IMMICH_LOG_LEVEL``; when set, changing ``logging`` is refused.
        ml_url / ml_enabled: ``IMMICH_MACHINE_LEARNING_URL`` / ``IMMICH_MACHINE_LEARNING_ENABLED`` seeds.
        state_file: persist the config there (JSON) and load it on start, like a database.
        unknown_fields: ``"strip"`` (Immich's behaviour) or ``"reject"`` (stricter, for negative tests).
        predict_timeout: seconds a simulated ``/predict`` may take (Immich sets no timeout).
    """

    def __init__(
        self,
        version: str | ImmichVersion = "2.7.5",
        *,
        api_keys: Iterable[ApiKey] | None = None,
        config: dict | None = None,
        locked: bool = False,
        env_log_level: str | None = None,
        ml_url: str | None = None,
        ml_enabled: bool = True,
        host: str = "127.0.0.1",
        port: int = 0,
        state_file: str | os.PathLike | None = None,
        unknown_fields: str = "strip",
        predict_timeout: float = 30.0,
    ) -> None:
        if unknown_fields not in ("strip", "reject"):
            raise ValueError("unknown_fields must be 'strip' or 'reject'")
        self.version = ImmichVersion.parse(version)
        self.flavor = ZOD if self.version.is_v3 else CLASS_VALIDATOR
        self.locked = locked
        self.env_log_level = env_log_level
        self.unknown_fields = unknown_fields
        self.state_file = Path(state_file) if state_file else None
        self._keys = {k.secret: k for k in (api_keys if api_keys is not None else [ApiKey(DEFAULT_API_KEY)])}
        self._defaults = default_config(self.version, ml_url=ml_url, ml_enabled=ml_enabled)
        self._initial_config = (
            fill_defaults(config, self._defaults) if config else copy.deepcopy(self._defaults)
        )
        self._config = copy.deepcopy(self._initial_config)
        self._schema: Node = config_schema(self.version)
        self._lock = threading.RLock()
        self._requests: list[RecordedRequest] = []
        self._config_writes: list[dict] = []
        self._stripped: list[str] = []
        self._pending_changes: list[PendingChange] = []
        self._failures: list[list] = []  # [method, path, status, remaining]: see fail_requests
        self._delays: list[list] = []  # [method, path, seconds, remaining, arrived]: see delay_requests
        self.queues = QueueBoard(queue_names(self.version))
        self.library = {"photos": 0, "videos": 0, "usage": 0, "usagePhotos": 0, "usageVideos": 0}
        self.ml = MLRouter(predict_timeout=predict_timeout)
        self.search = SmartSearch(self.ml)
        self._http = BackgroundHTTPServer(_make_handler(self), host, port)

    # --- lifecycle --------------------------------------------------------------------------------

    def start(self) -> FakeImmichServer:
        """Load the state file (if any), start the ML checks and listen."""
        if self.state_file and self.state_file.exists():
            saved = json.loads(self.state_file.read_text())
            if isinstance(saved.get("config"), dict):
                # Like the real server after an upgrade: stored values win, new fields get their defaults.
                self._config = fill_defaults(saved["config"], self._defaults)
        self.ml.setup(self._config["machineLearning"])
        self._http.start()
        LOG.info("fake Immich %s listening on %s", self.version, self.url)
        return self

    def stop(self) -> None:
        """Stop listening (open connections are closed) and stop the ML checks."""
        self._http.stop()
        self.ml.teardown()

    def __enter__(self) -> FakeImmichServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._http.port

    @property
    def url(self) -> str:
        """``http://host:port`` (what a user types as the server URL)."""
        host = self._http.host if self._http.host not in ("0.0.0.0", "") else "127.0.0.1"
        return f"http://{host}:{self.port}"

    @property
    def api_url(self) -> str:
        return self.url + "/api"

    # --- test hooks -------------------------------------------------------------------------------

    @property
    def config(self) -> dict:
        """A copy of the current config (what ``GET /system-config`` returns)."""
        with self._lock:
            return copy.deepcopy(self._config)

    @property
    def defaults(self) -> dict:
        return copy.deepcopy(self._defaults)

    def set_config(self, config: dict) -> None:
        """Replace the config without validation or lock (like an edited config file plus restart)."""
        with self._lock:
            self._config = fill_defaults(copy.deepcopy(config), self._defaults)
            self._persist()
            self.ml.setup(self._config["machineLearning"])

    def fail_requests(self, method: str, path: str, *, status: int = 500, count: int = 1) -> None:
        """Play a server that breaks mid-run: the next ``count`` requests ``method path`` answer ``status``
        with Immich's error body for it (e.g. 500 "Internal server error") instead of being served."""
        with self._lock:
            self._failures.append([method.upper(), path, status, count])

    def delay_requests(self, method: str, path: str, *, seconds: float, count: int = 1) -> threading.Event:
        """Play a slow server: the next ``count`` requests ``method path`` are served (or fail, see
        ``fail_requests``) only after ``seconds``, whether or not the client still waits. The event
        returned is set when the first of them arrives (a test can act while it is held)."""
        arrived = threading.Event()
        with self._lock:
            self._delays.append([method.upper(), path, seconds, count, arrived])
        return arrived

    def _take_delay(self, method: str, path: str) -> float:
        with self._lock:
            for delay in self._delays:
                if delay[0] == method and delay[1] == path and delay[3] > 0:
                    delay[3] -= 1
                    delay[4].set()
                    return delay[2]
        return 0.0

    def _take_failure(self, method: str, path: str) -> int | None:
        with self._lock:
            for failure in self._failures:
                if failure[0] == method and failure[1] == path and failure[3] > 0:
                    failure[3] -= 1
                    return failure[2]
        return None

    def change_config_on_read(self, changes: dict, *, read: int = 1) -> None:
        """Play another admin who saves settings while a client works (Immich has no ETag to stop that).

        The ``read``-th config GET from now (``/system-config`` or ``/admin/config``) first sees
        ``changes`` deep-merged into the stored config, as if saved in the web UI just before. With a
        client that GETs, GETs again before its PUT, then GETs to verify: ``read=2`` lands between its
        first two reads, ``read=3`` between its PUT and its verification. Each call fires once; several
        may be pending. The change is not counted in ``config_writes()`` (those are the client's).
        """
        if not isinstance(changes, dict):
            raise TypeError("changes must be an object (a partial config)")
        if read < 1:
            raise ValueError("read must be 1 or more")
        with self._lock:
            self._pending_changes.append(PendingChange(read, copy.deepcopy(changes)))

    def add_api_key(self, key: ApiKey) -> None:
        with self._lock:
            self._keys[key.secret] = key

    def requests(self, method: str | None = None, path: str | None = None) -> list[RecordedRequest]:
        """Recorded requests, optionally filtered by method and exact path (``/api/...``)."""
        with self._lock:
            return [
                r
                for r in self._requests
                if (method is None or r.method == method) and (path is None or r.path.rstrip("/") == path)
            ]

    def config_writes(self) -> list[dict]:
        """Every config the server saved through the API, in order."""
        with self._lock:
            return copy.deepcopy(self._config_writes)

    def stripped_fields(self) -> list[str]:
        """Dotted paths of unknown properties that accepted requests carried (Immich drops them silently)."""
        with self._lock:
            return list(self._stripped)

    def job_commands(self) -> list[JobCommand]:
        return self.queues.commands()

    def set_library(self, *, photos: int, videos: int = 0, photo_bytes: int = 0, video_bytes: int = 0) -> None:
        """The library size ``GET /api/server/statistics`` reports (one admin user owns it all)."""
        self.library = {"photos": photos, "videos": videos, "usage": photo_bytes + video_bytes,
                        "usagePhotos": photo_bytes, "usageVideos": video_bytes}

    def set_queue(self, name: str, *, is_paused: bool | None = None, **statistics: int) -> None:
        """Set statistics (``active=1``, ``failed=2``...) and/or the paused flag of a queue."""
        self.queues.set(name, is_paused=is_paused, **statistics)

    def predict(self, task: str = "clip", text: str = "a photo of a cat") -> PredictionResult:
        """Simulate one ML request as a job would send it; raises :class:`PredictionError`."""
        return self.ml.predict(task, text)

    def health(self) -> dict[str, bool]:
        return self.ml.health()

    def wait_for_health(self, url: str, healthy: bool = True, timeout: float = 5.0) -> None:
        """Block until ``url`` has the given health; ``TimeoutError`` after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while self.ml.health().get(url) is not healthy:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{url} did not become {'healthy' if healthy else 'unhealthy'}: {self.health()}"
                )
            time.sleep(0.01)

    def reset(self, config: bool = False) -> None:
        """Forget requests, commands, predictions and ML logs; with ``config`` restore the initial config."""
        with self._lock:
            self._requests.clear()
            self._config_writes.clear()
            self._stripped.clear()
            self._pending_changes.clear()
            self._failures.clear()
            self._delays.clear()
            self.queues.clear_commands()
            self.ml.clear_logs()
            self.search.clear_log()
            if config:
                self.set_config(self._initial_config)

    def state(self) -> dict:
        """Everything observable, JSON-ready (``GET /_fake/state``)."""
        with self._lock:
            return {
                "version": str(self.version),
                "locked": self.locked,
                "config": copy.deepcopy(self._config),
                "configWrites": copy.deepcopy(self._config_writes),
                "strippedFields": list(self._stripped),
                "pendingConfigChanges": len(self._pending_changes),
                "health": self.ml.health(),
                "mlOrder": self.ml.order(),
                "mlLog": self.ml.log(),
                "pings": self.ml.pings(),
                "predictions": self.ml.predictions(),
                "searches": self.search.searches(),
                "queues": self.queues.snapshot(),
                "jobCommands": [c.to_json() for c in self.queues.commands()],
            }

    def _persist(self) -> None:
        if not self.state_file:
            return
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.state_file.parent, prefix=".immich-fake-")
        with os.fdopen(fd, "w") as handle:
            json.dump({"version": str(self.version), "config": self._config}, handle, indent=2)
        os.replace(tmp, self.state_file)

    # --- request pipeline -------------------------------------------------------------------------

    def handle(
        self, method: str, raw_path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict, bytes]:
        """Answer one request: ``(status, headers, body)``."""
        split = urlsplit(raw_path)
        path, query = split.path, parse_qs(split.query, keep_blank_values=True)
        if path.startswith("/_fake/"):
            return self._control(method, path, body)
        lowered = {k.lower(): v for k, v in headers.items()}
        record = RecordedRequest(
            method=method,
            path=path,
            query={k: ([REDACTED] if k == "apiKey" else v) for k, v in query.items()},
            headers={k: (REDACTED if k == "x-api-key" else v) for k, v in lowered.items()},
            body=_body_for_log(body),
        )
        cid = _correlation_id()
        try:
            delay = self._take_delay(method, path)
            if delay:
                time.sleep(delay)
            injected = self._take_failure(method, path)
            if injected is not None:
                raise HttpError(injected, "Internal server error" if injected == 500 else "Injected failure")
            status, payload = self._dispatch(method, path, raw_path, query, lowered, body)
            response = payload
            extra: dict[str, str] = {}
        except HttpError as error:
            status = error.status
            response, extra = self._error_body(error, cid), {}
            if self.flavor == ZOD:
                extra["X-Correlation-ID"] = cid
        if self.flavor == CLASS_VALIDATOR:
            extra["x-immich-cid"] = cid
        record.status = status
        with self._lock:
            self._requests.append(record)
        data = json.dumps(response).encode()
        return status, {"Content-Type": "application/json; charset=utf-8", **extra}, data

    def _error_body(self, error: HttpError, cid: str) -> Any:
        if error.raw:
            return error.payload
        if self.flavor == ZOD:
            return {"message": error.payload}
        return {
            "message": error.payload,
            "error": HTTPStatus(error.status).phrase,
            "statusCode": error.status,
            "correlationId": cid,
        }

    def _validation_error(self, issues: list) -> HttpError:
        if self.flavor == ZOD:
            return HttpError(400, {"message": "Validation failed", "errors": render_zod(issues)}, raw=True)
        return HttpError(400, render_class_validator(issues))

    def _dispatch(
        self, method: str, path: str, raw_path: str, query: dict, headers: dict[str, str], body: bytes
    ) -> tuple[int, Any]:
        parsed = self._parse_body(method, headers, body)  # body-parser runs before routing
        for route in ROUTES:
            params = route.match(method, path)
            if params is not None and route.available(self.version):
                break
        else:
            raise HttpError(404, f"Cannot {method} {raw_path}")
        key = self._authenticate(route, headers, query) if route.permission is not None else None
        handler = getattr(self, f"_route_{route.handler}")
        return handler(params=params, body=parsed, key=key)

    def _parse_body(self, method: str, headers: dict[str, str], body: bytes) -> Any:
        if method in ("GET", "HEAD", "DELETE") and not body:
            return MISSING
        if "json" not in headers.get("content-type", ""):
            return {}
        text = body.decode("utf-8", "replace").strip()
        if not text:
            return {}
        if text[0] not in "{[":
            raise HttpError(400, f"Unexpected token '{text[0]}', \"{text[:20]}\" is not valid JSON")
        try:
            return json.loads(text)
        except ValueError as exc:
            raise HttpError(400, f"Unexpected token in JSON: {exc}") from None

    def _authenticate(self, route: Route, headers: dict[str, str], query: dict) -> ApiKey:
        secret = headers.get("x-api-key") or (query.get("apiKey") or [None])[0]
        if not secret:
            raise HttpError(401, "Authentication required")
        with self._lock:
            key = self._keys.get(secret)
        if key is None:
            raise HttpError(401, "Invalid API key")
        if route.admin and not key.admin:
            raise HttpError(403, "Forbidden")
        if route.permission == AUTHENTICATED_ONLY:
            return key
        if not key.grants(route.permission or "all"):
            raise HttpError(403, f"Missing required permission: {route.permission}")
        return key

    def _validate(self, schema: Node, value: Any) -> Any:
        kept, ctx = validate(
            schema, {} if value is MISSING else value, flavor=self.flavor, unknown=self.unknown_fields
        )
        if ctx.issues:
            raise self._validation_error(ctx.issues)
        if ctx.stripped:
            with self._lock:
                self._stripped.extend(ctx.stripped)
        return kept

    # --- route handlers ---------------------------------------------------------------------------

    def _route_my_api_key(self, key: ApiKey, **_: Any) -> tuple[int, Any]:
        return 200, key.to_response()

    def _route_version(self, **_: Any) -> tuple[int, Any]:
        v = self.version
        body: dict[str, Any] = {"major": v.major, "minor": v.minor, "patch": v.patch}
        if v.is_v3:  # ServerVersionResponseDto.prerelease appears in SDK 3.0; 2.x sends no such key
            body["prerelease"] = v.prerelease
        return 200, body

    def _route_ping(self, **_: Any) -> tuple[int, Any]:
        return 200, {"res": "pong"}

    def _route_about(self, **_: Any) -> tuple[int, Any]:
        tag = f"v{self.version}"
        return 200, {
            "version": tag,
            "versionUrl": f"https://github.com/immich-app/immich/releases/tag/{tag}",
            "licensed": False,
            "build": "immich-fake",
            "buildImage": tag,
            "sourceRef": tag,
            "repository": "immich-app/immich",
            "repositoryUrl": "https://github.com/immich-app/immich",
        }

    def _route_statistics(self, **_: Any) -> tuple[int, Any]:
        """``ServerStatsResponseDto``: totals and ``usageByUser`` (``UsageByUserDto``), here one admin user."""
        user = {"userId": "8c1f8d8e-4e0b-4a59-9b7e-0d4b6a1c2f3a", "userName": "Admin", "quotaSizeInBytes": None,
                **self.library}
        return 200, {**self.library, "usageByUser": [user]}

    def _route_features(self, **_: Any) -> tuple[int, Any]:
        config = self.config
        ml = config["machineLearning"]
        features = {
            "smartSearch": ml["enabled"] and ml["clip"]["enabled"],
            "facialRecognition": ml["enabled"] and ml["facialRecognition"]["enabled"],
            "duplicateDetection": ml["enabled"]
            and ml["clip"]["enabled"]
            and ml["duplicateDetection"]["enabled"],
            "ocr": ml["enabled"] and ml["ocr"]["enabled"],
            "map": config["map"]["enabled"],
            "reverseGeocoding": config["reverseGeocoding"]["enabled"],
            "importFaces": config["metadata"]["faces"]["import"],
            "sidecar": True,
            "search": True,
            "trash": config["trash"]["enabled"],
            "oauth": config["oauth"]["enabled"],
            "oauthAutoLaunch": config["oauth"]["autoLaunch"],
            "passwordLogin": config["passwordLogin"]["enabled"],
            "configFile": self.locked,
            "email": config["notifications"]["smtp"]["enabled"],
        }
        if self.version.is_v3:
            features["realtimeTranscoding"] = config["ffmpeg"]["realtime"]["enabled"]
        return 200, features

    def _route_get_config(self, **_: Any) -> tuple[int, Any]:
        with self._lock:
            self._apply_due_changes()
            return 200, copy.deepcopy(self._config)

    def _apply_due_changes(self) -> None:
        """Count one config read against the pending changes; apply those that are due (lock held)."""
        due = []
        for pending in self._pending_changes:
            pending.reads_left -= 1
            if pending.reads_left == 0:
                due.append(pending)
        if not due:
            return
        self._pending_changes = [p for p in self._pending_changes if p.reads_left > 0]
        for pending in due:
            self._config = fill_defaults(deep_merged(self._config, pending.changes), self._defaults)
        self._persist()
        self.ml.setup(self._config["machineLearning"])

    def _route_get_defaults(self, **_: Any) -> tuple[int, Any]:
        return 200, self.defaults

    def _route_put_config(self, body: Any, **_: Any) -> tuple[int, Any]:
        dto = self._validate(self._schema, body)
        if self.locked:
            raise HttpError(400, LOCKED_MESSAGE)
        with self._lock:
            if self.env_log_level and dto.get("logging") != self._config.get("logging"):
                raise HttpError(400, LOG_LEVEL_MESSAGE)
            self._config = fill_defaults(dto, self._defaults)
            self._config_writes.append(copy.deepcopy(self._config))
            self._persist()
            saved = copy.deepcopy(self._config)
            self.ml.setup(saved["machineLearning"])
        return 200, saved

    def _route_get_queues(self, **_: Any) -> tuple[int, Any]:
        return 200, self.queues.queues()

    def _queue_param(self, params: dict) -> str:
        return self._validate(queue_name_schema(self.version), params)["name"]

    def _route_get_queue(self, params: dict, **_: Any) -> tuple[int, Any]:
        return 200, self.queues.queue(self._queue_param(params))

    def _route_update_queue(self, params: dict, body: Any, **_: Any) -> tuple[int, Any]:
        name = self._queue_param(params)
        dto = self._validate(Obj({"isPaused": Optional(Bool())}), body)
        if dto.get("isPaused") is True:
            if name == "backgroundTask":
                raise HttpError(400, "The BackgroundTask queue cannot be paused")
            self.queues.set(name, is_paused=True)
        elif dto.get("isPaused") is False:
            self.queues.set(name, is_paused=False)
        return 200, self.queues.queue(name)

    def _route_get_jobs(self, **_: Any) -> tuple[int, Any]:
        return 200, self.queues.legacy_all()

    def _route_job_command(self, params: dict, body: Any, **_: Any) -> tuple[int, Any]:
        name = self._queue_param(params)
        dto = self._validate(queue_command_schema(self.version), body)
        raw = body if isinstance(body, dict) else {}
        try:
            return 200, self.queues.run(name, dto["command"], dto.get("force", ABSENT), raw)
        except QueueCommandError as error:
            raise HttpError(400, str(error)) from None

    def _route_smart_search(self, body: Any, **_: Any) -> tuple[int, Any]:
        dto = self._validate(smart_search_schema(), body)
        try:
            return 200, self.search.search(self.config["machineLearning"], dto)
        except SearchError as error:
            raise HttpError(error.status, error.message) from None

    # --- test control (/_fake/...) ------------------------------------------------------------------

    def _control(self, method: str, path: str, body: bytes) -> tuple[int, dict, bytes]:
        try:
            payload = json.loads(body) if body.strip() else {}
        except ValueError:
            payload = None
        status, result = 200, None
        try:
            if (method, path) == ("GET", "/_fake/state"):
                result = self.state()
            elif (method, path) == ("GET", "/_fake/requests"):
                result = [r.to_json() for r in self.requests()]
            elif (method, path) == ("POST", "/_fake/predict"):
                try:
                    result = self.predict(**(payload or {})).to_json()
                except PredictionError as error:
                    status, result = 502, {"error": str(error)}
            elif (method, path) == ("POST", "/_fake/set-queues"):
                for name, values in (payload or {}).items():
                    values = dict(values)
                    self.set_queue(name, is_paused=values.pop("isPaused", None), **values)
                result = self.queues.snapshot()
            elif (method, path) == ("POST", "/_fake/set-config"):
                self.set_config(payload)
                result = self.config
            elif (method, path) == ("POST", "/_fake/change-config-on-read"):
                payload = payload or {}
                self.change_config_on_read(payload["changes"], read=int(payload.get("read", 1)))
                result = {"pending": self.state()["pendingConfigChanges"]}
            elif (method, path) == ("POST", "/_fake/reset"):
                self.reset(config=bool((payload or {}).get("config")))
                result = {"ok": True}
            else:
                status, result = 404, {"error": f"no test-control endpoint {method} {path}"}
        except (KeyError, TypeError, ValueError) as error:
            status, result = 400, {"error": f"{type(error).__name__}: {error}"}
        return status, {"Content-Type": "application/json"}, json.dumps(result).encode()


def _body_for_log(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace")


def _make_handler(fake: FakeImmichServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = 30
        disable_nagle_algorithm = True  # headers and body go out in separate writes
        server_version = "immich-fake"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
            LOG.debug("%s - %s", self.address_string(), format % args)

        def _read_body(self) -> bytes:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                chunks = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        self.rfile.readline()
                        return b"".join(chunks)
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _serve(self) -> None:
            body = self._read_body()
            status, headers, data = fake.handle(self.command, self.path, dict(self.headers.items()), body)
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = _serve  # noqa: N815 - stdlib naming

    return Handler


# --- standalone process ---------------------------------------------------------------------------


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.testbed.immich_fake", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=2283)
    parser.add_argument("--version", default="2.7.5", help="server version, e.g. 2.7.5, 3.2.2, 3.0.0-rc.1")
    parser.add_argument("--api-key-file", required=True, help="file holding the API key")
    parser.add_argument("--permissions", default="all", help="comma-separated permissions of the key")
    parser.add_argument("--non-admin", action="store_true", help="the key's user is not an admin")
    parser.add_argument("--locked", action="store_true", help="behave as if IMMICH_CONFIG_FILE is set")
    parser.add_argument("--config", help="JSON file with the initial (or, with --locked, the file's) config")
    parser.add_argument(
        "--ml-url", default=None, help=f"IMMICH_MACHINE_LEARNING_URL (default {DEFAULT_ML_URL})"
    )
    parser.add_argument("--log-level-env", default=None, help="IMMICH_LOG_LEVEL (locks the logging settings)")
    parser.add_argument("--unknown-fields", choices=("strip", "reject"), default="strip")
    parser.add_argument("--state-file", help="persist the config here (JSON); a restart keeps it")
    parser.add_argument("--pidfile", help="write the process id here while running")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the fake until SIGTERM/SIGINT."""
    args = _parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    secret = Path(args.api_key_file).read_text().strip()
    permissions = tuple(p.strip() for p in args.permissions.split(",") if p.strip())
    key = ApiKey(secret, permissions=permissions, admin=not args.non_admin)
    config = json.loads(Path(args.config).read_text()) if args.config else None
    fake = FakeImmichServer(
        args.version,
        api_keys=[key],
        config=config,
        locked=args.locked,
        env_log_level=args.log_level_env,
        ml_url=args.ml_url,
        host=args.host,
        port=args.port,
        state_file=args.state_file,
        unknown_fields=args.unknown_fields,
    )
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    pidfile = Path(args.pidfile) if args.pidfile else None
    if pidfile:  # written (atomically) before listening, so "answers" implies "pidfile present"
        tmp = pidfile.with_name(pidfile.name + ".tmp")
        tmp.write_text(f"{os.getpid()}\n")
        os.replace(tmp, pidfile)
    try:
        fake.start()
        print(f"immich-fake {fake.version} listening on http://{args.host}:{fake.port}", flush=True)
        while not stopping.wait(0.1):
            pass
    finally:
        fake.stop()
        if pidfile:
            pidfile.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
