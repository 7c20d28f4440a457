"""Facts about a remote host: one probe script run over SSH, and pure parsers for its output.

The probe prints sections (`@@ir:<name>@@` on a line of its own, then that command's output),
so one round trip tells architecture, CPU flags, GPUs, devices, Docker, Compose, disk and ports.
Each section is parsed by a small pure function, so real output captured on real machines
(tests/fixtures/host-probes) is tested byte for byte without a network.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from .hostcmd import files_state, inspect_containers
from .names import ML, HostPaths, ServiceKind

MARK = "@@ir:"
_ARCH_ALIASES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}

# The commands are the same ones the fixture captures used, so fixture files parse as sections.
_WHICH = ("docker", "nvidia-smi", "nvidia-ctk", "nvidia-container-cli", "nvidia-container-runtime",
          "nvidia-container-runtime-hook", "podman")
_DEVICES = ("/dev/kfd", "/dev/mali0", "/dev/dxg")
_FILES = ("/usr/lib/libmali.so", "/lib/firmware/mali_csffw.bin")


def normalise_arch(machine: str) -> str | None:
    """`uname -m` (x86_64, aarch64) or a Docker platform (amd64, arm64) -> amd64/arm64, else None."""
    return _ARCH_ALIASES.get(machine.strip().lower())


# The Docker daemon queries are the probe's slow part (each `docker` call is a client start plus a daemon
# round trip: 50-250 ms). `probe_scripts` runs them as a second script beside the rest, on a second
# channel of the same connection: the probe takes as long as the slower half, not the sum.
# `docker info` is asked once, for the runtimes and the Docker root (whose disk `df` measures).
_DOCKER_INFO = "_ir_info=$(docker info --format '{{.DockerRootDir}}{{\"\\n\"}}{{json .Runtimes}}' 2>/dev/null)"


def probe_scripts(*, remote_dir: str, service: ServiceKind = ML) -> list[str]:
    """The probe as two shell scripts to run at the same time (POSIX sh, no root, reads only): the host's
    facts and deployment state, and the Docker daemon's runtimes, Compose and disk. Their sections together
    are `probe_script`'s."""
    paths = HostPaths.for_dir(remote_dir, service)
    which = " ".join(_WHICH)
    host = {
        "uname": "uname -a",
        "os-release": "cat /etc/os-release 2>/dev/null",
        "cpu-flags": "grep -m1 -E '^(flags|Features)' /proc/cpuinfo 2>/dev/null",
        "nproc": "nproc 2>/dev/null",
        "free": "free -b 2>/dev/null",
        "which": f'for c in {which}; do printf "%s: %s\\n" "$c" "$(command -v "$c" 2>/dev/null)"; done',
        "nvidia-smi-L": "command -v nvidia-smi >/dev/null && nvidia-smi -L 2>&1",
        "nvidia-query": "command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=index,name,driver_version,"
                        "memory.total,compute_cap --format=csv,noheader,nounits 2>&1",
        "dev": "ls -la /dev/nvidia* 2>/dev/null",
        "devices": "for d in " + " ".join(_DEVICES) + "; do [ -e \"$d\" ] && echo \"$d\"; done",
        "render-nodes": 'for d in /sys/class/drm/renderD*; do [ -e "$d" ] && '
                        'echo "${d##*/} $(cat "$d/device/vendor" 2>/dev/null)"; done',
        "files": "for f in " + " ".join(_FILES) + "; do [ -e \"$f\" ] && echo \"$f\"; done",
        "dt-compatible": "tr '\\0' ' ' < /proc/device-tree/compatible 2>/dev/null",
        "rknpu-version": "cat /sys/kernel/debug/rknpu/version 2>/dev/null",
        "docker-version": "docker version --format '{{.Server.Version}}' 2>&1",
        "listeners": "ss -Hltn 2>/dev/null || netstat -ltn 2>/dev/null",
        "whoami": "id",
        "addresses": "ip -o addr show 2>/dev/null | awk '{print $4}' || hostname -I",
        "deployment": files_state(paths),
        "containers": inspect_containers(paths.project),
    }
    docker = {
        "docker-runtimes": 'printf \'%s\\n\' "$_ir_info" | sed 1d',
        "compose-version": "docker compose version --short 2>&1",
        "df": 'df -Pk "$(printf \'%s\\n\' "$_ir_info" | sed -n 1p | grep . || echo /)" 2>/dev/null | tail -n 1',
    }
    return [sections_script(host), sections_script(docker, preamble=_DOCKER_INFO)]


def probe_script(*, remote_dir: str, service: ServiceKind = ML) -> str:
    """The shell script that gathers every fact in one SSH round trip (POSIX sh, no root needed): the
    two `probe_scripts` one after the other, for callers that probe once (init, advise)."""
    return "\n".join(probe_scripts(remote_dir=remote_dir, service=service))


def sections_script(sections: dict[str, str], *, preamble: str = "") -> str:
    """One script printing each command's output under its `@@ir:<name>@@` marker (see split_sections).
    Each command runs in a subshell, so a `cd` or `exit` in one cannot leak into the next; `preamble`
    runs first, in the script's own shell (its variables are seen by every command)."""
    lines = ["exec 2>/dev/null </dev/null"] + ([preamble] if preamble else [])
    lines += [f"echo '{MARK}{name}@@'; ( {command} ) || true" for name, command in sections.items()]
    return "\n".join(lines) + "\n"


def split_sections(output: str) -> dict[str, str]:
    """Cut probe output into `{section name: text}`."""
    sections: dict[str, str] = {}
    name: str | None = None
    buf: list[str] = []
    for line in output.splitlines(keepends=True):
        stripped = line.strip()
        if stripped.startswith(MARK) and stripped.endswith("@@"):
            if name is not None:
                sections[name] = "".join(buf)
            name, buf = stripped[len(MARK):-2], []
        elif name is not None:
            buf.append(line)
    if name is not None:
        sections[name] = "".join(buf)
    return sections


# --- Section parsers (pure; each takes one command's output as it was printed) -----------------

def parse_uname(text: str) -> tuple[str, str]:
    """`uname -a` -> (kernel release, machine). The machine is the last-but-one word on Linux."""
    words = text.split()
    if len(words) < 3:
        return "", ""
    machine = next((w for w in reversed(words[:-1]) if normalise_arch(w) or w in {"i686", "armv7l", "riscv64"}),
                   words[-2])
    return words[2], machine


def parse_os_release(text: str) -> str:
    for line in text.splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip().strip('"')
    return ""


def parse_cpu_flags(text: str) -> frozenset[str]:
    """`flags : ...` from /proc/cpuinfo or `Flags: ...` from lscpu."""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in {"flags", "features"}:
            return frozenset(value.split())
    return frozenset()


def parse_free_total(text: str) -> int | None:
    """`free -b` -> total memory in bytes."""
    for line in text.splitlines():
        if line.startswith("Mem:"):
            parts = line.split()
            if len(parts) > 1 and parts[1].isdigit():
                return int(parts[1])
    return None


def parse_which(text: str) -> dict[str, str]:
    """`name: /path` lines (empty path = not installed) -> {name: path} of the installed ones."""
    found = {}
    for line in text.splitlines():
        name, sep, path = line.partition(":")
        if sep and path.strip():
            found[name.strip()] = path.strip()
    return found


_GPU_RE = re.compile(r"^GPU \d+: (.+?)(?: \(UUID: [^)]*\))?\s*$")


def parse_nvidia_smi_list(text: str) -> list[str]:
    """`nvidia-smi -L` -> GPU names. Error text ('NVIDIA-SMI has failed ...') yields none."""
    return [m.group(1) for line in text.splitlines() if (m := _GPU_RE.match(line.strip()))]


def parse_nvidia_query(text: str) -> tuple[str | None, list[tuple[int, int]]]:
    """`--query-gpu=index,name,driver_version,memory.total,compute_cap --format=csv,noheader,nounits`
    -> (driver version, [compute capability per GPU])."""
    driver, caps = None, []
    for line in text.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) < 5 or not parts[0].isdigit():
            continue
        driver = driver or parts[2]
        major, _, minor = parts[4].partition(".")
        if major.isdigit() and minor.isdigit():
            caps.append((int(major), int(minor)))
    return driver, caps


def parse_docker_runtimes(text: str) -> set[str]:
    try:
        data = json.loads(text.strip() or "{}")
    except json.JSONDecodeError:
        return set()
    return set(data) if isinstance(data, dict) else set()


def parse_df_free_gib(text: str) -> float | None:
    """Last line of `df -Pk PATH` -> available GiB."""
    parts = text.split()
    if len(parts) >= 4 and parts[3].isdigit():
        return int(parts[3]) / (1024 * 1024)
    return None


def parse_listeners(text: str) -> list[tuple[str, int]]:
    """`ss -Hltn` (or `netstat -ltn`) -> [(local address, port)]."""
    result = []
    for line in text.splitlines():
        parts = line.split()  # ss: LISTEN 0 4096 10.0.0.5:3003 ...; netstat: tcp 0 0 10.0.0.5:3003 ...
        if len(parts) < 4 or parts[0] not in {"LISTEN", "tcp", "tcp6"} or ":" not in parts[3]:
            continue
        local = parts[3]
        address, _, port = local.rpartition(":")
        if port.isdigit():
            result.append((address.strip("[]"), int(port)))
    return result


def parse_version_triplet(text: str) -> tuple[int, ...] | None:
    match = re.search(r"(\d+)\.(\d+)\.(\d+)", text)
    return tuple(int(g) for g in match.groups()) if match else None


@dataclass
class HostFacts:
    """What a probe found on one host. Every field has a safe 'unknown' value."""

    machine: str = ""
    kernel: str = ""
    os: str = ""
    cpus: int | None = None
    cpu_flags: frozenset[str] = frozenset()
    mem_total: int | None = None
    commands: dict[str, str] = field(default_factory=dict)
    nvidia_gpus: list[str] = field(default_factory=list)
    nvidia_driver: str | None = None
    nvidia_compute_caps: list[tuple[int, int]] = field(default_factory=list)
    devices: set[str] = field(default_factory=set)
    render_nodes: dict[str, str] = field(default_factory=dict)
    files: set[str] = field(default_factory=set)
    device_tree_compatible: str = ""
    rknpu_version: tuple[int, ...] | None = None
    docker_server_version: str | None = None
    docker_error: str | None = None
    docker_runtimes: set[str] = field(default_factory=set)
    compose_version: str | None = None
    compose_error: str | None = None
    disk_free_gib: float | None = None
    listeners: list[tuple[str, int]] = field(default_factory=list)
    identity: str = ""
    addresses: set[str] = field(default_factory=set)

    @property
    def arch(self) -> str | None:
        return normalise_arch(self.machine) if self.machine else None

    @property
    def docker_installed(self) -> bool:
        return "docker" in self.commands

    @property
    def nvidia_driver_major(self) -> int | None:
        if self.nvidia_driver and self.nvidia_driver.split(".")[0].isdigit():
            return int(self.nvidia_driver.split(".")[0])
        return None

    @property
    def nvidia_container_toolkit(self) -> bool:
        tools = {"nvidia-ctk", "nvidia-container-cli", "nvidia-container-runtime", "nvidia-container-runtime-hook"}
        return bool(tools & set(self.commands)) or "nvidia" in self.docker_runtimes

    @property
    def x86_64_v2(self) -> bool | None:
        """x86-64-v2 = cx16, lahf_lm, popcnt, sse4_1, sse4_2, ssse3 (Immich 3.x floor). None if unknown."""
        if self.arch != "amd64" or not self.cpu_flags:
            return None
        return {"cx16", "lahf_lm", "popcnt", "sse4_1", "sse4_2", "ssse3"} <= self.cpu_flags

    def has_device(self, path: str) -> bool:
        return path in self.devices

    @classmethod
    def from_sections(cls, s: dict[str, str]) -> HostFacts:
        facts = cls()
        facts.kernel, facts.machine = parse_uname(s.get("uname", ""))
        facts.os = parse_os_release(s.get("os-release", ""))
        facts.cpu_flags = parse_cpu_flags(s.get("cpu-flags", "") or s.get("lscpu", ""))
        nproc = s.get("nproc", "").strip()
        facts.cpus = int(nproc) if nproc.isdigit() else None
        facts.mem_total = parse_free_total(s.get("free", ""))
        facts.commands = parse_which(s.get("which", ""))
        facts.nvidia_gpus = parse_nvidia_smi_list(s.get("nvidia-smi-L", ""))
        facts.nvidia_driver, facts.nvidia_compute_caps = parse_nvidia_query(s.get("nvidia-query", ""))
        facts.devices = {line.strip() for line in s.get("devices", "").splitlines() if line.strip()}
        for line in s.get("dev", "").splitlines():  # `ls -la /dev/nvidia*`: the path is the last word
            words = line.split()
            if words and words[-1].startswith("/dev/"):
                facts.devices.add(words[-1].rstrip(":"))
        for line in s.get("render-nodes", "").splitlines():
            name, _, vendor = line.strip().partition(" ")
            if name:
                facts.render_nodes[name] = vendor.strip()
        facts.files = {line.strip() for line in s.get("files", "").splitlines() if line.strip()}
        facts.device_tree_compatible = s.get("dt-compatible", "").strip().lower()
        facts.rknpu_version = parse_version_triplet(s.get("rknpu-version", ""))
        docker_version = s.get("docker-version", "").strip()
        if re.fullmatch(r"\d+\.\d+[\w.+~-]*", docker_version):
            facts.docker_server_version = docker_version
        else:
            facts.docker_error = docker_version or "docker printed nothing"
        facts.docker_runtimes = parse_docker_runtimes(s.get("docker-runtimes", ""))
        compose = s.get("compose-version", "").strip()
        if re.fullmatch(r"v?\d+\.\d+\.\d+[\w.+-]*", compose):
            facts.compose_version = compose.lstrip("v")
        else:
            facts.compose_error = compose or "docker compose printed nothing"
        facts.disk_free_gib = parse_df_free_gib(s.get("df", ""))
        facts.listeners = parse_listeners(s.get("listeners", ""))
        facts.identity = s.get("whoami", "").strip()
        facts.addresses = {a.split("/")[0] for a in s.get("addresses", "").split() if a}
        return facts
