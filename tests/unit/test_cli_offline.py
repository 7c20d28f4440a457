"""The offline commands as a user runs them: exit codes, messages, files on disk, JSON."""

import json
from pathlib import Path

from click.testing import CliRunner

from immich_remote.cli import cli

REPO = Path(__file__).resolve().parents[2]
FLEET = str(REPO / "inventory" / "example-fleet.yml")
WORKSTATION = str(REPO / "inventory" / "example-workstation.yml")


def run(*args, env=None):
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def test_inventory_check_valid_human_and_json():
    result = run("-i", FLEET, "inventory", "check")
    assert result.exit_code == 0 and "valid (native format, 3 hosts)" in result.output
    data = json.loads(run("-i", FLEET, "--json", "inventory", "validate").output)
    assert [h["name"] for h in data["hosts"]] == ["nvidia-box", "nuc", "spare"]
    assert "api_key" not in json.dumps(data).replace("api_key_source", "")


def test_invalid_inventory_exit_2_one_message_no_traceback(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("immich: {url: http://immich:2283}\nhosts:\n  gpu:\n    address: 10.0.0.5\n    accel: tpu\n")
    result = CliRunner().invoke(cli, ["-i", str(bad), "inventory", "check"])
    assert result.exit_code == 2
    assert f"{bad}:5: hosts.gpu.accel: 'tpu' is not allowed" in result.output
    assert "Traceback" not in result.output


def test_inventory_from_environment_variable(tmp_path):
    result = run("inventory", "check", env={"IMMICH_REMOTE_INVENTORY": WORKSTATION})
    assert result.exit_code == 0 and "1 host" in result.output


def test_render_both_examples_writes_each_hosts_files(tmp_path):
    for inventory in (FLEET, WORKSTATION):
        result = run("-i", inventory, "render", "--server-version", "2.7.5", "--out", str(tmp_path / "out"))
        assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "workstation" / "hwaccel.ml.yml").exists()
    assert (tmp_path / "out" / "spare" / "docker-compose.yml").exists()
    assert not (tmp_path / "out" / "spare" / "hwaccel.ml.yml").exists()  # cpu: no overlay
    assert b"v2.7.5-cuda" in (tmp_path / "out" / "nvidia-box" / "docker-compose.yml").read_bytes()


def test_render_removes_a_stale_overlay_when_the_backend_changes(tmp_path, monkeypatch):
    out = tmp_path / "out"
    (out / "spare").mkdir(parents=True)
    (out / "spare" / "hwaccel.ml.yml").write_text("old")
    assert run("-i", FLEET, "render", "spare", "--server-version", "2.7.5", "--out", str(out)).exit_code == 0
    assert not (out / "spare" / "hwaccel.ml.yml").exists()


def test_plan_json_is_stable_data():
    args = ("-i", FLEET, "--limit", "gpus", "plan", "--server-version", "3.2.2", "--json")
    first, second = run(*args), run(*args)
    assert first.exit_code == 0 and first.stdout == second.stdout
    data = json.loads(first.stdout)
    assert [h["host"] for h in data["hosts"]] == ["nvidia-box", "nuc"]
    assert data["urls_after"] == ["http://192.168.1.50:3003", "http://nuc.home.example:3003",
                                  "http://immich-machine-learning:3003"]


def test_plan_refuses_moving_and_prerelease_versions():
    for version, words in (("release", "moving tag"), ("3.3.0-rc.1", "prerelease")):
        result = CliRunner().invoke(cli, ["-i", FLEET, "plan", "--server-version", version])
        assert result.exit_code == 2 and words in result.output


def test_plan_without_version_and_unreachable_server_says_what_to_do(tmp_path):
    inv = tmp_path / "i.yml"
    inv.write_text("immich: {url: 'http://127.0.0.1:9', timeout: 2s}\nhosts:\n  a: {address: 10.0.0.5}\n")
    result = CliRunner().invoke(cli, ["-i", str(inv), "plan"])
    assert result.exit_code == 1
    assert "Cannot reach the Immich server at http://127.0.0.1:9" in result.output
    assert "--server-version" in result.output


def test_unknown_limit_is_bad_input():
    result = CliRunner().invoke(cli, ["-i", FLEET, "--limit", "tpus", "plan", "--server-version", "2.7.5"])
    assert result.exit_code == 2 and "'tpus' matches no host or group" in result.output


def test_help_has_examples():
    for command in (["--help"], ["plan", "--help"], ["render", "--help"], ["inventory", "check", "--help"]):
        result = run(*command)
        assert result.exit_code == 0 and ("xample" in result.output or "Start here" in result.output)
