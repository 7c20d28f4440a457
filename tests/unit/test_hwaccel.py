import pytest

from immich_remote.errors import UnsupportedBackend
from immich_remote.facts import HostFacts
from immich_remote.hwaccel import BACKENDS, check_platform, choose, image_ref

EXPECTED_SUFFIX = {"cpu": "", "cuda": "-cuda", "rocm": "-rocm", "openvino": "-openvino",
                   "openvino-wsl": "-openvino", "armnn": "-armnn", "rknn": "-rknn"}


@pytest.mark.parametrize("name", sorted(EXPECTED_SUFFIX))
def test_image_tag_for_every_backend(name):
    assert image_ref("v2.7.5", name) == f"ghcr.io/immich-app/immich-machine-learning:v2.7.5{EXPECTED_SUFFIX[name]}"


def test_registry_and_repository_overrides():
    assert image_ref("v3.2.2", "cuda", registry="registry.lan:5000") == \
        "registry.lan:5000/immich-app/immich-machine-learning:v3.2.2-cuda"
    assert image_ref("v3.2.2", "cpu", repository="docker.io/altran1502/immich-machine-learning") == \
        "docker.io/altran1502/immich-machine-learning:v3.2.2"


@pytest.mark.parametrize("name,arch,ok", [
    ("cpu", "amd64", True), ("cpu", "arm64", True),
    ("cuda", "amd64", True), ("cuda", "arm64", False),
    ("rocm", "arm64", False), ("openvino", "arm64", False), ("openvino-wsl", "arm64", False),
    ("armnn", "arm64", True), ("armnn", "amd64", False), ("rknn", "amd64", False), ("rknn", "arm64", True),
])
def test_backend_architecture_pairs(name, arch, ok):
    if ok:
        check_platform(name, arch, host="h")
    else:
        with pytest.raises(UnsupportedBackend, match=f"no image for {arch}"):
            check_platform(name, arch, host="h")


def test_every_backend_has_a_platform():
    assert all(b.platforms for b in BACKENDS.values())


def facts(**kw) -> HostFacts:
    base = dict(machine="x86_64", cpus=8, commands={"docker": "/usr/bin/docker"}, docker_server_version="27.0.1",
                compose_version="2.40.3")
    base.update(kw)
    return HostFacts(**base)


def test_auto_on_a_plain_host_is_cpu():
    choice = choose("auto", facts(), host="h")
    assert choice.backend == "cpu" and "amd64 CPU" in choice.reason


def test_auto_picks_cuda_when_gpu_and_toolkit_are_there():
    f = facts(nvidia_gpus=["NVIDIA GeForce RTX 3060"], nvidia_driver="550.54.14", nvidia_compute_caps=[(8, 6)],
              commands={"docker": "/usr/bin/docker", "nvidia-container-runtime": "/usr/bin/nvidia-container-runtime"})
    assert choose("auto", f, host="h").backend == "cuda"


def test_cuda_refused_for_old_driver_and_old_gpu():
    old_driver = facts(nvidia_gpus=["GTX 1080"], nvidia_driver="535.1", docker_runtimes={"nvidia"})
    with pytest.raises(UnsupportedBackend, match="older than 545"):
        choose("cuda", old_driver, host="h")
    old_gpu = facts(nvidia_gpus=["GTX 680"], nvidia_driver="550.1", nvidia_compute_caps=[(3, 0)],
                    docker_runtimes={"nvidia"})
    with pytest.raises(UnsupportedBackend, match="compute capability 3.0"):
        choose("cuda", old_gpu, host="h")


def test_openvino_needs_an_intel_render_node():
    assert choose("auto", facts(render_nodes={"renderD128": "0x8086"}), host="h").backend == "openvino"
    with pytest.raises(UnsupportedBackend, match="no Intel GPU render node"):
        choose("openvino", facts(render_nodes={"renderD128": "0x1002"}), host="h")


def test_rocm_needs_kfd_and_disk():
    amd = facts(devices={"/dev/kfd"}, render_nodes={"renderD128": "0x1002"}, disk_free_gib=100.0)
    assert choose("auto", amd, host="h").backend == "rocm"
    with pytest.raises(UnsupportedBackend, match="35 GiB"):
        choose("rocm", facts(devices={"/dev/kfd"}, render_nodes={"renderD128": "0x1002"}, disk_free_gib=20.0),
               host="h")


def test_arm_backends():
    mali = facts(machine="aarch64", devices={"/dev/mali0"}, files={"/usr/lib/libmali.so"})
    assert choose("auto", mali, host="h").backend == "armnn"
    with pytest.raises(UnsupportedBackend, match="libmali.so is missing"):
        choose("armnn", facts(machine="aarch64", devices={"/dev/mali0"}), host="h")
    rk = facts(machine="aarch64", device_tree_compatible="radxa,rock-5b rockchip,rk3588", rknpu_version=(0, 9, 8))
    assert choose("auto", rk, host="h").backend == "rknn"
    with pytest.raises(UnsupportedBackend, match="older than 0.9.8"):
        choose("rknn", facts(machine="aarch64", device_tree_compatible="rockchip,rk3588", rknpu_version=(0, 9, 6)),
               host="h")


def test_wsl():
    assert choose("auto", facts(devices={"/dev/dxg"}), host="h").backend == "openvino-wsl"


def test_unknown_architecture_has_no_backend():
    with pytest.raises(UnsupportedBackend, match="unknown CPU architecture"):
        choose("auto", facts(machine="riscv64"), host="h")
