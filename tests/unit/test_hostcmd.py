"""The host-side scripts, run for real by /bin/sh in a temporary directory (no host, no network)."""

import json
import subprocess

import pytest

from immich_remote.deployment import parse_deployment
from immich_remote.hostcmd import (
    activate,
    adopt_current,
    commit_release,
    compose_up,
    files_state,
    prepare_release,
    prune_releases,
    release_lock,
    staging_dir,
    take_lock,
    write_state,
)
from immich_remote.names import HostPaths, remote_path


def run(script: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(script, shell=True, cwd=cwd, capture_output=True, text=True, check=False, timeout=20)


@pytest.mark.parametrize("given,expected", [("~/immich-remote-ml", "immich-remote-ml"), ("~", "."),
                                            ("/opt/ml/", "/opt/ml"), ("ml", "ml")])
def test_remote_path_is_relative_to_the_login_directory(given, expected):
    assert remote_path(given) == expected


def test_compose_commands_name_the_project_directory():
    assert compose_up(HostPaths.for_dir("~/x")) == [
        "docker", "compose", "--project-directory", "x", "-f", "x/docker-compose.yml", "up", "--detach",
        "--remove-orphans", "--pull", "never"]


def test_lock_is_exclusive_and_names_its_owner(tmp_path):
    paths = HostPaths("proj")
    first = run(take_lock(paths, json.dumps({"by": "alice@laptop", "at": "now"})), tmp_path)
    assert first.stdout.strip() == "LOCKED"
    second = run(take_lock(paths, json.dumps({"by": "bob@desk"})), tmp_path)
    assert second.stdout.splitlines()[0] == "HELD" and "alice@laptop" in second.stdout
    forced = run(take_lock(paths, json.dumps({"by": "bob@desk"}), force=True), tmp_path)
    assert forced.stdout.strip() == "LOCKED"
    assert "bob@desk" in (tmp_path / "proj/.immich-remote/lock/owner").read_text()
    run(release_lock(paths), tmp_path)
    assert not (tmp_path / "proj/.immich-remote/lock").exists()


def test_prepare_release_removes_staging_dirs_a_dead_run_left_behind(tmp_path):
    paths = HostPaths("proj")
    release(tmp_path, paths, "r1", {"docker-compose.yml": "one"})
    assert run(prepare_release(paths, "r0"), tmp_path).returncode == 0  # the host died during this upload
    (tmp_path / staging_dir(paths, "r0") / "docker-compose.yml").write_text("half")
    assert run(prepare_release(paths, "r2"), tmp_path).returncode == 0
    assert sorted(p.name for p in (tmp_path / "proj/.immich-remote/releases").iterdir()) == [".r2.tmp", "r1"]


def release(tmp_path, paths, rid, files):
    assert run(prepare_release(paths, rid), tmp_path).returncode == 0
    for name, text in files.items():
        (tmp_path / staging_dir(paths, rid) / name).write_text(text)
    assert run(commit_release(paths, rid), tmp_path).returncode == 0


def test_activate_swaps_files_and_state_and_keeps_the_old_release(tmp_path):
    paths = HostPaths("proj")
    release(tmp_path, paths, "r1", {"docker-compose.yml": "one", "hwaccel.ml.yml": "cuda"})
    release(tmp_path, paths, "r2", {"docker-compose.yml": "two"})
    assert run(activate(paths, "r1", json.dumps({"current": "r1"})), tmp_path).returncode == 0
    assert (tmp_path / "proj/hwaccel.ml.yml").read_text() == "cuda"
    assert run(activate(paths, "r2", json.dumps({"current": "r2", "previous": "r1"})), tmp_path).returncode == 0
    assert (tmp_path / "proj/docker-compose.yml").read_text() == "two"
    assert not (tmp_path / "proj/hwaccel.ml.yml").exists()  # a backend switch drops the stale overlay
    state = json.loads((tmp_path / "proj/.immich-remote/state.json").read_text())
    assert state == {"current": "r2", "previous": "r1"}
    assert (tmp_path / "proj/.immich-remote/releases/r1/hwaccel.ml.yml").exists()
    # and a missing release is refused without touching anything
    assert run(activate(paths, "nope", "{}"), tmp_path).returncode != 0
    assert (tmp_path / "proj/docker-compose.yml").read_text() == "two"


def test_files_state_reads_back_as_deployment(tmp_path):
    paths = HostPaths("proj")
    release(tmp_path, paths, "r1", {"docker-compose.yml": "one"})
    run(activate(paths, "r1", json.dumps({"current": "r1", "previous": None})), tmp_path)
    run(take_lock(paths, json.dumps({"by": "carol@x"})), tmp_path)
    out = run(files_state(paths), tmp_path).stdout
    state = parse_deployment(out, "[]")
    assert set(state.files) == {"docker-compose.yml"} and len(state.files["docker-compose.yml"]) == 64
    assert state.current_release == "r1" and state.lock == {"by": "carol@x"} and state.releases == ["r1"]


def test_adopt_keeps_hand_made_files_as_a_release(tmp_path):
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj/docker-compose.yml").write_text("by hand")
    assert run(adopt_current(HostPaths("proj"), "r0-adopted"), tmp_path).returncode == 0
    assert (tmp_path / "proj/.immich-remote/releases/r0-adopted/docker-compose.yml").read_text() == "by hand"


def test_prune_keeps_current_previous_and_newest(tmp_path):
    paths = HostPaths("proj")
    for i in range(1, 9):
        release(tmp_path, paths, f"2026010{i}T000000Z-x", {"docker-compose.yml": str(i)})
    run(prune_releases(paths, ["20260101T000000Z-x"], newest=3), tmp_path)
    left = sorted(p.name for p in (tmp_path / "proj/.immich-remote/releases").iterdir())
    assert left == ["20260101T000000Z-x", "20260106T000000Z-x", "20260107T000000Z-x", "20260108T000000Z-x"]


def test_state_with_quotes_survives_shell_quoting(tmp_path):
    paths = HostPaths("proj")
    record = json.dumps({"by": "o'brien@laptop", "note": 'say "hi" $HOME `x`'})
    assert run(write_state(paths, record), tmp_path).returncode == 0
    assert json.loads((tmp_path / "proj/.immich-remote/state.json").read_text())["note"] == 'say "hi" $HOME `x`'
