"""The pool balancer's test image: Debian 12's HAProxy 2.6, FROM scratch, built offline (no registry pull).

It holds the machine's own `/usr/sbin/haproxy` (Debian's `haproxy` package, installed by
scripts/install-system.sh with its service stopped) and the libraries `ldd` names, like the registry image.
It behaves like the pinned official image where it matters to the compose service: the config is read from
/usr/local/etc/haproxy/haproxy.cfg (bind-mount it there), the default command is `haproxy -W -db -f <that>`
(master-worker, foreground, logs on stdout), it runs as uid 99 (the official image's `haproxy` user) and stops
on SIGUSR1 (a soft stop: requests in flight finish). Cached by a hash of the recipe and the binary, as the
other bed images; also tagged BALANCER_TEST_TAG.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

from .cache import ensure_image, recipe_hash
from .engine import BedError, docker, run
from .registry import _copy_into, _ldd

BALANCER_REPO = "immich-remote-testbed/haproxy"
BALANCER_TEST_TAG = "immich-remote-test/haproxy:2.6"
BINARY = Path("/usr/sbin/haproxy")
CONFIG_DIR = "/usr/local/etc/haproxy"
# glibc 2.36 has the files and dns NSS modules built in: a member given by host name resolves through the
# /etc/hosts and /etc/resolv.conf that Docker mounts.
NSSWITCH = "hosts: files dns\n"
DOCKERFILE = f"""\
FROM scratch
COPY rootfs/ /
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
STOPSIGNAL SIGUSR1
USER 99:99
WORKDIR /var/lib/haproxy
CMD ["haproxy", "-W", "-db", "-f", "{CONFIG_DIR}/haproxy.cfg"]
"""


def ensure_balancer_image() -> str:
    """Make the balancer test image present (reuse, load from cache or build); return BALANCER_TEST_TAG."""
    if not BINARY.is_file():
        raise BedError(f"{BINARY} not found: `apt-get install -y haproxy` (then stop its service), "
                       "or run scripts/install-system.sh")
    binary_sha = hashlib.sha256(BINARY.read_bytes()).hexdigest()
    tag = f"{BALANCER_REPO}:{recipe_hash(binary_sha, NSSWITCH, DOCKERFILE)}"
    ensure_image(tag, lambda: _build(tag))
    docker("tag", tag, BALANCER_TEST_TAG)
    return BALANCER_TEST_TAG


def _build(tag: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        context = Path(tmp)
        rootfs = context / "rootfs"
        _copy_into(BINARY, rootfs, Path("/usr/local/sbin/haproxy"))  # where the official image has it
        for library in _ldd(BINARY):
            _copy_into(library, rootfs, library)
        (rootfs / "etc").mkdir(parents=True, exist_ok=True)
        (rootfs / "etc" / "nsswitch.conf").write_text(NSSWITCH)
        (rootfs / CONFIG_DIR.lstrip("/")).mkdir(parents=True)
        (rootfs / "var" / "lib" / "haproxy").mkdir(parents=True)
        (rootfs / "tmp").mkdir()
        (rootfs / "tmp").chmod(0o1777)
        (context / "Dockerfile").write_text(DOCKERFILE)
        run(["docker", "build", "-q", "-t", tag, context], timeout=180)


def version_line(tag: str = BALANCER_TEST_TAG) -> str:
    """`haproxy -v`'s first line inside the image (a smoke check that the binary finds its libraries)."""
    done = docker("run", "--rm", tag, "haproxy", "-v", timeout=60)
    return done.stdout.splitlines()[0] if done.stdout else ""



def runtime_api(host, admin_port: int, line: str) -> str:
    """One runtime-API command (e.g. haproxy.set_state_command) sent from a bed host's own loopback, where
    the balancer's API listens (immich-remote reaches it the same way, through SSH); the answer, stripped."""
    script = (f"import socket; s = socket.create_connection(('127.0.0.1', {admin_port})); "
              f"s.sendall({(line + chr(10)).encode()!r}); print(s.recv(4096).decode())")
    return host.exec(["python3", "-c", script]).stdout.strip()
