"""deploy's options on the test bed: hung hosts, failure budget, shipping images, warming models,
re-running missing jobs, and `check` as data."""

from __future__ import annotations

import json
import subprocess
import time

import pytest
import yaml

from tests.integration.sandbox import IMAGE, inner, ml_container

pytestmark = pytest.mark.integration


def set_ssh(sandbox, **settings) -> None:
    data = yaml.safe_load(sandbox.inventory.read_text())
    data["ssh"].update(settings)
    sandbox.inventory.write_text(yaml.safe_dump(data, sort_keys=False))


def test_a_hung_host_fails_fast_and_does_not_block_the_others(sandbox):
    # Shortened on purpose: a hung host is given up after ssh.connect_timeout (default 10 s); this test
    # is about the others not waiting for it, which 3 s shows as well, in a third of the CI time.
    set_ssh(sandbox, connect_timeout="3s", command_timeout="20s")
    hung = sandbox.hosts[1]
    hung.pause()
    started = time.monotonic()
    data = json.loads(sandbox.cli("--json", "deploy", expect=1).stdout)
    elapsed = time.monotonic() - started
    status = {h["host"]: h for h in data["hosts"]}
    assert status["ml2"]["status"] == "failed" and "no SSH answer" in status["ml2"]["message"]
    assert status["ml1"]["status"] == status["ml3"]["status"] == "deployed"
    assert elapsed < 40
    assert sandbox.urls() == [sandbox.hosts[0].ml_url, sandbox.hosts[2].ml_url, sandbox.bed.local_ml_url]


def test_a_failing_canary_stops_the_deploy_and_leaves_the_others_untouched(sandbox):
    for host in sandbox.hosts:
        sandbox.host_settings[host.name] = {"env": {"MACHINE_LEARNING_STUB_MODE": "crash"}}
    sandbox.write_inventory()
    data = json.loads(sandbox.cli("--json", "deploy", expect=1).stdout)
    # Results in Immich's URL order; the canary is the last of them (the host Immich would use least).
    assert [h["host"] for h in data["hosts"]] == ["ml1", "ml2", "ml3"] and data["canary"] == "ml3"
    assert [h["status"] for h in data["hosts"]] == ["skipped", "skipped", "failed"]
    assert "the canary ml3 failed" in data["hosts"][0]["message"]
    assert "--max-fail 2" in data["hosts"][0]["fix"] and "--limit ml2,ml1 deploy" in data["hosts"][0]["fix"]
    assert ml_container(sandbox.hosts[0]) is None and ml_container(sandbox.hosts[1]) is None
    assert sandbox.urls() == [sandbox.bed.local_ml_url]


def test_max_fail_raises_the_failure_budget(sandbox):
    for host in sandbox.hosts:
        sandbox.host_settings[host.name] = {"env": {"MACHINE_LEARNING_STUB_MODE": "crash"}}
    sandbox.write_inventory()
    data = json.loads(sandbox.cli("--json", "deploy", "--parallel", "1", "--max-fail", "2", expect=1).stdout)
    # canary ml3 fails (budget 2 left 1), then ml2 fails: ml1 is not started.
    assert [h["status"] for h in data["hosts"]] == ["skipped", "failed", "failed"]
    assert "2 host(s) failed" in data["hosts"][0]["message"]


def test_ship_image_streams_it_over_ssh_without_a_registry(sandbox):
    host = sandbox.hosts[0]
    # v2.6.0 exists in no registry: only this machine's engine has it, so a pull on the host would fail.
    image = f"{IMAGE}:v2.6.0"
    subprocess.run(["docker", "tag", "immich-app/immich-machine-learning:v2.7.4", image], check=True,
                   capture_output=True)
    try:
        sandbox.write_inventory(hosts=[host])
        failed = sandbox.cli_json("deploy", "--server-version", "2.6.0", expect=1)
        assert failed["hosts"][0]["status"] == "failed" and "docker pull" in failed["hosts"][0]["message"]
        data = sandbox.cli_json("deploy", "--server-version", "2.6.0", "--ship-image")
        assert data["hosts"][0]["status"] == "deployed"
        assert ml_container(host)["Config"]["Image"] == image
    finally:
        subprocess.run(["docker", "rmi", image], capture_output=True, check=False)


def test_warm_models_and_run_missing(sandbox):
    sandbox.write_inventory(hosts=sandbox.hosts[:1])
    sandbox.cli("deploy", "--warm-models", "--run-missing")
    host = sandbox.hosts[0]
    # the stub writes each requested model into the cache, like the real one downloads it
    cached = inner(host, "run", "--rm", "-v", "immich_remote_ml_model-cache:/cache", "--entrypoint",
                   "/bin/busybox", f"{IMAGE}:v2.7.5", "find", "/cache", "-type", "f")
    assert "/cache/clip/ViT-B-16-SigLIP__webli/" in cached  # the model Immich is configured with
    assert "/cache/facial-recognition/buffalo_l/" in cached
    commands = sandbox.fake.job_commands()
    assert sorted(c.name for c in commands) == ["faceDetection", "ocr", "smartSearch"]
    assert all(c.body == {"command": "start", "force": False} for c in commands)  # never force


def test_check_as_data(sandbox):
    data = sandbox.cli_json("check")
    assert data["ok"] is True
    ml1 = data["hosts"]["ml1"]
    assert ml1["backend"] == "cpu"
    names = [c["name"] for c in ml1["checks"]]
    assert names[:4] == ["ssh", "docker", "compose", "arch"] and {"accel", "disk", "bind", "port"} <= set(names)
    assert [c["name"] for c in data["immich"]] == ["server", "api key", "permission", "config"]


def test_auto_accel_picks_cpu_here_and_says_why_gpus_were_passed_over(sandbox):
    sandbox.write_inventory(hosts=sandbox.hosts[:1], accel="auto")
    data = sandbox.cli_json("deploy")
    assert data["hosts"][0]["backend"] == "cpu"
    check = sandbox.cli_json("check")
    accel = next(c for c in check["hosts"]["ml1"]["checks"] if c["name"] == "accel")
    assert accel["detail"].startswith("cpu: auto:")


def test_cuda_on_a_host_without_gpu_is_refused_by_preflight(sandbox):
    sandbox.write_inventory(hosts=sandbox.hosts[:1], accel="cuda")
    result = sandbox.cli("deploy", expect=1)
    assert "accel: accelerator 'cuda' is not usable: no NVIDIA GPU visible" in result.output
    assert ml_container(sandbox.hosts[0]) is None


def test_ssh_config_aliases_users_ports_and_keys_work_as_with_openssh(sandbox):
    host = sandbox.hosts[0]
    config = sandbox.workdir / "ssh_config"
    config.write_text(f"Host gpu-box\n  HostName 127.0.0.1\n  Port {host.ssh_port}\n  User deploy\n"
                      f"  IdentityFile {sandbox.bed.client_key}\n")
    data = yaml.safe_load(sandbox.inventory.read_text())
    data["ssh"]["config"] = str(config)
    entry = data["hosts"].pop(host.name)
    data["hosts"] = {"gpu-box": {"address": "gpu-box", "bind_address": entry["bind_address"], "url": entry["url"]}}
    data["groups"] = {}
    del data["defaults"]["ssh_user"], data["defaults"]["ssh_key"]
    sandbox.inventory.write_text(yaml.safe_dump(data, sort_keys=False))
    result = sandbox.cli_json("deploy")
    assert result["hosts"][0]["status"] == "deployed"
    assert ml_container(host) is not None
