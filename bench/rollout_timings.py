"""Rollout timings on the test bed, with the defaults a user gets: first deploy, no-op and upgrade of
N hosts, the windows immich-remote reports, and a bare parallel OpenSSH loop doing the same
`docker compose up -d --wait` for comparison. Not part of the test suite (CI does not run it).

    .venv/bin/python -m bench.rollout_timings --hosts 3 8 --runs 3 [--json out.json]

Each immich-remote run is the installed console script in its own process (startup included). The
stub image is put on every host first, so pulls do not dominate; figures are seconds (median, min,
max) on the machine it ran on: compare ratios within one run, not absolute times across machines.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.testbed.bed import TestBed, cleanup_stale
from tests.testbed.immich_fake import DEFAULT_API_KEY, FakeImmichServer

IMAGE = "registry.tb/immich-app/immich-machine-learning"
CLI = str(Path(sys.executable).with_name("immich-remote"))


def timed(cmd: list[str], env: dict[str, str], **kwargs) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.monotonic()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900, **kwargs)
    return time.monotonic() - started, done


class Fleet:
    def __init__(self, bed: TestBed, hosts, workdir: Path) -> None:
        self.bed, self.hosts, self.workdir = bed, hosts, workdir
        self.key_file = workdir / "api-key"
        self.key_file.write_text(DEFAULT_API_KEY + "\n")
        self.key_file.chmod(0o600)
        self.env = {**os.environ, "IMMICH_REMOTE_STATE_DIR": str(workdir / "state"), "NO_COLOR": "1"}
        self.fake: FakeImmichServer | None = None

    def server(self, version: str) -> None:
        config = self.fake.config if self.fake else None
        if self.fake:
            self.fake.stop()
        self.fake = FakeImmichServer(version, ml_url=self.bed.local_ml_url,
                                     **({"config": config} if config else {})).start()
        self.inventory = self.bed.write_inventory(self.workdir / "inventory.yml", self.fake.url, self.key_file,
                                                  hosts=self.hosts)

    def fresh(self, versions: list[str]) -> None:
        """Wipe the hosts and put the stub images there (image already on the hosts)."""
        def prepare(host) -> None:
            host.wipe()
            for version in versions:
                host.exec(["docker", "pull", "-q", f"{IMAGE}:v{version}"], timeout=120)
        with ThreadPoolExecutor(len(self.hosts)) as pool:
            list(pool.map(prepare, self.hosts))

    def cli(self, *args: str) -> tuple[float, dict]:
        seconds, done = timed([CLI, "-i", str(self.inventory), "--json", *args], self.env)
        if done.returncode != 0:
            raise SystemExit(f"immich-remote {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
        return seconds, json.loads(done.stdout)

    def bare_loop(self) -> float:
        """One OpenSSH session per host, all in parallel: upload the compose file on stdin, `up -d --wait`."""
        out = self.workdir / "rendered"
        subprocess.run([CLI, "-i", str(self.inventory), "render", "--out", str(out)], env=self.env, check=True,
                       capture_output=True)

        def one(host) -> int:
            remote = ("mkdir -p bare && cat > bare/docker-compose.yml && "
                      "docker compose -f bare/docker-compose.yml up -d --wait --pull never >/dev/null 2>&1")
            with open(out / host.name / "docker-compose.yml", "rb") as stdin:
                return subprocess.run(["ssh", "-i", str(self.bed.client_key), "-o", "BatchMode=yes",
                                       "-o", f"UserKnownHostsFile={self.bed.known_hosts}", "-p", str(host.ssh_port),
                                       "deploy@127.0.0.1", remote], stdin=stdin, capture_output=True).returncode

        started = time.monotonic()
        with ThreadPoolExecutor(len(self.hosts)) as pool:
            codes = list(pool.map(one, self.hosts))
        seconds = time.monotonic() - started
        if any(codes):
            raise SystemExit(f"bare loop failed: {codes}")
        return seconds


def summary(values: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(values), 2), "min": round(min(values), 2), "max": round(max(values), 2)}


def measure(bed: TestBed, count: int, runs: int) -> dict:
    hosts = bed.hosts[:count]
    result: dict[str, list[float]] = {"first deploy": [], "no-op": [], "upgrade": [], "bare loop (up --wait)": [],
                                      "window max": [], "window median": []}
    with tempfile.TemporaryDirectory() as tmp:
        fleet = Fleet(bed, hosts, Path(tmp))
        for _ in range(runs):
            fleet.fake = None
            fleet.server("2.7.4")
            fleet.fresh(["2.7.4", "2.7.5"])
            result["bare loop (up --wait)"].append(fleet.bare_loop())
            fleet.fake.stop()
            fleet.fake = None
            fleet.server("2.7.4")
            fleet.fresh(["2.7.4", "2.7.5"])
            seconds, data = fleet.cli("deploy")
            assert all(h["status"] == "deployed" for h in data["hosts"]), data
            result["first deploy"].append(seconds)
            seconds, data = fleet.cli("deploy")
            assert all(h["status"] == "unchanged" for h in data["hosts"]), data
            result["no-op"].append(seconds)
            fleet.server("2.7.5")
            seconds, data = fleet.cli("upgrade")
            assert all(h["status"] == "upgraded" for h in data["hosts"]), data
            result["upgrade"].append(seconds)
            windows = [h["window"] for h in data["hosts"]]
            result["window max"].append(max(windows))
            result["window median"].append(statistics.median(windows))
            fleet.fake.stop()
    return {name: summary(values) for name, values in result.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, nargs="+", default=[3, 8])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    cleanup_stale()
    with tempfile.TemporaryDirectory() as tmp:
        bed = TestBed(Path(tmp))
        bed.start(hosts=max(args.hosts))
        try:
            results = {str(n): measure(bed, n, args.runs) for n in args.hosts}
        finally:
            bed.teardown()
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
