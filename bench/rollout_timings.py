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
import statistics
import tempfile
from pathlib import Path

from bench.fleet import Fakes, Fleet, bare_loop, summary
from tests.testbed.bed import TestBed, cleanup_stale


def measure(bed: TestBed, count: int, runs: int) -> dict:
    hosts = bed.hosts[:count]
    result: dict[str, list[float]] = {"first deploy": [], "no-op": [], "upgrade": [], "bare loop (up --wait)": [],
                                      "window max": [], "window median": []}
    with tempfile.TemporaryDirectory() as tmp:
        fleet = Fleet(bed, hosts, Path(tmp), Fakes(bed))
        for _ in range(runs):
            fleet.fake = None
            fleet.server("2.7.4")
            fleet.fresh(["2.7.4", "2.7.5"])
            result["bare loop (up --wait)"].append(bare_loop(fleet))
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
