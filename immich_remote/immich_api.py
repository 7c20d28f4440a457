"""The Immich server's HTTP API, as far as immich-remote uses it (reference/immich.md sections 7-9).

Only this module talks to the Immich server. Config updates follow the one safe pattern: GET the
whole `AdminConfigDto`, change `machineLearning.urls`, GET again right before the PUT (Immich has no
ETag, so this narrows the window in which someone else's change could be overwritten), PUT the whole
object back, GET again and verify. Nothing else in the config is touched, and the API key is never
logged or printed. What the key may do is read from `GET /api/api-keys/me`, never probed with a write.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from .errors import ConfigLocked, ImmichAPIError, ImmichPermissionError, InputError
from .immich_config import verify_saved, with_ml_urls
from .inventory import ImmichServer
from .versions import ImmichVersion

LOCKED_MESSAGE = "IMMICH_CONFIG_FILE"
ML_QUEUES = ("smartSearch", "faceDetection", "ocr")  # what `deploy --run-missing` starts (they call /predict)
# Every queue that depends on machine learning, in the order Immich's Job Status page shows them:
# smartSearch, faceDetection and ocr call /predict; facialRecognition and duplicateDetection work on
# their results. `immich-remote jobs` shows, starts, pauses and resumes these (those the server has).
ML_JOB_QUEUES = ("smartSearch", "faceDetection", "facialRecognition", "duplicateDetection", "ocr")
SMART_SEARCH_PERMISSION = "asset.read"  # POST /api/search/smart (search.controller.ts); not admin-only
# How often set_ml_urls re-reads a config that someone else keeps changing before it gives up.
CONFIG_ATTEMPTS = 3


def resolve_api_key(server: ImmichServer) -> str:
    """Read the API key from its configured source. Errors name the source, never the key."""
    if server.api_key_file:
        path = server.api_key_file
        try:
            key = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise InputError(f"immich.api_key_file: cannot read {path} ({exc.strerror}).",
                             hint="Create it with the API key on one line and `chmod 600` it.") from None
        if not key:
            raise InputError(f"immich.api_key_file: {path} is empty.")
        return key
    if server.api_key_command:
        try:
            done = subprocess.run(server.api_key_command, shell=True, capture_output=True, text=True,  # noqa: S602
                                  timeout=30, check=False)
        except subprocess.TimeoutExpired:
            raise InputError(f"immich.api_key_command `{server.api_key_command}` did not finish in 30 s.") from None
        if done.returncode != 0 or not done.stdout.strip():
            raise InputError(f"immich.api_key_command `{server.api_key_command}` failed (exit {done.returncode}).",
                             hint="It must print the API key on standard output.")
        return done.stdout.strip().splitlines()[0].strip()
    name = server.api_key_env or "IMMICH_API_KEY"
    key = os.environ.get(name, "").strip()
    if not key:
        raise InputError(f"The environment variable {name} (immich.api_key_env) is not set.",
                         hint=f"Create an API key in Immich (Account Settings > API Keys) with the permissions "
                         f"listed in README.md, then `export {name}=...` or use immich.api_key_file.")
    return key


@dataclass(frozen=True)
class ConfigEndpoint:
    path: str
    read_permission: str
    update_permission: str


def config_endpoint(version: ImmichVersion) -> ConfigEndpoint:
    """`/admin/config` from 3.2 on; `/system-config` before (it still exists in 3.2, deprecated)."""
    if version.has_admin_config_api:
        return ConfigEndpoint("/api/admin/config", "adminConfig.read", "adminConfig.update")
    return ConfigEndpoint("/api/system-config", "systemConfig.read", "systemConfig.update")


def queue_read_permission(version: ImmichVersion) -> str:
    """What reading the job queues needs: `queue.read` for `/api/queues` (2.4+), `job.read` for `/api/jobs`."""
    return "queue.read" if version.has_queues_api else "job.read"


@dataclass(frozen=True)
class QueueRequest:
    """One queue command as it goes to the server: what `jobs` reports as sent."""

    method: str
    path: str
    body: dict[str, Any]
    permission: str

    def to_data(self) -> dict[str, Any]:
        return {"method": self.method, "path": self.path, "body": dict(self.body)}


def queue_pause_request(version: ImmichVersion, queue: str, paused: bool) -> QueueRequest:
    """Pause or resume a queue: `PUT /api/queues/{name} {isPaused}` (queue.update) from 2.4, where the
    legacy `PUT /api/jobs/{name} {command: pause|resume}` (job.create) is deprecated; the legacy one before."""
    if version.has_queues_api:
        return QueueRequest("PUT", f"/api/queues/{queue}", {"isPaused": paused}, "queue.update")
    return QueueRequest("PUT", f"/api/jobs/{queue}", {"command": "pause" if paused else "resume"}, "job.create")


def start_missing_request(queue: str) -> QueueRequest:
    """Queue the assets a job has not processed yet. Every version: the SDK has no start under `/queues`."""
    return QueueRequest("PUT", f"/api/jobs/{queue}", {"command": "start", "force": False}, "job.create")


def permission_granted(permissions: Iterable[str], needed: str) -> bool:
    """Whether a key with these permissions (from `/api-keys/me`) may do what needs `needed`.

    Immich's rule: `all` grants every permission; otherwise the exact name must be in the list.
    """
    granted = set(permissions)
    return "all" in granted or needed in granted


def missing_permissions(permissions: Iterable[str], needed: Iterable[str]) -> list[str]:
    """The permissions of `needed` the key lacks, in the order given (empty when it has them all)."""
    granted = list(permissions)
    return [p for p in needed if not permission_granted(granted, p)]


@dataclass(frozen=True)
class ApiKeyInfo:
    """The key's own record from `GET /api/api-keys/me` (Immich never returns the secret)."""

    id: str
    name: str
    permissions: tuple[str, ...]

    def grants(self, permission: str) -> bool:
        return permission_granted(self.permissions, permission)

    def missing(self, *needed: str) -> list[str]:
        return missing_permissions(self.permissions, needed)


class ImmichClient:
    """A small client: explicit timeouts, errors that say what to do."""

    def __init__(self, server: ImmichServer, *, api_key: str | None = None,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.server = server
        self._api_key = api_key
        self._version: ImmichVersion | None = None
        self._http = httpx.Client(base_url=server.url, timeout=httpx.Timeout(server.timeout),
                                  verify=server.verify_tls, transport=transport,
                                  headers={"accept": "application/json", "user-agent": "immich-remote"})

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ImmichClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def api_key(self) -> str:
        if self._api_key is None:
            self._api_key = resolve_api_key(self.server)
        return self._api_key

    # --- transport --------------------------------------------------------------------------------
    def _request(self, method: str, path: str, *, auth: bool = True, json_body: Any = None,
                 permission: str | None = None) -> httpx.Response:
        headers = {"x-api-key": self.api_key} if auth else {}
        try:
            response = self._http.request(method, path, headers=headers, json=json_body)
        except httpx.TimeoutException:
            raise ImmichAPIError(f"The Immich server at {self.server.url} did not answer {method} {path} within "
                                 f"{self.server.timeout:g} s.", hint="Check that it is up; raise immich.timeout "
                                 "if it is just slow.") from None
        except httpx.HTTPError as exc:
            raise ImmichAPIError(f"Cannot reach the Immich server at {self.server.url} ({exc}).",
                                 hint="Check immich.url in the inventory and that this machine can reach it.") from None
        if response.status_code == 401:
            raise ImmichAPIError(f"The Immich server rejected the API key from {self.server.api_key_source} "
                                 f"(401 on {method} {path}).", status=401,
                                 hint="Create a new key in Account Settings > API Keys.")
        if response.status_code == 403:
            message = _error_message(response)
            if message == "Forbidden" and permission:  # Immich's admin check (its permission check names one)
                raise ImmichPermissionError(
                    f"The API key's user is not an admin ({method} {path}: {message}).", status=403,
                    hint="Create the key (Account Settings > API Keys) while logged in as an admin user.")
            missing = permission or "an admin key"
            raise ImmichPermissionError(
                f"The API key lacks permission {missing} ({method} {path}: {message}).", status=403,
                hint=f"Edit the key in Immich (Account Settings > API Keys) and grant {missing}; the key's user "
                "must be an admin.")
        return response

    def _expect_ok(self, response: httpx.Response, what: str) -> Any:
        if response.status_code >= 400:
            raise ImmichAPIError(f"{what} failed: HTTP {response.status_code}: {_error_message(response)}.",
                                 status=response.status_code)
        try:
            return response.json()
        except ValueError:
            raise ImmichAPIError(f"{what}: the server answered something that is not JSON "
                                 f"(HTTP {response.status_code}); is immich.url the Immich server?") from None

    # --- server -----------------------------------------------------------------------------------
    def version(self, *, fresh: bool = False) -> ImmichVersion:
        """`GET /api/server/version` (public). Refuses prereleases. Cached unless `fresh`."""
        if self._version is None or fresh:
            payload = self._expect_ok(self._request("GET", "/api/server/version", auth=False),
                                      "Reading the server version")
            self._version = ImmichVersion.from_server(payload)
        return self._version

    def features(self) -> dict[str, Any]:
        return self._expect_ok(self._request("GET", "/api/server/features"), "Reading server features")

    def server_statistics(self) -> dict[str, Any]:
        """`GET /api/server/statistics` (permission `server.statistics`, admin): the library's size,
        `ServerStatsResponseDto {photos, videos, usage, usagePhotos, usageVideos, usageByUser[]}`."""
        return self._expect_ok(self._request("GET", "/api/server/statistics", permission="server.statistics"),
                               "Reading the library's size (GET /api/server/statistics)")

    def my_api_key(self) -> ApiKeyInfo:
        """`GET /api/api-keys/me`: the key's own name and permissions.

        It needs a valid key but no permission (`@Authenticated({ permission: false })`), so any key
        may ask, and it changes nothing: the read-only way to learn, before any change, whether the
        key may save the config or start jobs. A wrong key answers 401 (raised by `_request`).
        """
        data = self._expect_ok(self._request("GET", "/api/api-keys/me"), "Reading the API key's permissions")
        permissions = data.get("permissions") if isinstance(data, dict) else None
        if not isinstance(permissions, list) or not all(isinstance(p, str) for p in permissions):
            raise ImmichAPIError("GET /api/api-keys/me did not return the key's permissions; "
                                 "is immich.url the Immich server?")
        return ApiKeyInfo(str(data.get("id", "")), str(data.get("name", "")), tuple(permissions))

    # --- config -----------------------------------------------------------------------------------
    @property
    def endpoint(self) -> ConfigEndpoint:
        return config_endpoint(self.version())

    def get_config(self) -> dict[str, Any]:
        ep = self.endpoint
        return self._expect_ok(self._request("GET", ep.path, permission=ep.read_permission),
                               "Reading Immich's system config")

    def put_config(self, config: dict[str, Any]) -> dict[str, Any]:
        ep = self.endpoint
        response = self._request("PUT", ep.path, json_body=config, permission=ep.update_permission)
        if response.status_code == 400 and LOCKED_MESSAGE in _error_message(response):
            raise ConfigLocked(
                "Immich's settings are managed by a config file (IMMICH_CONFIG_FILE); the API cannot change them.",
                status=400)
        return self._expect_ok(response, f"Saving Immich's system config (PUT {ep.path})")

    def set_ml_urls(self, urls: Sequence[str] | Callable[[list[str]], Sequence[str]]
                    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """GET -> replace machineLearning.urls -> GET again -> PUT the whole object -> GET and verify.

        Immich has no ETag: a PUT replaces whatever is stored. So the config is read once more right
        before the PUT; if someone changed it since the first read, the new object is built again on
        the fresh config (up to CONFIG_ATTEMPTS times) and their change is kept. `urls` is the new
        list, or a function of the stored list (then a URL someone added meanwhile is seen too).
        When the config already holds the wanted URLs nothing is written. After the PUT the config is
        read back: our URLs must be stored and every other field must equal what was PUT, else
        someone changed the settings in between and the error says which ones to check.

        Returns (the config the PUT replaced, the config read back after it).
        """
        fixed = None if callable(urls) else list(urls)

        def wanted_for(config: dict[str, Any]) -> dict[str, Any]:
            stored = list((config.get("machineLearning") or {}).get("urls") or [])
            return with_ml_urls(config, fixed if fixed is not None else list(urls(stored)))

        current = self.get_config()
        for _ in range(CONFIG_ATTEMPTS):
            wanted = wanted_for(current)
            if wanted == current:
                return current, current  # no change is due: no write
            fresh = self.get_config()
            if fresh == current:
                break
            current = fresh
        else:
            raise ImmichAPIError(
                f"Immich's settings changed {CONFIG_ATTEMPTS} times while the ML URLs were being saved; "
                "nothing was written.",
                hint="Someone else is editing Immich's settings (Administration > Settings); "
                     "run the command again when they are done.")
        self.put_config(wanted)
        after = self.get_config()
        verify_saved(wanted, after)
        return current, after

    def config_locked(self) -> bool:
        """`GET /api/server/features` reports `configFile: true` when IMMICH_CONFIG_FILE is in use."""
        return bool(self.features().get("configFile"))

    # --- jobs -------------------------------------------------------------------------------------
    @property
    def queue_read_permission(self) -> str:
        return queue_read_permission(self.version())

    def queues(self) -> dict[str, dict[str, Any]]:
        """Queue statistics keyed by name: `/api/queues` on 2.4+, the legacy `/api/jobs` before."""
        permission = self.queue_read_permission
        if self.version().has_queues_api:
            data = self._expect_ok(self._request("GET", "/api/queues", permission=permission), "Reading queues")
            return {q["name"]: {"statistics": q.get("statistics", {}), "isPaused": q.get("isPaused", False)}
                    for q in data}
        data = self._expect_ok(self._request("GET", "/api/jobs", permission=permission), "Reading job queues")
        return {name: {"statistics": q.get("jobCounts", {}), "isPaused": q.get("queueStatus", {}).get("isPaused")}
                for name, q in data.items()}

    def queue_statistics(self) -> Any:
        """The raw answer of the queue endpoint this server's version offers: `GET /api/queues`
        (`QueueResponseDto[]`, 2.4+) or the legacy `GET /api/jobs` (`QueuesResponseLegacyDto`).
        `immich_remote.jobs.ml_queue_counts` reads either."""
        permission = self.queue_read_permission
        path = "/api/queues" if self.version().has_queues_api else "/api/jobs"
        return self._expect_ok(self._request("GET", path, permission=permission), f"Reading job queues (GET {path})")

    def start_missing(self, queue: str) -> dict[str, Any]:
        """Queue the assets a job has not processed yet (the UI's "Missing"): `force: false`, always.

        `force: true` on faceDetection deletes every detected face and the people built on them;
        this client never sends it.
        """
        if queue not in ML_JOB_QUEUES:
            raise InputError(f"'{queue}' is not an ML queue; expected one of {', '.join(ML_JOB_QUEUES)}.")
        request = start_missing_request(queue)
        return self._expect_ok(self._request(request.method, request.path, json_body=request.body,
                                             permission=request.permission),
                               f"Starting missing {queue} jobs")

    # --- search -----------------------------------------------------------------------------------
    def smart_search(self, query: str) -> dict[str, Any]:
        """`POST /api/search/smart {"query", "size": 1}` (permission `asset.read`; `SearchResponseDto`).

        The server embeds the query with CLIP through its own ML URL list (healthy URLs first), so an
        answer proves from the server's side that one of its ML URLs serves. It caches embeddings per
        query text: only a query it has not seen calls ML. Raises ImmichAPIError with status 500 when
        every ML URL failed, 400 when smart search is disabled in Immich's settings.
        """
        return self._expect_ok(self._request("POST", "/api/search/smart", json_body={"query": query, "size": 1},
                                             permission=SMART_SEARCH_PERMISSION), "Smart search (POST /api/search/smart)")

    def set_queue_paused(self, queue: str, paused: bool) -> dict[str, Any]:
        """Pause (jobs wait instead of running, and failing while no ML URL answers) or resume an ML
        queue, through the endpoint the server's version offers (`queue_pause_request`)."""
        if queue not in ML_JOB_QUEUES:
            raise InputError(f"'{queue}' is not an ML queue; expected one of {', '.join(ML_JOB_QUEUES)}.")
        request = queue_pause_request(self.version(), queue, paused)
        return self._expect_ok(self._request(request.method, request.path, json_body=request.body,
                                             permission=request.permission),
                               f"{'Pausing' if paused else 'Resuming'} the {queue} queue")


def _error_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:200] or response.reason_phrase
    if isinstance(body, dict):
        message = body.get("message") or body.get("error") or body
        if isinstance(message, list):  # Immich 1.x/2.x (class-validator): a list of sentences
            return "; ".join(str(m) for m in message)
        details = body.get("errors")  # Immich 3.x (Zod): issues with a path each
        if isinstance(details, list) and details:
            shown = [f"{'.'.join(str(p) for p in d.get('path', []))}: {d.get('message', d)}"
                     if isinstance(d, dict) else str(d) for d in details[:3]]
            more = f" (+{len(details) - 3} more)" if len(details) > 3 else ""
            return f"{message}: " + "; ".join(shown) + more
        return str(message)
    return str(body)
