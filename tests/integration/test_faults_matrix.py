"""The fault matrix's hard cases (docs/reliability.md): a host killed or cut off in the middle of a
step of its swap, a disk that fills up during the upload or the pull, and the Immich server failing
or slow at the steps the deploy and upgrade commands take after the hosts are done.

Striking at the exact step: a small watcher runs *inside* the test host (as root) and polls every
millisecond for the step to begin (the staging directory of the upload appears, `docker compose up`
starts). It freezes that step's process with SIGSTOP, so the step is surely under way and cannot
finish, and raises a flag; a thread here sees the flag and strikes (`docker kill` of the host, or a
network partition, after which the frozen process is let go on as it would on a real cut link). The
health gate is struck as test_faults.py does for a hang: the new release answers /ping only after a
few seconds, and the fault lands while the gate waits.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from typing import Any

import pytest
import yaml

from tests.integration.sandbox import IMAGE, Sandbox, make_sandbox, ml_container
from tests.testbed.bed import Host
from tests.testbed.engine import docker

pytestmark = pytest.mark.integration

ROOT = "/home/deploy/immich-remote-ml"
RELEASES = f"{ROOT}/.immich-remote/releases"
ARMED = "/tmp/fault-armed"

# What is on a host: the active managed files, state.json, complete releases, staging dirs, the lock.
HOST_FILES = r"""
import hashlib, json, os
root = "ROOT"; rel = root + "/.immich-remote/releases"
def files(d):
    return {n: hashlib.sha256(open(os.path.join(d, n), "rb").read()).hexdigest()
            for n in ("docker-compose.yml", "hwaccel.ml.yml") if os.path.isfile(os.path.join(d, n))}
state_file = root + "/.immich-remote/state.json"
state = json.load(open(state_file)) if os.path.exists(state_file) else None
names = sorted(os.listdir(rel)) if os.path.isdir(rel) else []
print(json.dumps({"active": files(root), "state": state, "staging": [n for n in names if n.startswith(".")],
                  "releases": {n: files(os.path.join(rel, n)) for n in names if not n.startswith(".")},
                  "lock": os.path.isdir(root + "/.immich-remote/lock")}))
""".replace("ROOT", ROOT)

# Runs inside the host: wait for a step to begin, freeze its processes, raise the flag (with their pids).
WATCHER = r"""
import glob, os, signal, sys, time
kind, target = sys.argv[1], sys.argv[2]
open("/tmp/fault-watcher.pid", "w").write(str(os.getpid()))
def pids(needle):
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            cmd = open("/proc/%s/cmdline" % pid, "rb").read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if needle in cmd and "python3" not in cmd:
            found.append(int(pid))
    return found
deadline = time.monotonic() + 120
while time.monotonic() < deadline:
    if kind == "upload" and glob.glob(target):
        frozen = pids("sftp-server")
    elif kind == "up":
        frozen = pids(target)
    else:
        frozen = []
    if frozen:
        for pid in frozen:
            os.kill(pid, signal.SIGSTOP)
        open("/tmp/fault-armed.tmp", "w").write(" ".join(map(str, frozen)))
        os.rename("/tmp/fault-armed.tmp", "ARMED")
        break
    time.sleep(0.001)
""".replace("ARMED", ARMED)


def host_files(host: Host) -> dict[str, Any]:
    return json.loads(host.exec(["python3", "-c", HOST_FILES]).stdout)


def pong(host: Host) -> bool:
    try:
        with urllib.request.urlopen(f"{host.ml_url}/ping", timeout=2) as answer:
            return answer.read() == b"pong"
    except OSError:
        return False


def wait_serving(host: Host, timeout: float = 40) -> dict[str, Any]:
    """Until the host's ML container runs and answers pong from this machine; its `docker inspect`."""
    deadline = time.monotonic() + timeout
    while True:
        container = ml_container(host)
        if container and container["State"]["Status"] == "running" and pong(host):
            return container
        assert time.monotonic() < deadline, f"{host.name} does not serve again: {container and container['State']}"
        time.sleep(0.3)


def write_inventory(box: Sandbox, ssh: dict[str, Any] | None = None, **defaults: Any) -> None:
    """The sandbox's inventory, plus settings of the `ssh:` section (none by default: a user's defaults)."""
    path = box.write_inventory(**defaults)
    if ssh:
        data = yaml.safe_load(path.read_text())
        data["ssh"].update(ssh)
        path.write_text(yaml.safe_dump(data, sort_keys=False))


class Strike(threading.Thread):
    """Waits for `host` to reach `step` of its swap, then kills it or cuts it off (see the module docstring)."""

    def __init__(self, host: Host, fault: str, step: str) -> None:
        super().__init__(daemon=True)
        self.host, self.fault, self.step = host, fault, step
        self.at: float | None = None
        self.error: BaseException | None = None
        self.frozen = ""
        if step in ("upload", "up"):
            host.exec(["rm", "-f", ARMED])
            target = f"{RELEASES}/.*.tmp" if step == "upload" else "up --detach"
            docker("exec", "-d", host.container, "python3", "-c", WATCHER, step, target)

    def run(self) -> None:
        try:
            self._wait()
            self.at = time.monotonic()
            if self.fault == "kill":
                self.host.kill()
            else:
                self.host.partition()
                if self.frozen:  # the host goes on by itself; only its answers are lost
                    self.host.exec(["sh", "-c", f"kill -CONT {self.frozen}"], check=False)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc

    def stop(self) -> None:
        """End the watcher if it still waits (a test that failed before the step): it must not freeze a
        later test's upload."""
        self.host.exec(["sh", "-c", "kill $(cat /tmp/fault-watcher.pid) 2>/dev/null; rm -f /tmp/fault-watcher.pid"],
                       check=False)

    def _wait(self) -> None:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.step == "gate":
                container = ml_container(self.host)
                if container and container["Config"]["Image"].endswith(":v2.7.5") and \
                        container["State"]["Status"] == "running":
                    time.sleep(1)  # `compose up` has returned: the gate waits out the new release's start delay
                    return
            else:
                armed = self.host.exec(["cat", ARMED], check=False)
                if armed.returncode == 0:
                    self.frozen = armed.stdout.strip()
                    return
            time.sleep(0.05)
        raise TimeoutError(f"{self.host.name} never reached its {self.step} step")


# Per step: what bounds giving up on the host that is cut off (the killed one fails at once), and the
# inventory's ssh settings. A file write is bounded by min(30 s, ssh.command_timeout) and `compose up` by
# min(ssh.command_timeout, 2 min); with the defaults a host cut off during `compose up` is given up after
# 2 min. ssh.command_timeout: 15s keeps these two cases short and shows that this bound is the one acting
# (the 30 s default of a file write: tests/unit/test_ssh_local.py). The gate runs with the defaults.
STEPS = {
    "upload": ("a file write: min(30 s, ssh.command_timeout = 15 s here)", {"command_timeout": "15s"}),
    "up": ("compose up: min(ssh.command_timeout = 15 s here, 2 min)", {"command_timeout": "15s"}),
    "gate": ("opening a channel to inspect the container: ssh.connect_timeout, default 10 s", {}),
}


@pytest.mark.parametrize("step", list(STEPS))
def test_hosts_killed_and_cut_off_during_a_step_of_their_swap(testbed, fresh_hosts, immich_fake_factory, tmp_path,
                                                              step):
    """An upgrade of 3 hosts with --max-fail 2: the canary ml3 is killed (`docker kill`) during `step`,
    the next host ml2 is cut off (packets dropped) during the same step, and ml1 must stay untouched."""
    bound, ssh = STEPS[step]
    box = make_sandbox(testbed, fresh_hosts, immich_fake_factory, tmp_path, version="2.7.4")
    box.cli("deploy")
    killed, cut, untouched = (box.host_named(n) for n in ("ml3", "ml2", "ml1"))
    before = {h.name: host_files(h) for h in (killed, cut)}
    untouched_started = ml_container(untouched)["State"]["StartedAt"]
    urls = box.urls()
    box.fake = immich_fake_factory("2.7.5", config=box.fake.config, ml_url=box.bed.local_ml_url)
    # For the gate: the new release answers /ping only after 8 s, so the gate is surely waiting when struck.
    write_inventory(box, ssh=ssh, **({"env": {"MACHINE_LEARNING_STUB_START_DELAY": "8"}} if step == "gate" else {}))
    strikes = [Strike(killed, "kill", step), Strike(cut, "partition", step)]
    for strike in strikes:
        strike.start()
    try:
        started = time.monotonic()
        data = box.cli_json("upgrade", "--max-fail", "2", expect=1)
        ended = time.monotonic()
        for strike in strikes:
            strike.join(5)
            assert strike.error is None and strike.at is not None, (strike.host.name, strike.error)
    finally:
        for strike in strikes:
            if strike.step != "gate" and strike.at is None:
                strike.stop()
    status = {h["host"]: h for h in data["hosts"]}
    kill_gave_up = strikes[1].at - strikes[0].at  # at most: ml2's swap starts once ml3 is given up
    cut_gave_up = ended - strikes[1].at
    print(f"\n{step}: killed ml3 given up within {kill_gave_up:.1f}s, cut-off ml2 after {cut_gave_up:.1f}s "
          f"({bound}); whole run {ended - started:.1f}s\n  ml3: {status['ml3']['message']}\n"
          f"  ml2: {status['ml2']['message']}")
    assert status["ml3"]["status"] == status["ml2"]["status"] == "failed", data["hosts"]
    assert status["ml1"]["status"] == "skipped"
    assert kill_gave_up < 20, kill_gave_up
    assert cut_gave_up < 45, cut_gave_up
    assert box.urls() == urls and box.fake.config_writes() == []  # Immich's config untouched
    now = ml_container(untouched)
    assert now["Config"]["Image"] == f"{IMAGE}:v2.7.4" and now["State"]["StartedAt"] == untouched_started
    assert pong(untouched)
    # The hosts back (rebooted; link restored): each on a complete file set, old or new, and serving.
    for host in (killed, cut):
        host.recover()
    for host in (killed, cut):
        after, old = host_files(host), before[host.name]["state"]["current"]
        current = after["state"]["current"]
        assert after["active"] == after["releases"][current], after  # never half-written
        assert current == old or after["releases"][current] != before[host.name]["releases"][old]  # or new
        container = wait_serving(host)
        print(f"  {host.name} after: {'old' if current == old else 'new'} files, serving "
              f"{container['Config']['Image'].rsplit(':', 1)[1]}, staging {after['staging']}, lock {after['lock']}")
    if step in ("upload", "up"):  # the next run finishes the job and cleans up what the dead run left
        data = box.cli_json("upgrade", "--break-lock")
        status = {h["host"]: h["status"] for h in data["hosts"]}
        # restarted: the new files were in place already; unchanged: the host finished `compose up` by itself
        assert status["ml1"] == "upgraded" and {status["ml2"], status["ml3"]} <= {"upgraded", "restarted",
                                                                                  "unchanged"}, status
        for host in box.hosts:
            assert wait_serving(host)["Config"]["Image"] == f"{IMAGE}:v2.7.5", host.name
        for host in (killed, cut):
            assert host_files(host)["staging"] == [] and not host_files(host)["lock"]


# The project directory on a small tmpfs holding its files, filled up to 2 free pages: the lock's owner
# file and one staged file still fit, the next file of the upload does not.
FILL_PROJECT_DIR = f"""set -e
cp -a {ROOT} /tmp/project-copy
mount -t tmpfs -o size=256k,mode=0755,uid=$(id -u deploy),gid=$(id -g deploy) tmpfs {ROOT}
cp -a /tmp/project-copy/. {ROOT}/ && rm -rf /tmp/project-copy
dd if=/dev/zero of={ROOT}/.filler bs=4k 2>/dev/null || true
truncate -s -8192 {ROOT}/.filler
"""
# Docker writes a pull's layers under /var/lib/docker/tmp and the image's config into its image store; a
# stub version adds no layer to the previous one, so it is the image store that must be full here. Both
# become small full filesystems (the store keeps its current files, which the engine reads back).
IMAGEDB = "/var/lib/docker/image/overlay2/imagedb/content/sha256"
FILL_DOCKER = f"""set -e
mount -t tmpfs -o size=64k tmpfs /var/lib/docker/tmp
cp -a {IMAGEDB} /tmp/imagedb-copy
mount -t tmpfs -o size=1m tmpfs {IMAGEDB}
cp -a /tmp/imagedb-copy/. {IMAGEDB}/ && rm -rf /tmp/imagedb-copy
for d in /var/lib/docker/tmp {IMAGEDB}; do dd if=/dev/zero of=$d/.filler bs=4k 2>/dev/null || true; done
"""


def test_a_disk_that_fills_up_during_the_upload_or_the_pull(testbed, fresh_hosts, immich_fake_factory, tmp_path):
    """An upgrade of 3 hosts: the canary ml3's project directory is full when its new files are uploaded,
    ml2's Docker disk is full when it pulls the new image; ml1 is left alone."""
    box = make_sandbox(testbed, fresh_hosts, immich_fake_factory, tmp_path, version="2.7.4")
    box.cli("deploy")
    upload, pull, untouched = (box.host_named(n) for n in ("ml3", "ml2", "ml1"))
    started_at = {h.name: ml_container(h)["State"]["StartedAt"] for h in box.hosts}
    before, urls = host_files(upload), box.urls()
    box.fake = immich_fake_factory("2.7.5", config=box.fake.config, ml_url=box.bed.local_ml_url)
    box.write_inventory()
    try:
        upload.exec(["sh", "-c", FILL_PROJECT_DIR])
        pull.exec(["sh", "-c", FILL_DOCKER])
        started = time.monotonic()
        data = box.cli_json("upgrade", expect=1)
        elapsed = time.monotonic() - started
        after = host_files(upload)
    finally:
        upload.exec(["umount", "-l", ROOT], check=False)
        pull.exec(["umount", "-l", "/var/lib/docker/tmp", IMAGEDB], check=False)
    status = {h["host"]: h for h in data["hosts"]}
    print(f"\ndisk full: whole run {elapsed:.1f}s\n  ml3: {status['ml3']['message']} / {status['ml3']['fix']}\n"
          f"  ml2: {status['ml2']['message']} / {status['ml2']['fix']}")
    assert elapsed < 30, elapsed
    assert status["ml3"]["status"] == "failed" and "disk full: no space left on" in status["ml3"]["message"]
    assert "the current container keeps serving" in status["ml3"]["message"] and "df -h" in status["ml3"]["fix"]
    assert after["staging"] == [] and not after["lock"]  # no half-written release, no lock left behind
    assert after["active"] == before["active"] and after["state"] == before["state"]
    assert status["ml2"]["status"] == "failed" and "no space left on device" in status["ml2"]["message"]
    assert "disk is full" in status["ml2"]["message"] and "docker image prune" in status["ml2"]["fix"]
    assert status["ml1"]["status"] == "skipped"  # the canary failed: the rollout stops
    for host in box.hosts:  # every old container serves on, never stopped
        container = ml_container(host)
        assert container["Config"]["Image"] == f"{IMAGE}:v2.7.4", host.name
        assert container["State"]["StartedAt"] == started_at[host.name] and pong(host), host.name
    assert box.urls() == urls and box.fake.config_writes() == []


def test_immich_failing_slow_or_down_when_deploy_starts_the_missing_jobs(testbed, fresh_hosts, immich_fake_factory,
                                                                        tmp_path):
    box = make_sandbox(testbed, fresh_hosts[1:], immich_fake_factory, tmp_path)
    local = box.bed.local_ml_url
    registered = [h.ml_url for h in box.hosts] + [local]
    # 500: the first queue starts, the second fails, the third is not tried; the hosts and the URLs are done.
    box.fake.fail_requests("PUT", "/api/jobs/faceDetection", status=500)
    data = box.cli_json("deploy", "--run-missing", expect=1)
    assert [h["status"] for h in data["hosts"]] == ["deployed"] * 2
    assert data["immich"]["changed"] is True and box.urls() == registered
    assert data["immich"]["missing_started"] == ["smartSearch"]
    assert "HTTP 500" in data["immich"]["missing_failed"]["faceDetection"]
    assert data["immich"]["missing_failed"]["ocr"] == "not tried"
    assert [c.name for c in box.fake.job_commands()] == ["smartSearch"]
    # Slow: the job start gets no answer within immich.timeout (default 10 s); the run gives up there.
    box.fake.delay_requests("PUT", "/api/jobs/smartSearch", seconds=15)
    started = time.monotonic()
    data = box.cli_json("deploy", "--run-missing", expect=1)
    slow = time.monotonic() - started
    assert [h["status"] for h in data["hosts"]] == ["unchanged"] * 2 and box.urls() == registered
    assert "did not answer PUT /api/jobs/smartSearch within 10 s" in data["immich"]["missing_failed"]["smartSearch"]
    assert slow < 25, slow
    # Down: Immich goes away while the job start is under way.
    server = box.fake
    server.reset()
    arrived = server.delay_requests("PUT", "/api/jobs/smartSearch", seconds=5)

    def stop_the_server_once_the_job_start_is_sent() -> None:
        if arrived.wait(60):
            server.stop()

    stopper = threading.Thread(target=stop_the_server_once_the_job_start_is_sent, daemon=True)
    stopper.start()
    started = time.monotonic()
    result = box.cli("deploy", "--run-missing", expect=1)
    down = time.monotonic() - started
    stopper.join(5)
    print(f"\nrun-missing: slow gave up after {slow:.1f}s (whole run), down {down:.1f}s:\n{result.output}")
    assert "'Missing' jobs not started (or not confirmed): smartSearch:" in result.output
    assert "`immich-remote jobs run-missing`" in result.output and "unchanged" in result.output
    assert down < 25, down


def test_immich_failing_or_slow_while_upgrade_waits_for_the_server(testbed, fresh_hosts, immich_fake_factory,
                                                                    tmp_path):
    box = make_sandbox(testbed, fresh_hosts[1:], immich_fake_factory, tmp_path, version="2.7.4")
    box.cli("deploy")
    started_at = {h.name: ml_container(h)["State"]["StartedAt"] for h in box.hosts}
    box.fake = immich_fake_factory("2.7.5", config=box.fake.config, ml_url=box.bed.local_ml_url)
    box.write_inventory()
    version = "/api/server/version"

    def untouched() -> None:
        assert {h.name: ml_container(h)["State"]["StartedAt"] for h in box.hosts} == started_at
        assert [r for r in box.fake.requests() if r.method != "GET"] == []

    # 500 on every try: gives up at --wait-timeout, nothing changed, says how to go on.
    box.fake.fail_requests("GET", version, status=500, count=1000)
    started = time.monotonic()
    result = box.cli("upgrade", "--wait-server", "--wait-timeout", "5s", expect=1)
    failing = time.monotonic() - started
    assert "did not come back with a new version within 5s (Reading the server version failed: HTTP 500" \
        in result.output and "no host was changed" in result.output and "--wait-server" in result.output
    untouched()
    # Slow (no answer within immich.timeout, 10 s): the deadline counts from the start; one try may overrun it.
    box.fake.reset()
    box.fake.delay_requests("GET", version, seconds=12, count=1000)
    started = time.monotonic()
    result = box.cli("upgrade", "--wait-server", "--wait-timeout", "5s", expect=1)
    slow = time.monotonic() - started
    assert "did not come back with a new version within 5s (The Immich server at" in result.output
    assert "did not answer GET /api/server/version within 10 s); no host was changed" in result.output
    untouched()
    # Failing for a while, then back with the new version: the upgrade goes on.
    box.fake.reset()
    box.fake.fail_requests("GET", version, status=500, count=2)
    started = time.monotonic()
    data = box.cli_json("upgrade", "--wait-server", "--wait-timeout", "60s")
    recovered = time.monotonic() - started
    print(f"\nwait-server: failing gave up after {failing:.1f}s, slow after {slow:.1f}s, "
          f"recovered and upgraded in {recovered:.1f}s")
    assert [h["status"] for h in data["hosts"]] == ["upgraded"] * 2
    assert failing < 15, failing
    assert slow < 30, slow
