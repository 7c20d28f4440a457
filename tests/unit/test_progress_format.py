"""Formatting for people (sizes, durations, relative times, bars), Docker's pull progress parsed from answers
captured on a real engine (tests/fixtures/docker-pull), the live view's transfer numbers, and `status` verdicts."""

from __future__ import annotations

import re
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from immich_remote.commands.status import cache_text, change_text
from immich_remote.humanize import human_bytes, human_duration, relative_time, text_bar
from immich_remote.progress import Transfer
from immich_remote.pullprogress import HttpStream, PullState, pull_command, pull_request, split_reference
from immich_remote.rollout import HostResult, canary_verdict
from immich_remote.status import HostStatus, container_verdict, version_verdict

CAPTURED = Path(__file__).parents[1] / "fixtures" / "docker-pull"
NOW = datetime(2026, 12, 7, 17, 0, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("n, text", [(0, "0 B"), (999, "999 B"), (1234, "1.2 kB"), (200_061_265, "200 MB"),
                                     (20_061_265, "20.1 MB"), (3_600_000_000, "3.6 GB"), (None, "?")])
def test_sizes_use_docker_s_decimal_units(n, text):
    assert human_bytes(n) == text


@pytest.mark.parametrize("seconds, text", [(0.44, "0.4s"), (12.4, "12s"), (75, "1m15s"), (3725, "1h02m")])
def test_durations(seconds, text):
    assert human_duration(seconds) == text


@pytest.mark.parametrize("ago, text", [(timedelta(seconds=3), "just now"), (timedelta(seconds=45), "45 s ago"),
                                       (timedelta(minutes=2, seconds=59), "2 min ago"), (timedelta(hours=5), "5 h ago"),
                                       (timedelta(hours=30), "yesterday"), (timedelta(days=6), "6 days ago"),
                                       (timedelta(days=90), "2026-09-08"), (-timedelta(minutes=3), "in 3 min")])
def test_relative_times(ago, text):
    assert relative_time(NOW - ago, NOW) == text
    assert relative_time((NOW - ago).isoformat(timespec="seconds"), NOW) == text  # as our records write it


def test_unreadable_times_are_unknown_not_an_error():
    assert relative_time("yesterday-ish", NOW) == "?" and relative_time(None, NOW) == "?"
    assert relative_time("2026-12-07T16:58:00Z", NOW) == "2 min ago"  # Docker's form


def test_the_bar_reads_without_colour():
    assert text_bar(0.5, 10) == "█████░░░░░"
    assert text_bar(None, 4) == "░░░░" and text_bar(1.7, 4) == "████"


@pytest.mark.parametrize("image, parts", [
    ("ghcr.io/immich-app/immich-machine-learning:v2.7.5-cuda", ("ghcr.io/immich-app/immich-machine-learning",
                                                                "v2.7.5-cuda")),
    ("registry.local:5000/ml", ("registry.local:5000/ml", "latest")),  # a port is not a tag
    ("ghcr.io/x/y@sha256:abc", ("ghcr.io/x/y", "sha256:abc")),
])
def test_the_engine_is_always_given_a_tag_never_all_tags(image, parts):
    assert split_reference(image) == parts


def test_the_request_reaches_the_engine_byte_for_byte_through_sh():
    # The same command with `docker system dial-stdio` replaced by `head -c`: what sh hands over on stdin.
    request = pull_request("registry.tb/immich-app/immich-machine-learning:v2.7.5")
    command = pull_command("registry.tb/immich-app/immich-machine-learning:v2.7.5").replace(
        "docker system dial-stdio", f"head -c {len(request)}")
    out = subprocess.run(["sh", "-c", command.removeprefix("sh -c ").strip("'").replace("'\"'\"'", "'")],
                         input=b"", capture_output=True, timeout=10)
    assert out.stdout == request
    assert b"fromImage=registry.tb%2Fimmich-app%2Fimmich-machine-learning&tag=v2.7.5 HTTP/1.1\r\n" in request


def replay(raw: bytes, size: int) -> tuple[HttpStream, PullState, list[tuple[str, int, int]]]:
    stream, state, seen = HttpStream(), PullState(), []
    for i in range(0, len(raw), size):
        for message in stream.feed(raw[i:i + size]):
            state.update(message)
        seen.append((state.phase, *state.counts()))
    return stream, state, seen


def test_the_whole_answer_at_once_gives_the_same_end():
    stream, state, _ = replay((CAPTURED / "create-200MB-layer.http").read_bytes(), 1 << 20)
    assert stream.done and state.finished and state.counts() == (201_134_785, 201_134_785)


@pytest.mark.parametrize("size", [1, 7, 64, 256])  # bytes per read, as SSH may hand them over
def test_a_real_pull_answer_gives_growing_bytes_of_the_layers_total(size):
    stream, state, seen = replay((CAPTURED / "create-200MB-layer.http").read_bytes(), size)
    assert stream.status == 200 and stream.done and state.finished and state.error is None
    assert state.total == 1_073_520 + 200_061_265  # the two layers' sizes as the engine said them
    downloading = [done for phase, done, _ in seen if phase == "pulling"]
    assert downloading == sorted(downloading)  # never goes back
    assert any(0 < done < state.total for done in downloading)  # partway shown, not only 0 and all
    extracting = [done for phase, done, _ in seen if phase == "extracting"]
    assert extracting and extracting == sorted(extracting) and 0 < extracting[0] < state.total
    assert state.counts() == (state.total, state.total)


def test_an_engine_error_answer_is_the_engine_s_message():
    stream, state, _ = replay((CAPTURED / "create-404.http").read_bytes(), 64)
    stream.finish()
    assert stream.status == 404
    assert state.error == ("manifest for registry.tb/immich-app/immich-machine-learning:v0.0.1 not found: "
                           "manifest unknown: manifest unknown")
    assert not state.auth_error()


def test_an_error_in_the_stream_and_a_login_request():
    state = PullState()
    state.update({"errorDetail": {"message": "unauthorized: authentication required"}, "error": "x"})
    assert state.auth_error()


def test_layers_queued_behind_the_engine_make_the_total_a_lower_bound():
    state = PullState()
    for message in [{"status": "Pulling fs layer", "id": "a"}, {"status": "Waiting", "id": "b"},
                    {"status": "Downloading", "progressDetail": {"current": 10, "total": 100}, "id": "a"},
                    {"status": "Already exists", "id": "c"}]:
        state.update(message)
    assert state.counts() == (10, 100) and not state.sized
    state.update({"status": "Downloading", "progressDetail": {"current": 5, "total": 50}, "id": "b"})
    assert state.counts() == (15, 150) and state.sized  # the layer already there counts for nothing


def test_rate_and_eta_come_from_the_last_seconds():
    transfer = Transfer("pulling")
    transfer.add(100.0, 0, 200_000_000)
    transfer.add(101.0, 50_000_000, 200_000_000)
    transfer.add(102.0, 100_000_000, 200_000_000)
    assert transfer.rate(102.0) == pytest.approx(50_000_000)
    assert transfer.eta(102.0) == pytest.approx(2.0)
    assert transfer.summary(102.0) == "100 MB / 200 MB (50%), 50.0 MB/s, ETA 2.0s"
    transfer.add(102.5, 110_000_000, 300_000_000, at_least=True)
    assert transfer.eta(102.5) is None and transfer.size() == "110 MB / ≥300 MB"  # no ETA from a lower bound


def test_the_canary_verdict_says_what_happens_next():
    ok = HostResult("ml3", "deployed", duration=4.21, window=0.83)
    assert canary_verdict(ok, 2, 1, stops=False, command="upgrade") == \
        "canary ml3: upgraded in 4.2s, window 0.8s; now the other 2 host(s), 1 at a time"
    bad = HostResult("ml3", "rolled-back", "no pong within 60s", duration=61.0)
    assert canary_verdict(bad, 2, 1, stops=True) == \
        "canary ml3: rolled-back in 61.0s (no pong within 60s); the other 2 host(s) are not started"


def status(**kw) -> HostStatus:
    base = dict(host="ml1", url="http://x:3003", reachable=True, state="running", health="healthy",
                running_version="v2.7.5", version_matches=True, ping_ms=3.0)
    return HostStatus(**{**base, **kw})


@pytest.mark.parametrize("kw, level, why", [
    ({}, "ok", ""),
    ({"reachable": False, "error": "no SSH answer from deploy@x:22 within 10 s"}, "fail", "no SSH answer"),
    ({"state": None}, "warn", "immich-remote deploy"),
    ({"state": "exited", "exit_code": 137, "restart_count": 0}, "fail", "exit code 137"),
    ({"state": "restarting", "exit_code": 1, "restart_count": 4}, "fail", "crash loop (exit code 1, 4 restarts)"),
    ({"health": "unhealthy"}, "fail", "/ping check fails"),
    ({"ping_ms": None, "ping_error": "connection refused"}, "fail", "connection refused"),
    ({"health": "starting"}, "warn", "first health check"),
])
def test_every_state_that_is_not_healthy_says_why(kw, level, why):
    got_level, _, got_why = container_verdict(status(**kw))
    assert got_level == level and why in got_why
    assert (got_why == "") == (level == "ok")


def test_a_host_behind_the_server_names_the_fix():
    assert version_verdict(status(running_version="v2.7.4", version_matches=False), "v2.7.5") == \
        ("fail", "server runs v2.7.5: `immich-remote upgrade`")


def test_cache_and_last_change_read_at_a_glance():
    assert cache_text(0) == "empty (models load on first use)"
    assert cache_text(1_480_000_000) == "1.5 GB" and cache_text(None) == "?"
    last = {"command": "upgrade", "at": "2026-12-07T16:58:00+00:00", "by": "alice@box"}
    assert change_text(last, None, NOW) == "upgrade 2 min ago by alice@box"
    assert change_text({}, "bob (deploy)", NOW) == "none recorded [locked by bob (deploy)]"


def test_off_a_terminal_progress_is_plain_lines_and_a_transfer_ends_with_one_summary(capsys):
    from immich_remote.progress import Progress

    with Progress(["ml1", "ml2"]) as progress:  # stderr is captured here: no terminal
        progress.step("ml1", "pulling ghcr.io/immich-app/immich-machine-learning:v2.7.5")
        for done in range(0, 2_000_001, 100_000):  # many updates within a second: no line each
            progress.transfer("ml1", done, 2_000_000)
        progress.step("ml1", "ready to swap")
        progress.finish("ml2", "failed", "no pong within 60s")
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "ml1: pulling ghcr.io/immich-app/immich-machine-learning:v2.7.5"
    assert re.fullmatch(r"ml1: pulled 2\.0 MB in [\d.]+s \([\d.]+ [kMGT]?B/s\)", lines[1]), lines
    assert lines[2] == "ml1: ready to swap"
    assert lines[3] == "ml2: failed: no pong within 60s"  # it never started: no time to show
    assert len(lines) == 4


def test_the_live_window_counts_while_open_and_stays_once_closed():
    from immich_remote.health import PingWatch

    watch = PingWatch(remote=None, host=None)  # fed by hand: record() is what its polls call
    assert watch.window_so_far(now=10.0) is None
    watch.record(1.0, True, "pong")
    watch.record(1.1, True, "pong")
    assert watch.window_so_far(now=10.0) is None  # no outage yet
    watch.record(1.2, False, "connection refused")
    assert watch.window_so_far(now=3.1) == pytest.approx(2.0)  # open: from the last pong (1.1) to now
    watch.record(4.6, True, "pong")
    assert watch.window_so_far(now=99.0) == pytest.approx(3.5) == watch.window()  # closed: as reported after

    first_deploy = PingWatch(remote=None, host=None)
    first_deploy.record(1.0, False, "connection refused")
    assert first_deploy.window_so_far(now=5.0) is None  # nothing served before: no window to count
