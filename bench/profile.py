"""Where an immich-remote run's seconds go, on the test bed: a first deploy and a no-op of N hosts,
each profiled twice, wall clock: py-spy (every thread, idle ones too, so waiting on the network
counts) and pyinstrument (the main thread: startup, imports, the Immich API, the rollout's waits).
Not part of the test suite.

    .venv/bin/python -m bench.profile --hosts 8 [--bed /tmp/prof-bed] [--out docs/profiles]

py-spy and pyinstrument are installed into .venv by hand (`.venv/bin/pip install py-spy pyinstrument`);
they are not runtime dependencies. `--bed` reuses a bed left running by `python -m tests.testbed up`.
Writes <out>/<scenario>-<N>hosts.txt: plain timings without a profiler, then py-spy's per-thread
wall seconds by phase, the functions with the most thread-seconds, and pyinstrument's main-thread tree.
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import resource
import sys
import tempfile
from pathlib import Path

from bench.fleet import CLI, IMAGE, Fakes, Fleet, timed
from tests.testbed.bed import TestBed, cleanup_stale

BIN = Path(sys.executable).parent
RATE = 100  # py-spy samples per second per thread
# What a thread is doing, from the innermost frame that names it (frames are searched innermost first).
PHASES = (
    ("health gate", ("immich_remote/health.py",)),
    ("SSH connect: key exchange + auth", ("Remote._connect",)),
    ("probe", ("probe (immich_remote/context.py",)),
    ("image (ensure_image)", ("immich_remote/images.py",)),
    ("SFTP (files)", ("Remote._file_op", "Remote.read_file", "Remote.write_file")),
    ("remote commands", ("Remote.run", "Remote.stream_in", "Remote.stream_out")),
    ("TCP from the host", ("Remote.tcp_exchange",)),
    ("Immich API", ("immich_remote/immich_api.py",)),
    ("render + plan (CPU)", ("immich_remote/render.py", "immich_remote/steps.py", "immich_remote/preflight.py")),
)
# The main thread's sequence (its samples in time order, labelled by the outermost matching frame).
MAIN = (
    ("rollout: stage every host (connect, probe, plan)", ("canary_rollout (immich_remote/rollout.py:221)",)),
    ("rollout: swap wave", ("canary_rollout (immich_remote/rollout.py:243)", "canary_rollout (immich_remote/rollout.py:244)",)),
    ("rollout: other", ("canary_rollout",)),
    ("register in Immich", ("register (",)),
    ("Immich preflight", ("immich_preflight",)),
    ("snapshot", ("start_snapshot", "snapshots.py")),
    ("inventory", ("load_inventory", "immich_remote/inventory/")),
    ("summary output", ("immich_remote/report.py", "immich_remote/output.py")),
    ("Immich API", ("immich_remote/immich_api.py",)),
    ("imports", ("importlib._bootstrap",)),
)


# Runs the CLI in this process with a few functions wrapped to record (host, what, start, end): startup and
# imports, each run_hosts call (stage, swap waves), per host connect, probe, each swap step and the gate, and
# each Immich API request. Printed as JSON on stderr at exit. No profiler: the times are the run's own.
TRACED = r"""
import atexit, functools, json, sys, threading, time
T0 = time.monotonic()
events = []
def mark(host, what, start, end=None):
    events.append((host, what, round(start - T0, 3), round((end or time.monotonic()) - T0, 3)))
def wrap(owner, name, host_of, what=None):
    original = getattr(owner, name)
    @functools.wraps(original)
    def traced(*a, **k):
        start = time.monotonic()
        try:
            return original(*a, **k)
        finally:
            who = host_of(*a, **k)
            host, label = who if isinstance(who, tuple) else (who, what or name)
            mark(host, label, start)
    setattr(owner, name, traced)
from immich_remote import cli
mark("-", "imports (immich_remote.cli)", T0)
import immich_remote.context as context, immich_remote.rollout as rollout, immich_remote.ssh as ssh
import immich_remote.swap as swap, immich_remote.immich_api as api, immich_remote.health as health
wrap(rollout, "run_hosts", lambda hosts, *a, **k: ("-", f"run_hosts ({len(hosts)} hosts)"))
wrap(ssh.Remote, "_connect", lambda self: self.target.label, "connect (SSH handshake + auth)")
wrap(context, "probe", lambda remote, host: host.name)
wrap(health, "wait_serving", lambda remote, host, *a, **k: host.name, "gate (wait_serving)")
for step in [n for n in dir(swap.Swap) if n.startswith("do_")]:
    wrap(swap.Swap, step, lambda self: self.host.name, step[3:])
wrap(api.ImmichClient, "_request", lambda self, method, path, *a, **k: ("immich", f"{method} {path}"))
atexit.register(lambda: print("TRACE" + json.dumps({"events": events, "end": round(time.monotonic() - T0, 3)}),
                              file=sys.stderr))
sys.argv = ["immich-remote"] + sys.argv[1:]
cli.main()
"""


def timeline(trace: dict, outside: float) -> list[str]:
    events = trace["events"]
    lines = [f"in-process timeline (seconds since the interpreter ran our first line; the run took {outside:.2f} s "
             f"from outside, so Python's own start-up is about {outside - trace['end']:.2f} s):"]
    for host, what, start, end in sorted(e for e in events if e[0] in ("-", "immich")):
        lines.append(f"  {start:6.2f}-{end:6.2f} ({end - start:5.2f} s)  {host:7} {what}")
    per_host: dict[str, list] = collections.defaultdict(list)
    for host, what, start, end in events:
        if host not in ("-", "immich") and (end - start >= 0.005 or not what.startswith("connect")):
            per_host[host].append((start, end, what))
    if per_host:
        lines += ["", "per host (start-end, seconds since start):"]
    for host in sorted(per_host):
        items = sorted(per_host[host])
        lines.append(f"  {host}: " + ", ".join(f"{what} {start:.2f}-{end:.2f}" for start, end, what in items))
    return lines


def label(frames: list[str], table, innermost: bool = True) -> str | None:
    """The phase of the innermost frame that names one (innermost), or the first phase of `table` that
    any frame names (not innermost: the table's order decides)."""
    if not innermost:
        return next((name for name, markers in table if any(m in f for f in frames for m in markers)), None)
    for frame in reversed(frames):
        for name, markers in table:
            if any(m in frame for m in markers):
                return name
    return None


def thread_role(name: str, frames: list[str]) -> str:
    text = ";".join(frames)
    if name == "MainThread":
        return "main"
    if name.startswith("ThreadPoolExecutor") or "run_hosts" in text:
        return "rollout workers (one per host)"
    if "Transport.run" in text:
        return "paramiko transport readers (one per connection)"
    if "handle_stdout" in name or "handle_stderr" in name or "handle_stdin" in name or "Runner" in text:
        return "invoke I/O threads (per remote command)"
    if name.startswith(("ping", "pingwatch")):
        return "gate watchers (ping, pingwatch)"
    return "other threads"


def summarise_spy(path: Path) -> list[str]:
    data = json.loads(path.read_text())
    frames = [f"{f['name']} ({f.get('file', '?')}:{f.get('line', 0)})" for f in data["shared"]["frames"]]
    frames = [re.sub(r"\(/[^ ]*?/(immich_remote|paramiko|invoke|fabric|httpx|site-packages)/", r"(\1/", f)
              for f in frames]
    roles: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    seen: dict[str, set] = collections.defaultdict(set)
    inclusive: collections.Counter = collections.Counter()
    timeline: list[tuple[str, int]] = []
    for prof in data["profiles"]:  # one per OS thread; with --threads each stack starts with its Python thread
        for sample, weight in zip(prof["samples"], prof["weights"], strict=True):
            weight = round(float(weight) * RATE)  # seconds -> samples
            stack = [frames[i] for i in sample]
            head = stack.pop(0) if stack and stack[0].startswith("thread (") else ""
            name = re.sub(r"^thread \(\d+\): ", "", head.rsplit(" (", 1)[0] if head.endswith(":0)") else head)
            thread = re.sub(r"_\d+$", "", name.split(" (")[0]) if name.startswith(("ping", "ThreadPool")) else name
            role = thread_role(thread, stack)
            if role == "main":
                phase = label(stack, MAIN, innermost=False) or "other (click, startup)"
                if timeline and timeline[-1][0] == phase:
                    timeline[-1] = (phase, timeline[-1][1] + weight)
                else:
                    timeline.append((phase, weight))
            else:
                phase = label(stack, PHASES) or ("waiting in a library" if stack else "idle")
            roles[role][phase] += weight
            seen[role].add(head)
            for frame in dict.fromkeys(re.sub(r":\d+\)$", ")", f) for f in stack):
                if "immich_remote/" in frame or "paramiko/" in frame:
                    inclusive[frame] += weight
    lines = [f"py-spy (wall clock, every thread incl. idle, {RATE} Hz, --nonblocking)", "",
             "main thread, in time order (consecutive samples with the same label merged; segments under 0.05 s "
             "folded into the one before):"]
    merged: list[list] = []
    for phase, n in timeline:
        if merged and (merged[-1][0] == phase or n < RATE * 0.05):
            merged[-1][1] += n
        else:
            merged.append([phase, n])
    at = 0.0
    for phase, n in merged:
        lines.append(f"  {at:6.2f} s +{n / RATE:5.2f} s  {phase}")
        at += n / RATE
    lines += ["", "thread-seconds by thread role and phase (threads of a role added up):"]
    for role, phases in sorted(roles.items()):
        lines.append(f"  {role} ({len(seen[role])} threads): {sum(phases.values()) / RATE:.2f} thread-s")
        lines += [f"    {n / RATE:7.2f}  {phase}" for phase, n in phases.most_common()]
    lines += ["", "functions (ours and paramiko's) by inclusive thread-seconds, all threads:"]
    lines += [f"  {n / RATE:7.2f}  {frame}" for frame, n in inclusive.most_common(40)]
    return lines


def profile(fleet: Fleet, out: Path, scenario: str, args: list[str], setup) -> None:
    cli = [sys.executable, "-m", "immich_remote"] if "PYTHONPATH" in fleet.env else [CLI]
    plain = []
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    for _ in range(2):
        setup()
        seconds, done = timed([*cli, "-i", str(fleet.inventory), "--json", *args], env=fleet.env)
        if done.returncode:
            raise SystemExit(f"{scenario}: {done.stderr[-2000:]}")
        plain.append(seconds)
        if not plain[1:]:  # the first plain run: its CPU seconds (user + system), the hosts' docker not included
            used = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = used.ru_utime + used.ru_stime - cpu_before.ru_utime - cpu_before.ru_stime
    setup()
    traced_s, done = timed([sys.executable, "-c", TRACED, "-i", str(fleet.inventory), "--json", *args], env=fleet.env)
    trace = json.loads(next(x for x in done.stderr.splitlines() if x.startswith("TRACE"))[len("TRACE"):])
    setup()
    raw = out / f".{scenario}.pyspy"
    spy_s, done = timed([str(BIN / "py-spy"), "record", "--threads", "--idle", "--nonblocking", "--format", "speedscope",
                         "-r", str(RATE), "-o", str(raw), "--", *cli, "-i", str(fleet.inventory), "--json", *args],
                        env=fleet.env)
    if done.returncode:
        raise SystemExit(f"{scenario} under py-spy: {done.stderr[-2000:]}")
    setup()
    inst = out / f".{scenario}.pyinstrument"
    inst_s, done = timed([str(BIN / "pyinstrument"), "--show-all", "-r", "text", "--no-color", "-o", str(inst),
                          "-m", "immich_remote", "-i", str(fleet.inventory), "--json", *args], env=fleet.env)
    if done.returncode:
        raise SystemExit(f"{scenario} under pyinstrument: {done.stderr[-2000:]}")
    load = Path("/proc/loadavg").read_text().split()[:3]
    text = [f"# immich-remote {' '.join(args)}: {scenario}, {len(fleet.hosts)} hosts",
            f"plain runs (no profiler): {', '.join(f'{s:.2f}' for s in plain)} s; under py-spy {spy_s:.2f} s; "
            f"under pyinstrument {inst_s:.2f} s; load average {' '.join(load)}",
            f"CPU seconds of the first plain run (user + system, this machine's 2 cores are shared with the test "
            f"hosts' dockerd): {cpu:.2f}", ""]
    text += timeline(trace, traced_s) + [""]
    text += summarise_spy(raw)
    tree = [line for line in inst.read_text().splitlines() if line.strip()]
    big = [line for line in tree[4:] if (m := re.search(r"(\d+\.\d{3}) ", line)) and float(m.group(1)) >= 0.03]
    text += ["", "pyinstrument (main thread, wall clock, --show-all; frames of 0.03 s or more, cut at 170 columns):",
             *tree[:4], *[line[:170].rstrip() for line in big[:80]]]
    (out / f"{scenario}-{len(fleet.hosts)}hosts.txt").write_text("\n".join(text) + "\n")
    raw.rename(Path("/tmp") / f"{scenario}-{len(fleet.hosts)}hosts.speedscope.json")  # to load in speedscope.app
    inst.unlink()
    print("\n".join(text[:40]))


def ab(fleet: Fleet, tree: Path, rounds: int, out: Path, *, noop_only: bool = False) -> None:
    """Plain wall times, alternating: this tree's CLI vs `tree`'s, first deploy then no-op, `rounds` times
    (`noop_only`: one deploy, then only no-ops, alternating)."""
    import statistics

    other = {**fleet.env, "PYTHONPATH": str(tree.resolve())}
    variants = {"this tree": ([CLI], fleet.env), f"{tree}": ([sys.executable, "-m", "immich_remote"], other)}
    times: dict[tuple[str, str], list[float]] = collections.defaultdict(list)
    for index in range(rounds):
        order = list(variants.items())[::1 if index % 2 == 0 else -1]
        for name, (cli, env) in order:
            if noop_only and index == 0 and name == "this tree":
                fleet.fresh(["2.7.4"], IMAGE)
                fleet.server("2.7.4")
                timed([*cli, "-i", str(fleet.inventory), "deploy"], env=env)
            elif not noop_only:
                fleet.fresh(["2.7.4"], IMAGE)
                fleet.server("2.7.4")
            for scenario in ("no-op",) if noop_only else ("first deploy", "no-op"):
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                seconds, done = timed([*cli, "-i", str(fleet.inventory), "--json", "deploy"], env=env)
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                if done.returncode:
                    raise SystemExit(f"{name} {scenario}: {done.stderr[-2000:]}")
                times[(scenario, name)].append(seconds)
                times[(scenario + " CPU", name)].append(after.ru_utime + after.ru_stime - before.ru_utime
                                                        - before.ru_stime)
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    lines = [f"# A/B, {len(fleet.hosts)} hosts, {rounds} alternating rounds (order flips each round); load after: {load}",
             "seconds: median (min-max); CPU: user + system seconds of the immich-remote process"]
    for (scenario, name), values in sorted(times.items()):
        lines.append(f"  {scenario:13} {name:28} {statistics.median(values):6.2f} ({min(values):.2f}-{max(values):.2f})")
    (out / f"ab-{'no-op-' if noop_only else ''}{len(fleet.hosts)}hosts.txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=8)
    parser.add_argument("--bed", type=Path, help="a bed left running by `python -m tests.testbed up --dir DIR`")
    parser.add_argument("--out", type=Path, default=Path("docs/profiles"))
    parser.add_argument("--only", choices=["first-deploy", "no-op"])
    parser.add_argument("--ab", type=int, metavar="ROUNDS", help="with --tree: no profiles, plain times of this "
                        "tree and --tree's, alternating, ROUNDS rounds of first deploy + no-op")
    parser.add_argument("--noop-only", action="store_true", help="with --ab: one deploy, then only no-ops")
    parser.add_argument("--tree", type=Path, help="profile the immich_remote package of this folder (e.g. an export "
                        "of the last commit: `git archive HEAD immich_remote | tar -x -C DIR`), not the installed one")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        if args.bed:
            bed = TestBed.load(args.bed)
        else:
            cleanup_stale()
            bed = TestBed(Path(tmp) / "bed")
            bed.start(hosts=args.hosts)
        try:
            fleet = Fleet(bed, bed.hosts[:args.hosts], Path(tmp), Fakes(bed))
            if args.ab and args.tree:
                fleet.server("2.7.4")
                ab(fleet, args.tree, args.ab, args.out, noop_only=args.noop_only)
                fleet.fake.stop()
                return
            if args.tree:
                fleet.env["PYTHONPATH"] = str(args.tree.resolve())
            fleet.server("2.7.4")

            def fresh() -> None:
                fleet.fresh(["2.7.4"], IMAGE)
                fleet.server("2.7.4")  # a new fake: its URL list is the default again

            def deployed() -> None:
                if not hasattr(deployed, "done"):
                    fresh()
                    cli = [sys.executable, "-m", "immich_remote"] if args.tree else [CLI]
                    timed([*cli, "-i", str(fleet.inventory), "deploy"], env=fleet.env)
                    deployed.done = True  # type: ignore[attr-defined]
            if args.only != "no-op":
                profile(fleet, args.out, "first-deploy", ["deploy"], fresh)
            if args.only != "first-deploy":
                profile(fleet, args.out, "no-op", ["deploy"], deployed)
            fleet.fake.stop()
        finally:
            if not args.bed:
                bed.teardown()


if __name__ == "__main__":
    main()
