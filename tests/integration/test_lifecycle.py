"""Keeping hosts on the server's version, and every way back: upgrade, status, rollback, config
restore and remove, on the test bed with stub images of several versions in the local registry."""

from __future__ import annotations

import json
import threading
import time

import pytest

from tests.integration.sandbox import IMAGE, inner, make_sandbox, ml_container

pytestmark = pytest.mark.integration

CACHE = "immich_remote_ml_model-cache"


@pytest.fixture
def old_sandbox(testbed, fresh_hosts, immich_fake_factory, tmp_path):
    """Hosts deployed at 2.7.4 by an Immich 2.7.4 server."""
    box = make_sandbox(testbed, fresh_hosts, immich_fake_factory, tmp_path, version="2.7.4")
    box.cli("deploy")
    return box


def server_upgrades_to(box, factory, version: str) -> None:
    """The Immich server is upgraded: same stored config, new version (and a new port)."""
    box.fake = factory(version, config=box.fake.config, ml_url=box.bed.local_ml_url)
    box.write_inventory()


def put_marker_in_cache(host, text: str) -> str:
    inner(host, "run", "--rm", "-v", f"{CACHE}:/cache", "--entrypoint", "/bin/busybox", f"{IMAGE}:v2.7.4",
          "sh", "-c", f"echo {text} > /cache/marker")
    return json.loads(inner(host, "volume", "inspect", CACHE))[0]["CreatedAt"]


def read_marker(host) -> str:
    return inner(host, "run", "--rm", "-v", f"{CACHE}:/cache", "--entrypoint", "/bin/busybox", f"{IMAGE}:v2.7.4",
                 "cat", "/cache/marker").strip()


def test_upgrade_moves_every_host_and_keeps_the_model_cache(old_sandbox, immich_fake_factory):
    box = old_sandbox
    created = {h.name: put_marker_in_cache(h, f"models-of-{h.name}") for h in box.hosts}
    server_upgrades_to(box, immich_fake_factory, "2.7.5")
    assert box.cli("upgrade", "--check", expect=1).output.count("BEHIND: runs v2.7.4") == 3
    data = box.cli_json("upgrade")
    assert [h["status"] for h in data["hosts"]] == ["upgraded"] * 3
    for h in data["hosts"]:
        assert h["previous_image"] == f"{IMAGE}:v2.7.4" and h["image"] == f"{IMAGE}:v2.7.5"
        assert 0 < h["window"] < 30  # old container stopped -> new /ping answered
    for host in box.hosts:
        assert ml_container(host)["Config"]["Image"] == f"{IMAGE}:v2.7.5"
        assert json.loads(inner(host, "volume", "inspect", CACHE))[0]["CreatedAt"] == created[host.name]
        assert read_marker(host) == f"models-of-{host.name}"
    assert box.cli("upgrade", "--check").exit_code == 0
    again = box.cli_json("upgrade")  # nothing left to do: touches nothing, records nothing
    assert [h["status"] for h in again["hosts"]] == ["unchanged"] * 3 and again["snapshot"] is None


def events(host, since: int) -> list[tuple[int, str, str, str]]:
    """(time in ns, type, action, actor) of the host engine's events since `since` (nanoseconds: a pull and
    a stop within the same second must still be ordered)."""
    lines = inner(host, "events", "--since", str(since), "--until", str(int(time.time()) + 1), "--format",
                  "{{.TimeNano}} {{.Type}} {{.Action}} {{.Actor.ID}}").splitlines()
    return [(int(t), kind, action, actor) for t, kind, action, actor in (line.split(" ", 3) for line in lines)]


def test_upgrade_prepulls_everywhere_before_the_first_swap(old_sandbox, immich_fake_factory):
    box = old_sandbox
    server_upgrades_to(box, immich_fake_factory, "2.7.5")
    since = int(time.time()) - 1
    box.cli("upgrade")  # --batch 1: hosts are swapped one after the other
    pulls = [t for h in box.hosts for t, kind, action, actor in events(h, since)
             if kind == "image" and action == "pull" and actor.endswith(":v2.7.5")]
    swaps = [t for h in box.hosts for t, kind, action, _ in events(h, since) if kind == "container"
             and action == "stop"]
    assert len(pulls) == 3 and swaps
    assert max(pulls) < min(swaps)  # the last host had its image before the first container stopped


def test_a_broken_new_version_stops_the_upgrade_then_max_fail_lets_the_others_go(testbed, fresh_hosts,
                                                                                  immich_fake_factory, tmp_path):
    box = make_sandbox(testbed, fresh_hosts, immich_fake_factory, tmp_path, version="2.7.4")
    box.host_settings["ml2"] = {"env": {"MACHINE_LEARNING_STUB_MODE": "unhealthy",
                                        "MACHINE_LEARNING_STUB_ONLY_VERSIONS": "v2.7.5"}}
    box.write_inventory()
    box.cli("deploy")
    server_upgrades_to(box, immich_fake_factory, "2.7.5")
    # Reverse URL order, batch 1: ml3 (canary) upgrades, ml2 fails and is rolled back, ml1 is not started.
    data = json.loads(box.cli("--json", "upgrade", expect=1).stdout)
    status = {h["host"]: h for h in data["hosts"]}
    assert data["canary"] == "ml3" and status["ml3"]["status"] == "upgraded"
    assert status["ml2"]["status"] == "rolled-back" and status["ml2"]["image"] == f"{IMAGE}:v2.7.4"
    assert status["ml1"]["status"] == "skipped" and "--max-fail 2" in status["ml1"]["fix"]
    assert ml_container(box.host_named("ml1"))["Config"]["Image"] == f"{IMAGE}:v2.7.4"
    assert ml_container(box.host_named("ml2"))["Config"]["Image"] == f"{IMAGE}:v2.7.4"
    human = box.cli("upgrade", "--max-fail", "2", expect=1).output
    assert f"on {IMAGE}:v2.7.4: ml2" in human and f"on {IMAGE}:v2.7.5: ml1, ml3" in human
    check = box.cli("upgrade", "--check", expect=1).output
    assert "ml2: BEHIND: runs v2.7.4" in check and "ml1: up to date" in check


def test_a_failing_canary_stops_the_upgrade(testbed, fresh_hosts, immich_fake_factory, tmp_path):
    box = make_sandbox(testbed, fresh_hosts, immich_fake_factory, tmp_path, version="2.7.4")
    box.write_inventory(env={"MACHINE_LEARNING_STUB_MODE": "crash", "MACHINE_LEARNING_STUB_ONLY_VERSIONS": "v2.7.5"})
    box.cli("deploy")
    server_upgrades_to(box, immich_fake_factory, "2.7.5")
    data = json.loads(box.cli("--json", "upgrade", expect=1).stdout)
    assert [h["status"] for h in data["hosts"]] == ["skipped", "skipped", "rolled-back"]
    assert all(ml_container(h)["Config"]["Image"] == f"{IMAGE}:v2.7.4" for h in box.hosts)


def test_status_reads_the_running_containers_and_the_url_order(old_sandbox):
    box = old_sandbox
    # Someone replaced ml3's container by hand with another tag: status must say so (it reads the host).
    host = box.host_named("ml3")
    host.exec(["sh", "-c", "cd /home/deploy/immich-remote-ml && sed -i 's/v2.7.4/v2.7.5/' docker-compose.yml && "
               "docker compose up -d --pull missing"])
    data = box.cli_json("status", expect=1)
    running = {h["host"]: h["running_version"] for h in data["hosts"]}
    assert running == {"ml1": "v2.7.4", "ml2": "v2.7.4", "ml3": "v2.7.5"}
    assert [h["registered_position"] for h in data["hosts"]] == [1, 2, 3]
    assert data["immich"]["urls"] == [h.ml_url for h in box.hosts] + [box.bed.local_ml_url]
    assert data["immich"]["would_use"] == box.hosts[0].ml_url
    assert data["hosts"][0]["last_change"]["command"] == "deploy" and data["hosts"][0]["ping_ms"] > 0
    # stop ml1's host: status says it is unreachable and the server would use ml2
    box.hosts[0].stop(timeout=5)
    data = box.cli_json("status", expect=1)
    assert data["hosts"][0]["reachable"] is False and data["immich"]["would_use"] == box.hosts[1].ml_url


def test_rollback_returns_files_and_tag_exactly(old_sandbox, immich_fake_factory):
    box = old_sandbox
    host = box.hosts[0]
    before = host.exec(["cat", "/home/deploy/immich-remote-ml/docker-compose.yml"]).stdout
    server_upgrades_to(box, immich_fake_factory, "2.7.5")
    box.cli("upgrade", "ml1")
    assert ml_container(host)["Config"]["Image"] == f"{IMAGE}:v2.7.5"
    data = box.cli_json("rollback", "ml1")
    assert data["hosts"][0]["status"] == "reverted"
    assert ml_container(host)["Config"]["Image"] == f"{IMAGE}:v2.7.4"
    assert host.exec(["cat", "/home/deploy/immich-remote-ml/docker-compose.yml"]).stdout == before
    # nothing before the first release: a clear refusal
    fresh = box.host_named("ml2")
    fresh.wipe()
    box.write_inventory(hosts=[fresh])
    assert "no previous deployment" in box.cli("rollback", "ml2", expect=1).output


def test_config_restore_puts_back_exactly_the_recorded_url_list(old_sandbox):
    box = old_sandbox
    original = box.fake.config
    # a later deploy of only ml1 with remote-first order; then restore the first snapshot
    first = sorted((box.state_dir / "snapshots").iterdir())[0].name
    box.write_inventory(hosts=box.hosts[:1])
    box.cli("remove", "ml1")
    assert box.urls() != original["machineLearning"]["urls"]
    data = box.cli_json("config", "restore", first)
    assert data["urls_after"] == [box.bed.local_ml_url]  # as recorded before the very first deploy
    assert box.fake.config["machineLearning"]["urls"] == [box.bed.local_ml_url]
    # everything else as it was
    now = box.fake.config
    now["machineLearning"]["urls"] = original["machineLearning"]["urls"]
    assert now == original
    listed = box.cli_json("config", "snapshots")["snapshots"]
    assert [s["command"] for s in listed][-1] == "config-restore"


def test_remove_keeps_the_fallback_and_the_cache(old_sandbox):
    box = old_sandbox
    host = box.hosts[0]
    put_marker_in_cache(host, "keep-me")
    data = box.cli_json("remove", "ml1")
    assert data["hosts"][0]["status"] == "removed"
    assert box.urls() == [h.ml_url for h in box.hosts[1:]] + [box.bed.local_ml_url]
    assert ml_container(host) is None
    assert read_marker(host) == "keep-me"
    # the fallback works: predictions still find a healthy URL
    box.fake.wait_for_health(box.bed.local_ml_url, True, timeout=10)
    assert box.fake.predict("clip").url in box.urls()
    # removing every remote host leaves the local URL only, never an empty list
    box.cli("remove", "ml2", "ml3")
    assert box.urls() == [box.bed.local_ml_url]
    assert "no remove-all default" in box.cli("remove", expect=2).output


def test_remove_in_remote_only_mode_needs_restore_local(old_sandbox):
    box = old_sandbox
    box.write_inventory(hosts=box.hosts[:1])
    data = box.inventory.read_text().replace("immich:\n", "immich:\n  fallback: remote-only\n", 1)
    box.inventory.write_text(data)
    box.cli("deploy", "--remote-only")
    assert box.urls()[0] == box.hosts[0].ml_url and box.bed.local_ml_url not in box.urls()
    # (ml2 and ml3 are not in this inventory; they stay registered as unmanaged URLs)
    box.fake.set_config({**box.fake.config, "machineLearning": {**box.fake.config["machineLearning"],
                                                                 "urls": [box.hosts[0].ml_url]}})
    result = box.cli("remove", "ml1", expect=1)
    assert "no machine-learning URL at all" in result.output and "--restore-local" in result.output
    assert box.urls() == [box.hosts[0].ml_url] and ml_container(box.hosts[0]) is not None
    box.cli("remove", "ml1", "--restore-local")
    assert box.urls() == [box.bed.local_ml_url]


def test_upgrade_waits_for_the_server_to_come_back_with_its_new_version(old_sandbox, immich_fake_factory):
    box = old_sandbox
    old = box.fake
    port, config = old.port, old.config
    old.stop()  # the server restarts during its own upgrade: nothing answers for a while

    def server_comes_back() -> None:
        time.sleep(4)
        immich_fake_factory("2.7.5", config=config, ml_url=box.bed.local_ml_url, port=port)

    thread = threading.Thread(target=server_comes_back)
    thread.start()
    try:
        started = time.monotonic()
        data = box.cli_json("upgrade", "--wait-server", "--wait-timeout", "60s")
        assert time.monotonic() - started >= 4
    finally:
        thread.join()
    assert [h["status"] for h in data["hosts"]] == ["upgraded"] * 3


def test_wait_server_gives_up_at_its_deadline(old_sandbox):
    old_sandbox.fake.stop()
    result = old_sandbox.cli("upgrade", "--wait-server", "--wait-timeout", "4s", expect=1)
    assert "did not come back with a new version within 4s" in result.output
