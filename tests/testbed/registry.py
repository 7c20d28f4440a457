"""The bed's image registry: Debian's docker-registry 2.8, served over TLS as `registry.tb` and `ghcr.io`.

The image is built FROM scratch out of the Debian package (`apt-get download` + `dpkg-deb -x`; never
`apt-get install`, whose postinst starts a public service) with the binary's ldd dependencies and a config
without auth; ~23 MB, cached like the host image. Each bed runs its own registry container with a throw-away
CA (made here with openssl) that the hosts trust through /etc/docker/certs.d, and fills it with the stub
ML tags through its 127.0.0.1 port (127.0.0.0/8 is an insecure registry for the machine's engine).
"""

from __future__ import annotations

import shutil
import ssl
import tempfile
import time
import urllib.request
from pathlib import Path

from .cache import ensure_image, recipe_hash
from .engine import BedError, docker, run

REGISTRY_REPO = "immich-remote-testbed/registry"
REGISTRY_NAMES = ["registry.tb", "ghcr.io"]
CERT_SANS = "DNS:ghcr.io,DNS:registry.tb,DNS:localhost,IP:127.0.0.1"
PACKAGE = "docker-registry"
CONFIG = """\
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: /var/lib/registry
  delete:
    enabled: true
http:
  addr: :443
  tls:
    certificate: /certs/server.crt
    key: /certs/server.key
"""
DOCKERFILE = """\
FROM scratch
COPY rootfs/ /
EXPOSE 443
ENTRYPOINT ["/usr/bin/docker-registry", "serve", "/etc/docker/registry/config.yml"]
"""


def ensure_registry_image() -> str:
    """Make the registry image present (reuse, load from cache or build) and return its tag."""
    tag = f"{REGISTRY_REPO}:{recipe_hash(PACKAGE, CONFIG, DOCKERFILE)}"
    ensure_image(tag, lambda: _build(tag))
    return tag


def _build(tag: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        context = Path(tmp)
        try:
            run(["apt-get", "download", PACKAGE], timeout=180, cwd=context)
        except BedError as exc:
            raise BedError(
                f"cannot fetch the {PACKAGE} package (run `apt-get update` first?): {exc}"
            ) from exc
        (deb,) = context.glob(f"{PACKAGE}_*.deb")
        run(["dpkg-deb", "-x", deb, context / "pkg"])
        rootfs = context / "rootfs"
        binary = context / "pkg" / "usr" / "bin" / "docker-registry"
        _copy_into(binary, rootfs, Path("/usr/bin/docker-registry"))
        for library in _ldd(binary):
            _copy_into(library, rootfs, library)
        (rootfs / "etc" / "docker" / "registry").mkdir(parents=True)
        (rootfs / "etc" / "docker" / "registry" / "config.yml").write_text(CONFIG)
        (rootfs / "var" / "lib" / "registry").mkdir(parents=True)
        (context / "Dockerfile").write_text(DOCKERFILE)
        run(["docker", "build", "-q", "-t", tag, context], timeout=180)


def _ldd(binary: Path) -> list[Path]:
    """The shared libraries (and loader) `binary` needs, as absolute paths on this machine."""
    paths = []
    for line in run(["ldd", binary]).stdout.splitlines():
        words = [word for word in line.split() if word.startswith("/")]
        if words:
            paths.append(Path(words[0]))
    return paths


def _copy_into(source: Path, rootfs: Path, path: Path) -> None:
    """Copy `source` (symlinks resolved) to `path` inside `rootfs`."""
    target = rootfs / path.relative_to("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source.resolve(), target)


def make_certs(folder: Path) -> Path:
    """A throw-away CA and a server certificate for every name the registry answers to.

    Writes `folder/{ca.crt,ca.key,server.crt,server.key}` and the per-registry trust folder
    `folder/certs.d/<name>/ca.crt` that hosts mount at /etc/docker/certs.d; returns the CA certificate.
    """
    folder.mkdir(parents=True, exist_ok=True)
    ca_crt, ca_key = folder / "ca.crt", folder / "ca.key"
    server_crt, server_key, csr = folder / "server.crt", folder / "server.key", folder / "server.csr"
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run(["openssl", "req", "-x509", *ec, "-keyout", ca_key, "-out", ca_crt, "-days", "30",
         "-subj", "/CN=immich-remote test bed CA",
         "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"])  # fmt: skip
    run(["openssl", "req", *ec, "-keyout", server_key, "-out", csr, "-subj", "/CN=registry.tb"])
    extensions = folder / "server.ext"
    extensions.write_text(f"subjectAltName={CERT_SANS}\nextendedKeyUsage=serverAuth\n")
    run(["openssl", "x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key, "-CAcreateserial",
         "-out", server_crt, "-days", "30", "-extfile", extensions])  # fmt: skip
    for name in REGISTRY_NAMES:
        (folder / "certs.d" / name).mkdir(parents=True, exist_ok=True)
        shutil.copy(ca_crt, folder / "certs.d" / name / "ca.crt")
    # The registry process runs as root in its container, but keep the key readable if the bed is not.
    server_key.chmod(0o644)
    return ca_crt


def wait_ready(port: int, ca_crt: Path, timeout: float = 30) -> None:
    """Poll `GET /v2/` over TLS (verifying the CA and the 127.0.0.1 SAN) until the registry answers."""
    context = ssl.create_default_context(cafile=str(ca_crt))
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"https://127.0.0.1:{port}/v2/", context=context, timeout=2):
                return
        except OSError as exc:
            if time.monotonic() > deadline:
                raise BedError(f"registry on 127.0.0.1:{port} not ready after {timeout:g} s: {exc}") from exc
            time.sleep(0.2)


def push(port: int, images: list[str]) -> None:
    """Push local images (`repo:tag`) to the bed registry as `127.0.0.1:<port>/repo:tag`.

    All tags of a repository go up in one `docker push --all-tags`; the temporary tags are removed after.
    """
    pushed = [f"127.0.0.1:{port}/{image}" for image in images]
    for image, target in zip(images, pushed, strict=True):
        docker("tag", image, target)
    try:
        for repo in sorted({target.rpartition(":")[0] for target in pushed}):
            docker("push", "--all-tags", "--quiet", repo, timeout=300)
    finally:
        docker("rmi", *pushed)
