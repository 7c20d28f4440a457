"""The ML job queues as numbers (immich_remote.jobs): pure functions, no server."""

import pytest

from immich_remote.errors import ImmichAPIError, InputError
from immich_remote.immich_api import (
    ML_JOB_QUEUES,
    ML_QUEUES,
    queue_pause_request,
    start_missing_request,
)
from immich_remote.jobs import (
    Rates,
    backlog,
    choose_queues,
    enabled_ml_queues,
    eta,
    format_eta,
    format_rate,
    ml_queue_counts,
    throughput,
)
from immich_remote.versions import ImmichVersion

V231, V275, V322 = ImmichVersion(2, 3, 1), ImmichVersion(2, 7, 5), ImmichVersion(3, 2, 2)


def stats(**values):
    return {"active": 0, "completed": 0, "delayed": 0, "failed": 0, "paused": 0, "waiting": 0, **values}


def counts(active=0, waiting=0, delayed=0, failed=0, paused=0, is_paused=False):
    return {"active": active, "waiting": waiting, "delayed": delayed, "failed": failed, "paused": paused,
            "isPaused": is_paused}


# --- ml_queue_counts ---------------------------------------------------------------------------------

def test_queues_response_keeps_only_ml_queues_in_fixed_order():
    raw = [
        {"name": "thumbnailGeneration", "isPaused": False, "statistics": stats(waiting=9)},
        {"name": "ocr", "isPaused": True, "statistics": stats(waiting=3, failed=1)},
        {"name": "smartSearch", "isPaused": False, "statistics": stats(active=2, waiting=40, completed=7)},
        {"name": "faceDetection", "isPaused": False, "statistics": stats(delayed=1, paused=4)},
    ]
    result = ml_queue_counts(raw, V275)
    assert list(result) == ["smartSearch", "faceDetection", "ocr"]
    assert result["smartSearch"] == counts(active=2, waiting=40)
    assert result["faceDetection"] == counts(delayed=1, paused=4)
    assert result["ocr"] == counts(waiting=3, failed=1, is_paused=True)
    assert "completed" not in result["smartSearch"]


def test_legacy_jobs_response_before_2_4():
    raw = {
        "smartSearch": {"jobCounts": stats(active=1, waiting=5), "queueStatus": {"isActive": True, "isPaused": False}},
        "facialRecognition": {"jobCounts": stats(failed=2), "queueStatus": {"isActive": False, "isPaused": True}},
        "library": {"jobCounts": stats(waiting=3), "queueStatus": {"isActive": False, "isPaused": False}},
    }
    result = ml_queue_counts(raw, V231)
    assert result == {"smartSearch": counts(active=1, waiting=5),
                      "facialRecognition": counts(failed=2, is_paused=True)}


def test_counts_are_integers_even_from_floats_strings_or_gaps():
    raw = [{"name": "smartSearch", "isPaused": None, "statistics": {"active": 2.0, "waiting": "7", "failed": None}}]
    result = ml_queue_counts(raw, V322)["smartSearch"]
    assert result == counts(active=2, waiting=7)
    assert all(type(result[k]) is int for k in ("active", "waiting", "delayed", "failed", "paused"))
    assert result["isPaused"] is False


@pytest.mark.parametrize(("raw", "version"), [({"smartSearch": {}}, V275), ([], V231), ("<html>", V322)])
def test_wrong_shape_for_the_version_is_an_api_error(raw, version):
    with pytest.raises(ImmichAPIError):
        ml_queue_counts(raw, version)


# --- enabled_ml_queues -------------------------------------------------------------------------------

def ml_config(enabled=True, clip=True, faces=True, dupes=True, ocr=True):
    return {"machineLearning": {"enabled": enabled, "urls": [], "clip": {"enabled": clip},
                                "facialRecognition": {"enabled": faces},
                                "duplicateDetection": {"enabled": dupes}, "ocr": {"enabled": ocr}}}


def test_every_feature_on_means_every_available_queue():
    enabled, disabled = enabled_ml_queues(ml_config(), ML_JOB_QUEUES)
    assert enabled == list(ML_JOB_QUEUES) and disabled == {}


def test_each_switch_maps_to_its_queues():
    enabled, disabled = enabled_ml_queues(ml_config(faces=False, ocr=False), ML_JOB_QUEUES)
    assert enabled == ["smartSearch", "duplicateDetection"]
    assert disabled == {"faceDetection": "machineLearning.facialRecognition.enabled",
                        "facialRecognition": "machineLearning.facialRecognition.enabled",
                        "ocr": "machineLearning.ocr.enabled"}


def test_duplicate_detection_needs_clip_too_like_the_server():
    enabled, disabled = enabled_ml_queues(ml_config(clip=False), ML_JOB_QUEUES)
    assert enabled == ["faceDetection", "facialRecognition", "ocr"]
    assert disabled["duplicateDetection"] == "machineLearning.clip.enabled"
    enabled, disabled = enabled_ml_queues(ml_config(dupes=False), ML_JOB_QUEUES)
    assert "duplicateDetection" not in enabled and "smartSearch" in enabled


def test_machine_learning_off_disables_all_and_missing_queues_are_left_out():
    enabled, disabled = enabled_ml_queues(ml_config(enabled=False), ["smartSearch", "ocr"])
    assert enabled == [] and set(disabled) == {"smartSearch", "ocr"}
    assert set(disabled.values()) == {"machineLearning.enabled"}
    enabled, _ = enabled_ml_queues(ml_config(), ["smartSearch", "faceDetection"])
    assert enabled == ["smartSearch", "faceDetection"]


def test_a_feature_missing_from_an_older_config_counts_as_off():
    config = ml_config()
    del config["machineLearning"]["ocr"]
    enabled, disabled = enabled_ml_queues(config, ML_JOB_QUEUES)
    assert "ocr" not in enabled and disabled["ocr"] == "machineLearning.ocr.enabled"


# --- choose_queues -----------------------------------------------------------------------------------

def test_choose_defaults_to_every_ml_queue_the_server_has():
    assert choose_queues((), ["ocr", "smartSearch", "library"]) == ["smartSearch", "ocr"]
    assert choose_queues(("ocr", "smartSearch", "ocr"), ML_JOB_QUEUES) == ["ocr", "smartSearch"]


def test_unknown_queue_is_bad_input_naming_the_valid_ones():
    with pytest.raises(InputError) as info:
        choose_queues(("smartsearch",), ML_JOB_QUEUES)
    assert info.value.exit_code == 2
    assert "Valid: smartSearch, faceDetection, facialRecognition, duplicateDetection, ocr" in info.value.message
    assert "smartSearch" in (info.value.hint or "")
    with pytest.raises(InputError, match="Not an ML queue: thumbnailGeneration"):
        choose_queues(("thumbnailGeneration",), ["thumbnailGeneration", *ML_JOB_QUEUES])


def test_a_queue_the_server_lacks_is_bad_input():
    with pytest.raises(InputError, match="no ocr queue; its ML queues are: smartSearch") as info:
        choose_queues(("ocr",), ["smartSearch"])
    assert info.value.exit_code == 2


# --- requests ----------------------------------------------------------------------------------------

def test_run_missing_is_always_force_false_on_the_jobs_endpoint():
    request = start_missing_request("facialRecognition")
    assert (request.method, request.path, request.body, request.permission) == (
        "PUT", "/api/jobs/facialRecognition", {"command": "start", "force": False}, "job.create")
    assert request.body["force"] is False


def test_pause_uses_queues_endpoint_from_2_4_and_legacy_command_before():
    new = queue_pause_request(V275, "ocr", True)
    assert (new.path, new.body, new.permission) == ("/api/queues/ocr", {"isPaused": True}, "queue.update")
    assert queue_pause_request(V322, "ocr", False).body == {"isPaused": False}
    old = queue_pause_request(V231, "ocr", True)
    assert (old.path, old.body, old.permission) == ("/api/jobs/ocr", {"command": "pause"}, "job.create")
    assert queue_pause_request(V231, "ocr", False).body == {"command": "resume"}


def test_deploy_run_missing_queues_are_unchanged():
    assert ML_QUEUES == ("smartSearch", "faceDetection", "ocr")
    assert set(ML_QUEUES) < set(ML_JOB_QUEUES)


# --- throughput and ETA ------------------------------------------------------------------------------

def test_backlog_is_active_waiting_delayed():
    assert backlog(counts(active=2, waiting=10, delayed=3, failed=50, paused=7)) == 15


def test_throughput_per_minute_from_backlog_decrease():
    assert throughput(counts(waiting=100), counts(waiting=70), 30) == 60.0
    assert throughput(counts(active=2, waiting=10), counts(active=2, waiting=9), 60) == 1.0


def test_throughput_never_negative_and_none_without_elapsed_time():
    assert throughput(counts(waiting=10), counts(waiting=50), 10) == 0.0
    assert throughput(counts(waiting=10), counts(waiting=5), 0) is None
    assert throughput(counts(waiting=10), counts(waiting=5), -1) is None


def test_eta_from_waiting_and_active():
    assert eta(counts(active=2, waiting=118, delayed=99), 60.0) == 120.0
    assert eta(counts(), None) == 0.0 and eta(counts(), 0.0) == 0.0
    assert eta(counts(waiting=5), 0.0) is None
    assert eta(counts(waiting=5), None) is None


def test_rates_first_reading_unknown_then_measured():
    rates = Rates(window=60)
    first = rates.add(0.0, {"smartSearch": counts(waiting=100)})
    assert first == {"smartSearch": {"throughput": None, "eta": None}}
    second = rates.add(10.0, {"smartSearch": counts(waiting=90)})
    assert second["smartSearch"]["throughput"] == 60.0
    assert second["smartSearch"]["eta"] == 90.0


def test_rates_measure_over_the_window_not_just_the_last_step():
    rates = Rates(window=60)
    rates.add(0.0, {"q": counts(waiting=120)})
    rates.add(10.0, {"q": counts(waiting=100)})   # burst
    result = rates.add(20.0, {"q": counts(waiting=100)})  # nothing in this step
    assert result["q"]["throughput"] == 60.0  # 20 jobs in 20 s
    rates.add(70.0, {"q": counts(waiting=40)})
    result = rates.add(80.0, {"q": counts(waiting=40)})
    # oldest reading kept is the last one at or before the 60 s window edge (20 s): 60 jobs in 60 s
    assert result["q"]["throughput"] == 60.0


def test_a_queue_that_appears_later_starts_unmeasured():
    rates = Rates()
    rates.add(0.0, {"a": counts(waiting=1)})
    result = rates.add(5.0, {"a": counts(), "b": counts(waiting=3)})
    assert result["a"] == {"throughput": 12.0, "eta": 0.0}
    assert result["b"] == {"throughput": None, "eta": None}


@pytest.mark.parametrize(("seconds", "text"), [(None, "-"), (0, "done"), (12.4, "12s"), (245, "4m 05s"),
                                               (3 * 3600 + 12 * 60, "3h 12m"), (2 * 86400 + 4 * 3600, "2d 4h")])
def test_format_eta(seconds, text):
    assert format_eta(seconds) == text


def test_format_rate():
    assert (format_rate(None), format_rate(2.345), format_rate(120.4)) == ("-", "2.3/min", "120/min")
