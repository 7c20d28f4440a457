"""Throughput through an ML pool (issue 13): requests per second through HAProxy with N = 1, 2, 3 members,
against one host directly, with a stub of a fixed service time and ONE inference at a time per host (the stub's
model of a busy GPU: MACHINE_LEARNING_STUB_PREDICT_WORKERS=1). Predictions go through the Immich fake's model
of the server's routing, `--clients` at a time, as Immich's ML jobs run concurrently.

    python -m bench.pool [--service-time 0.3] [--clients 6] [--requests 30] [--runs 3]

Writes docs/pool-throughput.json and prints a Markdown table; `make bench` runs it after bench.compare.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

from bench.fleet import CLI, Fakes, Fleet, must
from immich_remote.haproxy import set_state_command
from tests.testbed.balancer_image import runtime_api
from tests.testbed.bed import TestBed, cleanup_stale

POOL, PORT = "bench", 3010


def set_member(balancer, member: str, state: str) -> None:
    """The runtime API on the balancer host's loopback, as immich-remote uses it."""
    answer = runtime_api(balancer, PORT + 1, set_state_command(member, state))
    if answer:
        raise SystemExit(f"the balancer refused `set server ml/{member} state {state}`: {answer}")


def rate(fleet: Fleet, requests: int, clients: int) -> float:
    """Predictions per second through Immich's routing (each must be answered by the first URL)."""
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(lambda _: fleet.fake.predict("clip"), range(clients)))  # warm connections
        started = time.monotonic()
        results = list(pool.map(lambda _: fleet.fake.predict("clip"), range(requests)))
    seconds = time.monotonic() - started
    if any(len(r.attempts) > 1 for r in results):
        raise SystemExit("a prediction failed over to another URL: the measurement is not of the pool alone")
    return requests / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--service-time", type=float, default=0.3)
    parser.add_argument("--clients", type=int, default=6)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", type=Path, default=Path("docs/pool-throughput.json"))
    args = parser.parse_args()
    cleanup_stale()
    with tempfile.TemporaryDirectory() as tmp:
        bed = TestBed(Path(tmp))
        bed.start(hosts=3)
        try:
            fleet = Fleet(bed, bed.hosts, Path(tmp), Fakes(bed))
            fleet.fresh(["2.7.5"])
            fleet.server("2.7.5")
            data = yaml.safe_load(fleet.inventory.read_text())
            data["defaults"]["env"] = {"MACHINE_LEARNING_STUB_PREDICT_DELAY": str(args.service_time),
                                       "MACHINE_LEARNING_STUB_PREDICT_WORKERS": "1"}
            data["pools"] = {POOL: {"members": [h.name for h in bed.hosts], "balancer": bed.hosts[0].name,
                                    "balancer_image": bed.balancer_image}}
            fleet.inventory.write_text(yaml.safe_dump(data, sort_keys=False))
            must("immich-remote deploy", subprocess.run([CLI, "-i", str(fleet.inventory), "deploy"], env=fleet.env,
                                                        capture_output=True, text=True, timeout=900))
            runs: dict[str, list[float]] = {}
            for _ in range(args.runs):
                for members in (1, 2, 3):
                    for i, host in enumerate(bed.hosts):
                        set_member(bed.hosts[0], host.name, "ready" if i < members else "maint")
                    runs.setdefault(str(members), []).append(rate(fleet, args.requests, args.clients))
        finally:
            bed.teardown()
    medians = {n: statistics.median(values) for n, values in runs.items()}
    result = {"service_time_s": args.service_time, "clients": args.clients, "requests": args.requests,
              "one_host_bound_rps": round(1 / args.service_time, 2),
              "rps": {n: {"median": round(m, 2), "min": round(min(runs[n]), 2), "max": round(max(runs[n]), 2)}
                      for n, m in medians.items()},
              "speedup": {n: round(m / medians["1"], 2) for n, m in medians.items()}}
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print("| members | requests/s (median, min-max) | vs 1 member |\n| --- | --- | --- |")
    for n, m in medians.items():
        print(f"| {n} | {m:.2f} ({min(runs[n]):.2f}-{max(runs[n]):.2f}) | {result['speedup'][n]:.2f}x |")


if __name__ == "__main__":
    main()
