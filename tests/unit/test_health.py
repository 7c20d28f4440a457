"""The health gate's decisions: the measured outage window and what `docker inspect` means for the gate.

Pure: no SSH, no Docker, no threads started. Containers come from `docker inspect`-shaped JSON.
"""

import json
import textwrap

import pytest

from immich_remote.deployment import parse_inspect
from immich_remote.health import PingWatch, container_verdict, outage_window
from immich_remote.inventory import load_inventory

NEW = "ghcr.io/immich-app/immich-machine-learning:v2.7.5"
OLD = "ghcr.io/immich-app/immich-machine-learning:v2.7.4"


def container(status="running", *, image=NEW, restarts=0, health=None, exit_code=0):
    state = {"Status": status, "ExitCode": exit_code, "StartedAt": "2025-01-01T00:00:00Z"}
    if health:
        state["Health"] = {"Status": health}
    item = {"Name": "/immich-remote-ml", "RestartCount": restarts, "State": state,
            "Config": {"Image": image, "Labels": {"com.docker.compose.service": "immich-machine-learning"}}}
    (parsed,) = parse_inspect(json.dumps([item]))
    return parsed


# --- outage_window ---------------------------------------------------------------------------------------------

def test_window_runs_from_the_last_pong_to_the_first_pong_after_the_outage():
    samples = [(0.0, True), (0.1, True), (0.2, False), (0.3, False), (1.6, True), (1.7, True)]
    assert outage_window(samples) == pytest.approx(1.5)


def test_window_is_zero_when_it_never_failed():
    assert outage_window([(0.0, True), (0.1, True), (0.2, True)]) == 0.0


def test_window_is_the_longest_outage_not_a_blip_before_it():
    # One poll lost before the swap (0.1 -> 0.3), then the container's real outage (0.6 -> 9.0).
    samples = [(0.0, True), (0.1, False), (0.3, True), (0.6, False), (9.0, True)]
    assert outage_window(samples) == pytest.approx(8.7)


def test_window_is_unknown_when_it_never_came_back():
    assert outage_window([(0.0, True), (0.1, False), (0.2, False)]) is None


def test_window_is_unknown_without_samples_or_without_any_pong():
    assert outage_window([]) is None
    assert outage_window([(0.0, False), (0.1, False)]) is None


def test_window_is_unknown_when_nothing_answered_before_the_first_failure():
    assert outage_window([(0.0, False), (0.1, False), (2.0, True), (2.1, True)]) is None


# --- container_verdict ------------------------------------------------------------------------------------------

def test_running_counts_even_while_dockers_first_healthcheck_is_pending():
    assert container_verdict(container("running", health="starting"), NEW, 1.0)[0] == "running"
    assert container_verdict(container("running", health="healthy"), NEW, 1.0)[0] == "running"
    assert container_verdict(container("running"), NEW, 1.0) == ("running", "running")


@pytest.mark.parametrize("status", ["exited", "restarting", "dead"])
def test_a_stopped_or_crash_looping_container_fails_at_once(status):
    verdict, why = container_verdict(container(status, exit_code=137), NEW, 0.5)
    assert verdict == "fail"
    assert status in why and "137" in why


def test_a_restart_fails_even_when_running_again():
    verdict, why = container_verdict(container("running", restarts=1), NEW, 0.5)
    assert verdict == "fail" and "1 restarts" in why


def test_unhealthy_fails():
    verdict, why = container_verdict(container("running", health="unhealthy"), NEW, 0.5)
    assert verdict == "fail" and "unhealthy" in why


def test_the_old_image_still_running_means_wait():
    verdict, why = container_verdict(container("running", image=OLD), NEW, 30.0)
    assert verdict == "wait" and OLD in why


def test_created_but_not_started_waits_ten_seconds_then_fails():
    assert container_verdict(container("created"), NEW, 3.0)[0] == "wait"
    assert container_verdict(container("created"), NEW, 10.0)[0] == "wait"
    verdict, why = container_verdict(container("created"), NEW, 10.5)
    assert verdict == "fail" and "not started" in why


def test_no_container_waits_twenty_seconds_then_fails():
    assert container_verdict(None, NEW, 5.0)[0] == "wait"
    assert container_verdict(None, NEW, 20.0)[0] == "wait"
    verdict, why = container_verdict(None, NEW, 21.0)
    assert verdict == "fail" and "no container" in why


def test_a_paused_container_is_waited_for():
    assert container_verdict(container("paused"), NEW, 1.0)[0] == "wait"


# --- PingWatch (record only: its thread is never started) -------------------------------------------------------

@pytest.fixture
def watch(tmp_path):
    path = tmp_path / "hosts.yml"
    path.write_text(textwrap.dedent("""
        immich: {url: "http://immich:2283"}
        hosts:
          gpu: {address: 10.0.0.5}
    """))
    return PingWatch(None, load_inventory(path).host("gpu"))


def test_watch_window_from_recorded_polls_in_any_order(watch):
    # a pong counts when it arrived, so a late answer can be recorded after a later failure
    watch.record(100.0, True, "pong")
    watch.record(100.3, False, "/ping: connection refused")
    watch.record(100.2, True, "pong")
    watch.record(100.4, False, "/ping: connection refused")
    watch.record(102.2, True, "pong")
    assert watch.window() == pytest.approx(2.0)
    assert watch.last_failure == "/ping: connection refused"


def test_watch_without_polls(watch):
    assert watch.window() is None
    assert watch.last_failure == "no answer yet"
    assert not watch.pong_since(0.0)


def test_watch_never_failing_has_no_outage(watch):
    for at in (1.0, 1.1, 1.2):
        watch.record(at, True, "pong")
    assert watch.window() == 0.0


def test_pong_since_only_counts_pongs_from_that_moment(watch):
    watch.record(10.0, True, "pong")  # the old container, before the swap
    watch.record(11.0, False, "/ping answered HTTP 502 b'bad gateway'")
    assert not watch.pong_since(10.5)
    watch.record(12.0, True, "pong")
    assert watch.pong_since(10.5)
    assert watch.pong_since(12.0)
    assert not watch.pong_since(12.1)
    assert watch.last_failure == "/ping answered HTTP 502 b'bad gateway'"


def test_watch_last_failure_is_the_latest_by_time(watch):
    watch.record(5.0, False, "later")
    watch.record(4.0, False, "earlier")
    assert watch.last_failure == "later"
