"""The standalone fake (``python -m tests.testbed.immich_fake``) and its ``/_fake/`` control endpoints."""

from __future__ import annotations

from tests.fake.helpers import with_value


def test_standalone_process_persists_config_across_restart(immich_fake_process_factory, tmp_path):
    state = tmp_path / "immich-state.json"
    fake = immich_fake_process_factory(version="3.2.2", state_file=state)
    key = fake.api_key
    assert fake.pidfile.read_text().strip().isdigit()
    assert fake.request("GET", "/api/server/version")[1]["major"] == 3
    assert fake.request("GET", "/api/system-config")[0] == 401

    status, config = fake.request("GET", "/api/admin/config", api_key=key)
    assert status == 200
    sent = with_value(
        config, "machineLearning.urls", ["http://gpu-box:3003", "http://immich-machine-learning:3003"]
    )
    assert fake.request("PUT", "/api/system-config", sent, api_key=key) == (200, sent)

    assert fake.stop() == 0
    assert not fake.pidfile.exists()
    fake.start()
    assert fake.request("GET", "/api/system-config", api_key=key) == (200, sent)
    assert fake.state()["config"] == sent
    assert fake.state()["configWrites"] == []  # a fresh process: only what it received since


def test_control_endpoints(immich_fake_process_factory):
    fake = immich_fake_process_factory(
        version="2.7.5", permissions="job.read,job.create", extra_args=["--ml-url", "http://127.0.0.1:9"]
    )
    key = fake.api_key
    assert fake.request("POST", "/_fake/reset", {})[0] == 200  # forget the readiness ping
    assert (
        fake.request("POST", "/_fake/set-queues", {"smartSearch": {"active": 1, "isPaused": True}})[0] == 200
    )
    status, jobs = fake.request("GET", "/api/jobs", api_key=key)
    assert jobs["smartSearch"]["queueStatus"] == {"isActive": True, "isPaused": True}
    assert (
        fake.request("PUT", "/api/jobs/smartSearch", {"command": "start", "force": False}, api_key=key)[0]
        == 400
    )
    assert fake.request("GET", "/api/system-config", api_key=key)[1]["message"] == (
        "Missing required permission: systemConfig.read"
    )

    status, requests = fake.request("GET", "/_fake/requests")
    assert [(r["method"], r["path"], r["status"]) for r in requests] == [
        ("GET", "/api/jobs", 200),
        ("PUT", "/api/jobs/smartSearch", 400),
        ("GET", "/api/system-config", 403),
    ]
    assert requests[1]["body"] == {"command": "start", "force": False}
    assert requests[0]["headers"]["x-api-key"] == "<redacted>"
    assert fake.state()["jobCommands"][0]["error"] == "Job is already running"

    assert fake.request("POST", "/_fake/reset", {})[0] == 200
    assert fake.request("GET", "/_fake/requests")[1] == []
    change = {"changes": {"trash": {"days": 11}}, "read": 1}
    assert fake.request("POST", "/_fake/change-config-on-read", change) == (200, {"pending": 1})
    assert fake.request("POST", "/_fake/change-config-on-read", {"read": 1})[0] == 400
    assert fake.state()["config"]["trash"]["days"] == 30  # not yet: on the next read
    assert fake.request("GET", "/api/api-keys/me", api_key=key)[1]["permissions"] == ["job.read", "job.create"]
    assert fake.request("POST", "/_fake/reset", {})[0] == 200
    status, failed = fake.request("POST", "/_fake/predict", {"task": "clip"})
    assert status == 502 and failed["error"].endswith("failed for all URLs")
    assert fake.request("GET", "/_fake/nothing")[0] == 404


def test_non_admin_process_key(immich_fake_process_factory):
    fake = immich_fake_process_factory(admin=False)
    status, body = fake.request("GET", "/api/system-config", api_key=fake.api_key)
    assert (status, body["message"]) == (403, "Forbidden")
