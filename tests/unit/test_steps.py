"""The step planner: what a deploy does to a host, decided from its state alone (no SSH, no Docker)."""

from __future__ import annotations

import json
import textwrap

import pytest

from immich_remote.deployment import parse_deployment
from immich_remote.inventory import load_inventory
from immich_remote.render import render_host
from immich_remote.steps import plan_removal, plan_steps
from immich_remote.versions import ImmichVersion

FULL = ["image", "lock", "record", "upload", "activate", "up", "gate", "history", "prune"]


@pytest.fixture
def host(tmp_path):
    path = tmp_path / "hosts.yml"
    path.write_text(textwrap.dedent("""
        immich: {url: "http://immich:2283"}
        defaults: {accel: cpu}
        hosts:
          gpu: {address: 10.0.0.5}
    """))
    return load_inventory(path).host("gpu")


def rendering(host, version="2.7.5"):
    return render_host(host, ImmichVersion.parse(version), "cpu")


def container(image, *, status="running", health="healthy", restarts=0):
    return {"Name": "/immich_remote_ml-immich-machine-learning-1", "RestartCount": restarts,
            "State": {"Status": status, "Health": {"Status": health} if health else None, "ExitCode": 0},
            "Config": {"Image": image, "Env": [], "Labels": {"com.docker.compose.service": "immich-machine-learning"}},
            "HostConfig": {"PortBindings": {}}}


def state_of(files=None, state=None, containers=()):
    lines = [f"{digest} {name}" for name, digest in (files or {}).items()]
    text = "\n".join(lines) + "\n--state--\n" + (json.dumps(state) if state else "") + "\n--lock--\n\n--releases--\n"
    return parse_deployment(text, json.dumps(list(containers)))


def test_a_new_host_gets_every_step_in_order(host):
    r = rendering(host)
    plan = plan_steps(r, state_of())
    assert plan.action == "deploy" and plan.reason == "nothing deployed yet"
    assert plan.names == FULL
    assert [s.name for s in plan.stage] == ["image"] and plan.swap[0].name == "lock"
    assert plan.steps[0].detail == f"pull {r.image} unless the host has it"


def test_nothing_to_do_is_no_step_at_all(host):
    r = rendering(host)
    plan = plan_steps(r, state_of(r.hashes, {"current": "r1"}, [container(r.image)]))
    assert plan.action == "unchanged" and plan.steps == ()


def test_a_container_still_in_its_first_health_check_counts_as_serving(host):
    r = rendering(host)
    plan = plan_steps(r, state_of(r.hashes, {"current": "r1"}, [container(r.image, health="starting")]))
    assert plan.steps == ()


@pytest.mark.parametrize("found, reason", [
    ([], "no container"),
    ([{"status": "exited", "health": None}], "exited"),
    ([{"status": "running", "health": "unhealthy"}], "unhealthy"),
])
def test_same_files_but_no_serving_container_starts_it_again_without_an_upload(host, found, reason):
    r = rendering(host)
    containers = [container(r.image, **f) for f in found]
    plan = plan_steps(r, state_of(r.hashes, {"current": "r1"}, containers))
    assert plan.action == "start" and reason in plan.reason
    assert plan.names == [n for n in FULL if n != "upload"]
    assert "--force-recreate" in next(s.detail for s in plan.steps if s.name == "up")


def test_a_container_on_another_image_is_started_on_the_right_one(host):
    r = rendering(host)
    plan = plan_steps(r, state_of(r.hashes, {"current": "r1"}, [container(r.image.replace("v2.7.5", "v2.7.4"))]))
    assert plan.action == "start" and "v2.7.4" in plan.reason


def test_new_files_over_our_own_release_upload_a_new_one(host):
    old = rendering(host, "2.7.4")
    plan = plan_steps(rendering(host), state_of(old.hashes, {"current": "r1"}, [container(old.image)]))
    assert plan.action == "deploy" and plan.reason == "new files" and plan.names == FULL


def test_files_from_a_manual_setup_are_kept_as_a_release_first(host):
    old = rendering(host, "2.7.4")
    plan = plan_steps(rendering(host), state_of(old.hashes, None, [container(old.image)]))
    assert plan.names == ["image", "lock", "record", "adopt", "upload", "activate", "up", "gate", "history",
                          "prune"]


def test_options_add_their_steps(host):
    plan = plan_steps(rendering(host), state_of(), ship_image=True, warm_models=True)
    assert plan.steps[0].detail.startswith("ship ")
    assert plan.names.index("warm") == plan.names.index("gate") + 1


# --- remove ----------------------------------------------------------------------------------------

def test_removing_a_host_with_nothing_deployed_has_no_step():
    plan = plan_removal(state_of(), purge_cache=True, cache_volume="immich_remote_ml_model-cache")
    assert (plan.names, plan.reason) == ([], "nothing deployed")


def test_removing_a_serving_host_keeps_the_cache_unless_purged():
    state = state_of(files={"docker-compose.yml": "a" * 64}, state={"current": "r1"},
                     containers=[container("ghcr.io/immich-app/immich-machine-learning:v2.7.5")])
    kept = plan_removal(state, purge_cache=False, cache_volume="vol")
    assert kept.names == ["lock", "record", "down", "unlink", "state", "history"]
    purged = plan_removal(state, purge_cache=True, cache_volume="vol")
    assert purged.names == ["lock", "record", "down", "purge", "unlink", "state", "history"]
    assert "docker volume rm vol" in purged.steps[3].detail
    on_a_path = plan_removal(state, purge_cache=True, cache_volume=None)  # a host-path cache is never deleted
    assert "purge" not in on_a_path.names


def test_containers_left_without_files_are_still_taken_down():
    state = state_of(containers=[container("img:v2.7.5", status="exited", health="")])
    assert plan_removal(state, purge_cache=False, cache_volume="vol").names == [
        "lock", "record", "down", "state", "history"]


def test_a_host_already_removed_only_has_its_record():
    state = state_of(state={"current": "r1"})  # files and container gone by hand, the state still says r1
    assert plan_removal(state, purge_cache=False, cache_volume="vol").names == ["lock", "record", "state", "history"]
