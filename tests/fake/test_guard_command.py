"""`immich-remote guard` as a user runs it (click), against the in-process Immich fake.

The ML URLs are real: a stub ML endpoint on 127.0.0.1 (`/ping` -> pong) when an ML host is up, a
closed local port when it is down. What the guard sent is read from the fake's request log and its
record of job commands; what it remembers from its state file.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from immich_remote.commands import guard as guard_module
from immich_remote.immich_api import ML_JOB_QUEUES
from tests.fake.helpers import closed_port, paused, run, writes
from tests.testbed.immich_fake import DEFAULT_API_KEY, ApiKey, FakeImmichServer

VERSIONS = ["2.3.1", "2.7.5", "3.2.2"]


@pytest.fixture(params=VERSIONS)
def fake(request, immich_fake_factory) -> FakeImmichServer:
    return immich_fake_factory(request.param)


def closed_url() -> str:
    """A local URL where nothing listens: connections are refused at once, like a host whose ML is down."""
    return f"http://127.0.0.1:{closed_port()}"


def set_urls(fake: FakeImmichServer, urls: list[str]) -> None:
    config = fake.config
    config["machineLearning"]["urls"] = urls
    fake.set_config(config)


def pause_writes(fake: FakeImmichServer, queues, paused_: bool) -> list[tuple[str, str, object]]:
    if fake.version.at_least(2, 4):
        return [("PUT", f"/api/queues/{q}", {"isPaused": paused_}) for q in queues]
    return [("PUT", f"/api/jobs/{q}", {"command": "pause" if paused_ else "resume"}) for q in queues]


def remembered(tmp_path: Path) -> list[str]:
    path = tmp_path / "state" / "guard.json"
    return json.loads(path.read_text())["paused"] if path.exists() else []


def test_outage_pause_then_recovery_resumes_exactly_those_and_queues_missing_jobs(fake, tmp_path, stub_ml_factory):
    fake.set_queue("ocr", is_paused=True)  # paused by the admin before: not the guard's to resume
    down = closed_url()
    set_urls(fake, [down])

    # 1. total outage: every ML queue that runs is paused, so its jobs wait instead of failing
    result = run(fake, tmp_path, "guard", "--once")
    running = [q for q in ML_JOB_QUEUES if q != "ocr"]
    assert writes(fake) == pause_writes(fake, running, True)
    assert paused(fake) == dict.fromkeys(ML_JOB_QUEUES, True)
    assert remembered(tmp_path) == running
    assert "pause smartSearch, faceDetection, facialRecognition, duplicateDetection" in result.stdout
    assert f"no ML URL answers /ping: {down}" in result.stdout
    assert (tmp_path / "state" / "guard.json").stat().st_mode & 0o777 == 0o600

    # 2. a restart with nothing changed: reads only
    fake.reset()
    run(fake, tmp_path, "guard", "--once")
    assert writes(fake) == []
    assert remembered(tmp_path) == running

    # 3. an ML URL answers again: missing jobs queued (force: false) into the still-paused queues,
    #    then exactly the queues the guard paused are resumed; ocr stays paused
    fake.reset()
    ml = stub_ml_factory("gpu-box")
    set_urls(fake, [ml.url, down])
    result = run(fake, tmp_path, "guard", "--once")
    starts = [("PUT", f"/api/jobs/{q}", {"command": "start", "force": False}) for q in running]
    assert writes(fake) == starts + pause_writes(fake, running, False)
    assert [(c.name, c.force) for c in fake.job_commands() if c.command == "start"] == [(q, False) for q in running]
    assert paused(fake) == {**dict.fromkeys(ML_JOB_QUEUES, False), "ocr": True}
    assert remembered(tmp_path) == []
    assert f"resume smartSearch, faceDetection, facialRecognition, duplicateDetection: {ml.url} answers /ping" \
        in result.stdout
    assert ml.pings >= 1

    # 4. and a restart now changes nothing either
    fake.reset()
    run(fake, tmp_path, "guard", "--once")
    assert writes(fake) == []


def test_run_missing_only_for_enabled_features_but_resume_all_it_paused(immich_fake_factory, tmp_path,
                                                                        stub_ml_factory):
    fake = immich_fake_factory("2.7.5")
    config = fake.config
    config["machineLearning"]["ocr"]["enabled"] = False
    config["machineLearning"]["urls"] = [closed_url()]
    fake.set_config(config)
    run(fake, tmp_path, "guard", "--once")
    assert all(paused(fake).values())
    fake.reset()
    set_urls(fake, [stub_ml_factory().url])
    data = json.loads(run(fake, tmp_path, "guard", "--once", "--json").stdout)
    assert data["action"] == "resume" and data["ok"] is True
    assert data["runMissing"] == [q for q in ML_JOB_QUEUES if q != "ocr"]
    assert data["resume"] == list(ML_JOB_QUEUES)
    assert not any(paused(fake).values())
    assert [c.name for c in fake.job_commands() if c.command == "start"] == data["runMissing"]


def test_a_queue_resumed_by_hand_during_the_outage_is_forgotten(immich_fake_factory, tmp_path, stub_ml_factory):
    fake = immich_fake_factory("3.2.2")
    set_urls(fake, [closed_url()])
    run(fake, tmp_path, "guard", "--once")
    set_urls(fake, [stub_ml_factory().url])
    fake.set_queue("faceDetection", is_paused=False)  # resumed by hand: not the guard's any more
    fake.reset()
    data = json.loads(run(fake, tmp_path, "guard", "--once", "--json").stdout)
    assert data["forget"] == ["faceDetection"]
    assert data["resume"] == [q for q in ML_JOB_QUEUES if q != "faceDetection"]
    assert ("PUT", "/api/queues/faceDetection", {"isPaused": False}) not in writes(fake)
    assert "faceDetection" not in [c.name for c in fake.job_commands()]


def test_healthy_url_and_nothing_paused_sends_no_write(fake, tmp_path, stub_ml_factory):
    set_urls(fake, [stub_ml_factory().url, closed_url()])
    data = json.loads(run(fake, tmp_path, "guard", "--once", "--json").stdout)
    assert data["action"] == "none" and data["outage"] is False
    assert [u["state"] for u in data["urls"]] == ["up", "down"]
    assert writes(fake) == []
    assert not (tmp_path / "state" / "guard.json").exists()


def test_unresolvable_local_url_is_not_counted_as_down(immich_fake_factory, tmp_path):
    """The server's own http://immich-machine-learning:3003 does not resolve outside its Docker network:
    the guard cannot tell, so it does not pause (jobs may still succeed there)."""
    fake = immich_fake_factory("2.7.5")
    set_urls(fake, [closed_url(), "http://immich-machine-learning.invalid:3003"])
    data = json.loads(run(fake, tmp_path, "guard", "--once", "--json").stdout)
    assert [u["state"] for u in data["urls"]] == ["down", "unknown"]
    assert data["action"] == "none" and writes(fake) == []


def test_loop_logs_each_action_and_ctrl_c_exits_0(immich_fake_factory, tmp_path, stub_ml_factory, monkeypatch):
    fake = immich_fake_factory("2.7.5")
    ml = stub_ml_factory()
    set_urls(fake, [ml.url])
    steps = [ml.stop, ml.start, None]  # after check 1: the host goes down; after check 2: it is back

    def sleep(seconds: float) -> None:
        assert seconds == 10.0  # the default interval
        step = steps.pop(0)
        if step is None:
            raise KeyboardInterrupt  # what Ctrl-C and SIGTERM (main() turns it into one) do
        step()

    monkeypatch.setattr(guard_module, "_sleep", sleep)
    lines = [json.loads(line) for line in run(fake, tmp_path, "guard", "--json").stdout.splitlines()]
    assert [line["action"] for line in lines] == ["none", "pause", "resume"]
    assert all(line["at"].endswith("Z") and line["reason"] for line in lines)
    assert lines[1]["urls"][0]["state"] == "down" and lines[2]["urls"][0]["state"] == "up"
    assert not any(paused(fake).values())


def test_an_immich_outage_is_logged_once_and_the_guard_keeps_going(immich_fake_factory, tmp_path, stub_ml_factory,
                                                                  monkeypatch):
    fake = immich_fake_factory("2.7.5")
    set_urls(fake, [stub_ml_factory().url])
    fake.fail_requests("GET", "/api/system-config", status=500, count=3)  # Immich breaks for 3 checks
    ticks = iter(range(3))

    def sleep(seconds: float) -> None:
        if next(ticks, None) is None:
            raise KeyboardInterrupt

    monkeypatch.setattr(guard_module, "_sleep", sleep)
    lines = [json.loads(line) for line in run(fake, tmp_path, "guard", "--json").stdout.splitlines()]
    assert [line["action"] for line in lines] == ["error", "none"]  # 3 failed checks, 1 line; then back
    assert "HTTP 500" in lines[0]["reason"] and lines[1]["ok"] is True
    assert writes(fake) == []


def test_unreachable_immich_once_exits_1_and_changes_nothing(tmp_path):
    fake = FakeImmichServer("2.7.5").start()
    fake.stop()  # nothing listens there any more
    result = run(fake, tmp_path, "guard", "--once", expect=1)
    assert "cannot read Immich" in result.stdout and "Traceback" not in result.output


def test_missing_permission_is_named_before_any_outage(immich_fake_factory, tmp_path):
    key = ApiKey("reader", permissions=("queue.read", "systemConfig.read"))
    fake = immich_fake_factory("2.7.5", api_keys=[key])
    result = run(fake, tmp_path, "guard", "--once", key="reader", expect=1)
    assert "lacks permission queue.update and job.create" in result.output
    assert writes(fake) == []


def test_corrupt_state_file_is_bad_input(immich_fake_factory, tmp_path):
    fake = immich_fake_factory("2.7.5")
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "guard.json").write_text("{not json")
    result = run(fake, tmp_path, "guard", "--once", expect=2)
    assert "guard.json" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("signal_number", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_and_ctrl_c_stop_the_running_guard_cleanly(immich_fake_factory, tmp_path, signal_number):
    """The real process, as systemd or `docker compose stop` (SIGTERM) or a terminal (Ctrl-C) stops it."""
    fake = immich_fake_factory("2.7.5")
    set_urls(fake, [closed_url()])
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(f"immich:\n  url: {fake.url}\nhosts:\n  gpu-box:\n    address: 10.0.0.5\n")
    env = {**os.environ, "IMMICH_API_KEY": DEFAULT_API_KEY, "NO_PROXY": "*", "NO_COLOR": "1",
           "IMMICH_REMOTE_STATE_DIR": str(tmp_path / "state")}
    # Started from a terminal, the guard gets Ctrl-C. A shell's background job (`pytest ... &`) inherits SIGINT
    # ignored, and an ignored signal stays ignored in the child: start it with the default disposition.
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        process = subprocess.Popen([sys.executable, "-m", "immich_remote", "-i", str(inventory), "guard", "--json"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    finally:
        signal.signal(signal.SIGINT, inherited)
    try:
        first = json.loads(process.stdout.readline())  # the first check: the outage, and the pause
        assert first["action"] == "pause" and first["ok"] is True
        process.send_signal(signal_number)
        _out, err = process.communicate(timeout=15)
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert "guard stopped; the queues it paused stay paused until it runs again" in err
    assert "Traceback" not in err
    assert remembered(tmp_path) == list(ML_JOB_QUEUES)
