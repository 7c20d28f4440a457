"""The image cache: images are tagged with a hash of their recipe and saved as `docker save | zstd` archives.

A warm run therefore costs nothing when the tag is already on the engine, a `docker load` (seconds) when only
the archive exists (a fresh CI machine with a restored cache), and a full build only when the recipe changed.
Builds hold a file lock, so test sessions starting together build each image once, not once each.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shlex
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .engine import docker, image_present, log, shell_pipeline

CACHE_ENV = "IMMICH_REMOTE_TESTBED_CACHE"


def cache_dir() -> Path:
    """`$IMMICH_REMOTE_TESTBED_CACHE`, else `~/.cache/immich-remote-testbed`; created on first use."""
    path = Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "immich-remote-testbed")
    path.mkdir(parents=True, exist_ok=True)
    return path


def recipe_hash(*parts: str | bytes) -> str:
    """A short, stable hash over the parts of a recipe (texts, file contents, digests)."""
    digest = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()[:16]


def ensure_image(tag: str, build: Callable[[], None]) -> str:
    """Make the image `repo:<recipe hash>` present: reuse it, else load its archive, else build and save it.

    Returns what happened ("present", "loaded" or "built") so callers can report timings. Archives of the
    same repository with another hash are deleted: they belong to recipes that no longer exist.
    """
    if image_present(tag):
        return "present"
    repo, _, _ = tag.rpartition(":")
    with locked(repo):
        if image_present(tag):  # built by another session while we waited
            return "present"
        remove_other_tags(repo, tag)
        archive = cache_dir() / f"{tag.replace('/', '_').replace(':', '@')}.tar.zst"
        started = time.monotonic()
        if archive.exists():
            shell_pipeline(f"zstd -dcq {shlex.quote(str(archive))} | docker load -q", timeout=300)
            log.info("%s: loaded from %s in %.1f s", tag, archive, time.monotonic() - started)
            return "loaded"
        build()
        log.info("%s: built in %.1f s", tag, time.monotonic() - started)
        partial = archive.with_suffix(".partial")
        shell_pipeline(
            f"docker save {shlex.quote(tag)} | zstd -3 -T0 -qf -o {shlex.quote(str(partial))}", timeout=300
        )
        partial.rename(archive)
        for old in cache_dir().glob(f"{repo.replace('/', '_')}@*.tar.zst"):
            if old != archive:
                old.unlink()
        log.info("%s: saved to %s", tag, archive)
        return "built"


@contextmanager
def locked(name: str) -> Iterator[None]:
    """Hold an exclusive lock (a file in the cache folder) named after `name` for the block."""
    with (cache_dir() / f"{name.replace('/', '_')}.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def remove_other_tags(repo: str, keep: str) -> None:
    """Delete the images of `repo` made from older recipes (those still used by a running bed stay)."""
    tags = docker("image", "ls", repo, "--format", "{{.Repository}}:{{.Tag}}").stdout.split()
    for tag in tags:
        if tag != keep:
            docker("rmi", tag, check=False)
