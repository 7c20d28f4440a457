"""advise's decision table, reached from probe output: the real H100 capture (tests/fixtures/host-probes)
and the written probes of tests/fixtures/advise-probes (a 4 GB NAS, an 8 GB mini PC, a CPU desktop,
a public VPS), with queue backlogs as Immich reports them and bench figures; arithmetic checked."""

from __future__ import annotations

from pathlib import Path

import pytest

from immich_remote.advise import (
    ROWS,
    Inputs,
    Machine,
    about,
    decide,
    estimates,
    machine_from_facts,
    parse_free_available,
)
from immich_remote.facts import HostFacts, split_sections

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
H100 = FIXTURES / "host-probes" / "nvidia-h100-ubuntu2404-no-container-toolkit"
H100_SECTIONS = {"uname": "uname.txt", "os-release": "os-release.txt", "lscpu": "lscpu.txt", "nproc": "nproc.txt",
                 "free": "free.txt", "which": "which.txt", "nvidia-smi-L": "nvidia-smi-L.txt",
                 "nvidia-query": "nvidia-smi-query-noheader.csv", "dev": "dev.txt"}


def probed(name: str, fixture: str, **addresses: str) -> Machine:
    sections = split_sections((FIXTURES / "advise-probes" / f"{fixture}.probe").read_text())
    return machine_from_facts(name, HostFacts.from_sections(sections), free_text=sections["free"],
                              addresses=addresses)


@pytest.fixture
def gpu_box() -> Machine:
    sections = {name: (H100 / file).read_text() for name, file in H100_SECTIONS.items()}
    return machine_from_facts("gpu-box", HostFacts.from_sections(sections), free_text=sections["free"],
                              addresses={"address": "192.168.1.50"})


@pytest.fixture
def minipc() -> Machine:
    return probed("immich server", "minipc-8gb")


@pytest.fixture
def desk() -> Machine:
    return probed("desk", "cpu-desktop-32gb", address="192.168.1.30")


QUIET = {"smartSearch": 120, "faceDetection": 80, "ocr": 40}
ENABLED = ["smartSearch", "faceDetection", "facialRecognition", "duplicateDetection", "ocr"]


def test_probes_read_as_the_machines_they_describe(gpu_box, minipc, desk):
    assert gpu_box.mem_total == 135148564480 and gpu_box.mem_available == 134647865344
    assert gpu_box.gpus == ["NVIDIA H100 80GB HBM3"] and gpu_box.backend == "cpu"  # no Docker: CUDA is not usable yet
    assert "NVIDIA Container Toolkit are not installed" in gpu_box.accel_problems[0]
    assert minipc.mem_total == 8077811712 and minipc.cpus == 4 and minipc.backend == "openvino"
    assert desk.backend == "cpu" and not desk.has_accelerator and desk.open_listener is None
    vps = probed("vps", "public-vps", address="95.216.10.45")
    assert vps.open_listener == "0.0.0.0:3003"
    assert parse_free_available("garbage") is None


def test_keep_local_on_an_8gb_mini_pc_with_a_quiet_queue(minipc):
    advice = decide(Inputs(server=minipc, hosts=[], queues=QUIET, enabled=ENABLED,
                           library={"photos": 5200, "videos": 140}))
    assert advice.row == "keep-local"
    assert "Keep Immich's ML on the server" in advice.recommendation
    assert advice.reasons[0] == ("the Immich server has 7.5 GiB of RAM (from 6.0 GiB on ML fits beside it) "
                                 "and 240 ML jobs waiting (under 10,000)")
    assert "library: 5,200 photos, 140 videos" in advice.reasons
    assert "ML backlog: 240 jobs (smartSearch 120, faceDetection 80, ocr 40)" in advice.reasons
    assert advice.estimates["smartSearch"] == {"backlog": 120, "local_s": None}  # nothing measured: no guess


def test_small_host_on_a_4gb_nas(desk):
    nas = probed("immich server", "nas-4gb")
    advice = decide(Inputs(server=nas, hosts=[desk], queues=QUIET, enabled=ENABLED))
    assert advice.row == "small-host"
    assert advice.reasons[0].startswith("the Immich server has 3.7 GiB of RAM, under 6.0 GiB")
    assert "on desk" in advice.recommendation and "disable the ML features" in advice.recommendation
    assert any("1.3 GiB available" in r for r in advice.reasons)


def test_large_import_with_the_time_to_clear_locally_and_on_each_host(minipc, desk):
    measured = {"local": {"clip-image": 0.5, "faces": 0.8, "ocr": 1.25}, "desk": {"clip-image": 4.0, "faces": 6.4}}
    queues = {"smartSearch": 48210, "faceDetection": 48210, "ocr": 0}
    advice = decide(Inputs(server=minipc, hosts=[desk], queues=queues, enabled=ENABLED, measured=measured))
    assert advice.row == "large-import"
    assert advice.estimates == {
        "smartSearch": {"backlog": 48210, "local_s": 96420.0, "desk": 12052.5},  # 48210 / 0.5, 48210 / 4.0
        "faceDetection": {"backlog": 48210, "local_s": 60262.5, "desk": 7532.8},  # / 0.8, / 6.4 (7532.81)
    }  # ocr: nothing waiting, no estimate
    assert "smartSearch 48,210 waiting: local about 27 h, desk about 3.3 h" in advice.reasons
    assert "faceDetection 48,210 waiting: local about 17 h, desk about 2.1 h" in advice.reasons
    assert advice.reasons[0] == ("96,420 ML jobs waiting (from 10,000 on this counts as a large import); "
                                 "the local ML would need about 27 h")
    assert "on desk" in advice.recommendation and "fallback" in advice.recommendation


def test_a_slow_local_ml_makes_a_smaller_backlog_a_large_import(minipc, desk):
    queues = {"smartSearch": 9000, "faceDetection": 0, "ocr": 0}  # under 10,000 jobs ...
    advice = decide(Inputs(server=minipc, hosts=[desk], queues=queues, enabled=ENABLED,
                           measured={"local": {"clip-image": 0.1}}))  # ... but 90,000 s = 25 h locally
    assert advice.row == "large-import" and advice.estimates["smartSearch"]["local_s"] == 90000.0


def test_gpu_host_names_the_gpu_and_what_to_install_first(minipc, desk, gpu_box):
    advice = decide(Inputs(server=minipc, hosts=[desk, gpu_box], queues=QUIET, enabled=ENABLED))
    assert advice.row == "gpu-host"
    assert "gpu-box has a GPU (NVIDIA H100 80GB HBM3) but no usable backend yet" in advice.recommendation
    problem = next(r for r in advice.reasons if r.startswith("gpu-box: NVIDIA H100 80GB HBM3; not usable yet"))
    assert "nvidia-container-toolkit" in problem


def test_gpu_host_with_a_usable_backend_is_recommended_for_deploy(minipc):
    ready = Machine("gpu-box", gpus=["NVIDIA GeForce RTX 3060"], backend="cuda", addresses={"address": "10.0.0.8"})
    advice = decide(Inputs(server=minipc, hosts=[ready], queues=QUIET, enabled=ENABLED))
    assert advice.row == "gpu-host"
    assert advice.recommendation.startswith("Run Immich's ML on gpu-box (backend cuda)")
    assert "immich-remote deploy gpu-box" in advice.recommendation


def test_public_host_is_refused_before_anything_else(minipc, gpu_box):
    vps = probed("vps", "public-vps", address="95.216.10.45", **{"URL host": "95.216.10.45"})
    advice = decide(Inputs(server=minipc, hosts=[gpu_box, vps], queues={"smartSearch": 50000}, enabled=ENABLED))
    assert advice.row == "public-or-shared"
    assert advice.recommendation.startswith("Do not send Immich's ML to vps.")
    assert "preview of every photo" in advice.recommendation and "firewalled" in advice.recommendation
    reason = next(r for r in advice.reasons if r.startswith("vps: "))
    assert "address 95.216.10.45 is a public address" in reason and "0.0.0.0:3003" in reason
    assert not any(r.startswith("gpu-box: ") for r in advice.reasons)


def test_unknown_server_and_unreadable_inputs_are_said_not_guessed():
    notes = ["the Immich server's host was not probed: set immich.ssh_host in the inventory"]
    down = Machine("desk", error="cannot connect")
    advice = decide(Inputs(server=None, hosts=[down], queues={}, enabled=[], notes=notes))
    assert advice.row == "keep-local"
    assert "the server's RAM is unknown" in advice.reasons[0]
    assert notes[0] in advice.reasons and "desk: probe failed (cannot connect)" in advice.reasons
    assert advice.to_data() == {"row": "keep-local", "recommendation": advice.recommendation,
                                "reasons": advice.reasons, "estimates": {}}
    assert advice.row in ROWS


def test_estimates_and_rough_durations():
    assert estimates({"smartSearch": 3600, "facialRecognition": 99}, {"local": {"clip-image": 2.0}}, ["a"]) == {
        "smartSearch": {"backlog": 3600, "local_s": 1800.0, "a": None}}  # facialRecognition calls no /predict
    assert [about(s) for s in (None, 40, 720, 5760, 96420)] == [
        "not measured", "about 40 s", "about 12 min", "about 1.6 h", "about 27 h"]


def test_every_reachable_host_is_described_with_its_numbers(minipc, desk):
    advice = decide(Inputs(server=minipc, hosts=[desk], queues=QUIET, enabled=ENABLED))
    assert "host desk: 31.2 GiB RAM (28.2 GiB available), 16 CPUs, backend cpu, address 192.168.1.30 (private)" \
        in advice.reasons
    assert not any("not measured" in r for r in advice.reasons)  # without --measure: no empty estimate lines
