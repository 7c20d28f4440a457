"""Seeding a model cache: the manifest, the models Immich uses, the decision whether to copy and from
where, the commands (pure), the `seed` step, and the stream between two SSH connections (a real sshd)."""

from __future__ import annotations

import hashlib
import os

import pytest

from immich_remote.cache_seed import (
    MARKER,
    Manifest,
    cache_mount,
    clear_cache,
    decide_seed,
    finish_cache,
    parse_manifest,
    read_cache,
    receive_cache,
    send_cache,
    wanted_models,
)
from immich_remote.errors import RemoteCommandError
from immich_remote.ssh import Remote, Target
from tests.unit.test_steps import container, host, rendering, state_of  # noqa: F401 - `host` is a fixture

SHA_A, SHA_B = "a" * 64, "b" * 64
LISTING = f"""#sizes
583 ./clip/ViT-B-32__openai/visual/model.onnx
12 ./facial-recognition/buffalo_l/a b.onnx
#sums
{SHA_A}  ./clip/ViT-B-32__openai/visual/model.onnx
{SHA_B}  ./facial-recognition/buffalo_l/a b.onnx
#links
./clip/latest -> ViT-B-32__openai
"""


def manifest(files: dict[str, tuple[int, str | None]], state: str = "ok") -> Manifest:
    return Manifest(files, {}, state)


FULL = manifest({"clip/ViT-B-32__openai/m.onnx": (583, SHA_A), "facial-recognition/buffalo_l/d.onnx": (12, SHA_B),
                 "ocr/PP-OCRv5_mobile/x.onnx": (3, SHA_A)})
EMPTY, ABSENT = manifest({}), manifest({}, "absent")
MODELS = ["clip/ViT-B-32__openai", "facial-recognition/buffalo_l", "ocr/PP-OCRv5_mobile"]


def test_a_listing_becomes_paths_with_sizes_checksums_and_links():
    m = parse_manifest(LISTING)
    assert m.files == {"clip/ViT-B-32__openai/visual/model.onnx": (583, SHA_A),
                       "facial-recognition/buffalo_l/a b.onnx": (12, SHA_B)}
    assert m.links == {"clip/latest": "ViT-B-32__openai"}
    assert (m.size, m.summary(), m.empty) == (595, "2 files, 595 B", False)
    assert parse_manifest("#absent\n").state == "absent" and parse_manifest("#absent\n").empty
    unreadable = parse_manifest("#no-image\n")
    assert not unreadable.empty and "no ML image" in unreadable.summary()
    assert parse_manifest("#sizes\n#links\n").summary() == "empty"


def test_caches_match_only_when_every_path_size_and_checksum_is_the_same():
    same = parse_manifest(LISTING)
    assert same.matches(parse_manifest(LISTING))
    changed = parse_manifest(LISTING.replace(f"{SHA_B}  ", f"{SHA_A}  "))
    assert not changed.matches(same)
    assert changed.differences(same) == ["1 different: facial-recognition/buffalo_l/a b.onnx"]
    shorter = parse_manifest(LISTING.replace("583 ./clip", "582 ./clip"))
    assert shorter.differences(same) == ["1 different: clip/ViT-B-32__openai/visual/model.onnx"]
    fewer = manifest({"clip/ViT-B-32__openai/visual/model.onnx": (583, SHA_A)})
    assert fewer.differences(same)[0] == "1 missing: facial-recognition/buffalo_l/a b.onnx"
    assert "symlink differs" in fewer.differences(same)[1]
    assert not ABSENT.matches(ABSENT)  # nothing to compare is not a match


def test_the_models_come_from_immichs_config_as_its_cache_directories():
    assert wanted_models(None) == []
    config = {"machineLearning": {"enabled": True, "clip": {"enabled": True, "modelName": "ViT-B-16-SigLIP__webli"},
                                  "facialRecognition": {"enabled": True, "modelName": "buffalo_l"},
                                  "ocr": {"enabled": False, "modelName": "PP-OCRv5_mobile"}}}
    assert wanted_models(config) == ["clip/ViT-B-16-SigLIP__webli", "facial-recognition/buffalo_l"]
    config["machineLearning"]["clip"]["modelName"] = "immich-app/XLM-Roberta-Large:Vit-B-16Plus"
    assert wanted_models(config)[0] == "clip/XLM-Roberta-Large_Vit-B-16Plus"  # Immich ML's clean_name
    config["machineLearning"]["enabled"] = False
    assert wanted_models(config) == []


def decide(target=EMPTY, *, explicit=None, force=False, new_host=True, sources=None, models=MODELS):
    return decide_seed("new", target, explicit=explicit, force=force, new_host=new_host,
                       sources={"gpu": FULL} if sources is None else sources, models=models)


def test_seed_cache_from_copies_into_an_empty_or_absent_cache():
    for target in (EMPTY, ABSENT):
        seed = decide(target, explicit="gpu", new_host=False)
        assert seed.plan is not None and seed.plan.source == "gpu" and not seed.plan.overwrite
        assert "from gpu (3 files, 598 B" in seed.plan.detail and "sha256" in seed.plan.detail


def test_a_cache_that_already_matches_is_left_alone():
    seed = decide(FULL, explicit="gpu", new_host=False)
    assert seed.plan is None and not seed.refusal and "already matches gpu's" in seed.note


def test_a_different_cache_is_never_overwritten_without_force():
    mine = manifest({"clip/ViT-B-32__openai/m.onnx": (583, SHA_B)})
    refused = decide(mine, explicit="gpu")
    assert refused.plan is None
    assert "not empty (1 files, 583 B)" in refused.refusal and "--force" in refused.refusal
    assert "clip/ViT-B-32__openai/m.onnx" in refused.refusal  # what differs
    forced = decide(mine, explicit="gpu", force=True)
    assert forced.plan is not None and forced.plan.overwrite and "REPLACING" in forced.plan.detail


def test_a_copy_that_was_cut_off_is_replaced_without_force_and_only_it_is_ever_cleared():
    unfinished = manifest({MARKER: (0, SHA_A), "clip/ViT-B-32__openai/m.onnx": (100, SHA_A)})
    for seed in (decide(unfinished, explicit="gpu"), decide(unfinished)):
        assert seed.plan is not None and seed.plan.overwrite and "unfinished copy" in seed.plan.detail
    receive = receive_cache("vol", "img", overwrite=False)
    assert receive.index(f": > /cache/{MARKER}") < receive.index("tar -C /cache -xf -")
    assert f"rm -f /cache/{MARKER}" in finish_cache("vol", "img")  # only once the copy is verified
    assert f"[ -e /cache/{MARKER} ] || exit 0; find /cache -mindepth 1" in clear_cache("vol", "img")
    assert decide(explicit="gpu", sources={"gpu": unfinished}).refusal.startswith(
        "--seed-cache-from gpu: that host's model cache is an unfinished copy")
    assert decide(sources={"gpu": unfinished}).plan is None  # never a source while cut off
    assert not Manifest({**FULL.files, MARKER: (0, SHA_A)}).differences(FULL)  # the mark itself is no difference


def test_a_source_without_a_cache_is_refused_and_the_source_itself_is_skipped():
    for source in (EMPTY, ABSENT, manifest({}, "no-image")):
        refused = decide(explicit="gpu", sources={"gpu": source})
        assert refused.plan is None and "--seed-cache-from gpu: that host's model cache is" in refused.refusal
    assert decide_seed("gpu", FULL, explicit="gpu", force=False, new_host=False, sources={},
                       models=MODELS).note == "this host is the seed source"


def test_a_new_host_is_seeded_automatically_from_the_largest_cache_that_has_the_models():
    small = manifest({m + "/x": (1, SHA_A) for m in MODELS})
    no_ocr = manifest({"clip/ViT-B-32__openai/m.onnx": (10**9, SHA_A), "facial-recognition/buffalo_l/d": (1, SHA_A)})
    seed = decide(sources={"nuc": small, "big-but-no-ocr": no_ocr, "gpu": FULL, "down": manifest({}, "unreachable")})
    assert seed.plan is not None and seed.plan.source == "gpu" and "a new host" in seed.plan.detail
    assert decide(sources={"nuc": small, "twin": small}).plan.source == "nuc"  # equal: the first in the inventory
    assert decide(sources={"big-but-no-ocr": no_ocr}).plan is None
    assert decide(models=[], sources={"big-but-no-ocr": no_ocr}).plan.source == "big-but-no-ocr"  # config unknown


def test_automatic_seeding_never_touches_a_deployed_host_or_a_cache_with_files():
    assert decide(new_host=False) == decide(sources={}) == decide(FULL)
    assert decide(new_host=False).plan is None and decide(FULL).plan is None
    assert decide(sources={"empty": EMPTY, "absent": ABSENT}).plan is None


def test_the_commands_read_without_creating_and_write_only_into_an_empty_cache():
    assert cache_mount("model-cache") == "immich_remote_ml_model-cache" and cache_mount("/srv/m") == "/srv/m"
    read = read_cache("immich_remote_ml_model-cache", ["img:v2.7.5"], checksums=True)
    # The volume is looked up first: a host without one prints "#absent" instead of `docker run -v`
    # creating it; the helper container mounts the cache read-only, pulls nothing, has no network.
    assert read.index("docker volume inspect immich_remote_ml_model-cache") < read.index("docker run")
    for words in ("--pull never", "--network none", ":/cache:ro", "sha256sum", "#absent"):
        assert words in read
    assert "sha256sum" not in read_cache("v", ["i"], checksums=False)
    assert "[ -d /srv/m ]" in send_cache("/srv/m", ["img"]) and "tar -C /cache -cf - ." in send_cache("/srv/m", ["i"])
    receive = receive_cache("vol", "img:v2.7.5", overwrite=False)
    assert receive.startswith("docker run --rm -i --pull never") and "vol:/cache " in receive
    assert "exit 17" in receive and "rm -rf" not in receive
    assert "rm -rf" in receive_cache("vol", "img", overwrite=True)


def test_the_seed_step_comes_right_before_up(host):  # noqa: F811 - the fixture
    r = rendering(host)
    new = decide(explicit="gpu").plan
    plan = plan_steps_with(r, state_of(), new.detail)
    assert plan.names == ["image", "lock", "record", "upload", "activate", "seed", "up", "gate", "history", "prune"]
    serving = state_of(r.hashes, {"current": "r1"}, [container(r.image)])
    again = plan_steps_with(r, serving, new.detail)  # same files: the same release, started on the seeded cache
    assert again.action == "start" and again.reason == "same files, but the model cache is seeded"
    assert "upload" not in again.names and "--force-recreate" in again.steps[again.names.index("up")].detail
    assert plan_steps_with(r, serving, None).names == []


def plan_steps_with(r, state, seed):
    from immich_remote.steps import plan_steps

    return plan_steps(r, state, seed=seed)


# --- the stream between two connections (a real OpenSSH server on 127.0.0.1) ----------------------------

def remote_for(server) -> Remote:
    return Remote(Target("box", "127.0.0.1", server.user, server.port, server.client_key),
                  known_hosts=[server.known_hosts])


def test_a_stream_from_one_connection_into_another_arrives_byte_for_byte(local_sshd, tmp_path):
    payload = os.urandom(3 * 1024 * 1024 + 17)
    (tmp_path / "src").write_bytes(payload)
    with remote_for(local_sshd) as source, remote_for(local_sshd) as target:
        target.stream_in(f"cat > {tmp_path / 'dst'}", source.stream_out(f"cat {tmp_path / 'src'}"))
    assert hashlib.sha256((tmp_path / "dst").read_bytes()).digest() == hashlib.sha256(payload).digest()


def test_a_failing_source_stream_names_the_host_and_its_error(local_sshd):
    with remote_for(local_sshd) as source, pytest.raises(RemoteCommandError) as failed:
        list(source.stream_out("echo partial; echo 'no such volume' >&2; exit 4", what="reading the cache"))
    assert failed.value.message == "Host 'box': reading the cache failed (exit 4): no such volume"


# --- the options, through the real command line (refused before anything connects) ----------------------

@pytest.mark.parametrize("args, said", [
    (["--seed-cache-from", "nosuch"], "error: --seed-cache-from: {inv}: no host named 'nosuch'. Known hosts: gpu, nuc."),
    (["--force"], "error: --force only applies with --seed-cache-from HOST"),
    (["--seed-cache-from", "gpu", "--no-seed"], "error: --seed-cache-from and --no-seed contradict each other."),
])
def test_bad_seed_options_exit_2_with_one_paragraph(tmp_path, args, said):
    from click.testing import CliRunner

    from immich_remote.cli import cli

    inventory = tmp_path / "hosts.yml"
    inventory.write_text('immich: {url: "http://127.0.0.1:9"}\nhosts:\n  gpu: {address: 10.0.0.5}\n'
                         '  nuc: {address: 10.0.0.6}\n')
    result = CliRunner().invoke(cli, ["-i", str(inventory), "deploy", *args])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert " ".join(result.output.split()).startswith(said.format(inv=inventory)), result.output
