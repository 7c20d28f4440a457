"""Version facts for the fake Immich server: version parsing, default configs, enums, queue names.

Sources (read for this module, see the report in tests/fake/README-like docstrings):
- npm ``@immich/sdk`` 2.4.0, 2.7.5, 3.0.3, 3.1.0, 3.2.2 ``build/fetch-client.d.ts``: the field lists of
  ``SystemConfigDto`` (2.x) / ``AdminConfigDto`` (3.2), the enums and ``QueueName``.
- ``immich-app/immich:server/src/config.ts`` (2.x, class-validator era) and
  ``server/src/dtos/config.dto.ts`` (3.2, Zod era): the default values.

Everything here returns fresh objects, so callers may mutate what they get.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass

DEFAULT_ML_URL = "http://immich-machine-learning:3003"


@dataclass(frozen=True, order=True)
class ImmichVersion:
    """A server version such as ``2.7.5`` or ``3.0.0-rc.1`` (``prerelease`` = the rc number)."""

    major: int
    minor: int
    patch: int
    prerelease: int | None = None

    @classmethod
    def parse(cls, text: str | ImmichVersion) -> ImmichVersion:
        """Parse ``"2.7.5"``, ``"v3.0.0-rc.1"`` or ``"3.0.0-rc1"``."""
        if isinstance(text, ImmichVersion):
            return text
        match = re.fullmatch(r"v?(\d+)\.(\d+)\.(\d+)(?:-[A-Za-z]*\.?(\d+))?", text.strip())
        if not match:
            raise ValueError(f"not an Immich version: {text!r}")
        major, minor, patch, pre = match.groups()
        return cls(int(major), int(minor), int(patch), int(pre) if pre is not None else None)

    def at_least(self, major: int, minor: int = 0) -> bool:
        """True when this version is ``major.minor`` or newer (prerelease ignored)."""
        return (self.major, self.minor) >= (major, minor)

    @property
    def is_v3(self) -> bool:
        """Immich 3.x switched request validation from class-validator to Zod."""
        return self.major >= 3

    def __str__(self) -> str:
        base = f"{self.major}.{self.minor}.{self.patch}"
        return base if self.prerelease is None else f"{base}-rc.{self.prerelease}"


# --- enums (SDK fetch-client.d.ts) ----------------------------------------------------------------

VIDEO_CODECS = ["h264", "hevc", "vp9", "av1"]
AUDIO_CODECS_V2 = ["mp3", "aac", "libopus", "opus", "pcm_s16le"]
AUDIO_CODECS_V3 = ["mp3", "aac", "opus", "pcm_s16le"]
VIDEO_CONTAINERS = ["mov", "mp4", "ogg", "webm"]
CQ_MODES = ["auto", "cqp", "icq"]
TRANSCODE_POLICIES = ["all", "optimal", "bitrate", "required", "disabled"]
TRANSCODE_HW_ACCEL = ["nvenc", "qsv", "vaapi", "rkmpp", "disabled"]
TONE_MAPPINGS = ["hable", "mobius", "reinhard", "disabled"]
LOG_LEVELS = ["verbose", "debug", "log", "warn", "error", "fatal"]
COLORSPACES = ["srgb", "p3"]
IMAGE_FORMATS = ["jpeg", "webp"]
OAUTH_TOKEN_AUTH_METHODS = ["client_secret_post", "client_secret_basic"]
RELEASE_CHANNELS = ["stable", "releaseCandidate"]
HLS_RESOLUTIONS = [480, 720, 1080, 1440, 2160]

QUEUE_COMMANDS = ["start", "pause", "resume", "empty", "clear-failed"]

_QUEUES_BASE = [
    "thumbnailGeneration",
    "metadataExtraction",
    "videoConversion",
    "faceDetection",
    "facialRecognition",
    "smartSearch",
    "duplicateDetection",
    "backgroundTask",
    "storageTemplateMigration",
    "migration",
    "search",
    "sidecar",
    "library",
    "notifications",
    "backupDatabase",
    "ocr",
    "workflow",
]

# Queues ``QueueService.start`` knows; any other name answers 400 "Invalid job name: <name>".
STARTABLE_QUEUES = frozenset(
    {
        "thumbnailGeneration",
        "metadataExtraction",
        "videoConversion",
        "faceDetection",
        "facialRecognition",
        "smartSearch",
        "duplicateDetection",
        "storageTemplateMigration",
        "migration",
        "sidecar",
        "library",
        "backupDatabase",
        "ocr",
    }
)


def has_editor(version: ImmichVersion) -> bool:
    """``editor`` queue/job and image ``progressive`` flags: absent in SDK 2.4.0, present in 2.7.5.

    The exact 2.x minor that added them is not confirmed; 2.5 is assumed.
    """
    return version.at_least(2, 5)


def queue_names(version: ImmichVersion) -> list[str]:
    """``QueueName`` enum values in SDK order for ``version``."""
    names = list(_QUEUES_BASE)
    if version.is_v3:
        names.append("integrityCheck")
    if has_editor(version):
        names.append("editor")
    return names


def has_queues_api(version: ImmichVersion) -> bool:
    """``/api/queues`` was added in v2.4.0."""
    return version.at_least(2, 4)


def has_admin_config_api(version: ImmichVersion) -> bool:
    """``/api/admin/config`` was added in v3.2.0."""
    return version.at_least(3, 2)


# --- default configs ------------------------------------------------------------------------------

EVERY_DAY_AT_MIDNIGHT = "0 0 * * *"
EVERY_DAY_AT_2AM = "0 02 * * *"
EVERY_DAY_AT_3AM = "0 03 * * *"


def _job_defaults(version: ImmichVersion) -> dict:
    job = {
        "thumbnailGeneration": {"concurrency": 3},
        "metadataExtraction": {"concurrency": 5},
        "videoConversion": {"concurrency": 1},
        "faceDetection": {"concurrency": 2},
        "smartSearch": {"concurrency": 2},
        "backgroundTask": {"concurrency": 5},
        "migration": {"concurrency": 5},
        "search": {"concurrency": 5},
        "sidecar": {"concurrency": 5},
        "library": {"concurrency": 5},
        "notifications": {"concurrency": 5},
        "ocr": {"concurrency": 1},
        "workflow": {"concurrency": 5},
    }
    if has_editor(version):
        job["editor"] = {"concurrency": 2}
    if version.is_v3:
        job["integrityCheck"] = {"concurrency": 1}
    return job


def _image_defaults(version: ImmichVersion) -> dict:
    progressive = {"progressive": False} if has_editor(version) else {}
    return {
        "thumbnail": {"format": "webp", "size": 250, "quality": 80, **progressive},
        "preview": {"format": "jpeg", "size": 1440, "quality": 80, **progressive},
        "colorspace": "p3",
        "extractEmbedded": False,
        "fullsize": {"enabled": False, "format": "jpeg", "quality": 80, **progressive},
    }


def _oauth_defaults(version: ImmichVersion) -> dict:
    oauth = {
        "autoLaunch": False,
        "autoRegister": True,
        "buttonText": "Login with OAuth",
        "clientId": "",
        "clientSecret": "",
        "defaultStorageQuota": None,
        "enabled": False,
        "issuerUrl": "",
    }
    if version.at_least(3, 2):
        oauth["accountManagementUrl"] = ""
    if version.is_v3:
        oauth["endSessionEndpoint"] = ""
    oauth.update({"mobileOverrideEnabled": False, "mobileRedirectUri": ""})
    if version.is_v3:
        oauth["prompt"] = ""
    oauth.update(
        {
            "scope": "openid email profile",
            "signingAlgorithm": "RS256",
            "profileSigningAlgorithm": "none",
            "storageLabelClaim": "preferred_username",
            "storageQuotaClaim": "immich_quota",
            "roleClaim": "immich_role",
            "tokenEndpointAuthMethod": "client_secret_post",
            "timeout": 30000,
        }
    )
    if version.is_v3:
        oauth["allowInsecureRequests"] = False
    return oauth


def default_config(
    version: ImmichVersion | str,
    *,
    ml_url: str | None = None,
    ml_enabled: bool = True,
    ml_ping_timeout: int | None = None,
) -> dict:
    """The server's ``defaults`` object for ``version``.

    ``ml_url``/``ml_enabled``/``ml_ping_timeout`` mirror the env vars ``IMMICH_MACHINE_LEARNING_URL``,
    ``IMMICH_MACHINE_LEARNING_ENABLED`` and (2.x only) ``IMMICH_MACHINE_LEARNING_PING_TIMEOUT``.
    """
    version = ImmichVersion.parse(version)
    ffmpeg = {
        "crf": 23,
        "threads": 0,
        "preset": "ultrafast",
        "targetVideoCodec": "h264",
        "acceptedVideoCodecs": ["h264"],
        "targetAudioCodec": "aac",
        "acceptedAudioCodecs": ["aac", "mp3", "opus"],
        "acceptedContainers": ["mov", "ogg", "webm"],
        "targetResolution": "720",
        "maxBitrate": "0",
        "bframes": -1,
        "refs": 0,
        "gopSize": 0,
        "temporalAQ": False,
        "cqMode": "auto",
        "twoPass": False,
        "preferredHwDevice": "auto",
        "transcode": "required",
        "tonemap": "hable",
        "accel": "disabled",
        # 3.2 config.dto.ts has true; the 2.x config.ts has false (3.0/3.1 not confirmed).
        "accelDecode": version.is_v3,
    }
    if version.is_v3:
        ffmpeg["realtime"] = {
            "enabled": False,
            "videoCodecs": ["h264", "hevc"],
            "resolutions": [480, 720, 1080],
        }

    config: dict = {
        "backup": {"database": {"enabled": True, "cronExpression": EVERY_DAY_AT_2AM, "keepLastAmount": 14}},
        "ffmpeg": ffmpeg,
    }
    if version.is_v3:
        config["integrityChecks"] = {
            "missingFiles": {"enabled": True, "cronExpression": EVERY_DAY_AT_3AM},
            "untrackedFiles": {"enabled": True, "cronExpression": EVERY_DAY_AT_3AM},
            "checksumFiles": {
                "enabled": True,
                "cronExpression": EVERY_DAY_AT_3AM,
                "timeLimit": 3600000,
                "percentageLimit": 1,
            },
        }
    timeout = 2000 if version.is_v3 else (ml_ping_timeout or 2000)
    config.update(
        {
            "job": _job_defaults(version),
            "logging": {"enabled": True, "level": "log"},
            "machineLearning": {
                "enabled": ml_enabled,
                "urls": [ml_url or DEFAULT_ML_URL],
                "availabilityChecks": {"enabled": True, "timeout": timeout, "interval": 30000},
                "clip": {"enabled": True, "modelName": "ViT-B-32__openai"},
                "duplicateDetection": {"enabled": True, "maxDistance": 0.01},
                "facialRecognition": {
                    "enabled": True,
                    "modelName": "buffalo_l",
                    "minScore": 0.7,
                    "maxDistance": 0.5,
                    "minFaces": 3,
                },
                "ocr": {
                    "enabled": True,
                    "modelName": "PP-OCRv5_mobile",
                    "minDetectionScore": 0.5,
                    "minRecognitionScore": 0.8,
                    "maxResolution": 736,
                },
            },
            "map": {
                "enabled": True,
                "lightStyle": "https://tiles.immich.cloud/v1/style/light.json",
                "darkStyle": "https://tiles.immich.cloud/v1/style/dark.json",
            },
            "reverseGeocoding": {"enabled": True},
            "metadata": {"faces": {"import": False}},
            "oauth": _oauth_defaults(version),
            "passwordLogin": {"enabled": True},
            "storageTemplate": {
                "enabled": False,
                "hashVerificationEnabled": True,
                "template": "{{y}}/{{y}}-{{MM}}-{{dd}}/{{filename}}",
            },
            "image": _image_defaults(version),
            "newVersionCheck": {"enabled": True, **({"channel": "stable"} if version.is_v3 else {})},
            "nightlyTasks": {
                "startTime": "00:00",
                "databaseCleanup": True,
                "generateMemories": True,
                "syncQuotaUsage": True,
                "missingThumbnails": True,
                "clusterNewFaces": True,
            },
            "trash": {"enabled": True, "days": 30},
            "theme": {"customCss": ""},
            "library": {
                "scan": {"enabled": True, "cronExpression": EVERY_DAY_AT_MIDNIGHT},
                "watch": {"enabled": False},
            },
            "server": {"externalDomain": "", "loginPageMessage": "", "publicUsers": True},
            "notifications": {
                "smtp": {
                    "enabled": False,
                    "from": "",
                    "replyTo": "",
                    "transport": {
                        "ignoreCert": False,
                        "host": "",
                        "port": 587,
                        "secure": False,
                        "username": "",
                        "password": "",
                    },
                }
            },
            "templates": {
                "email": {"welcomeTemplate": "", "albumInviteTemplate": "", "albumUpdateTemplate": ""}
            },
            "user": {"deleteDelay": 7},
        }
    )
    return config


def fill_defaults(value: dict, defaults: dict) -> dict:
    """Add the keys ``value`` lacks from ``defaults`` (recursively), keeping ``value``'s values verbatim.

    The server stores only what differs from its defaults and rebuilds the config by merging, so an
    optional field left out of a PUT (e.g. ``oauth.timeout`` on 2.x) reads back as its default.
    """
    merged = dict(value)
    for key, default in defaults.items():
        if key not in merged:
            merged[key] = copy.deepcopy(default)
        elif isinstance(merged[key], dict) and isinstance(default, dict):
            merged[key] = fill_defaults(merged[key], default)
    return merged
