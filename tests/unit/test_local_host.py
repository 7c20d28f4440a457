"""The host commands as a user runs them, against a real OpenSSH server on this machine and the Immich fake.

No Docker engine is needed for what is asserted here (the probe reports whether one is there); no
container is started and nothing is pulled: these are the read-only paths (`check`, `status`,
`deploy --dry-run`, `upgrade --check`, `plan`), `trust`, and `rollback` with nothing to go back to.
What a user notices: the right verdicts, only GET requests to Immich, nothing written on the host.
"""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from immich_remote.cli import cli
from tests.testbed.immich_fake import DEFAULT_API_KEY, FakeImmichServer
from tests.unit.local_sshd import LocalSshd, free_port

ML_PORT = free_port()


@functools.cache  # the machine's Docker engine does not come and go during a run; `docker info` costs
def docker_usable() -> bool:
    docker = shutil.which("docker")
    return bool(docker) and subprocess.run([docker, "info"], capture_output=True, timeout=30).returncode == 0


@pytest.fixture
def box(tmp_path: Path, local_sshd: LocalSshd, immich_fake: FakeImmichServer):
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(
        f"immich:\n  url: {immich_fake.url}\n"
        f"ssh:\n  known_hosts: {local_sshd.known_hosts}\n"
        f"hosts:\n  box:\n    address: 127.0.0.1\n    ssh_port: {local_sshd.port}\n    ssh_user: {local_sshd.user}\n"
        f"    ssh_key: {local_sshd.client_key}\n    bind_address: 127.0.0.1\n    ml_port: {ML_PORT}\n"
        f"    remote_dir: {tmp_path / 'remote'}\n")
    return tmp_path, inventory, immich_fake


def run(box, *args: str) -> Result:
    tmp_path, inventory, _ = box
    env = {"IMMICH_API_KEY": DEFAULT_API_KEY, "NO_COLOR": "1", "COLUMNS": "200", "NO_PROXY": "*",
           "IMMICH_REMOTE_STATE_DIR": str(tmp_path / "state")}
    return CliRunner().invoke(cli, ["-i", str(inventory), *args], env=env, catch_exceptions=False)


def only_reads(fake: FakeImmichServer) -> bool:
    return {r.method for r in fake.requests()} == {"GET"}


def test_check_probes_the_host_over_ssh_and_only_reads(box):
    result = run(box, "check")
    lines = {line.split()[0]: line for line in result.output.splitlines() if line.strip()}
    assert "host key verified" in lines["ssh"]
    assert f"127.0.0.1:{ML_PORT} (loopback)" in lines["bind"]
    if docker_usable():
        assert result.exit_code == 0, result.output
        assert lines["docker"].split()[1] == "pass" and "All checks passed." in result.output
    else:
        assert result.exit_code != 0 and lines["docker"].split()[1] == "fail"
    assert only_reads(box[2])
    assert not (box[0] / "remote").exists()


def test_a_dry_run_shows_the_steps_and_the_files_and_changes_nothing(box):
    result = run(box, "deploy", "--dry-run")
    if not docker_usable():
        assert result.exit_code != 0 and "box" in result.output and "Docker" in result.output
        return
    assert result.exit_code == 0, result.output
    assert "box: would deploy: nothing deployed yet" in result.output
    steps = [line.split()[1] for line in result.output.splitlines() if line[:5].strip().rstrip(".").isdigit()]
    assert steps == ["image", "lock", "record", "upload", "activate", "up", "gate", "history", "prune"]
    assert "+++ docker-compose.yml (new)" in result.output
    assert f'published: "{ML_PORT}"' in result.output and 'host_ip: "127.0.0.1"' in result.output
    assert f"after:  http://127.0.0.1:{ML_PORT}, http://immich-machine-learning:3003" in result.output
    assert only_reads(box[2])
    assert not (box[0] / "remote").exists()
    assert not list((box[0] / "state").glob("snapshots/*"))  # a dry run records nothing


def test_the_dry_run_as_json_names_the_planned_steps(box):
    if not docker_usable():
        pytest.skip("needs a Docker engine on this machine for the probe to pass")
    data = json.loads(run(box, "--json", "deploy", "--dry-run").stdout)
    (host,) = data["hosts"]
    assert host["host"] == "box" and host["status"] == "dry-run"
    assert host["steps"] == [step["name"] for step in host["plan"]]
    assert host["steps"][:4] == ["image", "lock", "record", "upload"]
    assert set(host["diff"]) == {"docker-compose.yml"}
    assert data["snapshot"] is None


def test_upgrade_check_reports_the_host_without_writing(box):
    result = run(box, "upgrade", "--check")
    assert "box" in result.output
    assert only_reads(box[2])
    assert not (box[0] / "remote").exists()


def test_status_of_a_host_with_nothing_deployed(box):
    result = run(box, "--json", "status")
    data = json.loads(result.stdout)
    (host,) = data["hosts"]
    assert host["host"] == "box" and host["reachable"] is True
    assert host["state"] is None and host["registered_position"] is None
    assert "Connection refused" in host["ping_error"]
    assert result.exit_code == 1  # a host without a serving container is not healthy
    assert only_reads(box[2])


def test_rollback_with_nothing_to_go_back_to_says_so_and_records_nothing(box):
    result = run(box, "rollback", "box")
    assert result.exit_code == 1
    assert "no previous deployment is recorded on the host" in result.output
    assert "Recorded before the change" not in result.output
    assert not list((box[0] / "state").glob("snapshots/*"))
    assert not [r for r in box[2].requests() if r.method != "GET"]


def test_trust_records_the_key_once_and_refuses_a_different_one(box, local_sshd, tmp_path):
    _, inventory, _ = box
    known = tmp_path / "fresh_known_hosts"
    inventory.write_text(inventory.read_text().replace(str(local_sshd.known_hosts), str(known)))
    refused = run(box, "check")
    assert refused.exit_code != 0 and "immich-remote trust box" in refused.output
    first = run(box, "trust", "box", "--yes")
    assert first.exit_code == 0, first.output
    assert known.read_text().splitlines() == [local_sshd.known_hosts_line]
    again = run(box, "trust", "box", "--yes")
    assert again.exit_code == 0 and known.read_text().splitlines() == [local_sshd.known_hosts_line]
    assert "already" in again.output.lower()
    known.write_text(f"[127.0.0.1]:{local_sshd.port} ssh-ed25519 "
                     "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n")
    changed = run(box, "trust", "box", "--yes")
    assert changed.exit_code == 2, changed.output
    assert "ssh-keygen -R" in changed.output
