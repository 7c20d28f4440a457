"""Crossing Immich 3.0: removed ML variables and the x86-64-v2 floor, per host, before touching it.

Hosts come from the inventory loader; facts from the real probe captured on a real machine
(tests/fixtures/host-probes), or from that capture with CPU flags or the machine word taken out.
"""

import textwrap
from pathlib import Path

import pytest

from immich_remote.compat import (
    CPU_CHECK,
    ENV_CHECK,
    V3_ENV_CHANGES,
    crosses_v3,
    major_upgrade_blockers,
    running_version,
)
from immich_remote.deployment import RemoteState
from immich_remote.facts import HostFacts
from immich_remote.inventory import load_inventory
from immich_remote.preflight import FAIL, WARN, host_checks
from immich_remote.versions import ImmichVersion

H100 = Path(__file__).resolve().parents[1] / "fixtures" / "host-probes" / "nvidia-h100-ubuntu2404-no-container-toolkit"
SECTIONS = {"uname": "uname.txt", "os-release": "os-release.txt", "lscpu": "lscpu.txt", "nproc": "nproc.txt",
            "free": "free.txt", "which": "which.txt", "nvidia-smi-L": "nvidia-smi-L.txt",
            "nvidia-query": "nvidia-smi-query-noheader.csv", "dev": "dev.txt"}

V2_7_5, V2_7_2, V3_0_1, V3_2_2 = (ImmichVersion.parse(v) for v in ("2.7.5", "2.7.2", "3.0.1", "3.2.2"))


def captured(*, drop_flags: tuple[str, ...] = (), machine: str | None = None) -> HostFacts:
    """The H100 capture, byte for byte unless flags are dropped from lscpu's Flags line or uname's machine is
    replaced (to stand for an older CPU, or an arm64 host, without inventing a whole probe)."""
    sections = {name: (H100 / file).read_text() for name, file in SECTIONS.items()}
    if drop_flags:
        lines = []
        for line in sections["lscpu"].splitlines(keepends=True):
            if line.startswith("Flags:"):
                key, value = line.split(":", 1)
                line = key + ":  " + " ".join(f for f in value.split() if f not in drop_flags) + "\n"
            lines.append(line)
        sections["lscpu"] = "".join(lines)
    if machine:
        sections["uname"] = sections["uname"].replace("x86_64", machine)
    return HostFacts.from_sections(sections)


@pytest.fixture(scope="module")
def h100() -> HostFacts:
    return captured()


@pytest.fixture(scope="module")
def old_cpu() -> HostFacts:
    return captured(drop_flags=("sse4_2", "popcnt"))


def host(tmp_path, env: str = "{}", defaults_env: str = "{}"):
    path = tmp_path / "hosts.yml"
    path.write_text(textwrap.dedent(f"""
        immich: {{url: "http://immich:2283"}}
        defaults: {{accel: cpu, env: {defaults_env}}}
        hosts:
          gpu: {{address: 10.0.0.5, env: {env}}}
    """))
    return load_inventory(path).host("gpu")


def test_removed_clip_preload_fails_and_names_both_new_variables(tmp_path, h100):
    gpu = host(tmp_path, "{MACHINE_LEARNING_PRELOAD__CLIP: ViT-B-32__openai, MACHINE_LEARNING_MODEL_TTL: 600}")
    (check,) = major_upgrade_blockers(gpu, h100, V2_7_5, V3_2_2)
    assert (check.name, check.status) == (ENV_CHECK, FAIL)
    assert "MACHINE_LEARNING_PRELOAD__CLIP=ViT-B-32__openai was removed in Immich 3.0" in check.detail
    assert "v2.7.5 still reads it" in check.detail and "on v3.2.2 the ML container stops at start-up" in check.detail
    # 2.x copied the one value into both new names, so the fix is exactly that.
    assert ("replace MACHINE_LEARNING_PRELOAD__CLIP with MACHINE_LEARNING_PRELOAD__CLIP__TEXTUAL=ViT-B-32__openai "
            "and MACHINE_LEARNING_PRELOAD__CLIP__VISUAL=ViT-B-32__openai") in check.fix
    assert "work on Immich 2.x too" in check.fix and "immich.app/blog/v3-migration" in check.fix


def test_renamed_face_preload_fails_with_detection_and_recognition(tmp_path, h100):
    gpu = host(tmp_path, "{MACHINE_LEARNING_PRELOAD__FACIAL_RECOGNITION: buffalo_l}")
    (check,) = major_upgrade_blockers(gpu, h100, V2_7_5, V3_2_2)
    assert check.status == FAIL and "MACHINE_LEARNING_PRELOAD__FACIAL_RECOGNITION=buffalo_l" in check.detail
    assert "MACHINE_LEARNING_PRELOAD__FACIAL_RECOGNITION__DETECTION=buffalo_l" in check.fix
    assert "MACHINE_LEARNING_PRELOAD__FACIAL_RECOGNITION__RECOGNITION=buffalo_l" in check.fix


def test_server_only_ping_timeout_warns_and_points_to_the_admin_setting(tmp_path, h100):
    gpu = host(tmp_path, "{IMMICH_MACHINE_LEARNING_PING_TIMEOUT: 5000}")
    (check,) = major_upgrade_blockers(gpu, h100, V2_7_5, V3_2_2)
    assert check.status == WARN and "does nothing on this ML host" in check.detail
    assert "remove IMMICH_MACHINE_LEARNING_PING_TIMEOUT" in check.fix
    assert "machineLearning.availabilityChecks.timeout" in check.fix


def test_clean_env_gives_nothing(tmp_path, h100):
    gpu = host(tmp_path, "{MACHINE_LEARNING_PRELOAD__CLIP__TEXTUAL: ViT-B-32__openai, MACHINE_LEARNING_MODEL_TTL: 0, "
                         "MACHINE_LEARNING_PRELOAD__FACIAL_RECOGNITION__DETECTION: buffalo_l}")
    assert major_upgrade_blockers(gpu, h100, V2_7_5, V3_2_2) == []


@pytest.mark.parametrize(("running", "target"), [(V2_7_2, V2_7_5), (V2_7_5, V2_7_2), (V3_0_1, V3_2_2),
                                                 (V3_2_2, V2_7_5)])
def test_no_crossing_no_checks_even_with_old_names_and_an_old_cpu(tmp_path, old_cpu, running, target):
    gpu = host(tmp_path, "{MACHINE_LEARNING_PRELOAD__CLIP: ViT-B-32__openai, IMMICH_MACHINE_LEARNING_PING_TIMEOUT: 1}")
    assert not crosses_v3(running, target)
    assert major_upgrade_blockers(gpu, old_cpu, running, target) == []


def test_first_deploy_of_3x_counts_as_crossing(tmp_path, h100):
    gpu = host(tmp_path, "{MACHINE_LEARNING_PRELOAD__CLIP: ViT-B-32__openai}")
    (check,) = major_upgrade_blockers(gpu, h100, None, V3_0_1)
    assert check.status == FAIL and "2.x still read it" in check.detail


def test_defaults_env_and_any_case_are_caught(tmp_path, h100):
    # The ML settings are case-insensitive, and `defaults:` env reaches every host.
    gpu = host(tmp_path, "{machine_learning_preload__clip: ViT-B-16__openai}",
               defaults_env="{MACHINE_LEARNING_PRELOAD__FACIAL_RECOGNITION: buffalo_s}")
    checks = major_upgrade_blockers(gpu, h100, V2_7_5, V3_2_2)
    assert [c.status for c in checks] == [FAIL, FAIL]
    assert "machine_learning_preload__clip=ViT-B-16__openai" in checks[0].detail
    assert "MACHINE_LEARNING_PRELOAD__FACIAL_RECOGNITION=buffalo_s" in checks[1].detail


def test_old_name_next_to_new_names_says_remove(tmp_path, h100):
    gpu = host(tmp_path, "{MACHINE_LEARNING_PRELOAD__CLIP: a, MACHINE_LEARNING_PRELOAD__CLIP__TEXTUAL: b, "
                         "MACHINE_LEARNING_PRELOAD__CLIP__VISUAL: c}")
    (check,) = major_upgrade_blockers(gpu, h100, V2_7_5, V3_2_2)
    assert check.status == FAIL and check.fix.startswith("remove MACHINE_LEARNING_PRELOAD__CLIP from this host's env")
    partial = host(tmp_path, "{MACHINE_LEARNING_PRELOAD__CLIP: a, MACHINE_LEARNING_PRELOAD__CLIP__TEXTUAL: b}")
    (check,) = major_upgrade_blockers(partial, h100, V2_7_5, V3_2_2)
    assert "with MACHINE_LEARNING_PRELOAD__CLIP__VISUAL=a" in check.fix and "__TEXTUAL already set" in check.fix


def test_cpu_without_x86_64_v2_fails_naming_the_missing_flags(tmp_path, h100, old_cpu):
    gpu = host(tmp_path)
    assert h100.x86_64_v2 is True and old_cpu.x86_64_v2 is False
    assert major_upgrade_blockers(gpu, h100, V2_7_5, V3_2_2) == []
    (check,) = major_upgrade_blockers(gpu, old_cpu, V2_7_5, V3_2_2)
    assert (check.name, check.status) == (CPU_CHECK, FAIL)
    assert "lacks popcnt, sse4_2" in check.detail and "exit with code 132" in check.detail
    assert "stay on Immich 2.x" in check.fix
    assert major_upgrade_blockers(gpu, old_cpu, V2_7_5, V3_2_2, check_cpu=False) == []
    assert major_upgrade_blockers(gpu, None, V2_7_5, V3_2_2) == []  # not probed: nothing to say


@pytest.mark.parametrize("facts", [
    captured(),
    captured(drop_flags=("sse4_2", "popcnt")),
    captured(drop_flags=("cx16",)),
    captured(drop_flags=("sse4_2",), machine="aarch64"),  # arm64: the x86 floor does not apply
    HostFacts.from_sections({"uname": (H100 / "uname.txt").read_text()}),  # amd64, flags unknown
], ids=["v2", "no-sse42-popcnt", "no-cx16", "arm64", "flags-unknown"])
@pytest.mark.parametrize("running", [None, V2_7_5])
def test_cpu_verdict_agrees_with_preflight_arch_check(tmp_path, facts, running):
    gpu = host(tmp_path)
    arch = next(c for c in host_checks(gpu, facts, RemoteState(), V3_2_2).checks if c.name == "arch")
    ours = [c for c in major_upgrade_blockers(gpu, facts, running, V3_2_2) if c.name == CPU_CHECK]
    assert (arch.status == FAIL) == bool(ours)
    assert all(c.status == FAIL for c in ours)


def test_running_version_from_what_the_container_reports():
    assert running_version("v2.7.5") == V2_7_5
    assert running_version("main") is None and running_version(None) is None and running_version("") is None


def test_the_table_is_cited_and_consistent():
    names = [c.name for c in V3_ENV_CHANGES]
    assert len(names) == len(set(names))
    for change in V3_ENV_CHANGES:
        assert change.source and change.status in (FAIL, WARN)
        # a refusal always says what to set instead; a warning always says where the setting went
        assert change.replaces_with if change.status == FAIL else change.instead
