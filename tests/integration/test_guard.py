"""`immich-remote guard` on the test bed: a real ML host in remote-only mode goes down (its container
stopped on the host) and comes back; the guard pauses the ML queues during the outage, then queues
the missing jobs (force: false) and resumes exactly the queues it paused."""

from __future__ import annotations

import json
import time

import pytest

from immich_remote.immich_api import ML_JOB_QUEUES
from tests.integration.sandbox import inner, ml_container

pytestmark = pytest.mark.integration


def test_guard_pauses_during_a_total_outage_and_resumes_after_it(sandbox):
    box = sandbox
    host = box.hosts[0]
    box.write_inventory(hosts=[host])
    box.inventory.write_text(box.inventory.read_text().replace("immich:\n", "immich:\n  fallback: remote-only\n", 1))
    box.cli("deploy", "--remote-only")
    assert box.urls() == [host.ml_url]
    box.fake.set_queue("ocr", is_paused=True)  # the admin paused OCR: the guard must leave it alone

    first = json.loads(box.cli("guard", "--once", "--json").stdout)
    assert first["action"] == "none" and first["urls"][0]["state"] == "up"

    container = ml_container(host)["Id"]
    inner(host, "stop", container)
    box.fake.reset()
    outage = json.loads(box.cli("guard", "--once", "--json").stdout)
    running = [q for q in ML_JOB_QUEUES if q != "ocr"]
    assert outage["action"] == "pause" and outage["pause"] == running and outage["ok"] is True
    assert all(box.fake.queues.snapshot()[q]["isPaused"] for q in ML_JOB_QUEUES)
    box.fake.reset()
    box.cli("guard", "--once")  # a restart during the outage: reads only
    assert [r for r in box.fake.requests() if r.method != "GET"] == []

    inner(host, "start", container)
    box.fake.reset()
    back = box.cli("guard", "--once", "--json", expect=None)
    for _ in range(20):  # the stub needs a moment after `docker start` before it answers /ping
        data = json.loads(back.stdout)
        if data["action"] == "resume":
            break
        time.sleep(0.5)
        back = box.cli("guard", "--once", "--json", expect=None)
    assert data["action"] == "resume" and data["ok"] is True and data["resume"] == running
    starts = [(c.name, c.body) for c in box.fake.job_commands() if c.command == "start"]
    assert starts == [(q, {"command": "start", "force": False}) for q in running]
    paused = {q: box.fake.queues.snapshot()[q]["isPaused"] for q in ML_JOB_QUEUES}
    assert paused == {**dict.fromkeys(ML_JOB_QUEUES, False), "ocr": True}
