"""Version-dependent behaviour: version/about/features payloads, route gating, default config shapes."""

from __future__ import annotations

import pytest

from tests.fake.helpers import AUTH, client
from tests.testbed.immich_fake import ApiKey
from tests.testbed.immich_fake_config import ImmichVersion, default_config

SECTIONS_V2 = {
    "backup",
    "ffmpeg",
    "image",
    "job",
    "library",
    "logging",
    "machineLearning",
    "map",
    "metadata",
    "newVersionCheck",
    "nightlyTasks",
    "notifications",
    "oauth",
    "passwordLogin",
    "reverseGeocoding",
    "server",
    "storageTemplate",
    "templates",
    "theme",
    "trash",
    "user",
}


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("2.7.5", {"major": 2, "minor": 7, "patch": 5}),
        ("3.0.2", {"major": 3, "minor": 0, "patch": 2, "prerelease": None}),
        ("3.0.0-rc.1", {"major": 3, "minor": 0, "patch": 0, "prerelease": 1}),
    ],
)
def test_version_payload(immich_fake_factory, version, expected):
    """SDK 2.x ``ServerVersionResponseDto`` has no ``prerelease``; 3.x has ``number | null``."""
    fake = immich_fake_factory(version)
    with client(fake) as c:
        assert c.get("/server/version").json() == expected
        assert c.get("/server/about", headers=AUTH).json()["version"] == f"v{version}"


@pytest.mark.parametrize(("version", "available"), [("2.7.5", False), ("3.1.0", False), ("3.2.2", True)])
def test_admin_config_only_from_3_2(immich_fake_factory, version, available):
    fake = immich_fake_factory(version)
    with client(fake) as c:
        for method, path in (
            ("GET", "/admin/config"),
            ("PUT", "/admin/config"),
            ("GET", "/admin/config/defaults"),
        ):
            response = c.request(method, path, headers=AUTH, json=fake.config if method == "PUT" else None)
            assert (response.status_code != 404) == available, (method, path)
        assert c.get("/system-config", headers=AUTH).status_code == 200


@pytest.mark.parametrize(("version", "available"), [("2.3.1", False), ("2.4.0", True), ("3.2.2", True)])
def test_queues_api_from_2_4(immich_fake_factory, version, available):
    fake = immich_fake_factory(version)
    with client(fake) as c:
        assert (c.get("/queues", headers=AUTH).status_code == 200) == available
        assert c.get("/jobs", headers=AUTH).status_code == 200


def test_admin_config_needs_admin_config_permission(immich_fake_factory):
    fake = immich_fake_factory("3.2.2", api_keys=[ApiKey("old", permissions=("systemConfig.read",))])
    with client(fake) as c:
        assert c.get("/system-config", headers={"x-api-key": "old"}).status_code == 200
        denied = c.get("/admin/config", headers={"x-api-key": "old"})
    assert denied.json() == {"message": "Missing required permission: adminConfig.read"}


def test_default_config_sections():
    v2 = default_config("2.7.5")
    v3 = default_config("3.2.2")
    assert set(v2) == SECTIONS_V2
    assert set(v3) == SECTIONS_V2 | {"integrityChecks"}
    for config in (v2, v3):
        ml = config["machineLearning"]
        assert ml["availabilityChecks"] == {"enabled": True, "interval": 30000, "timeout": 2000}
        assert {"clip", "duplicateDetection", "facialRecognition", "ocr"} <= set(ml)
        assert {config["job"][q]["concurrency"] for q in ("smartSearch", "faceDetection")} == {2}
        assert config["job"]["ocr"] == {"concurrency": 1}
        assert (
            "password" in config["notifications"]["smtp"]["transport"] and "clientSecret" in config["oauth"]
        )
    assert "realtime" in v3["ffmpeg"] and "realtime" not in v2["ffmpeg"]
    assert v3["newVersionCheck"] == {"enabled": True, "channel": "stable"}
    assert (
        "accountManagementUrl" in v3["oauth"]
        and "accountManagementUrl" not in default_config("3.1.0")["oauth"]
    )
    assert "editor" not in default_config("2.4.0")["job"] and "editor" in v2["job"]


def test_env_seeds_for_ml_defaults():
    config = default_config("2.7.5", ml_url="http://ml.lan:3003", ml_enabled=False)
    assert config["machineLearning"]["urls"] == ["http://ml.lan:3003"]
    assert config["machineLearning"]["enabled"] is False


@pytest.mark.parametrize("text", ["2.7.5", "v2.7.5", "3.0.0-rc.1", "3.0.0-rc1"])
def test_version_parsing(text):
    version = ImmichVersion.parse(text)
    assert version.major in (2, 3)
    with pytest.raises(ValueError):
        ImmichVersion.parse("latest")


def test_features_follow_config(immich_fake_factory):
    fake = immich_fake_factory("2.7.5")
    config = fake.config
    config["machineLearning"]["enabled"] = False
    fake.set_config(config)
    with client(fake) as c:
        features = c.get("/server/features").json()
    assert features["smartSearch"] is False and features["ocr"] is False and features["configFile"] is False
