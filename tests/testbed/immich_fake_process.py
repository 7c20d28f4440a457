"""Run the fake Immich server as a separate process and drive it through ``/_fake/`` (stdlib only).

For tests where the fake must outlive or sit outside the pytest process (e.g. restart it to check that
``--state-file`` keeps the config). In-process tests should use :class:`FakeImmichServer` directly.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port that was free a moment ago on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class FakeImmichProcess:
    """``python -m tests.testbed.immich_fake`` in a child process.

    Args:
        workdir: where the API key file (and by default the state file) go.
        version, api_key, permissions, admin, locked: as the CLI options.
        state_file: ``--state-file`` (kept across :meth:`restart`).
        extra_args: more CLI arguments.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        version: str = "2.7.5",
        api_key: str = "immich-fake-process-key",
        permissions: str = "all",
        admin: bool = True,
        locked: bool = False,
        state_file: Path | None = None,
        port: int | None = None,
        extra_args: list[str] | None = None,
    ) -> None:
        self.workdir = Path(workdir)
        self.api_key = api_key
        self.port = port or free_port()
        self.key_file = self.workdir / "immich-api-key"
        self.pidfile = self.workdir / "immich-fake.pid"
        self.log_file = self.workdir / "immich-fake.log"
        self.state_file = state_file
        self.args = [
            "--port",
            str(self.port),
            "--version",
            version,
            "--api-key-file",
            str(self.key_file),
            "--permissions",
            permissions,
            "--pidfile",
            str(self.pidfile),
            *(["--non-admin"] if not admin else []),
            *(["--locked"] if locked else []),
            *(["--state-file", str(state_file)] if state_file else []),
            *(extra_args or []),
        ]
        self._proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return self.url + "/api"

    def start(self, timeout: float = 10.0) -> FakeImmichProcess:
        """Spawn the process and wait until ``/api/server/ping`` answers."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.key_file.write_text(self.api_key + "\n")
        with self.log_file.open("ab") as log:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "tests.testbed.immich_fake", *self.args],
                cwd=REPO_ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        deadline = time.monotonic() + timeout
        while True:
            if self._proc.poll() is not None:
                raise RuntimeError(f"fake Immich exited with {self._proc.returncode}:\n{self.output()}")
            try:
                self.request("GET", "/api/server/ping", timeout=1.0)
                return self
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise TimeoutError(
                        f"fake Immich did not answer on {self.url} within {timeout}s"
                    ) from None
                time.sleep(0.05)

    def output(self) -> str:
        """Everything the process printed so far (all runs)."""
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM and wait; returns the exit code (``None`` if it was not running)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.terminate()
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait(timeout=timeout)

    def restart(self) -> FakeImmichProcess:
        self.stop()
        return self.start()

    def __enter__(self) -> FakeImmichProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def request(
        self, method: str, path: str, body: Any = None, *, api_key: str | None = None, timeout: float = 10.0
    ) -> tuple[int, Any]:
        """One JSON request to the fake; returns ``(status, decoded body)`` (HTTP errors included)."""
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else {}
        if api_key:
            headers["x-api-key"] = api_key
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(request, timeout=timeout) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def state(self) -> dict:
        """``GET /_fake/state``."""
        return self.request("GET", "/_fake/state")[1]
