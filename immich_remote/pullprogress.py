"""Docker's own pull progress, read from the engine API: the request, its HTTP answer, the byte counts. Pure.

`docker pull` prints byte counts only to a terminal (without one it prints layer states, no bytes),
so images.py asks the host's engine directly: `POST /images/create` sent through
`docker system dial-stdio` (in every Docker CLI since 18.09; it honours DOCKER_HOST and contexts as
`docker pull` does). The engine answers a stream of JSON messages, one per layer event:

    {"status":"Downloading","progressDetail":{"current":14351,"total":1073520},"id":"861a1b1041e8",...}
    {"status":"Extracting","progressDetail":{"current":32768,"total":1073520},"id":"861a1b1041e8",...}
    {"status":"Pull complete","progressDetail":{},"id":"861a1b1041e8"}
    {"errorDetail":{"message":"..."},"error":"..."}

`HttpStream` decodes the HTTP/1.1 answer (chunked or not) into those messages as bytes arrive, and
`PullState` adds them up: bytes downloaded of the layers' total, then bytes extracted.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

# Words in an engine error that mean "log in first": the CLI (which has the credentials) pulls instead.
AUTH_WORDS = ("unauthorized", "authentication required", "no basic auth credentials", "denied")


def split_reference(image: str) -> tuple[str, str]:
    """("registry/repo", "tag" or "sha256:...") of an image reference; "latest" when it names none.

    The engine pulls EVERY tag of a repository when `tag` is empty, so it is always given."""
    if "@" in image:
        name, digest = image.split("@", 1)
        return name, digest
    slash = image.rfind("/")
    colon = image.rfind(":")
    if colon > slash:
        return image[:colon], image[colon + 1:]
    return image, "latest"


def pull_request(image: str) -> bytes:
    """The HTTP request that pulls `image`, as written into `docker system dial-stdio`.

    No `Connection: close` and the caller never half-closes: the engine cancels a request whose client
    closed its side. The answer ends with the last chunk; the caller then closes the channel."""
    name, tag = split_reference(image)
    query = urlencode({"fromImage": name, "tag": tag})
    return (f"POST /images/create?{query} HTTP/1.1\r\nHost: docker\r\nUser-Agent: immich-remote\r\n"
            "Content-Length: 0\r\n\r\n").encode()


def pull_command(image: str) -> str:
    """The host command: the request, then stdin held open by `cat` until we close the channel."""
    script = f"{{ printf %s {shlex.quote(pull_request(image).decode())}; cat; }} | docker system dial-stdio"
    return "sh -c " + shlex.quote(script)


class HttpStream:
    """Incremental HTTP/1.1 response decoder: `feed` bytes as they arrive, get the JSON messages complete
    so far. `status` is the HTTP status once the head is read; `done` once the body is complete."""

    def __init__(self) -> None:
        self.status: int | None = None
        self.headers: dict[str, str] = {}
        self.done = False
        self._head = b""
        self._raw = b""  # body bytes not decoded yet (chunked framing included)
        self._body = b""  # decoded body bytes not yet split into messages
        self._chunked = False
        self._length: int | None = None
        self._received = 0

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        if self.done:
            return []
        if self.status is None:
            self._head += data
            if b"\r\n\r\n" not in self._head:
                return []
            head, _, data = self._head.partition(b"\r\n\r\n")
            self._parse_head(head.decode("latin-1"))
        if self._chunked:
            self._raw += data
            self._dechunk()
        else:
            self._body += data
            self._received += len(data)
            if self._length is not None and self._received >= self._length:
                self.done = True
        return self._messages(final=self.done)

    def finish(self) -> list[dict[str, Any]]:
        """The connection ended: whatever is left of the body."""
        messages = self._messages(final=True)
        self.done = True
        return messages

    def _parse_head(self, head: str) -> None:
        lines = head.split("\r\n")
        parts = lines[0].split(" ", 2)
        try:
            self.status = int(parts[1])
        except (IndexError, ValueError):
            self.status = 0
        for line in lines[1:]:
            key, _, value = line.partition(":")
            self.headers[key.strip().lower()] = value.strip()
        self._chunked = "chunked" in self.headers.get("transfer-encoding", "").lower()
        if "content-length" in self.headers and self.headers["content-length"].isdigit():
            self._length = int(self.headers["content-length"])

    def _dechunk(self) -> None:
        while not self.done:
            size_line, sep, rest = self._raw.partition(b"\r\n")
            if not sep:
                return
            try:
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
            except ValueError:
                size = 0
            if size == 0:
                self.done = True
                self._raw = b""
                return
            if len(rest) < size + 2:
                return
            self._body += rest[:size]
            self._raw = rest[size + 2:]

    def _messages(self, final: bool) -> list[dict[str, Any]]:
        messages = []
        *lines, self._body = self._body.split(b"\n")
        if final:
            lines.append(self._body)
            self._body = b""
        for line in lines:
            text = line.strip()
            if not text:
                continue
            try:
                value = json.loads(text)
            except ValueError:
                value = {"message": text.decode(errors="replace")}
            messages.append(value if isinstance(value, dict) else {"message": str(value)})
        return messages


@dataclass
class Layer:
    total: int | None = None
    downloaded: int = 0
    extracted: int = 0
    state: str = "waiting"  # waiting, downloading, downloaded, extracting, done, present


@dataclass
class PullState:
    """Everything the engine said about one pull so far."""

    layers: dict[str, Layer] = field(default_factory=dict)
    error: str | None = None
    finished: bool = False  # "Status: Downloaded newer image ..." / "Image is up to date ..."

    def update(self, message: dict[str, Any]) -> None:
        if message.get("error") or message.get("errorDetail"):
            detail = message.get("errorDetail") or {}
            self.error = str(detail.get("message") or message.get("error"))
            return
        if message.get("message") and not message.get("status"):  # an HTTP error body
            self.error = str(message["message"])
            return
        status = str(message.get("status", ""))
        if status.startswith("Status:"):
            self.finished = True
            return
        layer_id = message.get("id")
        if not layer_id or status.startswith("Pulling from") or status.startswith("Digest:"):
            return
        layer = self.layers.setdefault(str(layer_id), Layer())
        detail = message.get("progressDetail") or {}
        total = detail.get("total")
        if isinstance(total, int) and total > 0:
            layer.total = total
        current = detail.get("current") if isinstance(detail.get("current"), int) else None
        if status == "Already exists":
            layer.state = "present"
        elif status == "Downloading":
            layer.state, layer.downloaded = "downloading", current if current is not None else layer.downloaded
        elif status in ("Verifying Checksum", "Download complete"):
            layer.state, layer.downloaded = "downloaded", layer.total or layer.downloaded
        elif status == "Extracting":
            layer.state, layer.downloaded = "extracting", layer.total or layer.downloaded
            layer.extracted = current if current is not None else layer.extracted
        elif status == "Pull complete":
            layer.state = "done"
            layer.downloaded = layer.extracted = layer.total or layer.downloaded

    @property
    def _pulled(self) -> list[Layer]:
        return [layer for layer in self.layers.values() if layer.state != "present"]

    @property
    def total(self) -> int | None:
        """Bytes to download as far as the engine said (a layer's size comes with its first progress;
        a tiny layer may never say it); None before any size is known."""
        return sum(layer.total or 0 for layer in self._pulled) or None

    @property
    def downloaded(self) -> int:
        return sum(layer.downloaded for layer in self._pulled)

    @property
    def extracting(self) -> bool:
        """Every layer is downloaded and the engine is unpacking them."""
        layers = self._pulled
        return bool(layers) and all(layer.state in ("downloaded", "extracting", "done") for layer in layers) \
            and any(layer.state != "done" for layer in layers)

    @property
    def extracted(self) -> int:
        return sum(layer.extracted for layer in self._pulled)

    @property
    def sized(self) -> bool:
        """Every layer to pull has said its size (layers queued behind the engine's 3 parallel
        downloads say it only when they start): until then the total is a lower bound."""
        return all(layer.total is not None or layer.state != "waiting" for layer in self._pulled)

    def counts(self) -> tuple[int, int]:
        """(bytes done, bytes total or 0) of the current phase: downloading, then extracting."""
        if self.extracting:
            return self.extracted, sum(layer.total or 0 for layer in self._pulled)
        return self.downloaded, self.total or 0

    @property
    def phase(self) -> str:
        return "extracting" if self.extracting else "pulling"

    def auth_error(self) -> bool:
        return bool(self.error) and any(word in (self.error or "").lower() for word in AUTH_WORDS)
