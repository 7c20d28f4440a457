"""Request schemas of the fake Immich server, per major version.

- 2.x: ``immich-app/immich:server/src/dtos/system-config.dto.ts`` and ``model-config.dto.ts``
  (class-validator decorators, incl. the ``@ValidateIf`` conditions), fields per SDK 2.4.0/2.7.5.
- 3.x: ``server/src/dtos/config.dto.ts`` (Zod ``AdminConfigSchema``, 3.2) and ``system-config.dto.ts``
  (Zod ``SystemConfigSchema``, 3.0/3.1), fields per SDK 3.0.3/3.2.2.

Notable differences that a client can trip over:
- 2.x validates ``machineLearning.urls`` only while ``machineLearning.enabled`` is true, each with
  validator.js ``isURL({require_tld: false, allow_underscores: true})`` and at least one entry.
- 3.x requires at least one entry always but checks only that each is a string (no URL check).
"""

from __future__ import annotations

from typing import Any

from .immich_fake_config import (
    AUDIO_CODECS_V2,
    AUDIO_CODECS_V3,
    COLORSPACES,
    CQ_MODES,
    HLS_RESOLUTIONS,
    IMAGE_FORMATS,
    LOG_LEVELS,
    OAUTH_TOKEN_AUTH_METHODS,
    QUEUE_COMMANDS,
    RELEASE_CHANNELS,
    TONE_MAPPINGS,
    TRANSCODE_HW_ACCEL,
    TRANSCODE_POLICIES,
    VIDEO_CODECS,
    VIDEO_CONTAINERS,
    ImmichVersion,
    has_editor,
    queue_names,
)
from .immich_fake_validation import (
    MISSING,
    Arr,
    Bool,
    Context,
    Default,
    Enum,
    Node,
    Nullable,
    Num,
    Obj,
    Optional,
    Path,
    Str,
    Url,
    When,
    is_cron,
    is_hh_mm,
    is_whatwg_url,
)

# --- shared checks --------------------------------------------------------------------------------


def _cron_v2(value: Any, path: Path, ctx: Context) -> None:
    if not is_cron(value):
        ctx.fail(path, "custom", value, message="Invalid cron expression")


def _cron_v3(value: Any, path: Path, ctx: Context) -> None:
    if not is_cron(value):
        ctx.fail(path, "custom", value, message="Invalid cron expression. ")


def _hh_mm_v2(value: Any, path: Path, ctx: Context) -> None:
    if not is_hh_mm(value):
        ctx.fail(path, "custom", value, message="startTime must be in HH:mm format")


def _hh_mm_v3(value: Any, path: Path, ctx: Context) -> None:
    if not is_hh_mm(value):
        ctx.fail(
            path, "custom", value, message="Invalid input: expected string in HH:MM format, received string"
        )


def _empty_or_url(message: str):
    def check(value: Any, path: Path, ctx: Context) -> None:
        if value != "" and not is_whatwg_url(value):
            ctx.fail(path, "custom", value, message=message)

    return check


def _enabled(parent: dict, _value: Any) -> bool:
    return bool(parent.get("enabled"))


def _jobs(version: ImmichVersion, setting: Node) -> Obj:
    names = [n for n in queue_names(version) if n not in _NON_CONCURRENT]
    return Obj({name: Obj({"concurrency": setting}) for name in names})


# Queues that have no ``job.<name>.concurrency`` setting (``ConcurrentQueueName`` excludes them).
_NON_CONCURRENT = {"facialRecognition", "storageTemplateMigration", "duplicateDetection", "backupDatabase"}


# --- 2.x (class-validator) ------------------------------------------------------------------------


def _v2_config_schema(version: ImmichVersion) -> Obj:
    progressive = {"progressive": Optional(Bool())} if has_editor(version) else {}
    bool_ = Bool
    return Obj(
        {
            "backup": Obj(
                {
                    "database": Obj(
                        {
                            "enabled": bool_(),
                            "cronExpression": When(_enabled, Str(not_empty=True, checks=[_cron_v2])),
                            "keepLastAmount": Num(integer=True, positive=True),
                        }
                    )
                }
            ),
            "ffmpeg": Obj(
                {
                    "crf": Num(integer=True, min=0, max=51, coerce=True),
                    "threads": Num(integer=True, min=0, coerce=True),
                    "preset": Str(),
                    "targetVideoCodec": Enum(VIDEO_CODECS),
                    "acceptedVideoCodecs": Arr(Enum(VIDEO_CODECS), each_on_scalar=True),
                    "targetAudioCodec": Enum(AUDIO_CODECS_V2),
                    "acceptedAudioCodecs": Arr(Enum(AUDIO_CODECS_V2), each_on_scalar=True),
                    "acceptedContainers": Arr(Enum(VIDEO_CONTAINERS), each_on_scalar=True),
                    "targetResolution": Str(),
                    "maxBitrate": Str(),
                    "bframes": Num(integer=True, min=-1, max=16, coerce=True),
                    "refs": Num(integer=True, min=0, max=6, coerce=True),
                    "gopSize": Num(integer=True, min=0, coerce=True),
                    "temporalAQ": bool_(),
                    "cqMode": Enum(CQ_MODES),
                    "twoPass": bool_(),
                    "preferredHwDevice": Str(),
                    "transcode": Enum(TRANSCODE_POLICIES),
                    "accel": Enum(TRANSCODE_HW_ACCEL),
                    "accelDecode": bool_(),
                    "tonemap": Enum(TONE_MAPPINGS),
                }
            ),
            "job": _jobs(version, Num(integer=True, positive=True)),
            "library": Obj(
                {
                    "scan": Obj(
                        {
                            "enabled": bool_(),
                            "cronExpression": When(_enabled, Str(not_empty=True, checks=[_cron_v2])),
                        }
                    ),
                    "watch": Obj({"enabled": bool_()}),
                }
            ),
            "logging": Obj({"enabled": bool_(), "level": Enum(LOG_LEVELS)}),
            "machineLearning": Obj(
                {
                    "enabled": bool_(),
                    "urls": When(
                        lambda parent, _v: bool(parent.get("enabled")),
                        Arr(
                            Url(require_tld=False, allow_underscores=True),
                            min_items=1,
                            each_on_scalar=True,
                        ),
                    ),
                    "availabilityChecks": Obj(
                        {"enabled": bool_(), "timeout": Num(integer=True), "interval": Num(integer=True)}
                    ),
                    "clip": Obj({"enabled": bool_(), "modelName": Str(not_empty=True)}),
                    "duplicateDetection": Obj(
                        {"enabled": bool_(), "maxDistance": Num(min=0.001, max=0.1, coerce=True)}
                    ),
                    "facialRecognition": Obj(
                        {
                            "enabled": bool_(),
                            "modelName": Str(not_empty=True),
                            "minScore": Num(min=0.1, max=1, coerce=True),
                            "maxDistance": Num(min=0.1, max=2, coerce=True),
                            "minFaces": Num(min=1, coerce=True),
                        }
                    ),
                    "ocr": Obj(
                        {
                            "enabled": bool_(),
                            "modelName": Str(not_empty=True),
                            "maxResolution": Num(min=1, coerce=True),
                            "minDetectionScore": Num(min=0.1, max=1, coerce=True),
                            "minRecognitionScore": Num(min=0.1, max=1, coerce=True),
                        }
                    ),
                }
            ),
            "map": Obj(
                {"enabled": bool_(), "lightStyle": Url(not_empty=True), "darkStyle": Url(not_empty=True)}
            ),
            "metadata": Obj({"faces": Obj({"import": bool_()})}),
            "newVersionCheck": Obj({"enabled": bool_()}),
            "nightlyTasks": Obj(
                {
                    "startTime": Str(checks=[_hh_mm_v2]),
                    "databaseCleanup": bool_(),
                    "missingThumbnails": bool_(),
                    "clusterNewFaces": bool_(),
                    "generateMemories": bool_(),
                    "syncQuotaUsage": bool_(),
                }
            ),
            "notifications": Obj(
                {
                    "smtp": Obj(
                        {
                            "enabled": bool_(),
                            "from": When(_enabled, Str(not_empty=True)),
                            "replyTo": Str(),
                            "transport": When(
                                _enabled,
                                Obj(
                                    {
                                        "ignoreCert": bool_(),
                                        "host": Str(not_empty=True),
                                        "port": Num(min=0, max=65535),
                                        "secure": bool_(),
                                        "username": Str(),
                                        "password": Str(),
                                    }
                                ),
                            ),
                        }
                    )
                }
            ),
            "oauth": Obj(
                {
                    "autoLaunch": bool_(),
                    "autoRegister": bool_(),
                    "buttonText": Str(),
                    "clientId": When(_enabled, Str(not_empty=True)),
                    "clientSecret": When(_enabled, Str()),
                    "tokenEndpointAuthMethod": Enum(OAUTH_TOKEN_AUTH_METHODS),
                    "timeout": Optional(Num(integer=True, positive=True)),
                    "defaultStorageQuota": Optional(Num(min=0), nullable=True),
                    "enabled": bool_(),
                    "issuerUrl": When(_enabled, Str(not_empty=True)),
                    "mobileOverrideEnabled": bool_(),
                    "mobileRedirectUri": When(
                        lambda parent, _v: bool(parent.get("mobileOverrideEnabled")), Url()
                    ),
                    "scope": Str(),
                    "signingAlgorithm": Str(not_empty=True),
                    "profileSigningAlgorithm": Str(not_empty=True),
                    "storageLabelClaim": Str(),
                    "storageQuotaClaim": Str(),
                    "roleClaim": Str(),
                }
            ),
            "passwordLogin": Obj({"enabled": bool_()}),
            "reverseGeocoding": Obj({"enabled": bool_()}),
            "server": Obj(
                {
                    "externalDomain": When(
                        lambda _parent, value: value != "",
                        Url(require_tld=False, require_protocol=True, protocols=("http", "https")),
                    ),
                    "loginPageMessage": Str(),
                    "publicUsers": bool_(),
                }
            ),
            "storageTemplate": Obj(
                {"enabled": bool_(), "hashVerificationEnabled": bool_(), "template": Str(not_empty=True)}
            ),
            "templates": Obj(
                {
                    "email": Obj(
                        {"albumInviteTemplate": Str(), "welcomeTemplate": Str(), "albumUpdateTemplate": Str()}
                    )
                }
            ),
            "theme": Obj({"customCss": Str()}),
            "image": Obj(
                {
                    "thumbnail": _v2_image(progressive),
                    "preview": _v2_image(progressive),
                    "fullsize": Obj(
                        {
                            "enabled": bool_(),
                            "format": Enum(IMAGE_FORMATS),
                            "quality": Num(integer=True, min=1, max=100, coerce=True),
                            **progressive,
                        }
                    ),
                    "colorspace": Enum(COLORSPACES),
                    "extractEmbedded": bool_(),
                }
            ),
            "trash": Obj({"enabled": bool_(), "days": Num(integer=True, min=0, coerce=True)}),
            "user": Obj({"deleteDelay": Num(integer=True, min=1, coerce=True)}),
        }
    )


def _v2_image(progressive: dict) -> Obj:
    return Obj(
        {
            "format": Enum(IMAGE_FORMATS),
            "quality": Num(integer=True, min=1, max=100, coerce=True),
            "size": Num(integer=True, min=1, coerce=True),
            **progressive,
        }
    )


# --- 3.x (Zod) ------------------------------------------------------------------------------------


def _oauth_mobile_redirect(value: dict, path: Path, ctx: Context) -> None:
    uri = value.get("mobileRedirectUri")
    if value.get("mobileOverrideEnabled") and uri != "" and not is_whatwg_url(uri):
        ctx.fail(path, "custom", uri, message="Mobile redirect URI must be an empty string or a valid URL")


def _v3_config_schema(version: ImmichVersion) -> Obj:
    int_ = lambda **kw: Num(integer=True, **kw)  # noqa: E731
    cron = Str(checks=[_cron_v3])
    image = {"progressive": Default(Bool(), False)}
    oauth: dict[str, Node] = {
        "autoLaunch": Bool(),
        "autoRegister": Bool(),
        "buttonText": Str(),
        "clientId": Str(),
        "clientSecret": Str(),
        "tokenEndpointAuthMethod": Enum(OAUTH_TOKEN_AUTH_METHODS),
        "timeout": int_(min=1),
        "allowInsecureRequests": Bool(),
        "defaultStorageQuota": Nullable(int_(min=0)),
        "enabled": Bool(),
        "issuerUrl": Str(checks=[_empty_or_url("Issuer URL must be an empty string or a valid URL")]),
    }
    if version.at_least(3, 2):
        oauth["accountManagementUrl"] = Default(
            Str(checks=[_empty_or_url("Account management URL must be an empty string or a valid URL")]), ""
        )
    oauth.update(
        {
            "scope": Str(),
            "prompt": Str(),
            "endSessionEndpoint": Str(
                checks=[_empty_or_url("endSessionEndpoint must be an empty string or a valid URL")]
            ),
            "signingAlgorithm": Str(),
            "profileSigningAlgorithm": Str(),
            "storageLabelClaim": Str(),
            "storageQuotaClaim": Str(),
            "roleClaim": Str(),
            "mobileOverrideEnabled": Bool(),
            "mobileRedirectUri": Str(),
        }
    )
    return Obj(
        {
            "backup": Obj(
                {"database": Obj({"enabled": Bool(), "cronExpression": cron, "keepLastAmount": int_(min=1)})}
            ),
            "ffmpeg": Obj(
                {
                    "crf": Num(integer=True, min=0, max=51, coerce=True),
                    "threads": Num(integer=True, min=0, coerce=True),
                    "preset": Str(),
                    "targetVideoCodec": Enum(VIDEO_CODECS),
                    "acceptedVideoCodecs": Arr(Enum(VIDEO_CODECS)),
                    "targetAudioCodec": Enum(AUDIO_CODECS_V3),
                    "acceptedAudioCodecs": Arr(Enum(AUDIO_CODECS_V3)),
                    "acceptedContainers": Arr(Enum(VIDEO_CONTAINERS)),
                    "targetResolution": Str(),
                    "maxBitrate": Str(),
                    "bframes": Num(integer=True, min=-1, max=16, coerce=True),
                    "refs": Num(integer=True, min=0, max=6, coerce=True),
                    "gopSize": Num(integer=True, min=0, coerce=True),
                    "temporalAQ": Bool(),
                    "cqMode": Enum(CQ_MODES),
                    "twoPass": Bool(),
                    "preferredHwDevice": Str(),
                    "transcode": Enum(TRANSCODE_POLICIES),
                    "accel": Enum(TRANSCODE_HW_ACCEL),
                    "accelDecode": Bool(),
                    "tonemap": Enum(TONE_MAPPINGS),
                    "realtime": Obj(
                        {
                            "enabled": Bool(),
                            "videoCodecs": Arr(Enum(VIDEO_CODECS)),
                            "resolutions": Arr(Enum(HLS_RESOLUTIONS)),
                        }
                    ),
                }
            ),
            "integrityChecks": Obj(
                {
                    "missingFiles": Obj({"enabled": Bool(coerce_strings=False), "cronExpression": cron}),
                    "untrackedFiles": Obj({"enabled": Bool(coerce_strings=False), "cronExpression": cron}),
                    "checksumFiles": Obj(
                        {
                            "enabled": Bool(coerce_strings=False),
                            "cronExpression": cron,
                            "timeLimit": int_(min=0),
                            "percentageLimit": Num(min=0, max=1),
                        }
                    ),
                }
            ),
            "job": _jobs(version, int_(min=1)),
            "logging": Obj({"enabled": Bool(), "level": Enum(LOG_LEVELS)}),
            "machineLearning": Obj(
                {
                    "enabled": Bool(),
                    "urls": Arr(Str(), min_items=1),
                    "availabilityChecks": Obj({"enabled": Bool(), "timeout": int_(), "interval": int_()}),
                    "clip": Obj({"enabled": Bool(coerce_strings=False), "modelName": Str()}),
                    "duplicateDetection": Obj(
                        {"enabled": Bool(coerce_strings=False), "maxDistance": Num(min=0.001, max=0.1)}
                    ),
                    "facialRecognition": Obj(
                        {
                            "enabled": Bool(coerce_strings=False),
                            "modelName": Str(),
                            "minScore": Num(min=0.1, max=1),
                            "maxDistance": Num(min=0.1, max=2),
                            "minFaces": int_(min=1),
                        }
                    ),
                    "ocr": Obj(
                        {
                            "enabled": Bool(coerce_strings=False),
                            "modelName": Str(),
                            "maxResolution": int_(min=1),
                            "minDetectionScore": Num(min=0.1, max=1),
                            "minRecognitionScore": Num(min=0.1, max=1),
                        }
                    ),
                }
            ),
            "map": Obj({"enabled": Bool(), "lightStyle": Url(), "darkStyle": Url()}),
            "reverseGeocoding": Obj({"enabled": Bool()}),
            "metadata": Obj({"faces": Obj({"import": Bool()})}),
            "oauth": Obj(oauth, refine=_oauth_mobile_redirect),
            "passwordLogin": Obj({"enabled": Bool()}),
            "storageTemplate": Obj({"enabled": Bool(), "hashVerificationEnabled": Bool(), "template": Str()}),
            "image": Obj(
                {
                    "thumbnail": Obj(
                        {
                            "format": Enum(IMAGE_FORMATS),
                            "quality": int_(min=1, max=100),
                            "size": int_(min=1),
                            **image,
                        }
                    ),
                    "preview": Obj(
                        {
                            "format": Enum(IMAGE_FORMATS),
                            "quality": int_(min=1, max=100),
                            "size": int_(min=1),
                            **image,
                        }
                    ),
                    "fullsize": Obj(
                        {
                            "enabled": Bool(),
                            "format": Enum(IMAGE_FORMATS),
                            "quality": int_(min=1, max=100),
                            **image,
                        }
                    ),
                    "colorspace": Enum(COLORSPACES),
                    "extractEmbedded": Bool(),
                }
            ),
            "newVersionCheck": Obj({"enabled": Bool(), "channel": Enum(RELEASE_CHANNELS)}),
            "nightlyTasks": Obj(
                {
                    "startTime": Str(checks=[_hh_mm_v3]),
                    "databaseCleanup": Bool(),
                    "missingThumbnails": Bool(),
                    "clusterNewFaces": Bool(),
                    "generateMemories": Bool(),
                    "syncQuotaUsage": Bool(),
                }
            ),
            "trash": Obj({"enabled": Bool(), "days": int_(min=0)}),
            "theme": Obj({"customCss": Str()}),
            "library": Obj(
                {"scan": Obj({"enabled": Bool(), "cronExpression": cron}), "watch": Obj({"enabled": Bool()})}
            ),
            "notifications": Obj(
                {
                    "smtp": Obj(
                        {
                            "enabled": Bool(),
                            "from": Str(),
                            "replyTo": Str(),
                            "transport": Obj(
                                {
                                    "ignoreCert": Bool(),
                                    "host": Str(),
                                    "port": int_(min=0, max=65535),
                                    "secure": Bool(),
                                    "username": Str(),
                                    "password": Str(),
                                }
                            ),
                        }
                    )
                }
            ),
            "templates": Obj(
                {
                    "email": Obj(
                        {"welcomeTemplate": Str(), "albumInviteTemplate": Str(), "albumUpdateTemplate": Str()}
                    )
                }
            ),
            "server": Obj(
                {
                    "externalDomain": Str(
                        checks=[_empty_or_url("External domain must be an empty string or a valid URL")]
                    ),
                    "loginPageMessage": Str(),
                    "publicUsers": Bool(),
                }
            ),
            "user": Obj({"deleteDelay": int_(min=1)}),
        }
    )


def config_schema(version: ImmichVersion) -> Obj:
    """The schema of the PUT ``/system-config`` (and 3.2 ``/admin/config``) body for ``version``."""
    return _v3_config_schema(version) if version.is_v3 else _v2_config_schema(version)


def queue_name_schema(version: ImmichVersion) -> Obj:
    """The ``{name}`` path parameter of ``PUT /jobs/{name}``."""
    return Obj({"name": Enum(queue_names(version))})


def queue_command_schema(version: ImmichVersion) -> Obj:
    """``QueueCommandDto {command, force?}``."""
    return Obj({"command": Enum(QUEUE_COMMANDS), "force": Optional(Bool())})


__all__ = ["MISSING", "config_schema", "queue_command_schema", "queue_name_schema"]
