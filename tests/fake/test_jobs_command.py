"""`immich-remote jobs` as a user runs it (click), against the in-process Immich fake.

2.3.1 has only the legacy `/api/jobs`; 2.7.5 and 3.2.2 have `/api/queues`. What was sent is read
from the fake's request log and its record of job commands.
"""

from __future__ import annotations

import json

import pytest

from immich_remote.commands import jobs as jobs_module
from immich_remote.immich_api import ML_JOB_QUEUES
from tests.fake.helpers import paused, run, writes
from tests.testbed.immich_fake import ApiKey, FakeImmichServer

VERSIONS = ["2.3.1", "2.7.5", "3.2.2"]
COUNTS = {
    "smartSearch": {"active": 2, "waiting": 1500, "delayed": 3, "failed": 7, "paused": 0},
    "faceDetection": {"active": 1, "waiting": 20, "delayed": 0, "failed": 0, "paused": 4},
    "ocr": {"active": 0, "waiting": 0, "delayed": 0, "failed": 12, "paused": 0},
}


@pytest.fixture(params=VERSIONS)
def fake(request, immich_fake_factory) -> FakeImmichServer:
    return immich_fake_factory(request.param)


def queue_endpoint(fake: FakeImmichServer) -> str:
    return "/api/queues" if fake.version.at_least(2, 4) else "/api/jobs"


def set_counts(fake: FakeImmichServer) -> None:
    for name, values in COUNTS.items():
        fake.set_queue(name, **values)
    fake.set_queue("facialRecognition", is_paused=True)
    fake.set_queue("thumbnailGeneration", waiting=999)  # not an ML queue: never shown


# --- jobs, jobs --json -----------------------------------------------------------------------------

def test_json_matches_the_servers_counts_with_get_only(fake, tmp_path):
    set_counts(fake)
    data = json.loads(run(fake, tmp_path, "jobs", "--json").stdout)
    assert data["server"] == {"url": fake.url, "version": str(fake.version)}
    assert list(data["queues"]) == list(ML_JOB_QUEUES)
    expected = {name: {"active": 0, "waiting": 0, "delayed": 0, "failed": 0, "paused": 0, "isPaused": False}
                for name in ML_JOB_QUEUES}
    for name, values in COUNTS.items():
        expected[name].update(values)
    expected["facialRecognition"]["isPaused"] = True
    assert data["queues"] == expected
    assert all(type(v) is int for q in data["queues"].values() for k, v in q.items() if k != "isPaused")
    assert {r.method for r in fake.requests()} == {"GET"}
    assert [r.path for r in fake.requests() if "queues" in r.path or "jobs" in r.path] == [queue_endpoint(fake)]


def test_global_json_flag_works_too(fake, tmp_path):
    set_counts(fake)
    data = json.loads(run(fake, tmp_path, "--json", "jobs").stdout)
    assert data["queues"]["smartSearch"]["waiting"] == 1500


def test_table_for_people_with_get_only(fake, tmp_path):
    set_counts(fake)
    out = run(fake, tmp_path, "jobs").stdout
    assert f"Immich {fake.version} at {fake.url}" in out and f"GET {queue_endpoint(fake)}" in out
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.split()[:1]
            and line.split()[0] in ML_JOB_QUEUES}
    assert list(rows) == list(ML_JOB_QUEUES)
    assert rows["smartSearch"] == ["running", "2", "1500", "3", "7", "0"]
    assert rows["facialRecognition"][0] == "paused"
    assert rows["ocr"] == ["idle", "0", "0", "0", "12", "0"]
    assert "thumbnailGeneration" not in out
    assert "19 failed job(s)" in out and "jobs run-missing" in out
    assert {r.method for r in fake.requests()} == {"GET"}


def test_missing_read_permission_is_named(immich_fake_factory, tmp_path):
    for version, needed in (("2.3.1", "job.read"), ("3.2.2", "queue.read")):
        fake = immich_fake_factory(version, api_keys=[ApiKey("starter", permissions=("job.create",))])
        result = run(fake, tmp_path, "jobs", key="starter", expect=1)
        assert f"lacks permission {needed}" in result.output
        assert "Traceback" not in result.output


# --- --watch ---------------------------------------------------------------------------------------

def drive_watch(monkeypatch, fake: FakeImmichServer, steps: list[dict[str, dict[str, int]]], seconds: float):
    """Each sleep moves the clock by `seconds` and applies the next step's counts; then Ctrl-C."""
    clock = {"now": 1000.0}
    pending = list(steps)

    def sleep(interval: float) -> None:
        assert interval == seconds
        if not pending:
            raise KeyboardInterrupt
        for name, values in pending.pop(0).items():
            fake.set_queue(name, **values)
        clock["now"] += seconds

    monkeypatch.setattr(jobs_module, "_sleep", sleep)
    monkeypatch.setattr(jobs_module, "_clock", lambda: clock["now"])


def test_watch_json_lines_with_throughput_and_eta(fake, tmp_path, monkeypatch):
    fake.set_queue("smartSearch", active=2, waiting=598)
    drive_watch(monkeypatch, fake, [{"smartSearch": {"waiting": 578}},   # 20 done in 10 s
                                    {"smartSearch": {"waiting": 600}}], 10)  # backlog grew: 0, not negative
    result = run(fake, tmp_path, "jobs", "--watch", "10", "--json")
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 3
    first, second, third = (line["queues"]["smartSearch"] for line in lines)
    assert (first["throughputPerMinute"], first["etaSeconds"]) == (None, None)
    assert second["waiting"] == 578 and second["throughputPerMinute"] == 120.0
    assert second["etaSeconds"] == 290.0  # (578 + 2) jobs at 2 per second
    assert third["throughputPerMinute"] == 0.0 and third["etaSeconds"] is None  # over the window: 598+2 -> 600+2
    assert lines[1]["queues"]["ocr"]["etaSeconds"] == 0.0
    assert all(line["server"]["version"] == str(fake.version) for line in lines)
    assert {r.method for r in fake.requests()} == {"GET"}


def test_watch_plain_tables_off_a_terminal_and_ctrl_c_exits_0(fake, tmp_path, monkeypatch):
    fake.set_queue("faceDetection", waiting=300)
    drive_watch(monkeypatch, fake, [{"faceDetection": {"waiting": 240}}], 5)
    out = run(fake, tmp_path, "jobs", "--watch").stdout  # default interval: 5 s
    assert out.count("ML job queues") == 2
    assert "done/min" in out and "ETA" in out
    face_rows = [line.split() for line in out.splitlines() if line.startswith("faceDetection")]
    assert face_rows[0][-2:] == ["-", "-"]
    assert face_rows[1][-2:] == ["720/min", "20s"]
    assert "Ctrl-C to stop" in out
    assert {r.method for r in fake.requests()} == {"GET"}


def test_watch_keeps_going_when_a_refresh_fails(immich_fake_factory, tmp_path, monkeypatch):
    fake = immich_fake_factory("2.7.5")
    fake.set_queue("ocr", waiting=5)
    calls = {"n": 0}
    real = jobs_module.read_queues

    def flaky(client):
        calls["n"] += 1
        if calls["n"] == 2:
            from immich_remote.errors import ImmichAPIError
            raise ImmichAPIError("Cannot reach the Immich server (test)")
        return real(client)

    monkeypatch.setattr(jobs_module, "read_queues", flaky)
    drive_watch(monkeypatch, fake, [{}, {}], 5)
    lines = [json.loads(line) for line in run(fake, tmp_path, "jobs", "-w", "5", "--json").stdout.splitlines()]
    assert [line.get("error") for line in lines] == [None, "Cannot reach the Immich server (test)", None]
    assert lines[1]["queues"]["ocr"]["waiting"] == 5


def test_watch_with_a_subcommand_is_bad_input(immich_fake_factory, tmp_path):
    fake = immich_fake_factory("2.7.5")
    result = run(fake, tmp_path, "jobs", "--watch", "5", "pause", expect=2)
    assert "--watch" in result.output
    assert fake.requests() == []


# --- run-missing -----------------------------------------------------------------------------------

def start_commands(fake):
    return [(c.name, c.command, c.force_sent, c.force, c.body) for c in fake.job_commands()]


def test_run_missing_sends_force_false_to_every_enabled_ml_queue(fake, tmp_path):
    data = json.loads(run(fake, tmp_path, "jobs", "run-missing", "--json").stdout)
    assert start_commands(fake) == [(name, "start", True, False, {"command": "start", "force": False})
                                    for name in ML_JOB_QUEUES]
    assert writes(fake) == [("PUT", f"/api/jobs/{name}", {"command": "start", "force": False})
                            for name in ML_JOB_QUEUES]
    assert [(e["queue"], e["body"], e["result"]) for e in data["sent"]] == [
        (name, {"command": "start", "force": False}, "started") for name in ML_JOB_QUEUES]
    assert data["skipped"] == {} and data["ok"] is True


def test_run_missing_skips_disabled_features(fake, tmp_path):
    config = fake.config
    config["machineLearning"]["facialRecognition"]["enabled"] = False
    config["machineLearning"]["ocr"]["enabled"] = False
    fake.set_config(config)
    data = json.loads(run(fake, tmp_path, "--json", "jobs", "run-missing").stdout)
    assert [c.name for c in fake.job_commands()] == ["smartSearch", "duplicateDetection"]
    assert all(c.force is False for c in fake.job_commands())
    assert data["skipped"] == {"faceDetection": "machineLearning.facialRecognition.enabled is false",
                               "facialRecognition": "machineLearning.facialRecognition.enabled is false",
                               "ocr": "machineLearning.ocr.enabled is false"}


def test_run_missing_with_clip_off_skips_duplicates_too(immich_fake_factory, tmp_path):
    fake = immich_fake_factory("3.2.2")
    config = fake.config
    config["machineLearning"]["clip"]["enabled"] = False
    fake.set_config(config)
    out = run(fake, tmp_path, "jobs", "run-missing").stdout
    assert [c.name for c in fake.job_commands()] == ["faceDetection", "facialRecognition", "ocr"]
    assert "skipped duplicateDetection: machineLearning.clip.enabled is false" in out
    assert 'PUT /api/jobs/ocr {"command": "start", "force": false}' in out


def test_run_missing_named_queues_only(fake, tmp_path):
    run(fake, tmp_path, "jobs", "run-missing", "ocr", "facialRecognition")
    assert start_commands(fake) == [
        ("ocr", "start", True, False, {"command": "start", "force": False}),
        ("facialRecognition", "start", True, False, {"command": "start", "force": False}),
    ]
    config_reads = [r for r in fake.requests() if "config" in r.path]
    assert config_reads == []  # named queues: the settings are not needed


def test_run_missing_with_ml_disabled_sends_nothing(immich_fake_factory, tmp_path):
    fake = immich_fake_factory("2.7.5", ml_enabled=False)
    result = run(fake, tmp_path, "jobs", "run-missing")
    assert fake.job_commands() == [] and writes(fake) == []
    assert "nothing was sent" in result.stdout


def test_run_missing_reports_a_busy_queue_and_starts_the_rest(fake, tmp_path):
    fake.set_queue("smartSearch", active=3)
    data = json.loads(run(fake, tmp_path, "jobs", "run-missing", "--json").stdout)
    results = {e["queue"]: e["result"] for e in data["sent"]}
    assert results["smartSearch"] == "already-running"
    assert {r for q, r in results.items() if q != "smartSearch"} == {"started"}
    assert all(c.force is False for c in fake.job_commands())


def test_run_missing_needs_job_create_and_says_so(immich_fake_factory, tmp_path):
    key = ApiKey("reader", permissions=("queue.read", "systemConfig.read"))
    fake = immich_fake_factory("2.7.5", api_keys=[key])
    result = run(fake, tmp_path, "jobs", "run-missing", key="reader", expect=1)
    assert "lacks permission job.create" in result.output
    assert [c.status for c in fake.job_commands()] == []


def test_unknown_queue_is_bad_input_and_nothing_is_sent(immich_fake_factory, tmp_path):
    fake = immich_fake_factory("2.7.5")
    for sub in ("run-missing", "pause", "resume"):
        result = run(fake, tmp_path, "jobs", sub, "smartSearch", "thumbnailGeneration", expect=2)
        assert "Not an ML queue: thumbnailGeneration" in result.output
        assert "smartSearch, faceDetection, facialRecognition, duplicateDetection, ocr" in result.output
    assert fake.requests() == []


# --- pause / resume --------------------------------------------------------------------------------

def test_pause_and_resume_flip_is_paused(fake, tmp_path):
    new_api = fake.version.at_least(2, 4)
    data = json.loads(run(fake, tmp_path, "jobs", "pause", "--json").stdout)
    assert paused(fake) == dict.fromkeys(ML_JOB_QUEUES, True)
    assert data["ok"] is True and [e["isPaused"] for e in data["sent"]] == [True] * len(ML_JOB_QUEUES)
    if new_api:
        assert writes(fake) == [("PUT", f"/api/queues/{n}", {"isPaused": True}) for n in ML_JOB_QUEUES]
    else:
        assert writes(fake) == [("PUT", f"/api/jobs/{n}", {"command": "pause"}) for n in ML_JOB_QUEUES]
    assert not fake.queues.snapshot()["thumbnailGeneration"]["isPaused"]
    assert json.loads(run(fake, tmp_path, "jobs", "--json").stdout)["queues"]["ocr"]["isPaused"] is True

    fake.reset()
    run(fake, tmp_path, "jobs", "resume", "ocr", "smartSearch")
    assert paused(fake) == {**dict.fromkeys(ML_JOB_QUEUES, True), "ocr": False, "smartSearch": False}
    body = {"isPaused": False} if new_api else {"command": "resume"}
    prefix = "/api/queues" if new_api else "/api/jobs"
    assert writes(fake) == [("PUT", f"{prefix}/ocr", body), ("PUT", f"{prefix}/smartSearch", body)]
    assert all(c.command != "start" for c in fake.job_commands())


def test_pause_human_output(immich_fake_factory, tmp_path):
    fake = immich_fake_factory("3.2.2")
    out = run(fake, tmp_path, "jobs", "pause", "faceDetection").stdout
    assert 'PUT /api/queues/faceDetection {"isPaused": true}' in out
    assert "ok paused" in out and "jobs resume" in out


def test_pause_needs_queue_update_on_new_servers(immich_fake_factory, tmp_path):
    key = ApiKey("starter", permissions=("queue.read", "job.create"))
    fake = immich_fake_factory("2.7.5", api_keys=[key])
    result = run(fake, tmp_path, "jobs", "pause", key="starter", expect=1)
    assert "lacks permission queue.update" in result.output
    assert not any(paused(fake).values())
