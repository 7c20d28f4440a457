"""`make bench`: immich-remote against Ansible, compose-farm and a bare parallel OpenSSH loop on the same
test hosts, with the same rendered compose files and the defaults a user gets. Not part of CI.

    .venv/bin/python -m bench.compare --hosts 1 4 8 --runs 3 [--json docs/benchmarks.json]

Scenarios per host count: first deploy (the stub image already on every host), no-op, a one-host change
(an environment variable of the first host; from 2 hosts), and an upgrade to the next version. The tools
alternate within each run (the order rotates), so ratios are computed within one run; absolute times
drift on these machines. For immich-remote also: `--help` time, peak memory of a first deploy, and SSH
logins and channel round trips per host for a first deploy, a no-op and an upgrade.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.fleet import CLI, IMAGE, Fakes, Fleet, summary, timed
from bench.peers import TOOLS
from tests.testbed.bed import TestBed, cleanup_stale

OLD, NEW = "2.7.4", "2.7.5"
# docs/benchmarks.md below this line is written by hand (the profiles' findings): a new run keeps it.
FINDINGS = "<!-- findings: kept by bench/compare.py -->"

# Runs the CLI in this process with paramiko instrumented: SSH logins (start_client) and channels opened
# (exec, sftp, direct-tcpip: one round trip each at least), per host port; printed as JSON on stderr.
COUNTED = r"""
import collections, json, sys, atexit, paramiko
logins, channels = collections.Counter(), collections.Counter()
start, opened = paramiko.Transport.start_client, paramiko.Transport.open_channel
def start_client(self, *a, **k):
    logins[self.getpeername()[1]] += 1
    return start(self, *a, **k)
def open_channel(self, *a, **k):
    channels[self.getpeername()[1]] += 1
    return opened(self, *a, **k)
paramiko.Transport.start_client, paramiko.Transport.open_channel = start_client, open_channel
def peak_kib():  # VmHWM: this process's own peak (ru_maxrss would carry the forking parent's over exec)
    return int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1])
atexit.register(lambda: print("COUNTS" + json.dumps({"logins": logins, "channels": channels,
    "maxrss_kib": peak_kib()}), file=sys.stderr))
from immich_remote.cli import main
sys.argv = ["immich-remote"] + sys.argv[1:]
main()
"""


def scenarios(fleet: Fleet, tool, count: int) -> dict[str, float]:
    fleet.fake = None
    fleet.server(OLD)
    fleet.fresh([OLD, NEW], IMAGE)
    times = {"first deploy": tool.run(OLD), "no-op": tool.run(OLD)}
    if count > 1:
        fleet.change_one(fleet.hosts[0].name)
        times["one-host change"] = tool.run(OLD)
    fleet.server(NEW)
    times["upgrade"] = tool.run(NEW, upgrade=True)
    fleet.fake.stop()
    fleet.fake = None
    return times


def counted(fleet: Fleet, *args: str) -> dict:
    done = subprocess.run([sys.executable, "-c", COUNTED, "-i", str(fleet.inventory), "--json", *args],
                          env=fleet.env, capture_output=True, text=True, timeout=900)
    line = next(x for x in done.stderr.splitlines() if x.startswith("COUNTS"))
    data = json.loads(line[len("COUNTS"):])
    per_host = [(data["logins"].get(str(h.ssh_port), 0), data["channels"].get(str(h.ssh_port), 0))
                for h in fleet.hosts]
    return {"logins per host": max(p[0] for p in per_host), "channels per host (max)": max(p[1] for p in per_host),
            "peak MiB": round(data["maxrss_kib"] / 1024, 1)}


def immich_remote_extras(fleet: Fleet) -> dict:
    fleet.fake = None
    fleet.server(OLD)
    fleet.fresh([OLD, NEW], IMAGE)
    extras = {"first deploy": counted(fleet, "deploy"), "no-op": counted(fleet, "deploy")}
    fleet.server(NEW)
    extras["upgrade"] = counted(fleet, "upgrade")
    fleet.fake.stop()
    fleet.fake = None
    return extras


def help_seconds() -> dict[str, float] | None:
    return summary([timed([CLI, "--help"])[0] for _ in range(5)])


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def machine() -> str:
    cpus = os.cpu_count()
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor() or "?")
    return f"{platform.node()}: {cpus} CPUs ({model}), Linux {platform.release()}, Python {platform.python_version()}"


def measure(bed: TestBed, count: int, runs: int) -> dict:
    hosts = bed.hosts[:count]
    load_before = load_average()
    with tempfile.TemporaryDirectory() as tmp:
        fleet = Fleet(bed, hosts, Path(tmp), Fakes(bed))
        fleet.server(OLD)
        tools = [tool(fleet) for tool in TOOLS]
        raw: dict[str, dict[str, list[float]]] = {t.name: {} for t in tools}
        ratios: dict[str, list[float]] = {}
        for run in range(runs):
            order = tools[run % len(tools):] + tools[:run % len(tools)]
            this_run = {}
            for tool in order:
                this_run[tool.name] = scenarios(fleet, tool, count)
                for scenario, seconds in this_run[tool.name].items():
                    raw[tool.name].setdefault(scenario, []).append(seconds)
            ours = this_run["immich-remote"]
            for scenario, seconds in ours.items():
                for peer in ("ansible", "compose-farm", "bare OpenSSH loop"):
                    ratios.setdefault(f"{peer} / immich-remote: {scenario}", []).append(
                        this_run[peer][scenario] / seconds)
        cf = next(t for t in tools if t.name == "compose-farm")
        result = {
            "versions": {t.name: t.version for t in tools},
            "seconds": {name: {s: summary(v) for s, v in scenarios_.items()} for name, scenarios_ in raw.items()},
            "ratios (within a run)": {name: summary(v) for name, v in ratios.items()},
            "compose-farm file copy, not in its times": summary(cf.sync_seconds),
            "immich-remote": immich_remote_extras(fleet),
            "load average (1, 5, 15 min) before, after": [load_before, load_average()],
        }
        if fleet.fake:
            fleet.fake.stop()
    return result


def markdown(results: dict, command: str) -> str:
    lines = ["# Benchmarks", "", "Produced by `make bench` (bench/compare.py): every tool deploys the same compose "
             "files, rendered by immich-remote, to the same Docker-in-Docker test hosts (sshd + dockerd + Compose v2), "
             "with the stub ML image already on the hosts and default settings. Seconds: median (min-max) over the "
             "runs; ratios are computed within each run, then the median is taken.", "",
             f"Command: `{command}`", "", f"Machine: {results.get('machine', '?')}. The 1/5/15-minute load "
             "average before and after each host count is given with it: other work ran on this machine at the "
             "same time, so absolute seconds drift; compare the ratios, computed within each run.", ""]
    for count, data in results["hosts"].items():
        load = data.get("load average (1, 5, 15 min) before, after", ["?", "?"])
        lines += [f"## {count} host(s)", "", f"Load average before: {load[0]}; after: {load[1]}.", "", "| scenario | " + " | ".join(data["seconds"]) + " |",
                  "|---|" + "---|" * len(data["seconds"])]
        scenario_names = list(next(iter(data["seconds"].values())))
        for scenario in scenario_names:
            cells = []
            for tool in data["seconds"]:
                s = data["seconds"][tool].get(scenario)
                cells.append(f"{s['median']:.2f} ({s['min']:.2f}-{s['max']:.2f})" if s else "-")
            lines.append(f"| {scenario} | " + " | ".join(cells) + " |")
        lines += ["", "| ratio (peer time / immich-remote time) | median (min-max) |", "|---|---|"]
        for name, s in data["ratios (within a run)"].items():
            lines.append(f"| {name} | {s['median']:.2f}x ({s['min']:.2f}-{s['max']:.2f}) |")
        copy = data["compose-farm file copy, not in its times"]
        lines += ["", f"compose-farm assumes the files are on every host already (shared storage); copying them took "
                  f"{copy['median']:.2f} s (median), not included above. compose-farm's `up` does not wait for the "
                  "health check; Ansible and the bare loop wait (`wait: true`, `--wait`); immich-remote waits for "
                  "its gate (pong, running without restarts).", "",
                  "immich-remote, counted in-process (paramiko): " + "; ".join(
                      f"{k}: {v['logins per host']} login(s) and {v['channels per host (max)']} channels per host, "
                      f"peak {v['peak MiB']} MiB" for k, v in data["immich-remote"].items()), ""]
    versions = next(iter(results["hosts"].values()))["versions"]
    lines += ["Versions: " + "; ".join(f"{k} {v}" for k, v in versions.items()) + ".",
              f"`immich-remote --help`: {results['help']['median']:.3f} s (median of 5).", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", type=Path, default=Path("docs/benchmarks.json"))
    parser.add_argument("--markdown", type=Path, default=Path("docs/benchmarks.md"))
    args = parser.parse_args()
    cleanup_stale()
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        bed = TestBed(Path(tmp))
        bed.start(hosts=max(args.hosts))
        try:
            results = {"machine": machine(), "hosts": {str(n): measure(bed, n, args.runs) for n in args.hosts},
                       "help": help_seconds()}
        finally:
            bed.teardown()
    results["wall seconds"] = round(time.monotonic() - started)
    command = f"python -m bench.compare --hosts {' '.join(map(str, args.hosts))} --runs {args.runs}"
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    kept = args.markdown.read_text().partition(FINDINGS)[2] if args.markdown.exists() else ""
    args.markdown.write_text(markdown(results, command) + (f"\n{FINDINGS}{kept}" if kept else ""))
    print(args.markdown.read_text())


if __name__ == "__main__":
    main()
