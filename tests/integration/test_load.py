"""Load: a first deploy to 16 hosts at once, as a user would run it (the installed console script in
its own process), without SSH handshake failures or running out of file descriptors. The process's
peak memory is measured and printed (a figure for docs/benchmarks.md, not a pass/fail target)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.integration.sandbox import IMAGE, make_sandbox, ml_container

pytestmark = pytest.mark.integration

# Runs the real entry point and reports the process's own peak RSS (KiB on Linux) on stderr.
MEASURED = ("import resource, sys\n"
            "from immich_remote.cli import main\n"
            "sys.argv = ['immich-remote'] + sys.argv[1:]\n"
            "try:\n    main()\n"
            "finally:\n"
            "    print('PEAK_RSS_KIB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n")


def test_sixteen_hosts_deploy_at_once(testbed, fresh_hosts, more_hosts, immich_fake_factory, tmp_path,
                                      record_property):
    hosts = fresh_hosts + more_hosts(13)
    box = make_sandbox(testbed, hosts, immich_fake_factory, tmp_path)
    env = {**os.environ, "IMMICH_REMOTE_STATE_DIR": str(box.state_dir), "NO_COLOR": "1"}
    done = subprocess.run([sys.executable, "-c", MEASURED, "-i", str(box.inventory), "--json", "deploy",
                           "--parallel", "16"], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    data = json.loads(done.stdout)
    assert [h["status"] for h in data["hosts"]] == ["deployed"] * 16
    assert sorted(box.urls()[:-1]) == sorted(h.ml_url for h in hosts) and box.urls()[-1] == box.bed.local_ml_url
    assert all(ml_container(h)["Config"]["Image"] == f"{IMAGE}:v2.7.5" for h in hosts)
    peak_mib = int(done.stderr.rsplit("PEAK_RSS_KIB", 1)[1].split()[0]) / 1024
    record_property("peak_rss_mib", round(peak_mib, 1))
    print(f"\n16-host deploy: peak RSS {peak_mib:.0f} MiB")
