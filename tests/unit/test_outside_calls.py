"""The pieces of ssh.py and ml_api.py that need no remote host: known_hosts lookups, HTTP answers
parsed, and `/ping` from this machine against a real local HTTP server."""

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import paramiko
import pytest

from immich_remote.ml_api import parse_http_response, ping_direct
from immich_remote.ssh import append_known_host, known_host_key


def test_known_host_key_finds_what_append_known_host_wrote(tmp_path):
    rsa = paramiko.RSAKey.generate(1024)
    path = tmp_path / "known_hosts"
    append_known_host(path, "10.0.0.5", 2222, rsa)
    assert known_host_key([tmp_path / "missing", path], "10.0.0.5", 2222, "ssh-rsa") == rsa
    assert known_host_key([path], "10.0.0.5", 22, "ssh-rsa") is None  # another port is another name
    assert known_host_key([path], "10.0.0.5", 2222, "ssh-ed25519") is None


def test_parse_http_response():
    assert parse_http_response(b"HTTP/1.0 200 OK\r\nServer: x\r\n\r\npong") == (200, b"pong")
    with pytest.raises(ValueError):
        parse_http_response(b"SSH-2.0-OpenSSH\r\n")


@pytest.fixture
def server():
    answers = {"/ping": (200, b"pong")}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the http.server API
            status, body = answers.get(self.path, (404, b"no"))
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    # shutdown() waits for serve_forever's next poll: 0.5 s by default, per test.
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", answers
    httpd.shutdown()
    httpd.server_close()


def test_ping_direct_pong_wrong_answer_and_nothing_listening(server):
    url, answers = server
    ok, latency, error = ping_direct(url + "/")
    assert ok and latency is not None and latency >= 0 and error is None
    answers["/ping"] = (503, b"busy")
    assert ping_direct(url)[0::2] == (False, "HTTP 503")
    with socket.socket() as unused:  # a port nothing listens on any more
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    ok, latency, error = ping_direct(f"http://127.0.0.1:{port}", timeout=1)
    assert not ok and latency is None and error.startswith("ConnectError")
