"""Every refusal ends in one clear message, the right exit code, and no change anywhere."""

from __future__ import annotations

import json

import pytest

from tests.integration.sandbox import ml_container
from tests.testbed.immich_fake import ApiKey

pytestmark = pytest.mark.integration


def no_change(sandbox) -> None:
    assert [r for r in sandbox.fake.requests(method="PUT") if r.status == 200] == []
    assert all(ml_container(h) is None for h in sandbox.hosts)


def test_unknown_host_key_is_refused_with_fingerprint_and_the_trust_command(sandbox):
    # An empty known_hosts: the host is unknown (strict checking stays on; nothing is auto-added).
    empty = sandbox.workdir / "empty_known_hosts"
    empty.write_text("")
    data = sandbox.inventory.read_text().replace(str(sandbox.bed.known_hosts), str(empty))
    sandbox.inventory.write_text(data)
    result = sandbox.cli("deploy", expect=1)
    assert "is not in known_hosts; its ssh-ed25519 key fingerprint is SHA256:" in result.output
    assert "immich-remote trust ml1" in result.output
    assert "Traceback" not in result.output
    assert empty.read_text() == ""
    no_change(sandbox)


def test_trust_records_the_key_and_then_deploy_connects(sandbox):
    known = sandbox.workdir / "trusted_known_hosts"
    sandbox.inventory.write_text(sandbox.inventory.read_text().replace(str(sandbox.bed.known_hosts), str(known)))
    out = sandbox.cli_json("trust", "ml1", "--yes")
    expected = next(line for line in sandbox.bed.known_hosts.read_text().splitlines()
                    if line.startswith(f"[127.0.0.1]:{sandbox.hosts[0].ssh_port} "))
    assert out["fingerprint"].startswith("SHA256:") and known.read_text().strip() == expected
    assert "already trusted" in sandbox.cli("trust", "ml1", "--yes").output
    assert known.read_text().strip() == expected  # not recorded twice
    assert sandbox.cli("check", "ml1").exit_code == 0


def test_changed_host_key_is_refused_loudly(sandbox):
    other = sandbox.hosts[1]
    lines = sandbox.bed.known_hosts.read_text().splitlines()
    key_of_ml2 = next(line.split(" ", 1)[1] for line in lines if line.startswith(f"[127.0.0.1]:{other.ssh_port} "))
    forged = sandbox.workdir / "forged_known_hosts"
    forged.write_text(f"[127.0.0.1]:{sandbox.hosts[0].ssh_port} {key_of_ml2}\n")
    sandbox.inventory.write_text(sandbox.inventory.read_text().replace(str(sandbox.bed.known_hosts), str(forged)))
    result = sandbox.cli("check", "ml1", expect=1)
    assert "presented a DIFFERENT host key" in result.output and "ssh-keygen -R" in result.output


def test_missing_permission_is_named(sandbox, immich_fake_factory, testbed):
    limited = ApiKey("read-only-key", permissions=("systemConfig.read", "server.about"))
    sandbox.fake = immich_fake_factory("2.7.5", api_keys=[limited], ml_url=testbed.local_ml_url)
    (sandbox.workdir / "api-key").write_text("read-only-key\n")
    sandbox.write_inventory()
    result = sandbox.cli("deploy", expect=1)
    assert "lacks permission systemConfig.update" in result.output
    assert "Account Settings > API Keys" in result.output
    no_change(sandbox)


def test_locked_config_prints_the_json_for_the_config_file_and_exits_3(sandbox, immich_fake_factory, testbed):
    sandbox.fake = immich_fake_factory("2.7.5", locked=True, ml_url=testbed.local_ml_url)
    sandbox.write_inventory(hosts=sandbox.hosts[:1])
    result = sandbox.cli("--json", "deploy", expect=3)
    data = json.loads(result.stdout)
    snippet = json.loads(data["immich"]["config_file_snippet"])
    assert snippet["machineLearning"]["urls"] == [sandbox.hosts[0].ml_url, testbed.local_ml_url]
    assert data["hosts"][0]["status"] == "deployed"  # the container runs; only registration is left to the user
    human = sandbox.cli("deploy", expect=3).output
    assert "IMMICH_CONFIG_FILE" in human and '"urls": [' in human


def test_public_bind_address_is_refused_unless_allowed(sandbox):
    sandbox.host_settings["ml1"] = {"bind_address": "0.0.0.0"}
    sandbox.write_inventory(hosts=sandbox.hosts[:1])
    result = sandbox.cli("deploy", expect=1)
    assert "0.0.0.0:3003 is every interface" in result.output and "--allow-public" in result.output
    no_change(sandbox)
    data = sandbox.cli_json("deploy", "--allow-public")
    assert data["hosts"][0]["status"] == "deployed"
    binding = ml_container(sandbox.hosts[0])["HostConfig"]["PortBindings"]["3003/tcp"][0]
    assert binding["HostIp"] == "0.0.0.0"


def test_host_without_docker_fails_with_what_to_install(sandbox):
    host = sandbox.hosts[0]
    host.exec(["mv", "/usr/bin/docker", "/usr/bin/docker.hidden"])
    try:
        sandbox.write_inventory(hosts=[host])
        result = sandbox.cli("check", expect=1)
        assert "Docker is not installed" in result.output and "apt install docker.io" in result.output
        result = sandbox.cli("deploy", expect=1)
        assert "docker: Docker is not installed" in result.output
    finally:
        host.exec(["mv", "/usr/bin/docker.hidden", "/usr/bin/docker"])
    assert sandbox.urls() == [sandbox.bed.local_ml_url]


def test_deploy_user_outside_the_docker_group(sandbox):
    host = sandbox.hosts[0]
    host.exec(["gpasswd", "-d", "deploy", "docker"])
    try:
        sandbox.write_inventory(hosts=[host])
        result = sandbox.cli("check", expect=1)
        assert "deploy may not use the Docker socket" in result.output and "usermod -aG docker deploy" in result.output
    finally:
        host.exec(["usermod", "-aG", "docker", "deploy"])


def test_lock_held_by_another_run(sandbox):
    host = sandbox.hosts[0]
    sandbox.write_inventory(hosts=[host])
    sandbox.cli("deploy")
    host.exec(["sh", "-c", "mkdir -p /home/deploy/immich-remote-ml/.immich-remote/lock && echo "
               "'{\"by\": \"alice@laptop\", \"at\": \"2026-11-27T09:00:00+00:00\", \"command\": \"upgrade\"}' "
               "> /home/deploy/immich-remote-ml/.immich-remote/lock/owner && chown -R deploy "
               "/home/deploy/immich-remote-ml/.immich-remote/lock"])
    sandbox.write_inventory(hosts=[host], env={"MACHINE_LEARNING_MODEL_TTL": "60"})
    result = sandbox.cli("deploy", expect=1)
    assert "locked by alice@laptop since 2026-11-27T09:00:00+00:00 (upgrade" in result.output
    assert "--break-lock" in result.output
    assert sandbox.cli_json("deploy", "--break-lock")["hosts"][0]["status"] == "deployed"
    assert "lock" not in host.exec(["ls", "/home/deploy/immich-remote-ml/.immich-remote"]).stdout.split()


def test_remote_only_needs_confirmation(sandbox):
    data = sandbox.inventory.read_text().replace("immich:\n", "immich:\n  fallback: remote-only\n", 1)
    sandbox.inventory.write_text(data)
    result = sandbox.cli("deploy", expect=2)
    assert "needs --remote-only" in result.output and "jobs FAIL" in result.output
    no_change(sandbox)
