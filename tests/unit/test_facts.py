"""Parsers against real probe output captured on a real GPU host (tests/fixtures/host-probes, unmodified)."""

import os
import platform
import subprocess
from pathlib import Path

import pytest

from immich_remote.errors import UnsupportedBackend
from immich_remote.facts import (
    HostFacts,
    parse_listeners,
    parse_nvidia_smi_list,
    parse_which,
    probe_script,
    probe_scripts,
    split_sections,
)
from immich_remote.hwaccel import choose

H100 = Path(__file__).resolve().parents[1] / "fixtures" / "host-probes" / "nvidia-h100-ubuntu2404-no-container-toolkit"

# fixture file -> probe section carrying the same command's output
SECTIONS = {"uname": "uname.txt", "os-release": "os-release.txt", "lscpu": "lscpu.txt", "nproc": "nproc.txt",
            "free": "free.txt", "which": "which.txt", "nvidia-smi-L": "nvidia-smi-L.txt",
            "nvidia-query": "nvidia-smi-query-noheader.csv", "dev": "dev.txt"}


@pytest.fixture(scope="module")
def h100() -> HostFacts:
    return HostFacts.from_sections({name: (H100 / file).read_text() for name, file in SECTIONS.items()})


def test_fixture_parses_as_the_real_machine(h100):
    assert h100.machine == "x86_64" and h100.arch == "amd64"
    assert h100.os == "Ubuntu 24.04.3 LTS"
    assert h100.cpus == 16
    assert h100.mem_total == 135148564480
    assert h100.nvidia_gpus == ["NVIDIA H100 80GB HBM3"]
    assert h100.nvidia_driver == "580.159.04" and h100.nvidia_driver_major == 580
    assert h100.nvidia_compute_caps == [(9, 0)]
    assert {"/dev/nvidia0", "/dev/nvidiactl", "/dev/nvidia-uvm"} <= h100.devices
    assert not h100.render_nodes and not h100.has_device("/dev/kfd")
    assert h100.x86_64_v2 is True


def test_fixture_which_lists_nothing_installed(h100):
    assert parse_which((H100 / "which.txt").read_text()) == {}
    assert not h100.docker_installed and not h100.nvidia_container_toolkit


def test_gpu_is_seen_but_cuda_is_refused_naming_what_to_install(h100):
    with pytest.raises(UnsupportedBackend) as err:
        choose("cuda", h100, host="h100")
    text = str(err.value)
    assert "NVIDIA H100 80GB HBM3" in text and "driver 580.159.04" in text
    assert "Docker and the NVIDIA Container Toolkit are not installed" in text
    assert "nvidia-container-toolkit" in text and "nvidia-ctk runtime configure" in text


def test_auto_falls_back_to_cpu_and_says_why_cuda_was_passed_over(h100):
    choice = choose("auto", h100, host="h100")
    assert choice.backend == "cpu"
    cuda = next(s for s in choice.assessed if s.backend == "cuda")
    assert not cuda.usable and "Container Toolkit" in cuda.reason


def test_nvidia_smi_error_text_yields_no_gpu():
    assert parse_nvidia_smi_list("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.\n") == []
    assert parse_nvidia_smi_list((H100 / "nvidia-smi-L.txt").read_text()) == ["NVIDIA H100 80GB HBM3"]


def test_toolkit_detected_from_docker_runtimes():
    f = HostFacts.from_sections({"uname": "Linux h 6.1.0 #1 SMP x86_64 GNU/Linux",
                                 "which": "docker: /usr/bin/docker\n",
                                 "docker-runtimes": '{"io.containerd.runc.v2":{},"nvidia":{"path":"nvidia-container-runtime"},"runc":{}}',
                                 "nvidia-smi-L": "GPU 0: NVIDIA GeForce RTX 4090 (UUID: GPU-1)\n",
                                 "nvidia-query": "0, NVIDIA GeForce RTX 4090, 550.54.14, 24564, 8.9\n"})
    assert f.nvidia_container_toolkit
    assert choose("auto", f, host="h").backend == "cuda"


def test_probe_script_run_by_a_real_sh_reads_this_machine(tmp_path):
    # The round trip for real: the probe runs in /bin/sh here (no SSH, nothing mocked) and its output
    # parses into facts that match what Python sees of the same machine.
    script = probe_script(remote_dir=str(tmp_path / "ml"))
    out = subprocess.run(["/bin/sh", "-c", script], capture_output=True, text=True, timeout=60).stdout
    sections = split_sections(out)
    names = [line.split("@@ir:")[1].split("@@")[0] for line in script.splitlines() if "@@ir:" in line]
    assert {"uname", "which", "nvidia-smi-L", "docker-version", "compose-version", "listeners"} <= set(names)
    assert {"uname", "docker-version", "compose-version", "listeners"} <= set(sections)
    facts = HostFacts.from_sections(sections)
    assert facts.machine == platform.machine()
    assert facts.arch == {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine())
    assert facts.cpus == os.cpu_count()
    with open("/proc/meminfo") as meminfo:
        total_kib = int(meminfo.readline().split()[1])
    assert facts.mem_total == total_kib * 1024


def test_the_probe_halves_run_at_once_read_the_same_facts_as_the_whole_probe(tmp_path):
    # deploy runs the two halves on two channels at the same time; init runs the whole script. Both
    # must tell the user the same about this machine (run by a real /bin/sh here, nothing mocked).
    def run(script: str) -> str:
        return subprocess.run(["/bin/sh", "-c", script], capture_output=True, text=True, timeout=60).stdout

    halves = probe_scripts(remote_dir=str(tmp_path / "ml"))
    together = split_sections("\n".join(run(script) for script in halves))
    whole = split_sections(run(probe_script(remote_dir=str(tmp_path / "ml"))))
    assert set(together) == set(whole) >= {"uname", "docker-version", "docker-runtimes", "compose-version", "df"}
    a, b = HostFacts.from_sections(together), HostFacts.from_sections(whole)
    assert (a.arch, a.cpus, a.docker_server_version, a.docker_runtimes, a.compose_version) == \
        (b.arch, b.cpus, b.docker_server_version, b.docker_runtimes, b.compose_version)
    assert a.disk_free_gib is not None and abs(a.disk_free_gib - (b.disk_free_gib or 0)) < 1


def test_probe_sections_parse_a_host_without_docker_access():
    output = "@@ir:uname@@\nLinux h 6.1 #1 SMP aarch64 GNU/Linux\n@@ir:docker-version@@\npermission denied while " \
             "trying to connect to the Docker daemon socket\n@@ir:compose-version@@\n2.40.3\n"
    f = HostFacts.from_sections(split_sections(output))
    assert f.arch == "arm64" and f.docker_server_version is None and "permission denied" in f.docker_error
    assert f.compose_version == "2.40.3"
    assert split_sections("junk before\n@@ir:a@@\nx\n") == {"a": "x\n"}


def test_listeners_from_ss_and_netstat():
    ss = "LISTEN 0      4096   172.29.0.11:3003      0.0.0.0:*\nLISTEN 0 128 [::]:22 [::]:*\n"
    netstat = "Active Internet connections\nProto Recv-Q\ntcp        0      0 0.0.0.0:3003            0.0.0.0:*  LISTEN\n"
    assert parse_listeners(ss) == [("172.29.0.11", 3003), ("::", 22)]
    assert parse_listeners(netstat) == [("0.0.0.0", 3003)]
