"""`immich-remote advise`, pure: the guide's decision table turned into numbers.

Rows, first match wins:
1. public-or-shared: a host with a public address, or whose ML port listens on every interface
   (no firewall in front of an API without authentication): refused, with what would make it acceptable;
2. gpu-host: a host with a GPU (its backend checked: usable now, or what to install first);
3. small-host: the Immich server has under 6 GiB of RAM (a 4 GB host, a small NAS);
4. large-import: the ML queues hold 10,000 jobs or more, or would take the local ML over 24 h;
5. keep-local: none of these: keep ML on the server until the queues show a real bottleneck.

The inputs are gathered by commands/advise.py (probes, Immich's API, bench figures); nothing here
does I/O. Estimates: time to clear each ML queue's backlog = backlog / measured throughput.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .bench import QUEUE_TASK
from .facts import HostFacts
from .hwaccel import AUTO_ORDER, BACKENDS, assess
from .urls import classify_address

ROWS = ("keep-local", "small-host", "large-import", "gpu-host", "public-or-shared")
GIB = 1024**3
SMALL_HOST_BYTES = 6 * GIB  # a "4 GB" host reports ~3.7 GiB, an "8 GB" mini PC ~7.6 GiB
LARGE_BACKLOG = 10_000  # jobs waiting in the ML queues that call /predict
LARGE_IMPORT_SECONDS = 24 * 3600  # or: the local ML would need more than a day to clear them
ML_PORT = 3003
LOCAL = "local"


@dataclass
class Machine:
    """What advise needs to know about one machine: the Immich server's host or an inventory host."""

    name: str
    mem_total: int | None = None
    mem_available: int | None = None
    cpus: int | None = None
    gpus: list[str] = field(default_factory=list)
    backend: str | None = None  # the best usable backend (AUTO_ORDER), cpu included
    accel_problems: list[str] = field(default_factory=list)  # "cuda: <why not> (<fix>)" for hardware present
    addresses: dict[str, str] = field(default_factory=dict)  # where -> address (address, bind_address, url)
    open_listener: str | None = None  # "0.0.0.0:3003" when the ML port listens on every interface
    error: str | None = None  # the probe failed: why

    @property
    def has_accelerator(self) -> bool:
        return bool(self.gpus) or (self.backend not in (None, "cpu"))

    def public_reasons(self) -> list[str]:
        found = [f"its {where} {address} is a public address" for where, address in self.addresses.items()
                 if classify_address(address) == "public"]
        if self.open_listener:
            found.append(f"its ML port listens on every interface ({self.open_listener}), not on one private address")
        return found


def parse_free_available(text: str) -> int | None:
    """`free -b` -> the `available` column of the Mem: line (bytes), None when absent."""
    lines = text.splitlines()
    header = next((line.split() for line in lines if "available" in line), None)
    row = next((line.split() for line in lines if line.startswith("Mem:")), None)
    if not header or not row:
        return None
    index = header.index("available") + 1  # the row starts with "Mem:"
    return int(row[index]) if index < len(row) and row[index].isdigit() else None


def machine_from_facts(name: str, facts: HostFacts, *, free_text: str = "",
                       addresses: Mapping[str, str] | None = None, ml_port: int = ML_PORT) -> Machine:
    """A Machine from a host probe: memory, CPUs, GPUs, the best usable backend and why a present
    accelerator is not usable yet, its addresses and whether the ML port listens on every interface."""
    verdicts = {s.backend: s for s in assess(facts)}
    usable = next((b for b in AUTO_ORDER if verdicts[b].usable), None)
    problems = []
    hardware = {"cuda": bool(facts.nvidia_gpus), "rocm": facts.has_device("/dev/kfd"),
                "openvino": any(v == "0x8086" for v in facts.render_nodes.values())}
    for backend, present in hardware.items():
        support = verdicts[backend]
        if present and not support.usable:
            problems.append(f"{BACKENDS[backend].label}: {support.reason}" + (f" ({support.fix})" if support.fix else ""))
    listener = next((f"{a or '*'}:{p}" for a, p in facts.listeners if p == ml_port and a in ("0.0.0.0", "::", "*", "")),
                    None)
    return Machine(name, mem_total=facts.mem_total, mem_available=parse_free_available(free_text), cpus=facts.cpus,
                   gpus=list(facts.nvidia_gpus), backend=usable, accel_problems=problems,
                   addresses=dict(addresses or {}), open_listener=listener)


@dataclass
class Inputs:
    server: Machine | None  # None: immich.ssh_host not set, or the probe failed
    hosts: list[Machine]
    queues: dict[str, int]  # ML queue -> backlog (active + waiting + delayed); empty when unreadable
    enabled: list[str]  # enabled ML queues
    library: Mapping[str, Any] | None = None  # GET /api/server/statistics
    measured: Mapping[str, Mapping[str, float]] | None = None  # target (LOCAL or host) -> task -> per second
    notes: list[str] = field(default_factory=list)  # what could not be read, said plainly


@dataclass
class Advice:
    row: str
    recommendation: str
    reasons: list[str]
    estimates: dict[str, dict[str, Any]]

    def to_data(self) -> dict[str, Any]:
        return {"row": self.row, "recommendation": self.recommendation, "reasons": list(self.reasons),
                "estimates": self.estimates}


def estimates(queues: Mapping[str, int], measured: Mapping[str, Mapping[str, float]] | None,
              hosts: Iterable[str]) -> dict[str, dict[str, Any]]:
    """{queue: {"backlog", "local_s", HOST: seconds}} for each ML queue that calls /predict and has a
    backlog: backlog / measured throughput of that queue's task (None where nothing was measured)."""
    measured = measured or {}
    result: dict[str, dict[str, Any]] = {}
    for queue, task in QUEUE_TASK.items():
        backlog = queues.get(queue, 0)
        if backlog <= 0:
            continue
        entry: dict[str, Any] = {"backlog": backlog, "local_s": _clear_time(backlog, measured.get(LOCAL, {}).get(task))}
        for host in hosts:
            entry[host] = _clear_time(backlog, measured.get(host, {}).get(task))
        result[queue] = entry
    return result


def _clear_time(backlog: int, per_second: float | None) -> float | None:
    return round(backlog / per_second, 1) if per_second and per_second > 0 else None


def about(seconds: float | None) -> str:
    """`about 27 h`, `about 1.6 h`, `about 12 min`, `about 40 s`; `not measured` for None."""
    if seconds is None:
        return "not measured"
    if seconds >= 10 * 3600:
        return f"about {seconds / 3600:.0f} h"
    if seconds >= 3600:
        return f"about {seconds / 3600:.1f} h"
    if seconds >= 60:
        return f"about {seconds / 60:.0f} min"
    return f"about {seconds:.0f} s"


def gib(n: int | None) -> str:
    return "?" if n is None else f"{n / GIB:.1f} GiB"


def estimate_lines(table: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """`smartSearch 48,210 waiting: local about 27 h, gpu-box about 1.6 h` per queue."""
    lines = []
    for queue, entry in table.items():
        if all(value is None for name, value in entry.items() if name != "backlog"):
            continue  # nothing measured: the backlog alone is in the reasons already
        parts = [f"local {about(entry['local_s'])}"]
        parts += [f"{name} {about(value)}" for name, value in entry.items() if name not in ("backlog", "local_s")]
        lines.append(f"{queue} {entry['backlog']:,} waiting: " + ", ".join(parts))
    return lines


def host_summary(machine: Machine) -> str:
    """`host desk: 31.2 GiB RAM (28.2 GiB available), 16 CPUs, backend cpu, address 192.168.1.30 (private)`."""
    where = ", ".join(f"{w} {a} ({classify_address(a)})" for w, a in machine.addresses.items() if a)
    gpus = f", GPU {', '.join(machine.gpus)}" if machine.gpus else ""
    return (f"host {machine.name}: {gib(machine.mem_total)} RAM ({gib(machine.mem_available)} available), "
            f"{machine.cpus or '?'} CPUs{gpus}, backend {machine.backend or 'none usable'}" + (f", {where}" if where else ""))


def decide(inputs: Inputs) -> Advice:
    """The decision-table row that applies, the recommendation in plain words, the numbers behind it."""
    table = estimates(inputs.queues, inputs.measured, [h.name for h in inputs.hosts if h.error is None])
    reasons = list(inputs.notes)
    server = inputs.server
    if server is not None:
        reasons.append(f"Immich server host: {gib(server.mem_total)} RAM ({gib(server.mem_available)} available), "
                       f"{server.cpus or '?'} CPUs, " + (f"GPU {', '.join(server.gpus)}" if server.gpus else "no GPU"))
    if inputs.library:
        reasons.append(f"library: {int(inputs.library.get('photos') or 0):,} photos, "
                       f"{int(inputs.library.get('videos') or 0):,} videos")
    total = sum(inputs.queues.get(q, 0) for q in QUEUE_TASK)
    if inputs.queues:
        reasons.append(f"ML backlog: {total:,} jobs (" + ", ".join(f"{q} {inputs.queues.get(q, 0):,}"
                                                                  for q in QUEUE_TASK if q in inputs.queues) + ")")
    reasons += estimate_lines(table)
    hosts = [h for h in inputs.hosts if h.error is None]
    reasons += [host_summary(h) for h in hosts]
    reasons += [f"{h.name}: probe failed ({h.error})" for h in inputs.hosts if h.error is not None]

    exposed = [(h, h.public_reasons()) for h in hosts if h.public_reasons()]
    if exposed:
        names = ", ".join(h.name for h, _ in exposed)
        reasons += [f"{h.name}: {'; '.join(why)}" for h, why in exposed]
        return Advice("public-or-shared", (
            f"Do not send Immich's ML to {names}. Every smart-search query and a preview of every photo (faces "
            "and text in it included) would cross the network to an ML API with no authentication and no "
            "encryption. Acceptable only if access is strictly controlled: a private address (LAN, or a VPN "
            "or tailnet such as WireGuard or Tailscale), the ML port bound to that address and firewalled to "
            "the Immich server's address, and a machine nobody else controls."), reasons, table)

    gpu_hosts = [h for h in hosts if h.has_accelerator]
    if gpu_hosts:
        best = max(gpu_hosts, key=lambda h: (h.backend not in (None, "cpu"), _speed(inputs.measured, h.name)))
        for h in gpu_hosts:
            hardware = ", ".join(h.gpus) or BACKENDS[h.backend or "cpu"].label
            if h.backend not in (None, "cpu"):
                reasons.append(f"{h.name}: {hardware}, backend {h.backend} usable")
            reasons += [f"{h.name}: {hardware}; not usable yet: {p}" for p in h.accel_problems]
        if best.backend not in (None, "cpu"):
            text = (f"Run Immich's ML on {best.name} (backend {best.backend}), with the server's own ML kept as "
                    f"the fallback: `immich-remote deploy {best.name}`.")
        else:
            text = (f"{best.name} has a GPU ({', '.join(best.gpus)}) but no usable backend yet: fix what is named "
                    f"below, check with `immich-remote check {best.name}`, then `immich-remote deploy {best.name}` "
                    "(the server's own ML stays as the fallback).")
        return Advice("gpu-host", text, reasons, table)

    cpu_names = ", ".join(h.name for h in hosts) or None
    if server is not None and server.mem_total is not None and server.mem_total < SMALL_HOST_BYTES:
        reasons.insert(0, f"the Immich server has {gib(server.mem_total)} of RAM, under {gib(SMALL_HOST_BYTES)}: "
                          "CLIP, face and OCR models together take about 2-3 GiB while they are loaded")
        where = f"on {cpu_names}" if cpu_names else "on a stronger machine in your network (add it to the inventory)"
        return Advice("small-host", (
            f"Consider running ML {where}, with the server's own ML as the fallback, or disable the ML features "
            "you do not use (Administration > Settings > Machine Learning: OCR, facial recognition) so the "
            "server keeps its memory for itself."), reasons, table)

    local_worst = max((e["local_s"] for e in table.values() if e["local_s"] is not None), default=None)
    if total >= LARGE_BACKLOG or (local_worst is not None and local_worst > LARGE_IMPORT_SECONDS):
        why = f"{total:,} ML jobs waiting (from {LARGE_BACKLOG:,} on this counts as a large import)"
        if local_worst is not None:
            why += f"; the local ML would need {about(local_worst)}"
        reasons.insert(0, why)
        where = cpu_names or "a stronger machine (add it to the inventory)"
        return Advice("large-import", (
            f"For this import, add a remote ML URL ahead of the local one, on {where}: "
            "`immich-remote deploy`. The server's own ML stays as the fallback, so nothing stops when that "
            "machine is off; remove it with `immich-remote remove HOST` when the queues are empty."), reasons, table)

    if server is not None and server.mem_total is not None:
        reasons.insert(0, f"the Immich server has {gib(server.mem_total)} of RAM (from {gib(SMALL_HOST_BYTES)} "
                          f"on ML fits beside it) and {total:,} ML jobs waiting (under {LARGE_BACKLOG:,})")
    else:
        reasons.insert(0, f"{total:,} ML jobs waiting (under {LARGE_BACKLOG:,}); the server's RAM is unknown "
                          "(set immich.ssh_host so advise can probe it)")
    return Advice("keep-local", (
        "Keep Immich's ML on the server. Nothing here is a bottleneck yet; watch `immich-remote jobs --watch` "
        "during the next big import and run `immich-remote advise --measure` then."), reasons, table)


def _speed(measured: Mapping[str, Mapping[str, float]] | None, name: str) -> float:
    return sum((measured or {}).get(name, {}).values())
