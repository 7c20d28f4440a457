"""The Immich server's HTTP API, as far as immich-remote uses it (reference/immich.md sections 7-9).

Only this module talks to the Immich server. Config updates follow the one safe pattern: GET the
whole `AdminConfigDto`, change `machineLearning.urls`, PUT the whole object back, GET again and
verify. Nothing else in the config is touched, and the API key is never logged or printed.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from .errors import ConfigLocked, ImmichAPIError, ImmichPermissionError, InputError
from .inventory import ImmichServer
from .versions import ImmichVersion

LOCKED_MESSAGE = "IMMICH_CONFIG_FILE"
ML_QUEUES = ("smartSearch", "faceDetection", "ocr")


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

    # --- config -----------------------------------------------------------------------------------
    @property
    def endpoint(self) -> ConfigEndpoint:
        return config_endpoint(self.version())

    def get_config(self) -> dict[str, Any]:
        ep = self.endpoint
        return self._expect_ok(self._request("GET", ep.path, permission=ep.read_permission),
                               "Reading Immich's system config")

    def check_update_permission(self) -> None:
        """Prove the key may update the config without changing anything.

        Immich checks permissions before it validates the body, so an empty PUT answers 403 when the
        permission is missing and 400 (validation) when it is there; the config stays as it was.
        """
        ep = self.endpoint
        response = self._request("PUT", ep.path, json_body={}, permission=ep.update_permission)
        if response.status_code < 400:
            raise ImmichAPIError(f"PUT {ep.path} with an empty body was accepted; refusing to go on with a "
                                 "server that does not validate its config.")

    def put_config(self, config: dict[str, Any]) -> dict[str, Any]:
        ep = self.endpoint
        response = self._request("PUT", ep.path, json_body=config, permission=ep.update_permission)
        if response.status_code == 400 and LOCKED_MESSAGE in _error_message(response):
            raise ConfigLocked(
                "Immich's settings are managed by a config file (IMMICH_CONFIG_FILE); the API cannot change them.",
                status=400)
        return self._expect_ok(response, f"Saving Immich's system config (PUT {ep.path})")

    def set_ml_urls(self, urls: Sequence[str]) -> tuple[dict[str, Any], dict[str, Any]]:
        """GET -> replace machineLearning.urls -> PUT the whole object -> GET and verify.

        Returns (config before, config after). Raises if the server stored anything else than asked.
        """
        before = self.get_config()
        wanted = with_ml_urls(before, urls)
        self.put_config(wanted)
        after = self.get_config()
        if after.get("machineLearning", {}).get("urls") != list(urls):
            raise ImmichAPIError(f"After saving, Immich reports machineLearning.urls = "
                                 f"{after.get('machineLearning', {}).get('urls')!r}, not {list(urls)!r}.")
        changed = [k for k in sorted(set(before) | set(after)) if k != "machineLearning" and before.get(k) != after.get(k)]
        ml_changed = [k for k in after.get("machineLearning", {})
                      if k != "urls" and after["machineLearning"].get(k) != before.get("machineLearning", {}).get(k)]
        if changed or ml_changed:
            raise ImmichAPIError("After saving the ML URLs, other settings differ from what was read: "
                                 f"{', '.join(changed + ['machineLearning.' + k for k in ml_changed])}.")
        return before, after

    def config_locked(self) -> bool:
        """`GET /api/server/features` reports `configFile: true` when IMMICH_CONFIG_FILE is in use."""
        return bool(self.features().get("configFile"))

    # --- jobs -------------------------------------------------------------------------------------
    def queues(self) -> dict[str, dict[str, Any]]:
        """Queue statistics keyed by name: `/api/queues` on 2.4+, the legacy `/api/jobs` before."""
        if self.version().has_queues_api:
            data = self._expect_ok(self._request("GET", "/api/queues", permission="queue.read"), "Reading queues")
            return {q["name"]: {"statistics": q.get("statistics", {}), "isPaused": q.get("isPaused", False)}
                    for q in data}
        data = self._expect_ok(self._request("GET", "/api/jobs", permission="job.read"), "Reading job queues")
        return {name: {"statistics": q.get("jobCounts", {}), "isPaused": q.get("queueStatus", {}).get("isPaused")}
                for name, q in data.items()}

    def start_missing(self, queue: str) -> dict[str, Any]:
        """Queue the assets a job has not processed yet (the UI's "Missing"): `force: false`, always.

        `force: true` on faceDetection deletes every detected face and the people built on them;
        this client never sends it.
        """
        if queue not in ML_QUEUES:
            raise InputError(f"'{queue}' is not an ML queue; expected one of {', '.join(ML_QUEUES)}.")
        body = {"command": "start", "force": False}
        return self._expect_ok(self._request("PUT", f"/api/jobs/{queue}", json_body=body, permission="job.create"),
                               f"Starting missing {queue} jobs")


def with_ml_urls(config: dict[str, Any], urls: Sequence[str]) -> dict[str, Any]:
    """A deep copy of the config with only `machineLearning.urls` replaced (key order kept)."""
    if not isinstance(config.get("machineLearning"), dict):
        raise ImmichAPIError("Immich's config has no machineLearning section; is this an Immich server >= 1.122?")
    result = copy.deepcopy(config)
    result["machineLearning"]["urls"] = list(urls)
    return result


def config_file_snippet(config: dict[str, Any], urls: Sequence[str]) -> str:
    """The JSON a user with IMMICH_CONFIG_FILE puts into that file's machineLearning section."""
    ml = copy.deepcopy(config.get("machineLearning") or {})
    ml["urls"] = list(urls)
    return json.dumps({"machineLearning": ml}, indent=2)


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
