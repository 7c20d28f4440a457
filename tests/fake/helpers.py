"""Helpers for the tests of the fake Immich server."""

from __future__ import annotations

import copy
from typing import Any

import httpx

from immich_remote.immich_api import ImmichClient
from immich_remote.inventory import ImmichServer
from tests.testbed.immich_fake import DEFAULT_API_KEY, FakeImmichServer

AUTH = {"x-api-key": DEFAULT_API_KEY}


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
