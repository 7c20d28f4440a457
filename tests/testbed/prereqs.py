"""What the bed needs on the machine, checked up front: each problem comes with what to install or start."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from .engine import BedError, run
from .hostimage import compose_binary

# tool -> the Debian package that provides it
TOOLS = {
    "docker": "docker.io",
    "mmdebstrap": "mmdebstrap",
    "zstd": "zstd",
    "ssh-keygen": "openssh-client",
    "openssl": "openssl",
    "iptables": "iptables",
    "ip": "iproute2",
    "apt-get": "apt",
    "dpkg-deb": "dpkg",
    "ldd": "libc-bin",
    "haproxy": "haproxy",  # the pool balancer's test image copies its binary (install-system.sh stops the service)
}
BUSYBOX = Path("/bin/busybox")
START_DOCKERD = "start it with `dockerd > /var/log/dockerd.log 2>&1 &` (nothing starts it on these machines)"


def missing_prerequisites() -> list[str]:
    """Every missing piece as one sentence; an empty list means the bed can be built and started.

    `scripts/install-system.sh` (as root) installs and starts all of it on Debian 12.
    """
    problems = [
        f"`{tool}` not found: `apt-get install -y {package}`"
        for tool, package in TOOLS.items()
        if shutil.which(tool) is None
    ]
    if os.geteuid() != 0:
        problems.append("the bed must run as root (mmdebstrap --mode=root, iptables on the machine)")
    if not BUSYBOX.exists() or "not a dynamic executable" not in run(["ldd", BUSYBOX], check=False).stderr:
        problems.append(f"{BUSYBOX} is missing or not static: `apt-get install -y busybox-static`")
    if shutil.which("docker"):
        info = run(["docker", "info", "--format", "{{.ServerVersion}}"], check=False, timeout=20)
        if info.returncode != 0:
            problems.append(
                f"the Docker engine is not reachable ({info.stderr.strip()[:200]}): {START_DOCKERD}"
            )
    try:
        compose_binary()
    except BedError as exc:
        problems.append(str(exc))
    return problems
