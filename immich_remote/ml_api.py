"""HTTP to the ML containers themselves (not to Immich): `GET /ping`, the warm-up `/predict`, and
bench's `/predict` requests (`predict_entries`, `MLEndpoint`).

Most requests are sent from a host through its SSH connection (a direct-tcpip channel, see
`Remote.tcp_exchange`), so they test exactly the bind address and port and the ML port stays
private; `ping_direct` asks from this machine (`status`'s latency)."""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

import httpx

from .bench import TASKS
from .errors import ImmichRemoteError, RemoteCommandError
from .inventory import Host
from .ssh import Remote

# A 1x1 PNG: enough for the detection models to load, with nothing to find.
_TINY_PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4//8/AAX+Av4N70a4AAAAAElFTkSuQmCC")


# --- HTTP/1.0 through a host's SSH connection ------------------------------------------------------
def http_request(remote: Remote, address: str, port: int, method: str, path: str, *, body: bytes = b"",
                 headers: dict[str, str] | None = None, timeout: float = 5.0) -> tuple[int, bytes]:
    """(status, body) of one HTTP request to http://address:port/path made *from the remote host*.

    Raises ConnectionRefusedError (nothing listens), other OSErrors (no route, timeout) and
    ValueError (the answer is not HTTP), as `Remote.tcp_exchange` and `parse_http_response` do.
    """
    host_header = f"[{address}]" if ":" in address else address
    lines = [f"{method} {path} HTTP/1.0", f"Host: {host_header}:{port}", "User-Agent: immich-remote",
             f"Content-Length: {len(body)}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    raw = remote.tcp_exchange(address, port, ("\r\n".join(lines) + "\r\n\r\n").encode() + body, timeout=timeout)
    return parse_http_response(raw)


def parse_http_response(raw: bytes) -> tuple[int, bytes]:
    """(status, body) from a raw HTTP/1.x response; ValueError if it is not one."""
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].decode(errors="replace")
    parts = status_line.split()
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise ValueError(f"not an HTTP response: {status_line[:60]!r}")
    return int(parts[1]), body


# --- warm-up -----------------------------------------------------------------------------------------
def warm_requests(config: dict[str, Any] | None) -> list[tuple[str, dict[str, Any], bool]]:
    """(task, entries, needs image) for each ML task Immich has enabled, with the models it uses."""
    ml = (config or {}).get("machineLearning") or {}
    requests = []
    clip = ml.get("clip") or {}
    if clip.get("enabled", True):
        requests.append(("clip", {"clip": {"textual": {"modelName": clip.get("modelName", "ViT-B-32__openai"),
                                                       "options": {"language": "en"}}}}, False))
    faces = ml.get("facialRecognition") or {}
    if faces.get("enabled", True):
        requests.append(("facial-recognition", {"facial-recognition": {
            "detection": {"modelName": faces.get("modelName", "buffalo_l"), "options": {"minScore": faces.get("minScore", 0.7)}},
            "recognition": {"modelName": faces.get("modelName", "buffalo_l")}}}, True))
    ocr = ml.get("ocr") or {}
    if ocr.get("enabled", False):
        model = ocr.get("modelName", "PP-OCRv5_mobile")
        requests.append(("ocr", {"ocr": {
            "detection": {"modelName": model, "options": {"minScore": ocr.get("minDetectionScore", 0.5),
                                                          "maxResolution": ocr.get("maxResolution", 736)}},
            "recognition": {"modelName": model, "options": {"minScore": ocr.get("minRecognitionScore", 0.8)}}}}, True))
    return requests

def multipart(entries: dict[str, Any], *, image: bytes | None, text: str | None) -> tuple[bytes, str]:
    boundary = "immich-remote-" + uuid.uuid4().hex
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="entries"\r\n\r\n{json.dumps(entries)}\r\n'.encode()]
    if image is not None:
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="warm.png"\r\n'
                     f"Content-Type: image/png\r\n\r\n".encode() + image + b"\r\n")
    if text is not None:
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="text"\r\n\r\n{text}\r\n'.encode())
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"

def warm_models(remote: Remote, host: Host, config: dict[str, Any] | None) -> list[str]:
    """One small /predict per enabled task so the models are downloaded and loaded now."""
    done = []
    for task, entries, needs_image in warm_requests(config):
        body, content_type = multipart(entries, image=_TINY_PNG if needs_image else None,
                                       text=None if needs_image else "immich")
        status, answer = http_request(remote, host.bind_address, host.ml_port, "POST", "/predict", body=body,
                                      headers={"Content-Type": content_type}, timeout=remote.command_timeout)
        if status != 200:
            raise RemoteCommandError(f"Host '{host.name}': warming {task} failed: HTTP {status} {answer[:120]!r}")
        done.append(task)
    return done


# --- /predict as Immich sends it (bench) ----------------------------------------------------------
BENCH_TASKS = TASKS  # bench.py's task names


def predict_entries(task: str, config: dict[str, Any] | None) -> tuple[dict[str, Any], bool]:
    """(entries, needs an image) of the request Immich's server builds for one bench task, with the
    model names and options of its config (server/src/repositories/machine-learning.repository.ts):
    clip-image = smart search's image embedding, clip-text = a search query, faces = face detection
    and recognition in one request, ocr = text detection and recognition."""
    ml = (config or {}).get("machineLearning") or {}
    clip = ml.get("clip") or {}
    faces = ml.get("facialRecognition") or {}
    ocr = ml.get("ocr") or {}
    clip_model = clip.get("modelName", "ViT-B-32__openai")
    if task == "clip-image":
        return {"clip": {"visual": {"modelName": clip_model}}}, True
    if task == "clip-text":
        return {"clip": {"textual": {"modelName": clip_model, "options": {"language": "en"}}}}, False
    if task == "faces":
        model = faces.get("modelName", "buffalo_l")
        return {"facial-recognition": {
            "detection": {"modelName": model, "options": {"minScore": faces.get("minScore", 0.7)}},
            "recognition": {"modelName": model}}}, True
    if task == "ocr":
        model = ocr.get("modelName", "PP-OCRv5_mobile")
        return {"ocr": {
            "detection": {"modelName": model, "options": {"minScore": ocr.get("minDetectionScore", 0.5),
                                                          "maxResolution": ocr.get("maxResolution", 736)}},
            "recognition": {"modelName": model, "options": {"minScore": ocr.get("minRecognitionScore", 0.8)}}}}, True
    raise ValueError(f"unknown bench task {task!r}; expected one of {', '.join(BENCH_TASKS)}")


class MLEndpoint:
    """One ML service's `POST /predict`, reached through a host's SSH connection (a direct-tcpip
    channel to address:port, as the health gate does: the port stays private) or, without `remote`,
    from this machine by URL. `predict` is safe to call from several threads at once."""

    def __init__(self, name: str, url: str, *, remote: Remote | None = None, address: str = "", port: int = 0) -> None:
        self.name, self.url, self.remote, self.address, self.port = name, url, remote, address, port
        self._http = None if remote is not None else httpx.Client(headers={"user-agent": "immich-remote"})

    @property
    def path(self) -> str:
        return f"ssh {self.remote.where} -> {self.address}:{self.port}" if self.remote is not None else "direct"

    def predict(self, body: bytes, content_type: str, *, timeout: float) -> tuple[int, bytes]:
        """(status, body) of one /predict; OSError (no route, refused, timed out) or ValueError (not HTTP)."""
        if self.remote is not None:
            return http_request(self.remote, self.address, self.port, "POST", "/predict", body=body,
                                headers={"Content-Type": content_type}, timeout=timeout)
        assert self._http is not None
        try:
            response = self._http.post(self.url.rstrip("/") + "/predict", content=body,
                                       headers={"Content-Type": content_type}, timeout=timeout)
        except httpx.TimeoutException as exc:
            raise TimeoutError(f"no answer in {timeout:g} s") from exc
        except httpx.HTTPError as exc:
            raise ConnectionError(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__) from exc
        return response.status_code, response.content

    def close(self) -> None:
        if self._http is not None:
            self._http.close()


# --- /ping ----------------------------------------------------------------------------------------
PING_TIMEOUT = 3.0


def ping_via(remote: Remote, address: str, port: int, *, timeout: float = PING_TIMEOUT) -> tuple[int, bytes]:
    """(status, body) of GET http://address:port/ping made from the remote host; raises as `http_request`."""
    return http_request(remote, address, port, "GET", "/ping", timeout=timeout)


def ping(remote: Remote, host: Host, *, timeout: float = PING_TIMEOUT) -> tuple[bool, str]:
    """(answered pong, what happened) for GET /ping on the host's bind address, from the host."""
    try:
        status, body = ping_via(remote, host.bind_address, host.ml_port, timeout=timeout)
    except (OSError, ValueError, ImmichRemoteError) as exc:
        return False, f"/ping: {getattr(exc, 'message', None) or exc or type(exc).__name__}"
    if status == 200 and body.strip() == b"pong":
        return True, "pong"
    return False, f"/ping answered HTTP {status} {body[:60]!r}"


def ping_direct(url: str, *, timeout: float = PING_TIMEOUT) -> tuple[bool, float | None, str | None]:
    """GET <url>/ping from this machine: (answered pong, latency in ms when it answered, error or None)."""
    started = time.monotonic()
    try:
        response = httpx.get(url.rstrip("/") + "/ping", timeout=timeout)
    except httpx.HTTPError as exc:
        return False, None, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    elapsed = round((time.monotonic() - started) * 1000, 1)
    if response.status_code == 200 and response.text.strip() == "pong":
        return True, elapsed, None
    return False, elapsed, f"HTTP {response.status_code}"
