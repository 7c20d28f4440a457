"""`immich-remote drill`: the pure parts (what the fallback mode promises, the verdict, timings, the
host's command lines), and the refusals that happen before anything changes, through the real
command line against the Immich fake (no Docker: the drill stops before it connects to a host)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from immich_remote.cli import cli
from immich_remote.drill import (
    JOBS_FAIL,
    STEP_NAMES,
    SearchOutcome,
    Timings,
    expectation,
    failed_during,
    new_steps,
    probe_query,
    reboot_command,
    start_command,
    stop_command,
    url_position,
    verdict,
)
from immich_remote.names import HostPaths
from tests.fake.helpers import merged
from tests.testbed.immich_fake import DEFAULT_API_KEY

GPU, NUC, LOCAL = "http://10.0.0.5:3003", "http://10.0.0.6:3003", "http://immich-machine-learning:3003"


# --- what the fallback mode promises ---------------------------------------------------------------

def test_keep_local_expects_the_local_url_to_serve():
    expect = expectation("keep-local", [GPU, LOCAL], GPU, LOCAL)
    assert expect.served and expect.others == (LOCAL,)
    assert "falls back to its local ML" in expect.why


def test_keep_local_without_the_local_url_in_immich_still_promises_it_and_says_how_to_fix():
    expect = expectation("keep-local", [GPU], GPU, LOCAL)
    assert expect.served and expect.others == ()
    assert "not in Immich's URL list" in expect.why and "deploy" in expect.why


def test_remote_only_with_the_host_alone_expects_failure():
    expect = expectation("remote-only", ["http://10.0.0.5:3003/"], GPU, LOCAL)  # compared normalised
    assert not expect.served and expect.others == ()


def test_remote_only_with_other_hosts_expects_them_to_serve():
    expect = expectation("remote-only", [GPU, NUC], GPU, LOCAL)
    assert expect.served and expect.others == (NUC,)


def test_url_position_is_normalised_and_one_based():
    assert url_position([LOCAL, "HTTP://10.0.0.5:3003"], GPU) == 2
    assert url_position([LOCAL], GPU) is None


# --- the verdict -------------------------------------------------------------------------------------

OK = SearchOutcome(True, 0.2, 200)
ML_DOWN = SearchOutcome(False, 0.1, 500, "HTTP 500: Internal server error")
UNREACHABLE = SearchOutcome(False, 60.0, None, "Cannot reach the Immich server", tries=30)


def judge(fallback="keep-local", urls=(GPU, LOCAL), down=OK, back_ok=True, after=OK, failed=None):
    return verdict(host="gpu", fallback=fallback, expect=expectation(fallback, list(urls), GPU, LOCAL), down=down,
                   back_ok=back_ok, back_detail="no pong within 180s", after=after, failed=failed or {})


def test_keep_local_passes_when_the_fallback_served_and_the_host_came_back():
    result = judge()
    assert result.ok and result.headline.startswith("PASSED: keep-local")


def test_keep_local_fails_when_immich_could_not_search_while_down():
    result = judge(down=ML_DOWN)
    assert not result.ok
    assert "could not answer a smart search" in result.headline and "every ML URL" in result.headline


def test_remote_only_failure_while_down_is_the_promise_and_says_jobs_fail():
    result = judge("remote-only", urls=(GPU,), down=ML_DOWN, failed={"smartSearch": 4})
    assert result.ok
    assert result.headline.startswith("PASSED (as remote-only promises): ML jobs fail while gpu is down")
    assert JOBS_FAIL.format(host="gpu") in result.notes
    assert any("4 ML job(s) failed during the drill (4 smartSearch)" in n for n in result.notes)


def test_remote_only_served_while_down_without_other_urls_means_the_host_was_not_down():
    result = judge("remote-only", urls=(GPU,), down=OK)
    assert not result.ok and "was not really down" in result.headline


def test_remote_only_failing_without_an_answer_from_immich_is_not_the_promise():
    result = judge("remote-only", urls=(GPU,), down=UNREACHABLE)
    assert not result.ok and "Cannot reach the Immich server" in result.headline


@pytest.mark.parametrize("fallback, urls, down", [("keep-local", (GPU, LOCAL), OK), ("remote-only", (GPU,), ML_DOWN)])
def test_a_host_that_does_not_come_back_fails_in_every_mode(fallback, urls, down):
    result = judge(fallback, urls=urls, down=down, back_ok=False, after=None)
    assert not result.ok and "gpu did not come back: no pong within 180s" in result.headline


def test_a_search_that_fails_after_the_return_fails_the_drill():
    result = judge(after=ML_DOWN)
    assert not result.ok and "after gpu came back" in result.headline


def test_nothing_taken_down_proves_nothing():
    result = judge(down=None, after=None)
    assert not result.ok and "was not taken down" in result.headline


# --- numbers and commands ----------------------------------------------------------------------------

def test_failed_during_counts_only_queues_that_grew():
    before = {"smartSearch": {"failed": 2}, "faceDetection": {"failed": 5}, "ocr": {"failed": 0}}
    after = {"smartSearch": {"failed": 7}, "faceDetection": {"failed": 1}, "ocr": {"failed": 0}, "new": {"failed": 1}}
    assert failed_during(before, after) == {"smartSearch": 5, "new": 1}


def test_timings_are_the_spans_a_person_cares_about():
    t = Timings(down_started=10.0, down=10.5, fallback_answered=10.8, back_started=20.0, back=22.25)
    assert t.to_data() == {"fallbackAnswered": 0.3, "downtime": 12.25, "timeBack": 2.25}
    assert Timings(down_started=1.0).to_data() == {"fallbackAnswered": None, "downtime": None, "timeBack": None}


def test_host_commands_address_the_compose_project_like_remove():
    paths = HostPaths.for_dir("~/immich-remote-ml")
    assert stop_command(paths, True) == ["docker", "compose", "--project-directory", "immich-remote-ml", "-f",
                                         "immich-remote-ml/docker-compose.yml", "stop", "immich-machine-learning"]
    assert start_command(paths, False) == ["docker", "compose", "-p", "immich_remote_ml", "start",
                                           "immich-machine-learning"]
    assert reboot_command() == ["sudo", "-n", "reboot"]  # never waits at a password prompt


def test_each_probe_query_is_new_so_the_server_cache_cannot_answer_it():
    assert len({probe_query() for _ in range(50)}) == 50


def test_the_step_table_lists_every_step_in_order():
    steps = new_steps()
    assert tuple(steps) == STEP_NAMES == ("record", "take down", "search while down", "bring back",
                                          "search after", "run-missing")
    assert {s.result for s in steps.values()} == {"skipped"}


# --- refusals before anything changes, through the CLI -----------------------------------------------

def inventory(tmp_path: Path, fake_url: str, fallback: str = "keep-local") -> Path:
    key = tmp_path / "key"
    key.write_text(DEFAULT_API_KEY + "\n")
    path = tmp_path / "hosts.yml"
    path.write_text(textwrap.dedent(f"""
        immich: {{url: "{fake_url}", api_key_file: "{key}", local_ml_url: "{LOCAL}", fallback: {fallback}}}
        hosts:
          gpu: {{address: 10.0.0.5}}
    """).lstrip())
    return path


def run(path: Path, *args: str):
    result = CliRunner().invoke(cli, ["-i", str(path), *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    return result


def test_a_host_immich_does_not_know_is_refused_before_any_change(tmp_path, immich_fake):
    result = run(inventory(tmp_path, immich_fake.url), "drill", "gpu")
    assert result.exit_code == 2, result.output
    assert "Host 'gpu' (http://10.0.0.5:3003) is not in Immich's ML URL list" in result.output
    assert "immich-remote deploy gpu" in result.output
    assert [r for r in immich_fake.requests() if r.method not in ("GET",)] == []


def test_an_unknown_host_is_bad_input(tmp_path, immich_fake):
    result = run(inventory(tmp_path, immich_fake.url), "drill", "nope")
    assert result.exit_code == 2 and "no host named 'nope'" in result.output


def test_smart_search_disabled_is_refused_before_the_host_is_touched(tmp_path, immich_fake):
    immich_fake.set_config(merged(immich_fake.config, {"machineLearning": {"urls": [GPU, LOCAL],
                                                                           "clip": {"enabled": False}}}))
    result = run(inventory(tmp_path, immich_fake.url), "--json", "drill", "gpu")
    assert result.exit_code == 1, result.output
    assert "Smart search is not enabled" in result.output and "Enable Smart Search" in result.output
    assert json.dumps(immich_fake.config["machineLearning"]["urls"]) == json.dumps([GPU, LOCAL])
    assert immich_fake.job_commands() == []
