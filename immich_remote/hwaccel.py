"""Hardware-acceleration backends: image suffixes, platforms, and whether a host can use them.

Facts about the backends come from Immich's `hwaccel.ml.yml` and its build matrix
(reference/immich.md section 3). `assess()` turns what a host probe found (`facts.HostFacts`) into
a verdict per backend with the reason and the one-line fix, and `choose()` resolves `accel: auto`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .errors import UnsupportedBackend

if TYPE_CHECKING:
    from .facts import HostFacts

IMAGE_REPOSITORY = "immich-app/immich-machine-learning"
DEFAULT_REGISTRY = "ghcr.io"


@dataclass(frozen=True)
class Backend:
    """One service of upstream's hwaccel.ml.yml."""

    name: str  # the inventory's `accel` value and the overlay's service name
    suffix: str  # appended to the image tag
    platforms: tuple[str, ...]  # Docker platforms the image is published for
    label: str


BACKENDS: dict[str, Backend] = {
    b.name: b
    for b in (
        Backend("cpu", "", ("amd64", "arm64"), "CPU"),
        Backend("cuda", "-cuda", ("amd64",), "NVIDIA GPU (CUDA)"),
        Backend("rocm", "-rocm", ("amd64",), "AMD GPU (ROCm)"),
        Backend("openvino", "-openvino", ("amd64",), "Intel GPU (OpenVINO)"),
        Backend("openvino-wsl", "-openvino", ("amd64",), "Intel GPU under WSL2 (OpenVINO)"),
        Backend("armnn", "-armnn", ("arm64",), "Arm Mali GPU (ARM NN)"),
        Backend("rknn", "-rknn", ("arm64",), "Rockchip NPU (RKNN)"),
    )
}
ACCEL_CHOICES: tuple[str, ...] = ("auto", *BACKENDS)
# `auto` tries these in order and takes the first usable one. CUDA first: Immich calls it the most reliable.
AUTO_ORDER: tuple[str, ...] = ("cuda", "rocm", "openvino-wsl", "openvino", "rknn", "armnn", "cpu")

def backend(name: str) -> Backend:
    try:
        return BACKENDS[name]
    except KeyError:
        raise UnsupportedBackend(
            f"Unknown accelerator '{name}'.", hint=f"Use one of: {', '.join(ACCEL_CHOICES)}."
        ) from None


def check_platform(backend_name: str, arch: str, *, host: str) -> None:
    """Refuse a backend whose image is not published for the host's architecture."""
    b = backend(backend_name)
    if arch not in b.platforms:
        alternatives = [n for n, other in BACKENDS.items() if arch in other.platforms]
        raise UnsupportedBackend(
            f"Host '{host}': accelerator '{b.name}' has no image for {arch} "
            f"(Immich publishes -{b.name} images for {', '.join(b.platforms)} only).",
            hint=f"Set accel to one of {', '.join(alternatives)} for this host, or `auto`.",
        )


def image_ref(version_tag: str, backend_name: str, *, registry: str | None = None,
              repository: str | None = None) -> str:
    """`ghcr.io/immich-app/immich-machine-learning:v2.7.5-cuda`, honouring a registry/mirror override.

    `repository` replaces the whole `registry/path` part (for mirrors that use another path);
    `registry` replaces only the registry host (a pull-through mirror of ghcr.io).
    """
    repo = repository or f"{(registry or DEFAULT_REGISTRY).rstrip('/')}/{IMAGE_REPOSITORY}"
    return f"{repo}:{version_tag}{backend(backend_name).suffix}"


# --- Assessment of a probed host ---------------------------------------------------------------

@dataclass(frozen=True)
class Support:
    """Whether one backend can run on one host, and why."""

    backend: str
    usable: bool
    reason: str
    fix: str = ""


@dataclass(frozen=True)
class Choice:
    """The backend a host will use, with the evidence."""

    backend: str
    reason: str
    assessed: tuple[Support, ...] = field(default_factory=tuple)


MIN_NVIDIA_DRIVER = 545  # must support CUDA 12.3 (Immich's ML hardware-acceleration docs)
MIN_COMPUTE_CAPABILITY = (5, 2)
ROCM_MIN_FREE_GIB = 35
RKNN_SOCS = ("rk3566", "rk3568", "rk3576", "rk3588")


def assess(facts: HostFacts) -> list[Support]:
    """A verdict for every backend on this host, in AUTO_ORDER."""
    return [_ASSESSORS[name](facts) for name in AUTO_ORDER]


def choose(requested: str, facts: HostFacts, *, host: str) -> Choice:
    """Resolve `auto` to the best usable backend; check that an explicit one is usable.

    An explicit backend that the probe finds unusable raises, naming what is missing; `auto`
    never fails: CPU is always there (architecture permitting).
    """
    verdicts = assess(facts)
    by_name = {s.backend: s for s in verdicts}
    if requested == "auto":
        for support in verdicts:
            if support.usable:
                return Choice(support.backend, f"auto: {support.reason}", tuple(verdicts))
        raise UnsupportedBackend(f"Host '{host}': no usable backend ({by_name['cpu'].reason}).",
                                 hint=by_name["cpu"].fix or None)
    support = by_name[backend(requested).name]
    if not support.usable:
        raise UnsupportedBackend(f"Host '{host}': accelerator '{requested}' is not usable: {support.reason}.",
                                 hint=support.fix or None)
    return Choice(requested, support.reason, tuple(verdicts))


def _arch_gate(facts: HostFacts, name: str) -> Support | None:
    b = BACKENDS[name]
    if facts.arch is None:
        return Support(name, False, f"unknown CPU architecture '{facts.machine}'",
                       "Immich ML images exist for x86_64 and aarch64 only")
    if facts.arch not in b.platforms:
        return Support(name, False, f"{facts.arch} host; -{name} images are {'/'.join(b.platforms)} only")
    return None


def _cpu(facts: HostFacts) -> Support:
    return _arch_gate(facts, "cpu") or Support("cpu", True, f"{facts.arch} CPU, {facts.cpus or '?'} cores")


def _cuda(facts: HostFacts) -> Support:
    if gate := _arch_gate(facts, "cuda"):
        return gate
    if not facts.nvidia_gpus:
        return Support("cuda", False, "no NVIDIA GPU visible (nvidia-smi -L lists none)",
                       "install the NVIDIA driver (>= 545) so that `nvidia-smi -L` lists the GPU")
    gpus = ", ".join(facts.nvidia_gpus)
    driver = facts.nvidia_driver_major
    if driver is not None and driver < MIN_NVIDIA_DRIVER:
        return Support("cuda", False, f"{gpus} with driver {facts.nvidia_driver}, older than {MIN_NVIDIA_DRIVER}",
                       f"upgrade the NVIDIA driver to {MIN_NVIDIA_DRIVER} or newer (CUDA 12.3 support)")
    old = [cc for cc in facts.nvidia_compute_caps if cc < MIN_COMPUTE_CAPABILITY]
    if old and len(old) == len(facts.nvidia_compute_caps):
        return Support("cuda", False, f"{gpus}: compute capability {old[0][0]}.{old[0][1]} is below 5.2",
                       "this GPU is too old for Immich's CUDA image; use accel: cpu")
    if not facts.nvidia_container_toolkit:
        what = "Docker and the NVIDIA Container Toolkit are" if not facts.docker_installed else \
            "the NVIDIA Container Toolkit is"
        return Support("cuda", False, f"{gpus} present (driver {facts.nvidia_driver or '?'}) but {what} not installed",
                       "install nvidia-container-toolkit and run `sudo nvidia-ctk runtime configure "
                       "--runtime=docker && sudo systemctl restart docker`")
    return Support("cuda", True, f"{gpus} (driver {facts.nvidia_driver or '?'}) with the NVIDIA container runtime")


def _rocm(facts: HostFacts) -> Support:
    if gate := _arch_gate(facts, "rocm"):
        return gate
    if not facts.has_device("/dev/kfd"):
        return Support("rocm", False, "no /dev/kfd (AMD ROCm kernel driver not loaded)",
                       "install a ROCm-supported amdgpu driver so /dev/kfd exists")
    if not facts.render_nodes:
        return Support("rocm", False, "no /dev/dri render node", "load the amdgpu driver so /dev/dri/renderD* exists")
    if facts.disk_free_gib is not None and facts.disk_free_gib < ROCM_MIN_FREE_GIB:
        return Support("rocm", False, f"only {facts.disk_free_gib:.0f} GiB free; the ROCm image needs "
                       f"{ROCM_MIN_FREE_GIB} GiB", f"free at least {ROCM_MIN_FREE_GIB} GiB for Docker's data root")
    return Support("rocm", True, "/dev/kfd and a /dev/dri render node present")


def _openvino(facts: HostFacts) -> Support:
    if gate := _arch_gate(facts, "openvino"):
        return gate
    intel = [n for n, vendor in facts.render_nodes.items() if vendor == "0x8086"]
    if not intel:
        found = ", ".join(f"{n} ({v or 'unknown vendor'})" for n, v in facts.render_nodes.items()) or "none"
        return Support("openvino", False, f"no Intel GPU render node (found: {found})",
                       "OpenVINO needs an Intel GPU with /dev/dri/renderD* (i915 or xe driver)")
    return Support("openvino", True, f"Intel GPU render node {intel[0]}")


def _openvino_wsl(facts: HostFacts) -> Support:
    if gate := _arch_gate(facts, "openvino-wsl"):
        return gate
    if not facts.has_device("/dev/dxg"):
        return Support("openvino-wsl", False, "not WSL2 (no /dev/dxg)", "openvino-wsl is for WSL2 hosts only")
    return Support("openvino-wsl", True, "WSL2 GPU device /dev/dxg present")


def _armnn(facts: HostFacts) -> Support:
    if gate := _arch_gate(facts, "armnn"):
        return gate
    if not facts.has_device("/dev/mali0"):
        return Support("armnn", False, "no /dev/mali0 (Mali vendor kernel driver not loaded)",
                       "install the vendor Mali kernel driver so /dev/mali0 exists")
    if "/usr/lib/libmali.so" not in facts.files:
        return Support("armnn", False, "/dev/mali0 present but /usr/lib/libmali.so is missing",
                       "install the closed-source libmali.so at /usr/lib/libmali.so")
    return Support("armnn", True, "/dev/mali0 and /usr/lib/libmali.so present")


def _rknn(facts: HostFacts) -> Support:
    if gate := _arch_gate(facts, "rknn"):
        return gate
    soc = next((s for s in RKNN_SOCS if s in facts.device_tree_compatible), None)
    if soc is None:
        return Support("rknn", False, "not a supported Rockchip SoC (RK3566/RK3568/RK3576/RK3588)",
                       "RKNN works on RK3566, RK3568, RK3576 and RK3588 only")
    if facts.rknpu_version is None:
        return Support("rknn", False, f"{soc.upper()} but no RKNPU driver version readable",
                       "load the vendor RKNPU driver (>= 0.9.8; `cat /sys/kernel/debug/rknpu/version`)")
    if facts.rknpu_version < (0, 9, 8):
        shown = ".".join(map(str, facts.rknpu_version))
        return Support("rknn", False, f"RKNPU driver {shown} is older than 0.9.8", "upgrade the RKNPU driver")
    return Support("rknn", True, f"{soc.upper()} with RKNPU driver {'.'.join(map(str, facts.rknpu_version))}")


_ASSESSORS = {
    "cpu": _cpu,
    "cuda": _cuda,
    "rocm": _rocm,
    "openvino": _openvino,
    "openvino-wsl": _openvino_wsl,
    "armnn": _armnn,
    "rknn": _rknn,
}
