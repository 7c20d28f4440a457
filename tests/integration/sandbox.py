"""A sandbox for end-to-end tests: test-bed hosts + the Immich fake + an inventory + the CLI.

`Sandbox.cli(...)` runs immich-remote exactly as a user would (the click entry point, in-process),
with the inventory and a private state directory; `inner(host, ...)` asks a host's own Docker engine.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from immich_remote.cli import cli
from tests.testbed.bed import Host, TestBed
from tests.testbed.immich_fake import DEFAULT_API_KEY, FakeImmichServer
from tests.testbed.immich_fake_config import default_config

IMAGE = "registry.tb/immich-app/immich-machine-learning"


def distinctive_config(version: str, local_ml_url: str) -> dict[str, Any]:
    """Immich's default config with a recognisable, non-default value in many sections (secrets too),
    so a test can prove that everything outside machineLearning.urls is written back as read."""
    config = copy.deepcopy(default_config(version, ml_url=local_ml_url))
    config["ffmpeg"]["crf"] = 29
    config["ffmpeg"]["preset"] = "slow"
    config["oauth"]["enabled"] = True
    config["oauth"]["clientId"] = "immich-photos"
    config["oauth"]["clientSecret"] = "oauth-s3cret-ü-\"quoted\""
    config["oauth"]["issuerUrl"] = "https://auth.example.org/.well-known/openid-configuration"
    config["notifications"]["smtp"]["transport"]["password"] = "smtp-p@ss w0rd"
    config["notifications"]["smtp"]["enabled"] = True
    config["notifications"]["smtp"]["from"] = "Immich <photos@example.org>"
    config["notifications"]["smtp"]["transport"]["host"] = "smtp.example.org"
    config["machineLearning"]["clip"]["modelName"] = "ViT-B-16-SigLIP__webli"
    config["machineLearning"]["facialRecognition"]["minFaces"] = 5
    config["machineLearning"]["duplicateDetection"]["maxDistance"] = 0.015
    # Fast availability checks, set through the config as a user would, so routing reacts in a test.
    config["machineLearning"]["availabilityChecks"]["interval"] = 300
    config["machineLearning"]["availabilityChecks"]["timeout"] = 1000
    config["storageTemplate"]["template"] = "{{y}}/{{MM}}/{{filename}}"
    config["trash"]["days"] = 45
    config["server"]["externalDomain"] = "https://photos.example.org"
    return config


@dataclass
class Sandbox:
    bed: TestBed
    hosts: list[Host]
    fake: FakeImmichServer
    workdir: Path
    defaults: dict[str, Any] = field(default_factory=dict)
    host_settings: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def inventory(self) -> Path:
        return self.workdir / "inventory.yml"

    @property
    def state_dir(self) -> Path:
        return self.workdir / "state"

    def write_inventory(self, hosts: Sequence[Host] | None = None, **defaults: Any) -> Path:
        """(Re)write the inventory; `host_settings[name]` adds per-host keys.

        Health settings are the defaults a user gets (no test-only tuning): a test that needs a
        shorter timeout passes it here and says why."""
        self.defaults.update(defaults)
        key_file = self.workdir / "api-key"
        if not key_file.exists():
            key_file.write_text(DEFAULT_API_KEY + "\n")
            key_file.chmod(0o600)
        path = self.bed.write_inventory(self.inventory, self.fake.url, key_file,
                                        hosts=list(hosts) if hosts is not None else self.hosts,
                                        **self.defaults)
        data = yaml.safe_load(path.read_text())
        for name, extra in self.host_settings.items():
            if name in data["hosts"]:
                data["hosts"][name].update(extra)
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    def cli(self, *args: str, expect: int | None = 0) -> Result:
        env = {"IMMICH_REMOTE_STATE_DIR": str(self.state_dir), "NO_COLOR": "1", "COLUMNS": "200"}
        result = CliRunner().invoke(cli, ["-i", str(self.inventory), *args], env=env, catch_exceptions=False)
        if expect is not None:
            assert result.exit_code == expect, f"exit {result.exit_code}, expected {expect}:\n{result.output}"
        return result

    def cli_json(self, *args: str, expect: int | None = 0) -> dict[str, Any]:
        result = self.cli("--json", *args, expect=expect)
        return json.loads(result.stdout)

    def urls(self) -> list[str]:
        return list(self.fake.config["machineLearning"]["urls"])

    def host_named(self, name: str) -> Host:
        return next(h for h in self.hosts if h.name == name)


def inner(host: Host, *cmd: str, check: bool = True) -> str:
    """Run a docker command against the host's own engine (as root inside the host)."""
    return host.exec(["docker", *cmd], check=check).stdout


def ml_container(host: Host) -> dict[str, Any] | None:
    """`docker inspect` of the ML service container on the host, or None."""
    ids = inner(host, "ps", "-aq", "--filter", "label=com.docker.compose.service=immich-machine-learning").split()
    if not ids:
        return None
    return json.loads(inner(host, "inspect", ids[0]))[0]


def make_sandbox(testbed: TestBed, hosts: list[Host], fake_factory, tmp_path: Path, *,
                 version: str = "2.7.5", **fake_kwargs: Any) -> Sandbox:
    fake = fake_factory(version, config=distinctive_config(version, testbed.local_ml_url),
                        ml_url=testbed.local_ml_url, **fake_kwargs)
    box = Sandbox(testbed, hosts, fake, tmp_path)
    box.write_inventory()
    return box


@pytest.fixture
def sandbox(testbed: TestBed, fresh_hosts: list[Host], immich_fake_factory, tmp_path: Path) -> Sandbox:
    """Three wiped hosts, an Immich 2.7.5 fake with a distinctive config, an inventory for them."""
    return make_sandbox(testbed, fresh_hosts, immich_fake_factory, tmp_path)
