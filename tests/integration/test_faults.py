"""Faults from the fault matrix (docs/reliability.md) that need a real process and real signals: the
admin's run interrupted while the hosts pull, and a registry that hangs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.sandbox import IMAGE, make_sandbox, ml_container

pytestmark = pytest.mark.integration

CLI = str(Path(sys.executable).with_name("immich-remote"))
STATE = "/home/deploy/immich-remote-ml/.immich-remote"


def start_cli(box, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "IMMICH_REMOTE_STATE_DIR": str(box.state_dir), "NO_COLOR": "1"}
    return subprocess.Popen([CLI, "-i", str(box.inventory), *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


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
