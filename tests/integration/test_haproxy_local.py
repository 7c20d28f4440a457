"""The pool balancer's config on the machine's own HAProxy 2.6 (Debian's package; no Docker) in front of three
small ML stubs on 127.0.0.1, driven through `BalancerAPI` over a real SSH connection (the local sshd), exactly
as deploy and status will drive it on the balancer host.

What a user notices: requests are spread per request, also over ONE keep-alive connection (Immich keeps its
connection alive), within 20% of equal for equal weights and about 2:1:1 for weights 2:1:1, counted by the
members themselves; a member that dies costs no failed request; a drained member takes no new request, its
requests in flight finish, and it takes traffic again when set ready. The config uses the user defaults
(checks every 2 s, fall 2, rise 2, timeouts as rendered); only the stubs' service time is short, to keep the
test quick.
"""

from __future__ import annotations

import http.client
import os
import shutil
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from immich_remote.balancer_api import BalancerAPI, BalancerError
from immich_remote.haproxy import CONFIG_PATH, BalancerSpec, Member, member_state
from immich_remote.render import haproxy_config
from immich_remote.ssh import Remote, Target
from tests.unit.local_sshd import free_port

pytestmark = pytest.mark.integration

# Debian's 2.6 by default; IMMICH_REMOTE_TEST_HAPROXY=/path/to/haproxy runs the same tests on another build
# (3.0, the production pin, built from source: they pass on 3.0.0 too).
HAPROXY = os.environ.get("IMMICH_REMOTE_TEST_HAPROXY") or shutil.which("haproxy") or "/usr/sbin/haproxy"
BODY = os.urandom(100_000)  # a /predict body is a multipart image of ~10-500 kB
SERVICE_TIME = 0.02  # a real model takes 20 ms-2 s per image: short here only to keep the test fast


class StubServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, member: StubMember) -> None:
        self.member = member
        self.open_sockets: set[socket.socket] = set()
        super().__init__(("127.0.0.1", 0), StubHandler)

    def process_request(self, request, client_address) -> None:
        self.open_sockets.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request) -> None:
        self.open_sockets.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request, client_address) -> None:
        pass  # a crashed member's broken connections


class StubHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like uvicorn
    server: StubServer

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self._answer(200, b"pong") if self.path == "/ping" else self._answer(404, b"not found")

    def do_POST(self) -> None:  # noqa: N802
        member = self.server.member
        length = int(self.headers.get("Content-Length", 0))
        received = len(self.rfile.read(length))
        with member.lock:
            member.in_flight += 1
        time.sleep(member.service_time)
        with member.lock:
            member.in_flight -= 1
            if member.stopped:
                return  # died while working: no answer
            member.served += 1
            member.bytes_ok += received == length == len(BODY)
        self._answer(200, b'{"clip": [0.1]}')

    def log_message(self, *args) -> None:
        pass


class StubMember:
    """An ML stand-in that counts the /predict requests it served itself."""

    def __init__(self, name: str, service_time: float = SERVICE_TIME) -> None:
        self.name = name
        self.service_time = service_time
        self.lock = threading.Lock()
        self.served = self.in_flight = self.bytes_ok = 0
        self.stopped = False
        self.server = StubServer(self)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def crash(self) -> None:
        """Like a killed process: the port closes and every open connection is reset."""
        self.stopped = True
        self.server.shutdown()
        self.server.server_close()
        for sock in list(self.server.open_sockets):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class Load:
    """Clients sending POST /predict through the pool, each over its own keep-alive connection."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.ok = 0
        self.failures: list[str] = []
        self.sockets: set[int] = set()
        self.lock = threading.Lock()
        self.stop = threading.Event()

    def client(self, count: int | None) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        sent = 0
        while (count is None and not self.stop.is_set()) or (count is not None and sent < count):
            sent += 1
            try:
                conn.request("POST", "/predict", body=BODY, headers={"Content-Type": "multipart/form-data; boundary=x"})
                answer = conn.getresponse()
                answer.read()
                with self.lock:
                    self.sockets.add(id(conn.sock))
                    if answer.status == 200:
                        self.ok += 1
                    else:
                        self.failures.append(f"HTTP {answer.status}")
            except (OSError, http.client.HTTPException) as exc:
                with self.lock:
                    self.failures.append(repr(exc))
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        conn.close()

    def run(self, clients: int, per_client: int | None) -> list[threading.Thread]:
        threads = [threading.Thread(target=self.client, args=(per_client,), daemon=True) for _ in range(clients)]
        for thread in threads:
            thread.start()
        return threads


class Pool:
    def __init__(self, tmp: Path, members: list[StubMember], weights: list[int], remote: Remote,
                 image: str | None = None, allow_from: tuple[str, ...] = ()) -> None:
        self.members = {m.name: m for m in members}
        self.listen_port, self.admin_port = free_port(), free_port()
        spec = BalancerSpec(pool="test", listen_port=self.listen_port, admin_port=self.admin_port,
                            members=tuple(Member(m.name, "127.0.0.1", m.port, w) for m, w in zip(members, weights,
                                                                                               strict=True)),
                            allow_from=allow_from)
        self.config = tmp / "haproxy.cfg"
        self.config.write_text(haproxy_config(spec))
        self.log = (tmp / "haproxy.log").open("w")
        self.container = None
        if image:  # the bed's balancer image, its default command, the config where the official image has it
            self.container = f"immich-remote-test-haproxy-{self.listen_port}"
            self.config.chmod(0o644)
            self.proc = subprocess.Popen(["docker", "run", "--rm", "--name", self.container, "--network", "host",
                                          "-v", f"{self.config}:{CONFIG_PATH}:ro", image],
                                         stdout=self.log, stderr=subprocess.STDOUT)
        else:
            self.proc = subprocess.Popen([HAPROXY, "-W", "-db", "-f", str(self.config)], stdout=self.log,
                                         stderr=subprocess.STDOUT)
        self.api = BalancerAPI(remote, self.admin_port)

    def served(self) -> dict[str, int]:
        return {name: m.served for name, m in self.members.items()}

    def wait_until(self, predicate, timeout: float = 20.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                stats = self.api.stats()
                if predicate(stats):
                    return stats
            except BalancerError:
                pass  # not listening yet
            time.sleep(0.1)
        raise AssertionError(f"balancer state not reached in {timeout} s: {self.api.stats()}")

    def wait_all_up(self):
        return self.wait_until(lambda s: len(s.members) == len(self.members)
                               and all(m.check_status == "L7OK" and m.status == "UP" for m in s.members))

    def close(self) -> None:
        if self.container:
            subprocess.run(["docker", "stop", "-t", "10", self.container], capture_output=True, timeout=30)
        else:
            self.proc.terminate()
        self.proc.wait(timeout=20)
        self.log.close()


@pytest.fixture
def remote(local_sshd):
    target = Target("balancer", "127.0.0.1", local_sshd.user, local_sshd.port, local_sshd.client_key)
    with Remote(target, known_hosts=[local_sshd.known_hosts]) as connected:
        yield connected


@pytest.fixture
def make_pool(tmp_path, remote):
    if not os.access(HAPROXY, os.X_OK):
        pytest.fail("haproxy not installed: run scripts/install-system.sh (or `apt-get install -y haproxy`)")
    pools = []

    def make(weights=(1, 1, 1), service_time=SERVICE_TIME, image=None, allow_from=()) -> Pool:
        members = [StubMember(f"ml-{i + 1}.lan", service_time) for i in range(len(weights))]
        pool = Pool(tmp_path, members, list(weights), remote, image, allow_from)
        pools.append(pool)
        pool.wait_all_up()
        return pool

    yield make
    for pool in pools:
        pool.close()
        for member in pool.members.values():
            if not member.stopped:
                member.crash()


def assert_within_20_percent_of_equal(served: dict[str, int]) -> None:
    fair = sum(served.values()) / len(served)
    assert all(abs(count - fair) <= 0.2 * fair for count in served.values()), served


def test_the_rendered_config_is_valid_without_warnings(tmp_path):
    config = tmp_path / "haproxy.cfg"
    config.write_text(haproxy_config(BalancerSpec("main", 3010, 3011, (Member("gpu-1", "10.0.0.11", 3003, 2),
                                                                       Member("nuc", "fd00::12", 3003)))))
    checked = subprocess.run([HAPROXY, "-c", "-f", str(config)], capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stderr
    assert "WARNING" not in checked.stdout + checked.stderr and "ALERT" not in checked.stdout + checked.stderr


def test_requests_are_spread_per_request_even_over_one_keep_alive_connection(make_pool):
    pool = make_pool()
    # Nothing but the pool port and the runtime API listens.
    listening = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True, check=True).stdout
    pids = [str(pool.proc.pid), *Path(f"/proc/{pool.proc.pid}/task/{pool.proc.pid}/children").read_text().split()]
    ours = {line.split()[3].rpartition(":")[2] for line in listening.splitlines()
            if any(f"pid={pid}," in line for pid in pids)}
    assert ours == {str(pool.listen_port), str(pool.admin_port)}, listening

    one = Load(pool.listen_port)
    one.client(60)  # ONE client connection, sequential requests, like Immich's keep-alive agent
    assert one.ok == 60 and not one.failures and len(one.sockets) == 1
    assert_within_20_percent_of_equal(pool.served())

    before = pool.served()
    many = Load(pool.listen_port)
    for thread in many.run(clients=8, per_client=30):
        thread.join()
    assert many.ok == 240 and not many.failures
    assert_within_20_percent_of_equal({n: c - before[n] for n, c in pool.served().items()})
    assert all(m.bytes_ok == m.served for m in pool.members.values())  # whole bodies arrived

    # The balancer's own counters agree with the members' (status and report will show these).
    stats = pool.api.stats()
    assert {m.name: m.requests for m in stats.members} == pool.served()
    assert stats.frontend is not None and stats.frontend.requests == 300


def test_weights_2_1_1_are_respected_under_concurrent_load(make_pool):
    pool = make_pool(weights=(2, 1, 1))
    load = Load(pool.listen_port)
    # leastconn weighs in-flight requests: weights show when requests overlap (as during an import).
    for thread in load.run(clients=8, per_client=50):
        thread.join()
    assert load.ok == 400 and not load.failures
    served = pool.served()
    shares = [served[name] / 400 for name in ("ml-1.lan", "ml-2.lan", "ml-3.lan")]
    assert 0.4 <= shares[0] <= 0.6 and all(0.2 <= share <= 0.3 for share in shares[1:]), served


def test_a_member_that_dies_costs_no_failed_request(make_pool):
    pool = make_pool()
    load = Load(pool.listen_port)
    threads = load.run(clients=6, per_client=None)
    time.sleep(1)
    dead = pool.members["ml-2.lan"]
    dead.crash()  # in-flight requests are reset: retried on another member (retry-on empty-response)
    crashed_at = time.monotonic()
    stats = pool.wait_until(lambda s: s.member("ml-2.lan").status == "DOWN")
    noticed = time.monotonic() - crashed_at
    at_notice = pool.served()
    time.sleep(1.5)
    load.stop.set()
    for thread in threads:
        thread.join()
    assert load.failures == [], load.failures[:5]
    assert member_state(stats.member("ml-2.lan")) == "down"
    after = pool.served()
    assert after["ml-2.lan"] == at_notice["ml-2.lan"]  # nothing reached the dead member
    assert after["ml-1.lan"] > at_notice["ml-1.lan"] and after["ml-3.lan"] > at_notice["ml-3.lan"]
    assert noticed < 2 * 2 + 2 + 1  # fall 2 checks every 2 s (+ a check timeout), with the user defaults


def test_drain_finishes_in_flight_requests_and_sends_new_ones_elsewhere(make_pool):
    pool = make_pool(service_time=0.5)  # long enough to drain while requests are in flight
    member = pool.members["ml-1.lan"]
    load = Load(pool.listen_port)
    threads = load.run(clients=6, per_client=None)
    pool.wait_until(lambda s: s.member("ml-1.lan").scur > 0)
    assert member.in_flight > 0

    drained_stat = pool.api.set_state("ml-1.lan", "drain")  # verified by reading back
    assert drained_stat.admin == "drain" and member_state(drained_stat) == "drain"
    took = pool.api.wait_drained("ml-1.lan", timeout=10)
    assert member.in_flight == 0 and took <= 0.5 + 0.5
    at_drained = member.served
    time.sleep(1.5)
    assert member.served == at_drained  # no new request went to the drained member

    ready = pool.api.set_state("ml-1.lan", "ready")
    assert ready.admin == "ready" and member_state(ready) == "ready"
    time.sleep(1.5)
    load.stop.set()
    for thread in threads:
        thread.join()
    assert member.served > at_drained  # back in rotation
    assert load.failures == []  # the requests in flight at the drain finished

    maint = pool.api.set_state("ml-2.lan", "maint")
    assert maint.admin == "maint" and maint.status == "MAINT"
    assert pool.api.set_state("ml-2.lan", "drain").admin == "drain"  # straight from maint, verified
    assert pool.api.set_state("ml-2.lan", "ready").admin == "ready"
    with pytest.raises(BalancerError, match="not in the pool"):
        pool.api.set_state("nope", "drain")


def test_the_bed_image_runs_the_config_like_the_official_image(make_pool):
    # Docker's engine (the bed's); the image: Debian's haproxy FROM scratch, uid 99, its default command.
    from tests.testbed.balancer_image import ensure_balancer_image

    pool = make_pool(service_time=0.5, image=ensure_balancer_image())
    load = Load(pool.listen_port)
    threads = load.run(clients=3, per_client=None)
    pool.wait_until(lambda s: sum(m.scur for m in s.members) > 0)
    stopped = time.monotonic()
    load.stop.set()
    subprocess.run(["docker", "stop", "-t", "10", pool.container], capture_output=True, check=True, timeout=30)
    assert pool.proc.wait(timeout=20) == 0  # SIGUSR1: a soft stop, requests in flight finish first
    for thread in threads:
        thread.join()
    assert time.monotonic() - stopped < 5 and load.ok >= 3 and load.failures == []
    assert sum(pool.served().values()) == load.ok


def post_once(port: int) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("POST", "/predict", body=BODY[:1000])
        return connection.getresponse().status
    finally:
        connection.close()


def test_only_the_allowed_sources_may_use_the_pool(make_pool):
    # The ML API has no authentication: the frontend takes connections from allow_from only (the Immich server).
    shut = make_pool(weights=(1,), allow_from=("10.255.255.1/32",))
    with pytest.raises((ConnectionError, http.client.RemoteDisconnected, OSError)):
        post_once(shut.listen_port)
    assert shut.served() == {"ml-1.lan": 0}
    allowed = make_pool(weights=(1,), allow_from=("127.0.0.0/8",))
    assert post_once(allowed.listen_port) == 200
