"""`immich-remote drill HOST` on the test bed: a host's ML container really stops and starts again, and
the smart search really goes through the Immich fake's model of the server's ML routing.

Only `--method stop` is tested: the bed's hosts are containers whose user cannot reboot them (there
is no `sudo reboot` that brings a Docker-in-Docker host back); `--method reboot` is implemented and
left to a real host."""

from __future__ import annotations

import re
import threading
import time

import pytest
import yaml

from tests.integration.sandbox import Sandbox, ml_container

pytestmark = pytest.mark.integration


def one_host(box: Sandbox, **immich: str) -> Sandbox:
    """The sandbox narrowed to ml1 (a drill concerns one host; fewer hosts deploy faster)."""
    box.hosts = box.hosts[:1]
    path = box.write_inventory()
    if immich:
        data = yaml.safe_load(path.read_text())
        data["immich"].update(immich)
        path.write_text(yaml.safe_dump(data, sort_keys=False))
    return box


def test_keep_local_drill_proves_the_fallback_and_the_return(sandbox):
    box = one_host(sandbox)
    box.cli("deploy")
    host = box.hosts[0]
    remote_url, local_url = box.urls()
    assert local_url == box.bed.local_ml_url
    started_before = ml_container(host)["State"]["StartedAt"]
    box.fake.reset()

    result = box.cli("drill", host.name, "--run-missing")

    out = result.output
    assert "PASSED: keep-local: Immich kept serving while ml1 was down" in out, out
    for step in ("record", "take down", "search while down", "bring back", "search after", "run-missing"):
        assert re.search(rf"^{step}\s+ok\s+\d+\.\ds", out, re.M), f"{step} not ok:\n{out}"
    timings = re.search(r"fallback answered (\d+\.\d)s .*downtime (\d+\.\d)s; back (\d+\.\d)s", out)
    assert timings, out
    fallback, downtime, back = map(float, timings.groups())
    assert fallback < 10 and back <= downtime < 60, out
    # What Immich (the fake, routing as the server does) did: the first search went to ml1; the one
    # while ml1 was down was served by the local fallback, through the URL list.
    searches = box.fake.search.searches()
    assert len(searches) == 3 and not any(s["cached"] or s["error"] for s in searches), searches
    assert searches[0]["url"] == remote_url
    assert searches[1]["url"] == local_url
    # The container was really stopped and started (same container, new start), and serves again.
    container = ml_container(host)
    assert container["State"]["Status"] == "running" and container["State"]["StartedAt"] != started_before
    assert container["RestartCount"] == 0
    box.fake.wait_for_health(remote_url, True, timeout=5)  # Immich's own /ping check sees it again
    assert box.fake.predict("clip").url == remote_url  # and its next ML request goes to ml1 first
    # --run-missing: exactly `force: false`, to the ML queues enabled in Immich's config.
    commands = box.fake.job_commands()
    assert {(c.name, c.command, c.force) for c in commands} == {
        ("smartSearch", "start", False), ("faceDetection", "start", False),
        ("facialRecognition", "start", False), ("duplicateDetection", "start", False), ("ocr", "start", False)}
    lock = host.exec(["sh", "-c", "ls -a /home/deploy/immich-remote-ml/.immich-remote"]).stdout
    assert "lock" not in lock.split()


def test_remote_only_drill_says_ml_jobs_fail_while_the_host_is_down(sandbox):
    box = one_host(sandbox, fallback="remote-only")
    box.cli("deploy", "--remote-only")
    host = box.hosts[0]
    assert box.urls() == [host.ml_url]
    started_before = ml_container(host)["State"]["StartedAt"]

    # Jobs would fail during the drill: without --yes nobody confirmed it, and nothing happens.
    refused = box.cli("--json", "drill", host.name, expect=2)
    assert "pass --yes" in refused.output
    assert ml_container(host)["State"]["StartedAt"] == started_before

    # Play the server's ML jobs: when Immich fails an ML request, its running smart-search jobs fail too.
    done = threading.Event()

    def fail_jobs_when_ml_fails() -> None:
        deadline = time.monotonic() + 90
        while not done.is_set() and time.monotonic() < deadline:
            if any(s["error"] for s in box.fake.search.searches()):
                box.fake.set_queue("smartSearch", failed=3)
                return
            time.sleep(0.05)

    watcher = threading.Thread(target=fail_jobs_when_ml_fails, daemon=True)
    watcher.start()
    try:
        data = box.cli_json("drill", host.name, "--yes")
    finally:
        done.set()
        watcher.join(5)

    assert data["ok"] is True, data  # Immich did what remote-only promises
    assert data["expected"]["servedWhileDown"] is False
    assert data["search"]["whileDown"]["status"] == 500
    assert data["search"]["after"]["ok"] is True
    assert data["verdict"].startswith("PASSED (as remote-only promises): ML jobs fail while ml1 is down")
    assert any("jobs FAIL" in note for note in data["notes"])
    assert data["queues"]["failedDuring"] == {"smartSearch": 3}
    assert any("3 ML job(s) failed during the drill" in note for note in data["notes"])
    steps = {s["step"]: s for s in data["steps"]}
    assert [s["result"] for s in data["steps"]] == ["ok"] * 5 + ["skipped"]
    assert "HTTP 500" in steps["search while down"]["detail"]
    assert all(isinstance(data["timings"][k], float) for k in ("fallbackAnswered", "downtime", "timeBack"))
    assert data["runMissing"] is None and box.fake.job_commands() == []
    assert ml_container(host)["State"]["Status"] == "running"

    # What a person reads: the plain statement, the HTTP 500 in the table, and what to run next.
    out = box.cli("drill", host.name, "--yes").output
    assert "PASSED (as remote-only promises): ML jobs fail while ml1 is down" in out, out
    assert "Smart Search, Face Detection and OCR jobs FAIL" in out, out
    assert re.search(r"^search while down\s+ok\s+\d+\.\ds\s+Immich answered HTTP 500", out, re.M), out
    assert "Timings: Immich answered (no ML)" in out and "`immich-remote jobs run-missing`" in out, out
