"""Whole-object config PUT: validation per major version, the lock, and round-trip fidelity."""

from __future__ import annotations

import json

import pytest

from tests.fake.helpers import AUTH, client, distinctive_changes, merged, with_value, without
from tests.testbed.immich_fake import FakeImmichServer

VERSIONS = ["2.7.5", "3.2.2"]


@pytest.fixture(params=VERSIONS)
def fake(request, immich_fake_factory) -> FakeImmichServer:
    return immich_fake_factory(request.param)


def put(fake: FakeImmichServer, body, path: str = "/system-config"):
    with client(fake) as c:
        return c.put(path, headers=AUTH, json=body)


def errors_text(response) -> str:
    """All validation messages (v2 list of strings / v3 issue objects) as one string."""
    body = response.json()
    return json.dumps(body.get("errors", body.get("message")))


def test_get_returns_the_defaults_initially(fake):
    with client(fake) as c:
        current = c.get("/system-config", headers=AUTH).json()
        defaults = c.get("/system-config/defaults", headers=AUTH).json()
    assert current == defaults == fake.defaults
    assert current["machineLearning"]["urls"] == ["http://immich-machine-learning:3003"]
    assert current["machineLearning"]["availabilityChecks"] == {
        "enabled": True,
        "timeout": 2000,
        "interval": 30000,
    }


@pytest.mark.parametrize("version", VERSIONS)
def test_round_trip_keeps_every_field_verbatim(immich_fake_factory, version):
    fake = immich_fake_factory(version)
    sent = merged(fake.config, distinctive_changes(fake.version.major))
    response = put(fake, sent)
    assert response.status_code == 200, response.text
    assert response.json() == sent
    with client(fake) as c:
        got = c.get("/system-config", headers=AUTH)
    assert json.dumps(got.json()) == json.dumps(sent)  # same values, same key order
    assert fake.config_writes() == [sent]


def test_missing_field_is_rejected_naming_its_path(fake):
    response = put(fake, without(fake.config, "machineLearning.availabilityChecks.timeout"))
    assert response.status_code == 400
    assert "timeout" in errors_text(response)
    if fake.version.is_v3:
        assert response.json()["errors"][0]["path"] == ["machineLearning", "availabilityChecks", "timeout"]
    else:
        assert (
            "machineLearning.availabilityChecks.timeout must be an integer number"
            in response.json()["message"]
        )
    assert fake.config_writes() == []


def test_missing_section_is_rejected(fake):
    response = put(fake, without(fake.config, "oauth"))
    assert response.status_code == 400
    assert "oauth" in errors_text(response)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("machineLearning.urls", "http://a:3003"),
        ("machineLearning.enabled", "yes"),
        ("machineLearning.availabilityChecks.interval", "fast"),
        ("ffmpeg.targetVideoCodec", "mpeg2"),
        ("job.smartSearch", 3),
        ("notifications.smtp.replyTo", 1234),
        ("oauth.scope", None),
        ("trash.days", 1.5),
    ],
)
def test_wrong_type_is_rejected(fake, field, value):
    response = put(fake, with_value(fake.config, field, value))
    assert response.status_code == 400, response.text
    assert field.split(".")[-1] in errors_text(response)


def test_extra_fields_are_stripped_like_immich(fake):
    """Neither ValidationPipe({whitelist: true}) nor z.object() forbids unknown keys: they are dropped."""
    body = merged(fake.config, {"bogus": 1, "machineLearning": {"url": "http://old-style:3003"}})
    response = put(fake, body)
    assert response.status_code == 200
    assert "bogus" not in response.json()
    assert "url" not in fake.config["machineLearning"]
    assert fake.stripped_fields() == ["bogus", "machineLearning.url"]


def test_extra_fields_can_be_rejected_on_request(immich_fake_factory):
    fake = immich_fake_factory("2.7.5", unknown_fields="reject")
    response = put(fake, merged(fake.config, {"machineLearning": {"url": "http://old-style:3003"}}))
    assert response.status_code == 400
    assert "machineLearning.property url should not exist" in response.json()["message"]


def test_empty_urls_rejected_while_ml_enabled(fake):
    response = put(fake, with_value(fake.config, "machineLearning.urls", []))
    assert response.status_code == 400
    assert "urls" in errors_text(response)


def test_v2_checks_each_url_with_is_url(immich_fake):
    config = immich_fake.config
    bad = put(immich_fake, with_value(config, "machineLearning.urls", ["http://gpu box:3003"]))
    assert bad.status_code == 400
    assert bad.json()["message"] == ["machineLearning.each value in urls must be a URL address"]
    assert put(immich_fake, with_value(config, "machineLearning.urls", [123])).status_code == 400
    ok = put(
        immich_fake,
        with_value(config, "machineLearning.urls", ["http://ml_box.lan:3003", "http://10.0.0.5:3003"]),
    )
    assert ok.status_code == 200


def test_v2_skips_url_checks_while_ml_disabled(immich_fake):
    config = with_value(immich_fake.config, "machineLearning.enabled", False)
    assert put(immich_fake, with_value(config, "machineLearning.urls", [])).status_code == 200


def test_v3_only_requires_strings_but_always_one(immich_fake_v3):
    config = immich_fake_v3.config
    assert put(immich_fake_v3, with_value(config, "machineLearning.urls", ["not a url"])).status_code == 200
    disabled = with_value(config, "machineLearning.enabled", False)
    response = put(immich_fake_v3, with_value(disabled, "machineLearning.urls", []))
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "too_small"


def test_boolean_strings_are_coerced_like_immich(fake):
    response = put(fake, with_value(fake.config, "machineLearning.availabilityChecks.enabled", "false"))
    assert response.status_code == 200
    assert fake.config["machineLearning"]["availabilityChecks"]["enabled"] is False


def test_absent_optional_field_reads_back_as_default(fake):
    body = (
        without(fake.config, "image.preview.progressive")
        if fake.version.is_v3
        else without(fake.config, "oauth.timeout")
    )
    assert put(fake, body).status_code == 200
    assert fake.config == fake.defaults


def test_locked_server_refuses_valid_update_after_validation(immich_fake_factory):
    for version in VERSIONS:
        fake = immich_fake_factory(
            version, locked=True, config={"machineLearning": {"urls": ["http://a:3003"]}}
        )
        assert fake.config["machineLearning"]["urls"] == ["http://a:3003"]
        with client(fake) as c:
            assert c.get("/server/features").json()["configFile"] is True
            invalid = c.put("/system-config", headers=AUTH, json={})
            valid = c.put("/system-config", headers=AUTH, json=fake.config)
        assert invalid.status_code == 400 and "IMMICH_CONFIG_FILE" not in invalid.text
        assert valid.status_code == 400
        assert valid.json()["message"] == "Cannot update configuration while IMMICH_CONFIG_FILE is in use"
        assert fake.config_writes() == []


def test_logging_locked_by_env_log_level(immich_fake_factory):
    fake = immich_fake_factory("2.7.5", env_log_level="debug")
    assert put(fake, with_value(fake.config, "logging.level", "warn")).json()["message"] == (
        "Logging cannot be changed while the environment variable IMMICH_LOG_LEVEL is set."
    )
    assert put(fake, with_value(fake.config, "trash.days", 5)).status_code == 200


def test_admin_config_route_shares_the_config_on_3_2(immich_fake_v3):
    sent = with_value(immich_fake_v3.config, "machineLearning.urls", ["http://r:3003", "http://l:3003"])
    assert put(immich_fake_v3, sent, "/admin/config").status_code == 200
    with client(immich_fake_v3) as c:
        assert c.get("/system-config", headers=AUTH).json() == sent
        assert c.get("/admin/config/defaults", headers=AUTH).json() == immich_fake_v3.defaults


def test_state_file_keeps_config_across_restart(tmp_path):
    state = tmp_path / "state.json"
    with FakeImmichServer("2.7.5", state_file=state) as first:
        sent = with_value(first.config, "machineLearning.urls", ["http://remote:3003", "http://local:3003"])
        assert put(first, sent).status_code == 200
    with FakeImmichServer("2.7.5", state_file=state) as second, client(second) as c:
        assert c.get("/system-config", headers=AUTH).json() == sent
