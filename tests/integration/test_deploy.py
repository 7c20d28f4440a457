"""The main job, end to end on the test bed: real sshd, real Docker + Compose v2 per host, the local
registry, and the Immich fake (the only fake)."""

from __future__ import annotations

import json
import time

import pytest

from tests.integration.sandbox import IMAGE, inner, ml_container

pytestmark = pytest.mark.integration


def without_urls(config: dict) -> dict:
    stripped = json.loads(json.dumps(config))
    del stripped["machineLearning"]["urls"]
    return stripped


def test_deploy_three_hosts_registers_them_ahead_of_local_and_keeps_the_rest_of_the_config(sandbox):
    before = sandbox.fake.config
    data = sandbox.cli_json("deploy")
    assert [h["status"] for h in data["hosts"]] == ["deployed"] * 3
    assert all(h["image"] == f"{IMAGE}:v2.7.5" for h in data["hosts"])
    # Immich's list: the remote hosts in inventory order (same priority), then the local fallback.
    expected = [h.ml_url for h in sandbox.hosts] + [sandbox.bed.local_ml_url]
    assert sandbox.urls() == expected
    # Nothing else changed: field by field, and in the same key order.
    after = sandbox.fake.config
    assert without_urls(after) == without_urls(before)
    assert list(after) == list(before) and list(after["machineLearning"]) == list(before["machineLearning"])
    for section in before:
        assert json.dumps(after[section]) == json.dumps(before[section]) or section == "machineLearning"
    # Exactly one write request of any kind: the PUT of the whole config (permissions are read, not probed).
    writes = [r for r in sandbox.fake.requests() if r.method != "GET"]
    assert [(r.method, r.status) for r in writes] == [("PUT", 200)]
    assert without_urls(writes[0].body) == without_urls(before)
    # Each host really serves, through its private bind address, the version-matched stub.
    for host in sandbox.hosts:
        container = ml_container(host)
        assert container["Config"]["Image"] == f"{IMAGE}:v2.7.5"
        assert container["HostConfig"]["PortBindings"]["3003/tcp"] == [{"HostIp": host.ip, "HostPort": "3003"}]
        assert container["HostConfig"]["RestartPolicy"]["Name"] == "always"
        assert any(m["Destination"] == "/cache" and m["Name"] == "immich_remote_ml_model-cache"
                   for m in container["Mounts"])
    # A snapshot of the config as it was was recorded, private.
    snapshot = sandbox.state_dir / "snapshots"
    (recorded,) = [p for p in snapshot.iterdir() if (p / "immich-config.json").exists()]
    assert json.loads((recorded / "immich-config.json").read_text()) == before
    assert oct((recorded / "immich-config.json").stat().st_mode & 0o777) == "0o600"


def test_second_deploy_changes_nothing(sandbox):
    sandbox.cli("deploy")
    started = {h.name: ml_container(h)["State"]["StartedAt"] for h in sandbox.hosts}
    puts_before = len([r for r in sandbox.fake.requests(method="PUT") if r.status == 200])
    snapshots_before = sorted((sandbox.state_dir / "snapshots").iterdir())
    t0 = time.monotonic()
    data = sandbox.cli_json("deploy")
    elapsed = time.monotonic() - t0
    assert [h["status"] for h in data["hosts"]] == ["unchanged"] * 3
    assert data["immich"]["changed"] is False
    assert len([r for r in sandbox.fake.requests(method="PUT") if r.status == 200]) == puts_before  # not written
    assert {h.name: ml_container(h)["State"]["StartedAt"] for h in sandbox.hosts} == started  # not recreated
    assert sorted((sandbox.state_dir / "snapshots").iterdir()) == snapshots_before  # nothing recorded
    assert elapsed < 30  # generous; the benchmark measures it properly


def test_unhealthy_host_is_rolled_back_while_the_others_succeed(sandbox):
    sandbox.cli("deploy")
    sandbox.host_settings["ml2"] = {"env": {"MACHINE_LEARNING_STUB_MODE": "unhealthy"}}
    sandbox.write_inventory(env={"MACHINE_LEARNING_MODEL_TTL": "600"})
    result = sandbox.cli("--json", "deploy", expect=1)
    data = json.loads(result.stdout)
    status = {h["host"]: h for h in data["hosts"]}
    assert status["ml1"]["status"] == status["ml3"]["status"] == "deployed"
    assert status["ml2"]["status"] == "rolled-back" and "503" in status["ml2"]["message"]
    # ml2 runs its previous release again (without the new env), and still serves.
    env = ml_container(sandbox.host_named("ml2"))["Config"]["Env"]
    assert "MACHINE_LEARNING_STUB_MODE=unhealthy" not in env and "MACHINE_LEARNING_MODEL_TTL=600" not in env
    assert "MACHINE_LEARNING_MODEL_TTL=600" in ml_container(sandbox.host_named("ml1"))["Config"]["Env"]
    # The URL list still has all three (ml2 keeps serving its previous release).
    assert sandbox.urls()[:3] == [h.ml_url for h in sandbox.hosts]


def test_first_deploy_failure_leaves_the_host_clean_and_unregistered(sandbox):
    sandbox.host_settings["ml3"] = {"env": {"MACHINE_LEARNING_STUB_MODE": "crash"}}
    sandbox.write_inventory()
    data = json.loads(sandbox.cli("--json", "deploy", expect=1).stdout)
    ml3 = next(h for h in data["hosts"] if h["host"] == "ml3")
    assert ml3["status"] == "failed" and "nothing ran here before" in ml3["message"]
    assert ml_container(sandbox.host_named("ml3")) is None
    assert sandbox.host_named("ml3").ml_url not in sandbox.urls()
    assert sandbox.urls()[-1] == sandbox.bed.local_ml_url
    # the cache volume was created and is kept
    assert "immich_remote_ml_model-cache" in inner(sandbox.host_named("ml3"), "volume", "ls", "-q")


def test_predictions_go_remote_then_fall_back_to_local_when_the_host_stops(sandbox):
    sandbox.write_inventory(hosts=sandbox.hosts[:1])
    sandbox.cli("deploy")
    remote, local = sandbox.hosts[0].ml_url, sandbox.bed.local_ml_url
    assert sandbox.urls() == [remote, local]
    sandbox.fake.wait_for_health(remote, True, timeout=10)
    assert sandbox.fake.predict("clip").url == remote
    sandbox.hosts[0].stop(timeout=5)
    sandbox.fake.wait_for_health(remote, False, timeout=10)
    assert sandbox.fake.predict("clip").url == local
    sandbox.hosts[0].start()
    sandbox.fake.wait_for_health(remote, True, timeout=30)  # restart: always brings it back after a reboot
    assert sandbox.fake.predict("clip").url == remote


def test_dry_run_shows_diffs_and_urls_and_touches_nothing(sandbox):
    result = sandbox.cli("deploy", "--dry-run")
    assert "+    image: registry.tb/immich-app/immich-machine-learning:v2.7.5" in result.output
    assert "would change" in result.output
    assert [r for r in sandbox.fake.requests(method="PUT") if r.status == 200] == []
    assert all(ml_container(h) is None for h in sandbox.hosts)
    assert not (sandbox.state_dir / "snapshots").exists() or not list((sandbox.state_dir / "snapshots").iterdir())
