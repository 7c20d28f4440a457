"""`immich-remote init` on the test bed: from nothing to an inventory that `check` passes, once with
flags only (--yes) and once typed into a real terminal (tmux), as a new user would."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import paramiko
import pytest
from click.testing import CliRunner

from immich_remote.cli import cli
from immich_remote.inventory import load_inventory
from immich_remote.ssh import fingerprint, known_hosts_name
from tests.testbed.immich_fake import DEFAULT_API_KEY

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


def bed_fingerprint(testbed, host) -> str:
    """The host key the bed generated for `host`, as `ssh-keygen -lf` would show it."""
    keys = paramiko.HostKeys(str(testbed.known_hosts))
    return fingerprint(keys.lookup(known_hosts_name("127.0.0.1", host.ssh_port))["ssh-ed25519"])


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "api-key"
    path.write_text(DEFAULT_API_KEY + "\n")
    path.chmod(0o600)
    return path


def test_init_with_flags_writes_an_inventory_that_check_passes(testbed, fresh_hosts, immich_fake_factory, tmp_path,
                                                               key_file):
    host = fresh_hosts[0]
    fake = immich_fake_factory("2.7.5", ml_url=testbed.local_ml_url)
    out, known = tmp_path / "inventory" / "hosts.yml", tmp_path / "known_hosts"  # empty: init must trust the host
    env = {"NO_COLOR": "1", "COLUMNS": "200", "IMMICH_REMOTE_STATE_DIR": str(tmp_path / "state")}
    result = CliRunner().invoke(cli, [
        "init", "--yes", "--immich-url", fake.url, "--api-key-file", str(key_file),
        "--host", f"{host.name}=127.0.0.1:{host.ssh_port}", "--ssh-user", "deploy", "--ssh-key",
        str(testbed.client_key), "--known-hosts", str(known), "--out", str(out)], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert bed_fingerprint(testbed, host) in result.output  # shown before it is recorded
    assert known.read_text().startswith(f"[127.0.0.1]:{host.ssh_port} ssh-ed25519 ")
    assert "Immich v2.7.5" in result.output and "may read and save" in result.output
    assert DEFAULT_API_KEY not in out.read_text() and DEFAULT_API_KEY not in result.output
    inv = load_inventory(out)
    (written,) = inv.hosts
    # The probe proposed the CPU backend (no GPU on the bed) and the host's private address on the bed
    # network (it is reached through a loopback port, which Immich could not use).
    assert (written.accel, written.bind_address, written.url) == ("cpu", host.ip, f"http://{host.ip}:3003")
    assert "Next:" in result.output and f"-i {out} check" in result.output

    checked = CliRunner().invoke(cli, ["-i", str(out), "check"], env=env, catch_exceptions=False)
    assert checked.exit_code == 0, checked.output
    assert "All checks passed." in checked.output


class Terminal:
    """A real terminal: a tmux session (its own server) running one command."""

    def __init__(self, tmp_path: Path, command: list[str], env: dict[str, str]) -> None:
        self.socket = f"ir-init-{os.getpid()}-{time.monotonic_ns()}"
        shell = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()) + " " + shlex.join(command)
        self.log = tmp_path / "exit-code"
        self._tmux("new-session", "-d", "-x", "160", "-y", "40", "-s", "init",
                   f"env {shell}; echo $? > {self.log}; sleep 600")

    def _tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=True,
                              timeout=10).stdout

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-J", "-S", "-200", "-t", "init")

    def wait_for(self, text: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.1)
        raise AssertionError(f"'{text}' never appeared on the terminal:\n{self.screen()}")

    def answer(self, prompt: str, keys: str) -> None:
        self.wait_for(prompt)
        self._tmux("send-keys", "-t", "init", "-l", keys)
        self._tmux("send-keys", "-t", "init", "Enter")

    def exit_code(self, timeout: float = 60) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.log.exists() and self.log.read_text().strip():
                return int(self.log.read_text())
            time.sleep(0.1)
        raise AssertionError(f"init did not finish:\n{self.screen()}")

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, check=False, timeout=10)


def test_init_typed_into_a_terminal(testbed, fresh_hosts, immich_fake_factory, tmp_path, key_file):
    host = fresh_hosts[1]
    fake = immich_fake_factory("3.2.2", ml_url=testbed.local_ml_url)
    out, known = tmp_path / "hosts.yml", tmp_path / "known_hosts"
    env = {"PYTHONPATH": str(REPO), "HOME": str(tmp_path), "TERM": "xterm-256color", "PATH": os.environ["PATH"]}
    term = Terminal(tmp_path, [sys.executable, "-m", "immich_remote", "-i", str(out), "init", "--ssh-key",
                               str(testbed.client_key), "--known-hosts", str(known)], env)
    try:
        term.answer("Immich server URL", fake.url)
        term.answer("Where is the API key", "file")
        term.answer("File holding only the key", str(key_file))
        term.wait_for("Immich v3.2.2")
        term.answer("ML host name", "gpu-box")
        term.answer("Address of gpu-box", f"127.0.0.1:{host.ssh_port}")
        term.answer("ML host name (empty when done)", "")
        term.answer("SSH user on the hosts", "deploy")
        screen = term.wait_for("Record it in")
        assert bed_fingerprint(testbed, host) in screen  # the fingerprint is shown before anything is trusted
        term.answer("Record it in", "y")
        screen = term.wait_for("Accelerator")
        assert f"proposed: accel cpu; bind {host.ip}" in screen
        term.answer("Accelerator", "")  # take the proposal
        term.answer("Bind the ML port to", "")
        assert term.exit_code() == 0, term.screen()
        screen = term.wait_for("Next:")
    finally:
        term.close()
    assert f"Wrote {out}" in screen and "Traceback" not in screen
    (written,) = load_inventory(out).hosts
    assert (written.name, written.accel, written.bind_address, written.ssh_user) == ("gpu-box", "cpu", host.ip, "deploy")
    assert known.read_text().startswith(f"[127.0.0.1]:{host.ssh_port} ssh-ed25519 ")
    checked = CliRunner().invoke(cli, ["-i", str(out), "check"], env={"NO_COLOR": "1", "COLUMNS": "200"},
                                 catch_exceptions=False)
    assert checked.exit_code == 0, checked.output
