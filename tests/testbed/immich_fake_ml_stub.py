"""A stand-in for an ``immich-machine-learning`` container, for tests that need ML endpoints without Docker.

Speaks the ML service's HTTP API (``GET /`` -> ``{"message": "Immich ML"}``, ``GET /ping`` -> ``pong``
as text/plain, ``POST /predict`` multipart with ``entries`` + ``image``|``text``), records what it got,
and can be told to fail (``ping_status``/``predict_status``), to be slow (``delay``), or be stopped and
started again on the same port (a host going down and coming back).
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import threading
from http.server import BaseHTTPRequestHandler
from typing import Any

from .immich_fake_http import BackgroundHTTPServer

_EMBEDDING = json.dumps([0.125] * 8)


def parse_multipart(content_type: str, body: bytes) -> dict[str, Any]:
    """Form fields of a ``multipart/form-data`` body: str for plain fields, bytes for files."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    fields: dict[str, Any] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True) or b""
        fields[name] = payload if part.get_filename() else payload.decode()
    return fields


def fake_prediction(entries: dict, has_image: bool) -> dict:
    """A response shaped like the ML service's for the requested tasks."""
    response: dict[str, Any] = {}
    if "clip" in entries:
        response["clip"] = _EMBEDDING
    if "facial-recognition" in entries:
        response["facial-recognition"] = []
    if "ocr" in entries:
        response["ocr"] = {"text": [], "box": [], "boxScore": [], "textScore": []}
    if has_image:
        response.update({"imageHeight": 32, "imageWidth": 32})
    return response


class StubMLServer:
    """An in-process fake ML endpoint on 127.0.0.1.

    ``url`` is ``http://127.0.0.1:<port>``; ``stop()`` then ``start()`` reuses the port.
    """

    def __init__(self, name: str = "ml", host: str = "127.0.0.1", port: int = 0) -> None:
        self.name = name
        self.ping_status = 200
        self.predict_status = 200
        self.delay = 0.0
        self._lock = threading.Lock()
        self._pings = 0
        self._predictions: list[dict] = []
        self._stopped = threading.Event()
        self._http = BackgroundHTTPServer(self._handler_class(), host, port)

    @property
    def port(self) -> int:
        return self._http.port

    @property
    def url(self) -> str:
        return f"http://{self._http.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._http.running

    @property
    def pings(self) -> int:
        with self._lock:
            return self._pings

    @property
    def predictions(self) -> list[dict]:
        """``{"entries": ..., "image": bytes | None, "text": str | None}`` for every ``/predict``."""
        with self._lock:
            return list(self._predictions)

    def start(self) -> StubMLServer:
        """Listen (again); the first start picks a free port, later ones reuse it."""
        self._stopped.clear()
        self._http.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop listening: connections are refused until ``start()``."""
        self._stopped.set()
        self._http.stop(timeout)

    def __enter__(self) -> StubMLServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = 30
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
                return

            def _send(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _wait(self) -> None:
                if stub.delay:
                    stub._stopped.wait(stub.delay)

            def do_GET(self) -> None:  # noqa: N802 - stdlib naming
                if self.path == "/ping":
                    with stub._lock:
                        stub._pings += 1
                    self._wait()
                    status = stub.ping_status
                    self._send(status, b"pong" if status == 200 else b"error", "text/plain; charset=utf-8")
                elif self.path == "/":
                    self._send(200, b'{"message":"Immich ML"}', "application/json")
                else:
                    self._send(404, b'{"detail":"Not Found"}', "application/json")

            def do_POST(self) -> None:  # noqa: N802 - stdlib naming
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if self.path != "/predict":
                    self._send(404, b'{"detail":"Not Found"}', "application/json")
                    return
                self._wait()
                try:
                    fields = parse_multipart(self.headers.get("Content-Type", ""), body)
                    entries = json.loads(fields["entries"])
                except (KeyError, ValueError):
                    self._send(422, b'{"detail":"Invalid request format."}', "application/json")
                    return
                image = fields.get("image")
                with stub._lock:
                    stub._predictions.append({"entries": entries, "image": image, "text": fields.get("text")})
                status = stub.predict_status
                if status != 200:
                    self._send(status, b'{"detail":"stub failure"}', "application/json")
                    return
                payload = json.dumps(fake_prediction(entries, image is not None)).encode()
                self._send(200, payload, "application/json")

        return Handler
