"""Faults from the fault matrix (docs/reliability.md) that need a real process and real signals: the
admin's run interrupted while the hosts pull, and a registry that hangs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.integration.sandbox import IMAGE, make_sandbox, ml_container

pytestmark = pytest.mark.integration

CLI = str(Path(sys.executable).with_name("immich-remote"))
STATE = "/home/deploy/immich-remote-ml/.immich-remote"


def start_cli(box, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "IMMICH_REMOTE_STATE_DIR": str(box.state_dir), "NO_COLOR": "1"}
    # Ctrl-C handled as in a user's terminal: a suite started in the background (`make test &`) passes
    # SIGINT on as ignored, and Python then never raises KeyboardInterrupt in the CLI.
    return subprocess.Popen([CLI, "-i", str(box.inventory), *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def upgraded_server(testbed, fresh_hosts, immich_fake_factory, tmp_path):
    """Hosts at 2.7.4, the server now at 2.7.5: an upgrade is due."""
    box = make_sandbox(testbed, fresh_hosts, immich_fake_factory, tmp_path, version="2.7.4")
    box.cli("deploy")
    box.fake = immich_fake_factory("2.7.5", config=box.fake.config, ml_url=box.bed.local_ml_url)
    box.write_inventory()
    return box


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupted_while_pulling_exits_at_once_and_leaves_every_host_serving(
        testbed, fresh_hosts, immich_fake_factory, tmp_path, sig, code):
    box = upgraded_server(testbed, fresh_hosts, immich_fake_factory, tmp_path)
    urls = box.urls()
    testbed.registry.pause()  # every pull hangs (a registry that hangs, or a multi-gigabyte CUDA image)
    try:
        proc = start_cli(box, "upgrade")
        time.sleep(4)  # connected, probed, pulling
        assert proc.poll() is None
        sent = time.monotonic()
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)
        took = time.monotonic() - sent
    finally:
        testbed.registry.unpause()
    assert proc.returncode == code, err
    assert took < 5, took  # in-flight pulls are abandoned, not waited for
    assert "Interrupted" in err + out and "`immich-remote upgrade` again" in err + out, err + out
    for host in box.hosts:
        assert ml_container(host)["Config"]["Image"] == f"{IMAGE}:v2.7.4"
        assert ml_container(host)["State"]["Status"] == "running"
        leftovers = host.exec(["sh", "-c", f"ls -a {STATE} {STATE}/releases"]).stdout
        assert "lock" not in leftovers and ".tmp" not in leftovers
    assert box.urls() == urls
    assert [r for r in box.fake.requests() if r.method != "GET"] == []
    # The next run finishes the job without --break-lock.
    data = box.cli_json("upgrade")
    assert [h["status"] for h in data["hosts"]] == ["upgraded"] * 3


def test_a_registry_without_the_tag_fails_before_anything_stops(testbed, fresh_hosts, immich_fake_factory, tmp_path):
    box = make_sandbox(testbed, fresh_hosts, immich_fake_factory, tmp_path, version="2.7.4")
    box.cli("deploy")
    started = {h.name: ml_container(h)["State"]["StartedAt"] for h in box.hosts}
    data = json.loads(box.cli("--json", "deploy", "--server-version", "2.7.3", expect=1).stdout)
    assert {h["status"] for h in data["hosts"]} == {"failed"}
    assert all("nothing was changed" in h["message"] for h in data["hosts"])
    assert {h.name: ml_container(h)["State"]["StartedAt"] for h in box.hosts} == started  # never stopped
    assert data["snapshot"] is None


def test_a_server_upgraded_during_the_rollout_stops_it(testbed, fresh_hosts, immich_fake_factory, tmp_path):
    box = upgraded_server(testbed, fresh_hosts, immich_fake_factory, tmp_path)
    canary = box.host_named("ml3")
    server = box.fake

    def upgrade_the_server_once_the_canary_swapped() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            container = ml_container(canary)
            if container and container["Config"]["Image"].endswith(":v2.7.5"):
                server.version = type(server.version).parse("2.7.6")
                return
            time.sleep(0.2)

    watcher = threading.Thread(target=upgrade_the_server_once_the_canary_swapped, daemon=True)
    watcher.start()
    data = json.loads(box.cli("--json", "upgrade", expect=1).stdout)  # stopped early: not done
    watcher.join(5)
    status = {h["host"]: h for h in data["hosts"]}
    assert status["ml3"]["status"] == "upgraded"
    assert status["ml2"]["status"] == status["ml1"]["status"] == "skipped"
    assert "changed from v2.7.5 to v2.7.6" in status["ml1"]["message"]
    assert ml_container(box.host_named("ml1"))["Config"]["Image"] == f"{IMAGE}:v2.7.4"


def test_a_port_taken_by_another_program_refuses_that_host_only(sandbox):
    busy = sandbox.host_named("ml2")
    busy.exec(["sh", "-c", f"nohup python3 -m http.server 3003 --bind {busy.bind_address} >/dev/null 2>&1 &"])
    deadline = time.monotonic() + 10
    while "3003" not in busy.exec(["sh", "-c", "ss -ltn 2>/dev/null || netstat -ltn"], check=False).stdout:
        assert time.monotonic() < deadline, "the other program never listened"
        time.sleep(0.2)
    try:
        data = json.loads(sandbox.cli("--json", "deploy", expect=1).stdout)
    finally:
        busy.exec(["sh", "-c", "pkill -f 'http.server 3003'"], check=False)
    status = {h["host"]: h for h in data["hosts"]}
    assert status["ml2"]["status"] == "failed" and "already in use" in status["ml2"]["message"]
    assert "ml_port" in status["ml2"]["fix"]
    assert status["ml1"]["status"] == status["ml3"]["status"] == "deployed"
    assert ml_container(busy) is None
    assert sandbox.host_named("ml2").ml_url not in sandbox.urls()


def test_immich_failing_at_registration_leaves_the_hosts_deployed_and_the_next_run_finishes(sandbox):
    local = sandbox.bed.local_ml_url
    sandbox.fake.fail_requests("PUT", "/api/system-config", status=500, count=10)
    data = json.loads(sandbox.cli("--json", "deploy", expect=1).stdout)
    assert [h["status"] for h in data["hosts"]] == ["deployed"] * 3
    assert data["immich"]["changed"] is False and "HTTP 500" in data["immich"]["error"]
    assert sandbox.urls() == [local]  # nothing half-written
    human = sandbox.cli("deploy", expect=1).output
    assert "Immich's URL list was NOT changed" in human and "run the same command again" in human
    sandbox.fake.reset()  # Immich answers again
    data = sandbox.cli_json("deploy")
    assert [h["status"] for h in data["hosts"]] == ["unchanged"] * 3 and data["immich"]["changed"] is True
    assert sandbox.urls() == [h.ml_url for h in sandbox.hosts] + [local]


def test_immich_down_before_the_run_touches_no_host(sandbox):
    sandbox.fake.stop()
    result = sandbox.cli("deploy", expect=1)
    assert "Cannot reach the Immich server" in result.output and "immich.url" in result.output
    assert all(ml_container(h) is None for h in sandbox.hosts)


def test_docker_stopped_on_a_host_refuses_that_host_with_the_fix(sandbox):
    host = sandbox.host_named("ml2")
    host.exec(["mv", "/var/run/docker.sock", "/var/run/docker.sock.away"])  # what a stopped daemon looks like
    try:
        data = json.loads(sandbox.cli("--json", "deploy", expect=1).stdout)
    finally:
        host.exec(["mv", "/var/run/docker.sock.away", "/var/run/docker.sock"])
    status = {h["host"]: h for h in data["hosts"]}
    assert status["ml2"]["status"] == "failed" and "does not answer" in status["ml2"]["message"]
    assert "systemctl enable --now docker" in status["ml2"]["fix"]
    assert status["ml1"]["status"] == status["ml3"]["status"] == "deployed"


def test_a_host_cut_off_by_a_network_partition_fails_in_bounded_time(sandbox):
    cut = sandbox.host_named("ml2")
    cut.partition()  # packets dropped, like a lost network: nothing refuses, nothing answers
    started = time.monotonic()
    data = json.loads(sandbox.cli("--json", "deploy", expect=1).stdout)
    elapsed = time.monotonic() - started
    status = {h["host"]: h for h in data["hosts"]}
    assert status["ml2"]["status"] == "failed"
    assert status["ml1"]["status"] == status["ml3"]["status"] == "deployed"
    assert cut.ml_url not in sandbox.urls()
    assert elapsed < 45, elapsed  # ssh.connect_timeout (default 10 s) bounds it; the others were not held back


def test_a_host_that_hangs_during_its_health_gate_fails_in_bounded_time(testbed, fresh_hosts, immich_fake_factory,
                                                                        tmp_path):
    box = make_sandbox(testbed, fresh_hosts, immich_fake_factory, tmp_path, version="2.7.4")
    box.cli("deploy")
    box.fake = immich_fake_factory("2.7.5", config=box.fake.config, ml_url=box.bed.local_ml_url)
    # The new release answers /ping only after 8 s, so the canary's gate is surely waiting when ml3 hangs.
    box.write_inventory(env={"MACHINE_LEARNING_STUB_START_DELAY": "8"})
    urls = box.urls()
    canary = box.host_named("ml3")

    def hang_the_canary_in_its_gate() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            container = ml_container(canary)
            if container and container["Config"]["Image"].endswith(":v2.7.5") and \
                    container["State"]["Status"] == "running":
                time.sleep(1)  # `compose up` has returned: the gate is waiting out the 8 s start delay
                canary.pause()
                return
            time.sleep(0.2)

    fault = threading.Thread(target=hang_the_canary_in_its_gate, daemon=True)
    fault.start()
    started = time.monotonic()
    data = json.loads(box.cli("--json", "upgrade", expect=1).stdout)
    elapsed = time.monotonic() - started
    fault.join(5)
    status = {h["host"]: h for h in data["hosts"]}
    assert status["ml3"]["status"] == "failed" and "rolling back was not possible" in status["ml3"]["message"]
    assert "stopped answering" in status["ml3"]["message"]
    assert status["ml1"]["status"] == status["ml2"]["status"] == "skipped"
    assert all(ml_container(h)["Config"]["Image"] == f"{IMAGE}:v2.7.4" for h in box.hosts[:2])
    assert box.urls() == urls
    assert elapsed < 90, elapsed  # the gate's `docker inspect` gives up after 30 s, the rollback at once
