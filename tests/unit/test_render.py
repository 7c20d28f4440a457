"""Rendering: deterministic bytes, the right image, port, cache and overlay for every backend."""

import dataclasses

import pytest
import yaml

from immich_remote.errors import UnsupportedBackend
from immich_remote.hwaccel import BACKENDS
from immich_remote.inventory import Host
from immich_remote.render import compose_duration, render_host
from immich_remote.versions import ImmichVersion

V = ImmichVersion(2, 7, 5)


def make_host(**kw) -> Host:
    base = dict(name="gpu", address="192.168.1.50", ssh_user="deploy", ssh_port=None, ssh_key=None, accel="auto",
                arch=None, bind_address="192.168.1.50", ml_port=3003, url="http://192.168.1.50:3003",
                remote_dir="~/immich-remote-ml", model_cache="model-cache", env={}, registry=None,
                image_repository=None, priority=100, health_timeout=180.0, health_interval=10.0)
    base.update(kw)
    return Host(**base)


def service(rendering) -> dict:
    return yaml.safe_load(rendering.file("docker-compose.yml").content)["services"]["immich-machine-learning"]


def test_same_inputs_same_bytes_and_hash():
    a = render_host(make_host(env={"B": "2", "A": "1"}), V, "cuda")
    b = render_host(make_host(env={"A": "1", "B": "2"}), V, "cuda")
    assert [f.content for f in a.files] == [f.content for f in b.files]
    assert a.digest == b.digest


def test_any_input_change_changes_the_hash():
    base = render_host(make_host(), V, "cpu").digest
    assert render_host(make_host(), ImmichVersion(2, 7, 4), "cpu").digest != base
    assert render_host(make_host(ml_port=3013), V, "cpu").digest != base
    assert render_host(make_host(env={"MACHINE_LEARNING_MODEL_TTL": "600"}), V, "cpu").digest != base
    assert render_host(make_host(), V, "openvino").digest != base


def test_compose_service_shape():
    svc = service(render_host(make_host(env={"MACHINE_LEARNING_MODEL_TTL": "600"}), V, "cpu"))
    assert svc["image"] == "ghcr.io/immich-app/immich-machine-learning:v2.7.5"
    assert svc["ports"] == [{"target": 3003, "published": "3003", "host_ip": "192.168.1.50", "protocol": "tcp"}]
    assert svc["volumes"] == [{"type": "volume", "source": "model-cache", "target": "/cache"}]
    assert svc["restart"] == "always"
    assert svc["environment"] == {"MACHINE_LEARNING_MODEL_TTL": "600"}
    assert svc["labels"]["immich-remote.managed"] == "true"
    assert svc["labels"]["immich-remote.immich-version"] == "v2.7.5"
    assert "extends" not in svc and "IMMICH_PORT" not in str(svc)


def test_cpu_has_no_overlay_and_accelerators_have_exactly_their_service():
    assert [f.name for f in render_host(make_host(), V, "cpu").files] == ["docker-compose.yml"]
    for name in BACKENDS:
        if name == "cpu":
            continue
        r = render_host(make_host(), V, name)
        overlay = yaml.safe_load(r.file("hwaccel.ml.yml").content)
        assert list(overlay["services"]) == [name]
        assert service(r)["extends"] == {"file": "hwaccel.ml.yml", "service": name}
        assert r.image.endswith(f"v2.7.5{BACKENDS[name].suffix}")


def test_cuda_overlay_matches_upstream_and_pins_device_ids():
    r = render_host(make_host(), V, "cuda")
    devices = yaml.safe_load(r.file("hwaccel.ml.yml").content)["services"]["cuda"]["deploy"]["resources"][
        "reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]
    r2 = render_host(make_host(env={"MACHINE_LEARNING_DEVICE_IDS": "0,1"}), V, "cuda")
    devices2 = yaml.safe_load(r2.file("hwaccel.ml.yml").content)["services"]["cuda"]["deploy"]["resources"][
        "reservations"]["devices"]
    assert devices2 == [{"driver": "nvidia", "device_ids": ["0", "1"], "capabilities": ["gpu"]}]


def test_host_path_cache_and_ipv6_bind():
    svc = service(render_host(make_host(model_cache="/srv/ml cache", bind_address="fd00::5"), V, "cpu"))
    assert svc["volumes"] == [{"type": "bind", "source": "/srv/ml cache", "target": "/cache"}]
    assert svc["ports"][0]["host_ip"] == "fd00::5"
    doc = yaml.safe_load(render_host(make_host(model_cache="/srv/x"), V, "cpu").file("docker-compose.yml").content)
    assert "volumes" not in doc


def test_armnn_without_firmware_file():
    with_fw = render_host(make_host(arch="arm64"), V, "armnn")
    without = render_host(make_host(arch="arm64"), V, "armnn", armnn_firmware=False)
    assert b"mali_csffw.bin" in with_fw.file("hwaccel.ml.yml").content
    assert b"mali_csffw.bin" not in without.file("hwaccel.ml.yml").content


def test_architecture_refusal():
    with pytest.raises(UnsupportedBackend, match="no image for arm64"):
        render_host(make_host(), V, "cuda", arch="arm64")
    with pytest.raises(UnsupportedBackend, match="no image for amd64"):
        render_host(dataclasses.replace(make_host(), arch="amd64"), V, "rknn")


@pytest.mark.parametrize("seconds,text", [(10, "10s"), (2, "2s"), (0.5, "500ms"), (60, "1m"), (90, "1m30s")])
def test_compose_duration(seconds, text):
    assert compose_duration(seconds) == text
