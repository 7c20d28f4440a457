"""Job queues: ``/queues`` (>= 2.4), legacy ``/jobs`` and ``PUT /jobs/{name}`` with ``force`` recorded."""

from __future__ import annotations

import pytest

from tests.fake.helpers import AUTH, client
from tests.testbed.immich_fake import ApiKey
from tests.testbed.immich_fake_queues import ABSENT

VERSIONS = ["2.7.5", "3.2.2"]
STATS = {"active", "completed", "delayed", "failed", "paused", "waiting"}


@pytest.fixture(params=VERSIONS)
def fake(request, immich_fake_factory):
    return immich_fake_factory(request.param)


def test_queues_list_every_queue_name(fake):
    fake.set_queue("smartSearch", active=2, waiting=40, failed=1)
    with client(fake) as c:
        queues = c.get("/queues", headers=AUTH).json()
        one = c.get("/queues/smartSearch", headers=AUTH).json()
    names = [q["name"] for q in queues]
    assert {"smartSearch", "faceDetection", "ocr", "facialRecognition", "duplicateDetection"} <= set(names)
    assert ("integrityCheck" in names) == fake.version.is_v3
    smart = next(q for q in queues if q["name"] == "smartSearch")
    assert (
        smart
        == one
        == {
            "name": "smartSearch",
            "isPaused": False,
            "statistics": {
                "active": 2,
                "completed": 0,
                "delayed": 0,
                "failed": 1,
                "paused": 0,
                "waiting": 40,
            },
        }
    )


def test_legacy_jobs_are_keyed_by_queue(fake):
    fake.set_queue("faceDetection", active=1, is_paused=True)
    with client(fake) as c:
        jobs = c.get("/jobs", headers=AUTH).json()
    assert set(jobs["faceDetection"]["jobCounts"]) == STATS
    assert jobs["faceDetection"]["queueStatus"] == {"isActive": True, "isPaused": True}
    assert jobs["smartSearch"]["queueStatus"] == {"isActive": False, "isPaused": False}


def test_force_is_recorded_exactly_as_sent(fake):
    with client(fake) as c:
        for body in (
            {"command": "start", "force": False},
            {"command": "start"},
            {"command": "start", "force": True},
        ):
            response = c.put("/jobs/faceDetection", headers=AUTH, json=body)
            assert response.status_code == 200
            assert response.json()["queueStatus"] == {"isActive": False, "isPaused": False}
    commands = fake.job_commands()
    assert [(c.name, c.command, c.force) for c in commands] == [
        ("faceDetection", "start", False),
        ("faceDetection", "start", ABSENT),
        ("faceDetection", "start", True),
    ]
    assert [c.force_sent for c in commands] == [True, False, True]
    assert commands[1].body == {"command": "start"}
    assert commands[0].to_json()["force"] is False and "force" not in commands[1].to_json()


@pytest.mark.parametrize(
    ("path", "body", "needle"),
    [
        ("/jobs/notAQueue", {"command": "start"}, "name"),
        ("/jobs/smartSearch", {"command": "go"}, "command"),
        ("/jobs/smartSearch", {"command": "start", "force": "maybe"}, "force"),
        ("/jobs/smartSearch", {}, "command"),
    ],
)
def test_invalid_commands_are_400(fake, path, body, needle):
    with client(fake) as c:
        response = c.put(path, headers=AUTH, json=body)
    assert response.status_code == 400
    assert needle in response.text
    assert fake.job_commands() == []


def test_start_refused_while_active_or_not_startable(fake):
    fake.set_queue("smartSearch", active=1)
    with client(fake) as c:
        busy = c.put("/jobs/smartSearch", headers=AUTH, json={"command": "start", "force": False})
        invalid = c.put("/jobs/backgroundTask", headers=AUTH, json={"command": "start"})
    assert busy.status_code == 400 and busy.json()["message"] == "Job is already running"
    assert invalid.status_code == 400 and invalid.json()["message"] == "Invalid job name: backgroundTask"
    assert [c.status for c in fake.job_commands()] == [400, 400]


def test_pause_resume_empty_clear_failed(fake):
    fake.set_queue("ocr", waiting=5, delayed=2, failed=3)
    with client(fake) as c:
        paused = c.put("/jobs/ocr", headers=AUTH, json={"command": "pause"}).json()
        assert paused["queueStatus"]["isPaused"] is True
        assert (
            c.put("/jobs/ocr", headers=AUTH, json={"command": "resume"}).json()["queueStatus"]["isPaused"]
            is False
        )
        emptied = c.put("/jobs/ocr", headers=AUTH, json={"command": "empty"}).json()["jobCounts"]
        assert (emptied["waiting"], emptied["delayed"], emptied["failed"]) == (0, 0, 3)
        cleared = c.put("/jobs/ocr", headers=AUTH, json={"command": "clear-failed"}).json()["jobCounts"]
        assert cleared["failed"] == 0
        queue = c.put("/queues/ocr", headers=AUTH, json={"isPaused": True}).json()
        assert queue["isPaused"] is True
        refused = c.put("/queues/backgroundTask", headers=AUTH, json={"isPaused": True})
        assert refused.status_code == 400


def test_queue_permissions(immich_fake_factory):
    keys = [
        ApiKey("reader", permissions=("job.read", "queue.read")),
        ApiKey("starter", permissions=("job.create",)),
    ]
    fake = immich_fake_factory("2.7.5", api_keys=keys)
    with client(fake) as c:
        assert c.get("/jobs", headers={"x-api-key": "reader"}).status_code == 200
        assert c.get("/queues", headers={"x-api-key": "starter"}).json()["message"] == (
            "Missing required permission: queue.read"
        )
        denied = c.put("/jobs/smartSearch", headers={"x-api-key": "reader"}, json={"command": "start"})
        assert denied.json()["message"] == "Missing required permission: job.create"
        ok = c.put(
            "/jobs/smartSearch", headers={"x-api-key": "starter"}, json={"command": "start", "force": False}
        )
        assert ok.status_code == 200
