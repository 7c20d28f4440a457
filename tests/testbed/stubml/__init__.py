"""Stub `immich-machine-learning` images: busybox-static + shell, same wire API and metadata as the real one.

One base image (`immich-remote-testbed/stubml:<recipe hash>`) holds busybox and the scripts of this folder;
each published tag `immich-app/immich-machine-learning:<version><suffix>` is a config-only layer on top that
sets the version (IMMICH_SOURCE_REF, IMMICH_BUILD_IMAGE, OCI version label) and DEVICE from the suffix.
Everything builds offline in seconds, so these images are rebuilt rather than archived.

Test controls, read at request time (see mode.sh): MACHINE_LEARNING_STUB_MODE, _ONLY_VERSIONS,
_START_DELAY, _PREDICT_DELAY, and the file /tmp/stub-mode inside a running container.
MACHINE_LEARNING_STUB_PREDICT_DELAY is a fixed service time in seconds (fractions work: busybox sleep)
slept in every /predict before it answers, so `bench` can be checked against physics; set it per host
with the inventory's `env:` (tests/integration/test_bench.py). The stub's own handling adds ~0.1 s.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..cache import locked, recipe_hash, remove_other_tags
from ..engine import docker, image_present, log, run

STUB_VERSIONS = ["v2.7.4", "v2.7.5", "v3.2.2"]
# Tag suffix -> DEVICE, as in upstream's release tags (v2.7.5, v2.7.5-cuda, ...).
BACKENDS = {
    "": "cpu",
    "-cuda": "cuda",
    "-rocm": "rocm",
    "-openvino": "openvino",
    "-armnn": "armnn",
    "-rknn": "rknn",
}
STUB_REPO = "immich-app/immich-machine-learning"
BASE_REPO = "immich-remote-testbed/stubml"
RECIPE_LABEL = "immich-remote-testbed.stub-recipe"
BUSYBOX = Path("/bin/busybox")
HERE = Path(__file__).parent
SCRIPTS = ["entrypoint.sh", "handler.sh", "mode.sh", "predict.awk"]
VERSION_DOCKERFILE = """\
FROM {base}
ENV IMMICH_SOURCE_REF={version} IMMICH_BUILD_IMAGE={version} IMMICH_BUILD=stub DEVICE={device}
LABEL org.opencontainers.image.version={version} {label}={recipe}
"""
# The legacy builder: works offline with FROM scratch / local images, no buildx plugin needed.
LEGACY_BUILDER = {**os.environ, "DOCKER_BUILDKIT": "0"}


def stub_tags() -> list[str]:
    """All published tags, e.g. "v2.7.5" and "v2.7.5-cuda"."""
    return [f"{version}{suffix}" for version in STUB_VERSIONS for suffix in BACKENDS]


def stub_recipe() -> str:
    """Hash of everything the stub images are made of."""
    files = [(HERE / name).read_bytes() for name in ["Dockerfile", *SCRIPTS]]
    return recipe_hash(BUSYBOX.read_bytes(), *files, VERSION_DOCKERFILE, repr((STUB_VERSIONS, BACKENDS)))


def ensure_stub_images() -> list[str]:
    """Build the base image and every `immich-app/immich-machine-learning:<tag>` not current; return the refs."""
    recipe = stub_recipe()
    base = f"{BASE_REPO}:{recipe}"
    with locked(BASE_REPO):
        if not image_present(base):
            remove_other_tags(BASE_REPO, base)
            _build_base(base, recipe)
        current = docker(
            "image",
            "ls",
            "--filter",
            f"label={RECIPE_LABEL}={recipe}",
            "--format",
            "{{.Repository}}:{{.Tag}}",
        ).stdout.split()
        missing = [tag for tag in stub_tags() if f"{STUB_REPO}:{tag}" not in current]
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(lambda tag: _build_version(base, tag, recipe), missing))
    if missing:
        log.info("stub ML: built %d version tags", len(missing))
    return [f"{STUB_REPO}:{tag}" for tag in stub_tags()]


def _build_base(tag: str, recipe: str) -> None:
    """Assemble rootfs/ (busybox, a link per applet, the scripts, /tmp and /cache) and `docker build` it."""
    with tempfile.TemporaryDirectory() as tmp:
        context = Path(tmp)
        rootfs = context / "rootfs"
        (rootfs / "bin").mkdir(parents=True)
        (rootfs / "usr" / "src").mkdir(parents=True)
        (rootfs / "cache").mkdir()
        (rootfs / "tmp").mkdir(mode=0o1777)
        (rootfs / "tmp").chmod(0o1777)
        shutil.copy2(BUSYBOX, rootfs / "bin" / "busybox")
        for applet in run([BUSYBOX, "--list"]).stdout.split():
            if applet != "busybox":
                (rootfs / "bin" / applet).symlink_to("busybox")
        for name in SCRIPTS:
            shutil.copy2(HERE / name, rootfs / "usr" / "src" / name)
            (rootfs / "usr" / "src" / name).chmod(0o755)
        shutil.copy2(HERE / "Dockerfile", context / "Dockerfile")
        run(["docker", "build", "-q", "--label", f"{RECIPE_LABEL}={recipe}", "-t", tag, context],
            timeout=120, env=LEGACY_BUILDER)  # fmt: skip


def _build_version(base: str, tag: str, recipe: str) -> None:
    """A config-only image on top of the base: version and device for one published tag."""
    version, _, backend = tag.partition("-")
    dockerfile = VERSION_DOCKERFILE.format(
        base=base, version=version, device=BACKENDS[f"-{backend}" if backend else ""],
        label=RECIPE_LABEL, recipe=recipe,
    )  # fmt: skip
    run(["docker", "build", "-q", "-t", f"{STUB_REPO}:{tag}", "-"], input=dockerfile, timeout=120,
        env=LEGACY_BUILDER)  # fmt: skip
