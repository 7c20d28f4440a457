"""The terminal experience, seen in a real terminal: immich-remote runs in tmux (160x40) and the screen is
captured at intervals, as a person would watch it; and off a terminal, as a CI log receives it."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.sandbox import ml_container
from tests.testbed.stubml.big import BIG_MB, ensure_big_image

pytestmark = pytest.mark.integration

CLI = str(Path(sys.executable).with_name("immich-remote"))
SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
ELAPSED = re.compile(r"(\d+(?:\.\d+)?)s$")
BYTES = re.compile(r"(\d+(?:\.\d+)?) (B|kB|MB|GB) / ≥?(\d+(?:\.\d+)?) (MB|GB)")
UNITS = {"B": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9}


class Terminal:
    """One tmux server of its own (so the test's environment reaches the command) with one 160x40 window."""

    def __init__(self, box, *args: str) -> None:
        self.socket = f"irtty-{os.getpid()}-{time.monotonic_ns()}"
        env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR")}
        env["IMMICH_REMOTE_STATE_DIR"] = str(box.state_dir)
        command = shlex.join([CLI, "-i", str(box.inventory), *args])
        # The shell stays after the CLI so the screen can be read (its trap outlives Ctrl-C; a caught signal
        # is default again in the CLI), then says whether typing echoes.
        script = (f"trap true INT; {command}; echo EXIT=$?; stty -a | tr ' ;' '\\n\\n' | grep -x -- '-*echo'; "
                  "sleep 600")
        self.tmux("new-session", "-d", "-x", "160", "-y", "40", "-s", "t", "sh", "-c", script, env=env)

    def tmux(self, *args: str, env: dict[str, str] | None = None) -> str:
        return subprocess.run(["tmux", "-L", self.socket, "-f", "/dev/null", *args], env=env, check=True,
                              capture_output=True, text=True, timeout=10).stdout

    def screen(self) -> str:
        return "\n".join(line.rstrip() for line in self.tmux("capture-pane", "-p", "-t", "t").splitlines())

    def watch(self, until: Callable[[str], bool], timeout: float, every: float = 0.2) -> list[str]:
        """Screens captured every `every` seconds until `until(screen)` (the last one included)."""
        frames: list[str] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            frames.append(self.screen())
            if until(frames[-1]):
                return frames
            time.sleep(every)
        raise AssertionError(f"not seen within {timeout:g}s; last screen:\n{frames[-1] if frames else ''}")

    def cursor_visible(self) -> bool:
        return self.tmux("display-message", "-p", "-t", "t", "#{cursor_flag}").strip() == "1"

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, check=False, timeout=10)

    def __enter__(self) -> Terminal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def rows(frames: list[str], host: str) -> list[str]:
    return [line for frame in frames for line in frame.splitlines() if line.startswith(f"{host} ")]


@pytest.fixture
def big_repository(testbed) -> str:
    """A stub tag with a 200 MB layer of random data in the bed's registry (built once, then cached)."""
    return ensure_big_image(testbed.registry_port)


def test_an_upgrade_shows_the_gate_waiting_the_window_counting_and_the_canary_verdict(sandbox):
    hosts = sandbox.hosts[:2]
    sandbox.write_inventory(hosts=hosts)
    sandbox.cli("deploy", "--server-version", "2.7.4")  # the server runs 2.7.5: an upgrade is due
    for host in hosts:
        # The new stub answers 503 for its first 4 s, as a model server still loading does: each gate waits.
        sandbox.host_settings[host.name] = {"env": {"MACHINE_LEARNING_STUB_START_DELAY": "4"}}
    sandbox.write_inventory(hosts=hosts)
    with Terminal(sandbox, "upgrade") as term:
        frames = term.watch(lambda s: "EXIT=" in s, timeout=120, every=0.25)
    canary, other = hosts[1].name, hosts[0].name  # the host Immich uses least goes first
    waiting = [row for row in rows(frames, canary) if "waiting for /ping" in row]
    times = [float(ELAPSED.search(row).group(1)) for row in waiting]
    assert len(set(times)) >= 8 and times == sorted(times), waiting  # counts up, several times a second
    assert max(times) - min(times) >= 2.5, waiting
    assert len({row.split()[1] for row in waiting}) >= 3  # the spinner turns
    assert "HTTP 503" in "".join(waiting)  # what the gate waits for
    windows = [float(m.group(1)) for m in (re.search(r"window (\d+\.\d)s", row) for row in waiting) if m]
    assert len(set(windows)) >= 5 and windows == sorted(windows), waiting  # the outage, live
    verdict = next(i for i, frame in enumerate(frames) if f"canary {canary}: upgraded in" in frame)
    assert "now the other 1 host(s), 1 at a time" in frames[verdict]
    assert not any("waiting for /ping" in row for row in rows(frames[:verdict], other))  # before the rest go
    assert any("waiting for /ping" in row for row in rows(frames[verdict:], other))
    assert any("1 done, 1 running, 0 failed, 0 queued" in frame for frame in frames)
    assert "EXIT=0" in frames[-1] and frames[-1].count("upgraded") >= 2, frames[-1]


def test_a_large_pull_shows_the_bytes_and_a_bar_growing(sandbox, big_repository):
    host = sandbox.hosts[0]
    sandbox.host_settings[host.name] = {"image_repository": big_repository}
    sandbox.write_inventory(hosts=[host])
    with Terminal(sandbox, "deploy") as term:
        frames = term.watch(lambda s: "EXIT=" in s, timeout=120, every=0.15)
    shown = [row for row in rows(frames, host.name) if BYTES.search(row)]
    pulling = [row for row in shown if "extracting" not in row]  # downloading; then the layers are unpacked
    done = [float(m.group(1)) * UNITS[m.group(2)] for m in map(BYTES.search, pulling)]
    bars = [row.count("█") for row in pulling]
    assert len(set(done)) >= 3 and done == sorted(done), pulling  # bytes grow, several steps shown
    assert len(set(bars)) >= 2 and bars == sorted(bars), pulling  # and so does the bar
    totals = {float(m.group(3)) * UNITS[m.group(4)] for m in map(BYTES.search, pulling)}
    assert max(totals) >= BIG_MB * 1e6, pulling  # of the image's size as the engine said it
    assert any("MB/s" in row for row in pulling), pulling  # a rate
    assert "EXIT=0" in frames[-1], frames[-1]
    assert ml_container(host)["Config"]["Image"] == f"{big_repository}:v2.7.5"


def test_ctrl_c_during_the_live_view_leaves_a_clean_terminal_and_says_what_happened(sandbox, big_repository):
    big, *others = sandbox.hosts
    sandbox.cli("--limit", ",".join(h.name for h in others), "deploy")  # these are done before the run
    urls = sandbox.urls()
    sandbox.host_settings[big.name] = {"image_repository": big_repository}
    sandbox.write_inventory()
    with Terminal(sandbox, "deploy") as term:
        term.watch(lambda s: "█" in s or "░" in s, timeout=60, every=0.1)  # pulling the large image
        term.tmux("send-keys", "-t", "t", "C-c")
        final = term.watch(lambda s: "EXIT=" in s and s.rstrip().endswith("echo"), timeout=30)[-1]
        visible = term.cursor_visible()
    assert "EXIT=130" in final, final
    assert not any(c in final for c in SPINNER + "█░") and "queued" not in final, final  # the live view is gone
    assert visible and final.rstrip().splitlines()[-1] == "echo", final  # cursor shown, typing echoes
    big_row = next(line for line in final.splitlines() if line.startswith(f"{big.name} "))
    assert "skipped" in big_row and "abandoned: interrupted before its swap" in big_row, final
    for host in others:  # finished before Ctrl-C: reported as finished, not as abandoned
        assert "unchanged" in next(line for line in final.splitlines() if line.startswith(f"{host.name} ")), final
    assert "Run `immich-remote deploy` again to finish" in final.replace("\n", ""), final
    assert ml_container(big) is None and sandbox.urls() == urls  # nothing was changed


def test_off_a_terminal_the_output_is_plain_lines(sandbox, big_repository):
    host = sandbox.hosts[0]
    sandbox.host_settings[host.name] = {"image_repository": big_repository}
    sandbox.write_inventory(hosts=[host])
    env = {**os.environ, "IMMICH_REMOTE_STATE_DIR": str(sandbox.state_dir)}
    env.pop("NO_COLOR", None)  # colour is off because this is no terminal, not because we asked
    run = subprocess.run([CLI, "-i", str(sandbox.inventory), "deploy"], env=env, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    output = run.stdout + run.stderr
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", output), repr(output)  # no escapes, no \r: lines only
    assert not any(c in output for c in SPINNER + "█░")
    lines = run.stderr.splitlines()
    assert f"{host.name}: pulling {big_repository}:v2.7.5" in lines, lines
    assert any(re.fullmatch(rf"{host.name}: pulled 2\d\d MB in [\d.]+s \([\d.]+ MB/s\)", line) for line in lines), lines
    assert any(line.startswith(f"{host.name}: deployed") for line in lines), lines
