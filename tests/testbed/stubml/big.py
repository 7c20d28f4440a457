"""A large stub tag, for watching a pull: the v2.7.5 stub plus one layer of random data (incompressible, so the
registry serves every byte). Built once per stub recipe and kept on the machine's engine (~5 s to build)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .. import registry
from ..cache import locked, remove_other_tags
from ..engine import docker, image_present, run
from . import LEGACY_BUILDER, STUB_REPO, stub_recipe

BIG_REPO = "immich-app/immich-ml-big"
BIG_MB = 200


def ensure_big_image(registry_port: int, version: str = "v2.7.5") -> str:
    """Build `immich-app/immich-ml-big:<version>` unless present, push it to the bed's registry, and return
    the repository as hosts name it (for an inventory's `image_repository`)."""
    tag = f"{BIG_REPO}:{version}"
    recipe = f"{stub_recipe()}-{BIG_MB}"
    with locked(BIG_REPO):
        labels = docker("image", "inspect", "--format", "{{index .Config.Labels \"big-recipe\"}}", tag,
                        check=False).stdout.strip() if image_present(tag) else ""
        if labels != recipe:
            remove_other_tags(BIG_REPO, "")
            with tempfile.TemporaryDirectory() as tmp:
                context = Path(tmp)
                with (context / "big.bin").open("wb") as out:
                    for _ in range(BIG_MB):
                        out.write(os.urandom(1 << 20))
                (context / "Dockerfile").write_text(
                    f"FROM {STUB_REPO}:{version}\nCOPY big.bin /opt/big.bin\nLABEL big-recipe={recipe}\n")
                run(["docker", "build", "-q", "-t", tag, context], timeout=300, env=LEGACY_BUILDER)
    registry.push(registry_port, [tag])
    return f"{registry.REGISTRY_NAMES[0]}/{BIG_REPO}"
