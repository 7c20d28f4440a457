"""Helpers for the tests of the fake Immich server, and for the commands run on it as a user runs them."""

from __future__ import annotations

import copy
import socket
from pathlib import Path
from typing import Any

import httpx
from click.testing import CliRunner, Result

from immich_remote.cli import cli
from immich_remote.immich_api import ML_JOB_QUEUES, ImmichClient
from immich_remote.inventory import ImmichServer
from tests.testbed.immich_fake import DEFAULT_API_KEY, FakeImmichServer

AUTH = {"x-api-key": DEFAULT_API_KEY}
GPU_BOX = "hosts:\n  gpu-box:\n    address: 10.0.0.5\n"  # a host the Immich-side commands never connect to


# --- the CLI as a user runs it (click), against the fake ------------------------------------------------

def inventory(tmp_path: Path, fake: FakeImmichServer, *, immich: str = "", rest: str = GPU_BOX) -> Path:
    """``tmp_path/inventory.yml``: the fake as ``immich.url`` (5 s timeout, plus the ``immich`` lines given),
    then ``rest`` (the hosts)."""
    path = tmp_path / "inventory.yml"
    path.write_text(f"immich:\n  url: {fake.url}\n  timeout: 5s\n{immich}{rest}")
    return path


def run(fake: FakeImmichServer, tmp_path: Path, *args: str, key: str = DEFAULT_API_KEY, expect: int | None = 0,
        immich: str = "", rest: str = GPU_BOX) -> Result:
    """``immich-remote -i INVENTORY ARGS`` with the API key in IMMICH_API_KEY and the state in ``tmp_path/state``;
    the exit status must be ``expect`` (None: any)."""
    env = {"IMMICH_API_KEY": key, "NO_COLOR": "1", "COLUMNS": "200", "NO_PROXY": "*",
           "IMMICH_REMOTE_STATE_DIR": str(tmp_path / "state")}
    path = inventory(tmp_path, fake, immich=immich, rest=rest)
    result = CliRunner().invoke(cli, ["-i", str(path), *args], env=env, catch_exceptions=False)
    if expect is not None:
        assert result.exit_code == expect, f"exit {result.exit_code}, expected {expect}:\n{result.output}"
    return result


def writes(fake: FakeImmichServer) -> list[tuple[str, str, object]]:
    """Every request that was not a GET, as (method, path, body)."""
    return [(r.method, r.path, r.body) for r in fake.requests() if r.method != "GET"]


def paused(fake: FakeImmichServer) -> dict[str, bool]:
    """isPaused of each ML queue, from the fake's own state."""
    return {name: q["isPaused"] for name, q in fake.queues.snapshot().items() if name in ML_JOB_QUEUES}


def closed_port() -> int:
    """A local port nothing listens on: connections are refused at once, like a host that is down."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- the fake's HTTP API ------------------------------------------------------------------------------------


def client(fake: FakeImmichServer) -> httpx.Client:
    """An httpx client on the fake's ``/api`` base (plain HTTP on 127.0.0.1: no proxies, no TLS setup)."""
    return httpx.Client(base_url=fake.api_url, timeout=5.0, trust_env=False, verify=False)


def immich_client(fake: FakeImmichServer, api_key: str = DEFAULT_API_KEY) -> ImmichClient:
    """immich-remote's own :class:`ImmichClient` on the fake (the key given directly, as if resolved)."""
    server = ImmichServer(
        url=fake.url,
        api_key_env="IMMICH_API_KEY",
        api_key_file=None,
        api_key_command=None,
        local_ml_url="http://immich-machine-learning:3003",
        fallback="keep-local",
        timeout=5.0,
        verify_tls=False,
    )
    return ImmichClient(server, api_key=api_key)


def merged(base: dict, changes: dict) -> dict:
    """``base`` with ``changes`` deep-merged in (``base`` untouched)."""
    out = copy.deepcopy(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def without(config: dict, dotted: str) -> dict:
    """A copy of ``config`` with the field at ``a.b.c`` removed."""
    out = copy.deepcopy(config)
    *parents, last = dotted.split(".")
    node = out
    for part in parents:
        node = node[part]
    del node[last]
    return out


def with_value(config: dict, dotted: str, value: Any) -> dict:
    """A copy of ``config`` with the field at ``a.b.c`` set to ``value``."""
    out = copy.deepcopy(config)
    *parents, last = dotted.split(".")
    node = out
    for part in parents:
        node = node[part]
    node[last] = value
    return out


def distinctive_changes(major: int) -> dict:
    """A valid, non-default value in every section (secrets included), for round-trip checks."""
    changes: dict[str, Any] = {
        "backup": {"database": {"enabled": False, "cronExpression": "17 4 * * *", "keepLastAmount": 9}},
        "ffmpeg": {
            "crf": 31,
            "threads": 6,
            "preset": "slow",
            "targetVideoCodec": "hevc",
            "acceptedVideoCodecs": ["h264", "hevc"],
            "acceptedAudioCodecs": ["aac"],
            "targetResolution": "1080",
            "maxBitrate": "4500k",
            "accel": "nvenc",
            "preferredHwDevice": "/dev/dri/renderD129",
            "twoPass": True,
        },
        "job": {
            "smartSearch": {"concurrency": 7},
            "faceDetection": {"concurrency": 3},
            "ocr": {"concurrency": 4},
        },
        "library": {"scan": {"cronExpression": "5 3 * * 1"}, "watch": {"enabled": True}},
        "logging": {"level": "verbose"},
        "machineLearning": {
            "urls": ["http://gpu-box.lan:3003", "http://immich-machine-learning:3003"],
            "availabilityChecks": {"enabled": True, "interval": 61000, "timeout": 1234},
            "clip": {"modelName": "ViT-L-14__openai"},
            "duplicateDetection": {"maxDistance": 0.03},
            "facialRecognition": {
                "modelName": "antelopev2",
                "minScore": 0.65,
                "maxDistance": 0.55,
                "minFaces": 5,
            },
            "ocr": {
                "modelName": "PP-OCRv5_server",
                "minDetectionScore": 0.45,
                "minRecognitionScore": 0.85,
                "maxResolution": 1024,
            },
        },
        "map": {
            "lightStyle": "https://maps.example.org/light.json",
            "darkStyle": "https://maps.example.org/d.json",
        },
        "metadata": {"faces": {"import": True}},
        "newVersionCheck": {"enabled": False},
        "nightlyTasks": {"startTime": "03:17", "generateMemories": False},
        "notifications": {
            "smtp": {
                "enabled": True,
                "from": "Immich <immich@example.org>",
                "replyTo": "admin@example.org",
                "transport": {
                    "host": "smtp.example.org",
                    "port": 2525,
                    "secure": True,
                    "username": "mailer",
                    "password": "smtp-s3cr3t-\u2713",
                },
            }
        },
        "oauth": {
            "enabled": True,
            "clientId": "immich-client",
            "clientSecret": "oauth-secret-\u03a9",
            "issuerUrl": "https://id.example.org/realms/home",
            "buttonText": "Sign in with Home ID",
            "defaultStorageQuota": 50,
            "timeout": 45000,
        },
        "passwordLogin": {"enabled": False},
        "reverseGeocoding": {"enabled": False},
        "server": {"externalDomain": "https://photos.example.org", "loginPageMessage": "Hello \u2713"},
        "storageTemplate": {"enabled": True, "template": "{{y}}/{{MM}}/{{filename}}"},
        "templates": {"email": {"welcomeTemplate": "<p>Welcome {{name}}</p>"}},
        "theme": {"customCss": "body { color: #123456; }"},
        "trash": {"days": 45},
        "user": {"deleteDelay": 3},
        "image": {"preview": {"size": 2160, "quality": 90}, "colorspace": "srgb"},
    }
    if major >= 3:
        changes["integrityChecks"] = {"checksumFiles": {"timeLimit": 1234567, "percentageLimit": 0.25}}
        changes["ffmpeg"]["realtime"] = {"enabled": True, "resolutions": [720]}
        changes["newVersionCheck"]["channel"] = "releaseCandidate"
        changes["oauth"].update({"prompt": "select_account", "allowInsecureRequests": True})
    return changes
