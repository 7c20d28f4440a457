"""What every benchmark shares: the hosts of one measurement (`Fleet`: the Immich fake, the inventory,
the rendered files, fresh hosts, OpenSSH to each), the Immich fakes (`Fakes`), timing a command, and the
bare parallel OpenSSH loop every tool is compared with (`bare_loop`)."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

from tests.testbed.immich_fake import DEFAULT_API_KEY, FakeImmichServer

IMAGE = "registry.tb/immich-app/immich-machine-learning"
CLI = str(Path(sys.executable).with_name("immich-remote"))
BARE_REMOTE = ("mkdir -p bare && cat > bare/docker-compose.yml && "
               "docker compose -f bare/docker-compose.yml up -d --wait --pull never >/dev/null 2>&1")


def summary(values: list[float]) -> dict[str, float] | None:
    """Median, min, max (and how many runs) of a measurement; None when nothing was measured."""
    if not values:
        return None
    return {"median": round(statistics.median(values), 2), "min": round(min(values), 2),
            "max": round(max(values), 2), "runs": len(values)}


def timed(cmd: list[str], **kwargs) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.monotonic()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900, **kwargs)
    return time.monotonic() - started, done


def must(tool: str, done: subprocess.CompletedProcess[str]) -> None:
    if done.returncode != 0:
        raise SystemExit(f"{tool} failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")


class Fakes:
    """Immich fakes on this machine, started per server version (the bed's local ML as the fallback)."""

    api_key = DEFAULT_API_KEY

    def __init__(self, bed) -> None:
        self.bed = bed

    def __call__(self, version: str, config=None) -> FakeImmichServer:
        return FakeImmichServer(version, ml_url=self.bed.local_ml_url,
                                **({"config": config} if config else {})).start()


class Fleet:
    """The hosts of one measurement, the Immich fake, the inventory, and the rendered files."""

    def __init__(self, bed, hosts, workdir: Path, fake_factory: Callable[..., FakeImmichServer]) -> None:
        self.bed, self.hosts, self.workdir, self.fake_factory = bed, hosts, workdir, fake_factory
        self.key_file = workdir / "api-key"
        self.key_file.write_text(fake_factory.api_key + "\n")  # type: ignore[attr-defined]
        self.key_file.chmod(0o600)
        self.env = {**os.environ, "IMMICH_REMOTE_STATE_DIR": str(workdir / "state"), "NO_COLOR": "1"}
        self.fake: FakeImmichServer | None = None
        self.changed_host: str | None = None

    def server(self, version: str) -> None:
        """An Immich fake of `version` (keeping the previous one's config), and the inventory for it."""
        config = self.fake.config if self.fake else None
        if self.fake:
            self.fake.stop()
        self.fake = self.fake_factory(version, config)
        self.inventory = self.bed.write_inventory(self.workdir / "inventory.yml", self.fake.url, self.key_file,
                                                  hosts=self.hosts)
        if self.changed_host:
            self.change_one(self.changed_host)

    def change_one(self, name: str) -> None:
        """One host's settings change (an environment variable): its compose file changes, no other."""
        data = yaml.safe_load(self.inventory.read_text())
        data["hosts"][name]["env"] = {"MACHINE_LEARNING_MODEL_TTL": "600"}
        self.inventory.write_text(yaml.safe_dump(data, sort_keys=False))
        self.changed_host = name

    def fresh(self, versions: list[str], image: str = IMAGE) -> None:
        """Wipe the hosts and put the stub images there (the image is already on the hosts)."""
        def prepare(host) -> None:
            host.wipe()
            for version in versions:
                host.exec(["docker", "pull", "-q", f"{image}:v{version}"], timeout=120)
        self.parallel(prepare)
        self.changed_host = None

    def cli(self, *args: str) -> tuple[float, dict]:
        """`immich-remote --json ARGS` on this fleet: (seconds, its JSON); a failure stops the benchmark."""
        seconds, done = timed([CLI, "-i", str(self.inventory), "--json", *args], env=self.env)
        must(f"immich-remote {' '.join(args)}", done)
        return seconds, json.loads(done.stdout)

    def render(self, version: str | None = None) -> Path:
        """The compose files immich-remote renders for every host (the bytes every tool deploys)."""
        out = self.workdir / f"rendered-{version or 'server'}-{self.changed_host or 'base'}"
        shutil.rmtree(out, ignore_errors=True)
        pinned = ["--server-version", version] if version else []
        subprocess.run([CLI, "-i", str(self.inventory), "render", *pinned, "--out", str(out)],
                       env=self.env, check=True, capture_output=True)
        return out

    def ssh(self, host) -> list[str]:
        return ["ssh", "-i", str(self.bed.client_key), "-o", "BatchMode=yes", "-o",
                f"UserKnownHostsFile={self.bed.known_hosts}", "-p", str(host.ssh_port), "deploy@127.0.0.1"]

    def parallel(self, one) -> list:
        with ThreadPoolExecutor(len(self.hosts)) as pool:
            return list(pool.map(one, self.hosts))

    def pipe_compose(self, rendered: Path, remote: Callable[[object], str]) -> tuple[float, list[int]]:
        """Every host at once, one OpenSSH session each: its rendered compose file on the stdin of
        `remote(host)`; (seconds, exit codes)."""
        def one(host) -> int:
            with open(rendered / host.name / "docker-compose.yml", "rb") as stdin:
                return subprocess.run([*self.ssh(host), remote(host)], stdin=stdin, capture_output=True).returncode
        started = time.monotonic()
        codes = self.parallel(one)
        return time.monotonic() - started, codes


def bare_loop(fleet: Fleet, version: str | None = None) -> float:
    """The bare parallel OpenSSH loop: upload each compose file on stdin, `up -d --wait`; its seconds."""
    seconds, codes = fleet.pipe_compose(fleet.render(version), lambda host: BARE_REMOTE)
    if any(codes):
        raise SystemExit(f"bare loop failed: {codes}")
    return seconds
