"""Seeding a new host's model cache from another host on the test bed: copied byte for byte (through this
machine, over the two SSH connections), the seeded host's container starts on it, a re-run is a no-op, a
different cache is never overwritten without --force, and a new host is seeded on its own."""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.request

import pytest

from tests.integration.sandbox import IMAGE, inner, ml_container

pytestmark = pytest.mark.integration

# Random data where Immich ML keeps the models the sandbox's Immich config uses (clip is
# ViT-B-16-SigLIP__webli there), plus a name with a space, an empty file and a symlink: ~4 MB.
WRITE_CACHE = """set -e; cd /cache
mkdir -p clip/ViT-B-16-SigLIP__webli/visual clip/ViT-B-16-SigLIP__webli/textual \
  facial-recognition/buffalo_l/detection facial-recognition/buffalo_l/recognition ocr/PP-OCRv5_mobile/detection
dd if=/dev/urandom of=clip/ViT-B-16-SigLIP__webli/visual/model.onnx bs=64k count=32 2>/dev/null
dd if=/dev/urandom of=clip/ViT-B-16-SigLIP__webli/textual/model.onnx bs=64k count=16 2>/dev/null
dd if=/dev/urandom of=facial-recognition/buffalo_l/detection/model.onnx bs=64k count=8 2>/dev/null
dd if=/dev/urandom of='facial-recognition/buffalo_l/recognition/model weights.onnx' bs=1000 count=333 2>/dev/null
dd if=/dev/urandom of=ocr/PP-OCRv5_mobile/detection/model.onnx bs=1 count=4099 2>/dev/null
: > clip/ViT-B-16-SigLIP__webli/.complete
ln -s visual/model.onnx clip/ViT-B-16-SigLIP__webli/latest
"""
# The test's own manifest, read inside a host's running ML container (so: what that container sees at
# /cache): every file's sha256 and size, every symlink's target.
MANIFEST = """cd /cache && find . -type f -exec sha256sum {} + | sort -k 2 \
  && find . -type f -exec stat -c '%s %n' {} + | sort -k 2 \
  && find . -type l | sort | while IFS= read -r l; do echo "$l -> $(readlink "$l")"; done"""


ML_CONTAINER = "immich_remote_ml-immich-machine-learning-1"  # Compose's name: project, service, 1


def in_ml_container(host, script: str) -> str:
    """Run `script` in the host's running ML container (`docker exec` fails when it does not run)."""
    return inner(host, "exec", ML_CONTAINER, "sh", "-c", script)


def pong(host) -> bool:
    with urllib.request.urlopen(f"{host.ml_url}/ping", timeout=5) as answer:
        return answer.read() == b"pong"


def by_host(data) -> dict:
    return {h["host"]: h for h in data["hosts"]}


def test_a_seeded_cache_is_byte_identical_and_the_container_starts_on_it(sandbox):
    ml1, ml2, ml3 = (sandbox.host_named(n) for n in ("ml1", "ml2", "ml3"))
    sandbox.cli("deploy", "ml1")
    in_ml_container(ml1, WRITE_CACHE)
    source = in_ml_container(ml1, MANIFEST)
    assert source.count("\n") == 2 * 6 + 1 and "model weights.onnx" in source

    # The dry run shows the step; the run executes exactly it, copies, verifies, then starts the container.
    dry = by_host(sandbox.cli_json("deploy", "ml2", "--seed-cache-from", "ml1", "--dry-run"))["ml2"]
    seed_step = next(s for s in dry["plan"] if s["name"] == "seed")
    assert "from ml1 (6 files, 4.0 MB" in seed_step["detail"]
    done = by_host(sandbox.cli_json("deploy", "ml2", "--seed-cache-from", "ml1"))["ml2"]
    assert done["status"] == "deployed" and done["steps"] == dry["steps"]
    assert dry["steps"].index("seed") == dry["steps"].index("up") - 1
    seed = done["seed"]
    assert (seed["from"], seed["files"], seed["bytes"]) == ("ml1", 6, 4_007_115)
    assert seed["stream_bytes"] >= seed["bytes"] and seed["seconds"] < 30
    assert "model cache seeded from ml1: 6 files, 4.0 MB in" in done["message"]
    assert in_ml_container(ml2, MANIFEST) == source  # byte for byte, as ml2's own container sees it
    assert pong(ml2)

    # Again: the caches match, nothing is done.
    again = by_host(sandbox.cli_json("deploy", "ml2", "--seed-cache-from", "ml1"))["ml2"]
    assert again["status"] == "unchanged" and again["steps"] == []
    assert "the model cache already matches ml1's" in again["message"]

    # The source changes: ml2's cache now differs and is not overwritten without --force.
    in_ml_container(ml1, "dd if=/dev/urandom of=/cache/clip/extra.bin bs=1k count=10 2>/dev/null")
    refused = by_host(sandbox.cli_json("deploy", "ml2", "--seed-cache-from", "ml1", expect=1))["ml2"]["message"]
    assert "model cache: its model cache is not empty (6 files, 4.0 MB) and differs from ml1's" in refused
    assert "1 missing: clip/extra.bin" in refused and "Run again with --force" in refused
    assert in_ml_container(ml2, MANIFEST) == source and pong(ml2)  # untouched, still serving
    forced = by_host(sandbox.cli_json("deploy", "ml2", "--seed-cache-from", "ml1", "--force"))["ml2"]
    assert forced["status"] == "restarted" and "seed" in forced["steps"]
    assert in_ml_container(ml2, MANIFEST) == in_ml_container(ml1, MANIFEST) and pong(ml2)

    # A new host is seeded on its own (unless --no-seed), from a host that has every model Immich uses.
    assert "seed" not in by_host(sandbox.cli_json("deploy", "ml3", "--no-seed", "--dry-run"))["ml3"]["steps"]
    auto_run = sandbox.cli("-v", "--json", "deploy", "ml3")  # -v: progress lines on stderr besides the JSON
    auto = by_host(json.loads(auto_run.stdout))["ml3"]
    assert re.search(r"ml3: seeded [\d.]+ [kMG]?B in [\d.]+s", auto_run.stderr), auto_run.stderr
    assert auto["status"] == "deployed" and auto["seed"]["from"] in ("ml1", "ml2") and auto["seed"]["files"] == 7
    assert in_ml_container(ml3, MANIFEST) == in_ml_container(ml1, MANIFEST) and pong(ml3)


def test_a_source_without_a_cache_is_refused_before_anything_is_touched(sandbox):
    # (Bad option combinations, exit 2, are tested without Docker: tests/unit/test_cache_seed.py.)
    empty = by_host(sandbox.cli_json("deploy", "ml2", "--seed-cache-from", "ml1", expect=1))["ml2"]["message"]
    assert "--seed-cache-from ml1: that host's model cache is absent, nothing to copy" in empty
    assert ml_container(sandbox.host_named("ml2")) is None
    for host in sandbox.hosts:  # reading the caches created no volume anywhere
        assert "immich_remote_ml_model-cache" not in inner(host, "volume", "ls", "-q")


def test_a_copy_cut_off_midway_is_removed_and_the_new_host_rolled_back(sandbox):
    ml1, ml2 = sandbox.host_named("ml1"), sandbox.host_named("ml2")
    sandbox.cli("deploy", "ml1")
    in_ml_container(ml1, "mkdir -p /cache/clip/big && for i in 1 2 3 4 5 6; do "
                         "dd if=/dev/urandom of=/cache/clip/big/part$i bs=1M count=25 2>/dev/null; done")
    outcome = {}
    run = threading.Thread(target=lambda: outcome.update(
        sandbox.cli_json("deploy", "ml2", "--seed-cache-from", "ml1", expect=1)))
    run.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # the sending helper on ml1 (labelled), killed while it streams
        sender = inner(ml1, "ps", "-q", "--filter", "label=immich-remote.helper=seed-send").split()
        if sender:
            time.sleep(0.5)
            inner(ml1, "kill", *sender)
            break
        time.sleep(0.1)
    run.join(timeout=120)
    failed = by_host(outcome)["ml2"]
    assert failed["status"] == "failed", failed
    assert "reading the model cache of ml1 failed" in failed["message"]
    assert "the unfinished copy was removed from the host's model cache" in failed["message"]
    assert "nothing ran here before, so the new container was removed again" in failed["message"]
    assert ml_container(ml2) is None  # rolled back
    left = inner(ml2, "run", "--rm", "-v", "immich_remote_ml_model-cache:/cache", "--entrypoint", "sh",
                 f"{IMAGE}:v2.7.5", "-c", "find /cache -mindepth 1")
    assert left == ""  # nothing half-copied stays: the next deploy copies again without --force
