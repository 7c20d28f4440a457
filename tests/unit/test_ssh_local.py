"""ssh.py and ml_api.py against a real OpenSSH server on 127.0.0.1 (no Docker, no fakes).

What a user notices: unknown and changed host keys are refused with the fix, a wrong key says
authentication failed, a hung or closed port fails in bounded time with a message naming the host,
commands report their exit status and output, a command that times out makes later commands fail at
once, files round-trip exactly, and /ping reaches a service on the host's loopback through the
connection (the ML port never has to be exposed).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from immich_remote import ml_api
from immich_remote.errors import HostKeyError, RemoteCommandError, SSHError
from immich_remote.ssh import (
    Remote,
    Target,
    append_known_host,
    fingerprint,
    host_key_of,
    known_host_key,
    resolve_target,
)
from tests.unit.local_sshd import LocalSshd, free_port


def remote_for(server: LocalSshd, *, known_hosts: Path | None = None, key: Path | None = None,
               port: int | None = None, **kwargs) -> Remote:
    target = Target("box", "127.0.0.1", server.user, port or server.port, key or server.client_key)
    return Remote(target, known_hosts=[known_hosts or server.known_hosts], **kwargs)


class PingHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        body = b"pong" if self.path == "/ping" else b"not found"
        self.send_response(200 if self.path == "/ping" else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def ping_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), PingHandler)
    # shutdown() waits for serve_forever's next poll: 0.5 s by default, per fixture teardown.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()


def test_commands_report_output_and_exit_status(local_sshd):
    with remote_for(local_sshd) as remote:
        done = remote.run(["printf", "%s", "a b"])
        assert (done.stdout, done.exit_status, done.ok) == ("a b", 0, True)
        soft = remote.run("echo oops >&2; exit 3", check=False)
        assert (soft.exit_status, soft.stderr.strip()) == (3, "oops")
        with pytest.raises(RemoteCommandError) as failed:
            remote.run("echo broken >&2; exit 4", what="the probe")
        assert "Host 'box': the probe failed (exit 4): broken" in failed.value.message


def test_commands_run_together_take_as_long_as_the_slowest_and_keep_their_own_output(local_sshd):
    # run_all is how the probe's two halves run at once on one connection: a user sees a faster probe.
    with remote_for(local_sshd) as remote:
        # Each command says when it started and ended (the host's clock): the two must overlap, whatever the load.
        first, second = remote.run_all(["date +%s.%N; sleep 1; date +%s.%N; echo a",
                                        "date +%s.%N; sleep 1; date +%s.%N >&2; echo b >&2; exit 3"], check=False)
        start_1, end_1 = (float(t) for t in first.stdout.split()[:2])
        start_2, end_2 = float(second.stdout.split()[0]), float(second.stderr.split()[0])
        assert start_2 < end_1 and start_1 < end_2  # together, not one after the other
        assert (first.stdout.split()[2], first.exit_status) == ("a", 0)
        assert (second.stderr.split()[1], second.exit_status) == ("b", 3)
        assert remote.run("cat; echo done", timeout=5).stdout == "done\n"  # stdin is closed: nothing waits on it
        big = remote.run("head -c 3000000 /dev/zero; head -c 3000000 /dev/zero >&2", timeout=30)
        assert (len(big.stdout), len(big.stderr)) == (3000000, 3000000)  # both streams drained as they come


def test_an_unknown_host_key_is_refused_with_its_fingerprint_and_the_trust_command(local_sshd, tmp_path):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    with pytest.raises(HostKeyError) as refused:
        remote_for(local_sshd, known_hosts=empty).connect()
    text = refused.value.message + " " + (refused.value.hint or "")
    key = host_key_of("127.0.0.1", local_sshd.port)
    assert fingerprint(key) in text
    assert "immich-remote trust box" in text


def test_a_changed_host_key_is_refused_loudly(local_sshd, tmp_path):
    other = tmp_path / "other"
    import subprocess
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    wrong = tmp_path / "known_hosts"
    wrong.write_text(f"[127.0.0.1]:{local_sshd.port} " + " ".join(other.with_suffix(".pub").read_text().split()[:2]))
    with pytest.raises(HostKeyError) as refused:
        remote_for(local_sshd, known_hosts=wrong).connect()
    assert "DIFFERENT host key" in refused.value.message
    assert f"ssh-keygen -R '[127.0.0.1]:{local_sshd.port}'" in refused.value.hint


def test_a_key_the_server_does_not_accept_says_authentication_failed(local_sshd, tmp_path):
    stranger = tmp_path / "stranger"
    import subprocess
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)], check=True)
    with pytest.raises(SSHError) as failed:
        remote_for(local_sshd, key=stranger).connect()
    assert "SSH authentication failed" in failed.value.message
    assert "ssh_key" in failed.value.hint


def test_nothing_listening_is_a_clear_connect_error(local_sshd):
    with pytest.raises(SSHError) as failed:
        remote_for(local_sshd, port=free_port()).connect()
    assert "Host 'box': cannot connect to" in failed.value.message
    assert "sshd runs" in failed.value.hint


def test_a_port_that_accepts_and_then_says_nothing_fails_in_bounded_time(local_sshd):
    # A hung host accepts TCP and never sends the SSH banner (testbed-notes §3). The default bound is
    # 10 s; 1 s here exercises the same code path without making the Docker-free suite 10 s slower.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(4)
    try:
        started = time.monotonic()
        with pytest.raises(SSHError) as failed:
            remote_for(local_sshd, port=silent.getsockname()[1], connect_timeout=1).connect()
        assert time.monotonic() - started < 8  # 1 s bound plus handshake setup, on a loaded machine
        assert "the connection opened, then nothing" in failed.value.message
    finally:
        silent.close()


def test_a_command_that_times_out_makes_every_later_command_fail_at_once(local_sshd):
    # The bound is a parameter of the step that runs the command; 0.5 s keeps the test short.
    with remote_for(local_sshd) as remote:
        with pytest.raises(RemoteCommandError) as slow:
            remote.run("sleep 5", timeout=0.5, what="docker compose up")
        assert "docker compose up did not finish within 0.5 s" in slow.value.message
        started = time.monotonic()
        with pytest.raises(RemoteCommandError) as later:
            remote.run("true", what="the rollback")
        assert time.monotonic() - started < 1  # no network at all: nothing is sent to the host
        assert "the rollback not tried: the host stopped answering" in later.value.message


def test_a_file_write_the_host_never_answers_is_bounded_and_later_commands_fail_at_once(local_sshd, tmp_path):
    # Opening a FIFO for writing blocks the host's sftp-server until a reader comes: a hung host, for
    # this one request. The bound is a parameter; 0.5 s keeps the test short (the default is 30 s).
    fifo = tmp_path / "compose.yml"
    os.mkfifo(fifo)
    try:
        with remote_for(local_sshd) as remote:
            started = time.monotonic()
            with pytest.raises(RemoteCommandError) as hung:
                remote.write_file(str(fifo), b"x", timeout=0.5)
            assert time.monotonic() - started < 3
            assert f"writing {fifo} did not finish within 0.5 s" in hung.value.message
            assert "--break-lock" in hung.value.hint
            with pytest.raises(RemoteCommandError) as later:
                remote.run("true", what="the rollback")
            assert "the rollback not tried: the host stopped answering" in later.value.message
    finally:
        os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))  # let the sftp-server go


def test_files_round_trip_byte_for_byte(local_sshd, tmp_path):
    target = tmp_path / "remote" / "compose.yml"
    target.parent.mkdir()
    payload = bytes(range(256)) * 100
    with remote_for(local_sshd) as remote:
        remote.write_file(str(target), payload, mode=0o600)
        assert remote.read_file(str(target)) == payload
        assert remote.read_file(str(tmp_path / "missing")) is None
        streamed = tmp_path / "streamed"
        remote.stream_in(f"cat > {streamed}", iter([b"one ", b"two"]))
    assert target.stat().st_mode & 0o777 == 0o600
    assert streamed.read_bytes() == b"one two"


def test_a_write_the_user_may_not_make_names_the_host_and_the_path(local_sshd, tmp_path):
    with remote_for(local_sshd) as remote, pytest.raises(SSHError) as failed:
        remote.write_file(str(tmp_path / "no-such-dir" / "f"), b"x")
    assert f"Host 'box': cannot write {tmp_path / 'no-such-dir' / 'f'}" in failed.value.message


def test_a_failed_stream_reports_the_remote_error(local_sshd):
    with remote_for(local_sshd) as remote, pytest.raises(RemoteCommandError) as failed:
        remote.stream_in("cat > /dev/null; echo 'no space left on device' >&2; exit 1", iter([b"x" * 1000]),
                         what="docker load")
    assert "docker load failed (exit 1): no space left on device" in failed.value.message


def test_ping_goes_through_the_host_to_its_loopback(local_sshd, ping_server):
    with remote_for(local_sshd) as remote:
        assert ml_api.ping_via(remote, "127.0.0.1", ping_server) == (200, b"pong")
        status, _ = ml_api.http_request(remote, "127.0.0.1", ping_server, "GET", "/other")
        assert status == 404
        with pytest.raises(ConnectionRefusedError):
            ml_api.ping_via(remote, "127.0.0.1", free_port())


def test_ping_from_here_reports_latency_or_the_error(ping_server):
    ok, latency, error = ml_api.ping_direct(f"http://127.0.0.1:{ping_server}")
    assert ok and latency is not None and error is None
    ok, latency, error = ml_api.ping_direct(f"http://127.0.0.1:{free_port()}")
    assert not ok and latency is None and "ConnectError" in error


def test_trusting_records_exactly_the_key_the_server_presents(local_sshd, tmp_path):
    key = host_key_of("127.0.0.1", local_sshd.port)
    known = tmp_path / "ssh" / "known_hosts"
    line = append_known_host(known, "127.0.0.1", local_sshd.port, key)
    assert line == local_sshd.known_hosts_line
    assert known.stat().st_mode & 0o777 == 0o600
    assert known_host_key([known], "127.0.0.1", local_sshd.port, key.get_name()) == key
    assert known_host_key([known], "127.0.0.1", local_sshd.port + 1, key.get_name()) is None
    with remote_for(local_sshd, known_hosts=known) as remote:
        assert remote.run("true").ok


def test_host_key_of_a_closed_port_is_a_clear_error():
    with pytest.raises(SSHError) as failed:
        host_key_of("127.0.0.1", free_port(), timeout=2)
    assert "Cannot connect to 127.0.0.1" in failed.value.message


def test_ssh_config_aliases_are_resolved_as_openssh_would(tmp_path):
    config = tmp_path / "config"
    config.write_text("Host gpu-box\n  HostName 10.0.0.7\n  Port 2222\n  User ml\n")
    assert resolve_target(Target("gpu", "gpu-box"), config) == ("10.0.0.7", 2222, "ml")
