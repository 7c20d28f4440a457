"""The guard's decisions (immich_remote.guard), pure: no server, no network."""

from __future__ import annotations

import pytest

from immich_remote.errors import InputError
from immich_remote.guard import (
    DOWN,
    NONE,
    PAUSE,
    RESUME,
    UNKNOWN,
    UP,
    GuardMemory,
    UrlHealth,
    check_timeout,
    decide,
    ml_urls,
    remember,
    url_health,
)
from immich_remote.immich_api import ML_JOB_QUEUES

REMOTE, LOCAL = "http://10.0.0.5:3003", "http://immich-machine-learning:3003"


def queues(paused: tuple[str, ...] = ()) -> dict[str, dict]:
    return {q: {"active": 0, "waiting": 0, "delayed": 0, "failed": 0, "paused": 0, "isPaused": q in paused}
            for q in ML_JOB_QUEUES}


def up(url: str = REMOTE) -> UrlHealth:
    return UrlHealth(url, UP, "pong in 3 ms from here")


def down(url: str = REMOTE) -> UrlHealth:
    return UrlHealth(url, DOWN, "from here: ConnectError: [Errno 111] Connection refused")


def unknown(url: str = LOCAL) -> UrlHealth:
    return UrlHealth(url, UNKNOWN, "cannot be checked: the name does not resolve here")


def run(health, *, paused=(), remembered=(), enabled=ML_JOB_QUEUES, ml_enabled=True):
    return decide(ml_enabled=ml_enabled, health=health, queues=queues(paused), remembered=list(remembered),
                  enabled=list(enabled))


# --- url_health ------------------------------------------------------------------------------------

def test_pong_here_is_up_and_a_refused_connection_is_down():
    assert url_health(REMOTE, (True, 2.4, None)).state == UP
    verdict = url_health(REMOTE, (False, None, "ConnectError: [Errno 111] Connection refused"))
    assert verdict.state == DOWN and "Connection refused" in verdict.detail


def test_answer_from_the_immich_servers_host_wins():
    """A firewall that lets only the Immich server reach the ML port: down here, up where it matters."""
    verdict = url_health(REMOTE, (False, None, "ConnectTimeout"), via_server=(True, "HTTP 200"))
    assert verdict.state == UP and "Immich server's host" in verdict.detail
    both = url_health(REMOTE, (False, None, "ConnectTimeout"), via_server=(False, "10.0.0.5:3003: Connect failed"))
    assert both.state == DOWN and "Connect failed" in both.detail


@pytest.mark.parametrize("error", ["ConnectError: [Errno -2] Name or service not known",
                                   "ConnectError: [Errno -3] Temporary failure in name resolution",
                                   "ConnectError: [Errno 8] nodename nor servname provided, or not known"])
def test_a_name_that_does_not_resolve_here_is_unknown(error):
    verdict = url_health(LOCAL, (False, None, error), via_server=(False, "Connect failed"))
    assert verdict.state == UNKNOWN and "does not resolve here" in verdict.detail


def test_check_timeout_is_the_servers_availability_timeout():
    assert check_timeout({"machineLearning": {"availabilityChecks": {"timeout": 1234}}}) == 1.234
    assert check_timeout({"machineLearning": {}}) == 2.0  # Immich's default 2000 ms
    assert check_timeout({"machineLearning": {"availabilityChecks": {"timeout": True}}}) == 2.0


def test_ml_urls_in_order_and_the_old_single_url():
    assert ml_urls({"machineLearning": {"enabled": True, "urls": [REMOTE, LOCAL]}}) == (True, [REMOTE, LOCAL])
    assert ml_urls({"machineLearning": {"enabled": False, "url": LOCAL}}) == (False, [LOCAL])


# --- decide ----------------------------------------------------------------------------------------

def test_total_outage_pauses_every_running_ml_queue():
    decision = run([down(), down(LOCAL)])
    assert decision.action == PAUSE and decision.outage
    assert decision.pause == ML_JOB_QUEUES
    assert REMOTE in decision.reason and LOCAL in decision.reason and "Connection refused" in decision.reason


def test_queues_paused_by_someone_else_are_neither_paused_nor_claimed():
    decision = run([down()], paused=("ocr",))
    assert decision.pause == tuple(q for q in ML_JOB_QUEUES if q != "ocr")


def test_outage_with_everything_paused_already_does_nothing():
    decision = run([down()], paused=ML_JOB_QUEUES, remembered=ML_JOB_QUEUES)
    assert decision.action == NONE and decision.outage and "paused already" in decision.reason


def test_one_healthy_url_is_no_outage():
    assert run([down(), up(LOCAL)]).action == NONE
    assert run([up(), down(LOCAL)]).outage is False


def test_an_unknown_url_prevents_a_pause():
    """keep-local seen from another machine: the local URL may serve, so jobs may still succeed."""
    decision = run([down(), unknown()])
    assert decision.action == NONE and not decision.outage and "cannot be checked" in decision.reason


def test_recovery_resumes_exactly_what_the_guard_paused_and_runs_missing_for_enabled_ones():
    mine = ("smartSearch", "faceDetection", "ocr")
    decision = run([up()], paused=(*mine, "duplicateDetection"), remembered=mine,
                   enabled=("smartSearch", "faceDetection", "facialRecognition", "duplicateDetection"))
    assert decision.action == RESUME
    assert decision.resume == mine  # duplicateDetection was paused by someone else: left alone
    assert decision.run_missing == ("smartSearch", "faceDetection")  # ocr is switched off in the config
    assert REMOTE in decision.reason


def test_remembered_queues_resumed_by_hand_or_gone_are_forgotten():
    decision = run([up()], paused=("smartSearch",), remembered=("smartSearch", "faceDetection", "gone"))
    assert decision.resume == ("smartSearch",)
    assert decision.forget == ("faceDetection", "gone")
    quiet = run([up()], remembered=("faceDetection",))
    assert quiet.action == NONE and quiet.forget == ("faceDetection",)


def test_ml_disabled_is_no_outage_and_an_empty_list_is_one():
    disabled = run([down()], ml_enabled=False, paused=ML_JOB_QUEUES, remembered=("ocr",))
    assert disabled.action == RESUME and disabled.resume == ("ocr",)
    empty = run([])
    assert empty.action == PAUSE and "list is empty" in empty.reason


def test_restart_in_every_state_is_stable():
    """Deciding again on the state an action left changes nothing (the pyinfra habit: twice = no-op)."""
    first = run([down()])
    assert run([down()], paused=first.pause, remembered=first.pause).action == NONE
    second = run([up()], paused=first.pause, remembered=first.pause)
    assert run([up()], remembered=()).action == NONE and second.action == RESUME


# --- memory ----------------------------------------------------------------------------------------

def test_remember_adds_paused_and_drops_resumed_and_forgotten():
    memory = GuardMemory("http://immich:2283")
    pause = run([down()])
    after = remember(memory, pause, paused=pause.pause, at="2026-12-07T10:00:00Z")
    assert after.paused == list(ML_JOB_QUEUES) and after.since == "2026-12-07T10:00:00Z" and after.reason
    resume = run([up()], paused=ML_JOB_QUEUES, remembered=after.paused)
    assert remember(after, resume, resumed=["smartSearch"]).paused == list(ML_JOB_QUEUES[1:])
    assert remember(after, resume, resumed=list(ML_JOB_QUEUES)) == GuardMemory("http://immich:2283")


def test_memory_round_trip_another_server_and_a_bad_file():
    memory = GuardMemory("http://immich:2283", ["ocr"], "2026-12-07T10:00:00Z", "outage")
    assert GuardMemory.from_data(memory.to_data(), server="http://immich:2283/", source="x").paused == ["ocr"]
    assert GuardMemory.from_data(memory.to_data(), server="http://immich:2283", source="x") == memory
    assert GuardMemory.from_data(memory.to_data(), server="http://other:2283", source="x").paused == []
    assert GuardMemory.from_data(None, server="http://immich:2283", source="x").paused == []
    with pytest.raises(InputError, match="guard.json"):
        GuardMemory.from_data({"paused": "ocr"}, server="http://immich:2283", source="/state/guard.json")
