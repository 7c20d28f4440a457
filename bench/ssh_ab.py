"""A/B of the SSH layer on a running bed, 8 hosts at once, alternating rounds (not part of the test suite):
(1) the probe as one script on one channel vs its two halves on two channels at once (`run_all`);
(2) 20 trivial commands per host through another tree's `Remote.run` (e.g. the last commit's, fabric/invoke:
three helper threads and a 10 ms polling loop per command) vs this tree's (one channel, one select loop);
(3) connecting to every host with 4 (`ssh.max_handshakes`' default) vs 8 handshakes at a time.

    git archive HEAD immich_remote | tar -x -C /tmp/before-tree
    .venv/bin/python -m bench.ssh_ab --bed /tmp/prof-bed --before /tmp/before-tree/immich_remote/ssh.py
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from immich_remote import ssh as this_ssh
from immich_remote.facts import probe_script, probe_scripts
from immich_remote.hostcmd import sh
from tests.testbed.bed import TestBed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bed", type=Path, required=True)
    parser.add_argument("--before", type=Path, required=True, help="the other tree's immich_remote/ssh.py")
    parser.add_argument("--hosts", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    bed = TestBed.load(args.bed)
    spec = importlib.util.spec_from_file_location("immich_remote.ssh_before", args.before)
    before = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules[spec.name] = before  # type: ignore[union-attr]
    spec.loader.exec_module(before)  # type: ignore[union-attr]

    def remote(module, host):
        target = module.Target(host.name, "127.0.0.1", "deploy", host.ssh_port, bed.client_key)
        return module.Remote(target, known_hosts=[bed.known_hosts]).connect()

    hosts = bed.hosts[:args.hosts]
    ours, theirs = [remote(this_ssh, h) for h in hosts], [remote(before, h) for h in hosts]
    one = sh(probe_script(remote_dir="~/immich-remote-ml"))
    two = [sh(s) for s in probe_scripts(remote_dir="~/immich-remote-ml")]

    def together(fn, remotes) -> float:
        started = time.monotonic()
        with ThreadPoolExecutor(len(remotes)) as pool:
            list(pool.map(fn, remotes))
        return time.monotonic() - started

    def connect_all(limit: int) -> float:
        gate = threading.Semaphore(limit)
        fresh = [this_ssh.Remote(this_ssh.Target(h.name, "127.0.0.1", "deploy", h.ssh_port, bed.client_key),
                                 known_hosts=[bed.known_hosts], handshake_gate=gate) for h in hosts]
        seconds = together(lambda r: r.connect(), fresh)
        for r in fresh:
            r.close()
        return seconds

    cases = {"connect every host, 4 handshakes at a time": lambda: connect_all(4),
             "connect every host, 8 handshakes at a time": lambda: connect_all(8),
             "probe, one script on one channel": lambda: together(lambda r: r.run(one), ours),
             "probe, two halves on two channels at once": lambda: together(lambda r: r.run_all(two), ours),
             "20 x `true`, the other tree's Remote.run": lambda: together(
                 lambda r: [r.run("true") for _ in range(20)], theirs),
             "20 x `true`, this tree's Remote.run": lambda: together(
                 lambda r: [r.run("true") for _ in range(20)], ours)}
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.rounds):
        for name, case in cases.items():
            times[name].append(case())
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    print(f"{len(hosts)} hosts at once, {args.rounds} alternating rounds, seconds: median (min-max); load {load}")
    for name, values in times.items():
        print(f"  {name:44} {statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})")


if __name__ == "__main__":
    main()
