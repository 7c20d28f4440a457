"""End-to-end smoke test of the test bed itself.

Real sshd with strict host keys, a real Docker engine and Compose v2 in every host, the stub ML pulled from
the bed's TLS registry as `registry.tb/...` and `ghcr.io/...`, answered through 127.0.0.1, the stub's
control switches, and the faults (pause, stop, reboot, crash, partition, unplug) tests of immich-remote use.
"""

from __future__ import annotations

import io
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import paramiko
import pytest
import yaml

from tests.testbed.bed import LABEL, Host, TestBed
from tests.testbed.engine import run

pytestmark = pytest.mark.integration

IMAGE = "registry.tb/immich-app/immich-machine-learning"
PROJECT = "smoke"
CONTAINER = f"{PROJECT}-immich-machine-learning-1"
CLIP_VISUAL = {"clip": {"visual": {"modelName": "ViT-B-32__openai"}}}
FACES = {
    "facial-recognition": {
        "detection": {"modelName": "buffalo_l", "options": {"minScore": 0.7}},
        "recognition": {"modelName": "buffalo_l"},
    }
}


@pytest.fixture(autouse=True)
def remove_smoke_stacks(fresh_hosts: list[Host]):
    """Each test starts on wiped session hosts (an earlier test may leave its ML container publishing
    3003) and leaves no `smoke` compose project behind."""
    bed_hosts = fresh_hosts
    yield
    with ThreadPoolExecutor(len(bed_hosts)) as pool:
        list(
            pool.map(
                lambda host: host.exec(["docker", "compose", "-p", PROJECT, "down", "-v", "-t", "1"]),
                bed_hosts,
            )
        )


def compose_file(host: Host, version: str, env: dict[str, str]) -> str:
    service = {
        "image": f"{IMAGE}:{version}",
        "ports": [f"{host.bind_address}:3003:3003"],
        "volumes": ["model-cache:/cache"],
        "environment": env,
        "restart": "always",
    }
    return yaml.safe_dump(
        {"name": PROJECT, "services": {"immich-machine-learning": service}, "volumes": {"model-cache": {}}}
    )


def deploy(bed: TestBed, host: Host, version: str = "v2.7.5", env: dict[str, str] | None = None) -> None:
    """Upload a compose file and start it as `deploy` over SSH, the way immich-remote does."""
    with bed.ssh(host) as conn:
        conn.run(f"mkdir -p {PROJECT}", hide=True)
        conn.put(io.StringIO(compose_file(host, version, env or {})), f"{PROJECT}/docker-compose.yml")
        conn.run(
            f"cd {PROJECT} && docker compose pull --quiet && docker compose up -d", hide=True, timeout=120
        )


def wait_for(url: str, status: int = 200, timeout: float = 30) -> httpx.Response:
    """Poll GET <url>/ping until it answers with `status`."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            last = httpx.get(f"{url}/ping", timeout=2)
            if last.status_code == status:
                return last
        except httpx.TransportError as exc:
            last = exc
        time.sleep(0.2)
    raise AssertionError(f"{url}/ping did not answer {status} within {timeout} s; last: {last!r}")


def predict(url: str, entries: object, *, image: bool = True, text: str | None = None) -> httpx.Response:
    files = {"image": ("photo.jpg", b"\xff\xd8\xff\xe0 not really a jpeg", "image/jpeg")} if image else None
    data = {"entries": entries if isinstance(entries, str) else json.dumps(entries)}
    if text is not None:
        data["text"] = text
    return httpx.post(f"{url}/predict", data=data, files=files, timeout=10)


def inner(host: Host, *cmd: str) -> str:
    """Run a command of the host's own Docker engine (as root in the host) and return its stdout."""
    return host.exec(["docker", *cmd]).stdout.strip()


def test_local_ml_stands_in_for_immichs_own(testbed: TestBed):
    pong = wait_for(testbed.local_ml_url)
    assert pong.text == "pong"
    assert pong.headers["content-type"].startswith("text/plain")
    assert pong.headers["x-stub-version"] == "v2.7.5"
    assert httpx.get(testbed.local_ml_url, timeout=5).json() == {"message": "Immich ML"}


def test_ssh_checks_host_keys_strictly(testbed: TestBed, bed_hosts: list[Host], tmp_path: Path):
    ml1 = bed_hosts[0]
    with testbed.ssh(ml1) as conn:
        assert conn.run("id -un; id -Gn", hide=True).stdout.split() == ["deploy", "deploy", "docker"]

    def connect(known_hosts: Path, user: str = "deploy") -> None:
        client = paramiko.SSHClient()
        client.load_host_keys(str(known_hosts))
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        try:
            client.connect("127.0.0.1", port=ml1.ssh_port, username=user, key_filename=str(testbed.client_key),
                           look_for_keys=False, allow_agent=False, timeout=10, banner_timeout=10, auth_timeout=10)  # fmt: skip
        finally:
            client.close()

    lines = testbed.known_hosts.read_text().splitlines()
    swapped = tmp_path / "swapped"  # ml1's port with ml2's key: a server presenting the wrong key
    swapped.write_text(f"[127.0.0.1]:{ml1.ssh_port} {' '.join(lines[1].split()[1:])}\n")
    with pytest.raises(paramiko.BadHostKeyException):
        connect(swapped)
    unknown = tmp_path / "unknown"
    unknown.write_text(f"{lines[1]}\n")
    with pytest.raises(paramiko.SSHException, match="not found in known_hosts"):
        connect(unknown)
    with pytest.raises(paramiko.AuthenticationException):
        connect(testbed.known_hosts, user="root")


def test_deploy_from_the_registry_to_two_hosts(testbed: TestBed, bed_hosts: list[Host]):
    hosts = bed_hosts[:2]
    with ThreadPoolExecutor(len(hosts)) as pool:
        list(pool.map(lambda host: deploy(testbed, host), hosts))
    for host in hosts:
        pong = wait_for(host.ml_url)
        assert (pong.text, pong.headers["x-stub-version"]) == ("pong", "v2.7.5")

        answer = predict(host.ml_url, {**CLIP_VISUAL, **FACES})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        embedding = json.loads(body["clip"])
        assert len(embedding) == 512 and all(isinstance(x, float) for x in embedding)
        (face,) = body["facial-recognition"]
        assert set(face["boundingBox"]) == {"x1", "y1", "x2", "y2"}
        assert isinstance(face["embedding"], str) and isinstance(face["score"], float)
        assert isinstance(body["imageHeight"], int) and isinstance(body["imageWidth"], int)
        text = predict(
            host.ml_url, {"clip": {"textual": {"modelName": "ViT-B-32__openai"}}}, image=False, text="a dog"
        )
        assert set(text.json()) == {"clip"}
        ocr = predict(host.ml_url, {"ocr": {"detection": {"modelName": "PP-OCRv5_mobile"}}}).json()["ocr"]
        assert ocr == {"text": [], "box": [], "boxScore": [], "textScore": []}
        assert predict(host.ml_url, "{not json").json() == {"detail": "Invalid request format."}
        assert predict(host.ml_url, CLIP_VISUAL, image=False).status_code == 400

        assert inner(host, "exec", CONTAINER, "ls", "/cache/clip", "/cache/facial-recognition").split() == [
            "/cache/clip:", "ViT-B-32__openai", "/cache/facial-recognition:", "buffalo_l",
        ]  # fmt: skip
        config = json.loads(inner(host, "inspect", "--format", "{{json .Config}}", CONTAINER))
        assert "IMMICH_SOURCE_REF=v2.7.5" in config["Env"] and "DEVICE=cpu" in config["Env"]
        assert config["Labels"]["org.opencontainers.image.version"] == "v2.7.5"
        digests = inner(host, "image", "inspect", "--format", "{{json .RepoDigests}}", f"{IMAGE}:v2.7.5")
        assert json.loads(digests)[0].startswith(f"{IMAGE}@sha256:")


def test_registry_aliases_and_no_way_out(testbed: TestBed, bed_hosts: list[Host]):
    host = bed_hosts[2]
    ghcr = "ghcr.io/immich-app/immich-machine-learning:v3.2.2-cuda"
    with testbed.ssh(host) as conn:
        conn.run(f"docker pull --quiet {ghcr}", hide=True, timeout=60)
        env = conn.run(f"docker image inspect --format '{{{{json .Config.Env}}}}' {ghcr}", hide=True).stdout
        assert "DEVICE=cuda" in json.loads(env)
        assert conn.run("getent hosts registry.tb", hide=True, warn=True).ok
        started = time.monotonic()
        assert not conn.run("getent hosts example.org", hide=True, warn=True, timeout=20).ok
        assert time.monotonic() - started < 10
    rules = run(["iptables", "-S", "DOCKER-USER"]).stdout
    assert f"{LABEL}={testbed.id}" in rules


def test_stub_control_switches(testbed: TestBed, bed_hosts: list[Host]):
    host = bed_hosts[2]
    only_old = {"MACHINE_LEARNING_STUB_MODE": "fail-predict", "MACHINE_LEARNING_STUB_ONLY_VERSIONS": "v2.7.4"}
    deploy(testbed, host, "v2.7.5", only_old)
    wait_for(host.ml_url)
    assert predict(host.ml_url, CLIP_VISUAL).status_code == 200
    deploy(testbed, host, "v2.7.4", only_old)
    assert wait_for(host.ml_url).headers["x-stub-version"] == "v2.7.4"
    failed = predict(host.ml_url, CLIP_VISUAL)
    assert failed.status_code == 500
    assert failed.json()["detail"].startswith("Failed to load model 'ViT-B-32__openai'")

    # /tmp/stub-mode breaks a running container; Docker's health check notices (2 s interval, 3 retries).
    inner(host, "exec", CONTAINER, "sh", "-c", "echo unhealthy > /tmp/stub-mode")
    wait_for(host.ml_url, status=503)
    health = "{{.State.Health.Status}}"
    deadline = time.monotonic() + 30
    while inner(host, "inspect", "--format", health, CONTAINER) != "unhealthy":
        assert time.monotonic() < deadline, "the container never turned unhealthy"
        time.sleep(0.5)
    inner(host, "exec", CONTAINER, "rm", "/tmp/stub-mode")
    wait_for(host.ml_url)

    deploy(testbed, host, "v2.7.5", {"MACHINE_LEARNING_STUB_MODE": "unhealthy"})
    assert wait_for(host.ml_url, status=503).headers["x-stub-version"] == "v2.7.5"

    deploy(testbed, host, "v2.7.5", {"MACHINE_LEARNING_STUB_START_DELAY": "3"})
    started = time.monotonic()
    wait_for(host.ml_url, status=503, timeout=3)
    wait_for(host.ml_url)
    assert time.monotonic() - started > 1

    deploy(testbed, host, "v2.7.5", {"MACHINE_LEARNING_STUB_MODE": "crash"})
    deadline = time.monotonic() + 20  # exits with 1 at start; `restart: always` keeps restarting it
    while int(inner(host, "inspect", "--format", "{{.RestartCount}}", CONTAINER)) < 1:
        assert time.monotonic() < deadline, "the crashing container was never restarted"
        time.sleep(0.3)
    logs = host.exec(["docker", "logs", CONTAINER])
    assert "Initializing Immich ML [v2.7.5]" in logs.stdout
    assert "stub: mode crash, exiting with status 1" in logs.stderr


def test_faults_and_recovery(testbed: TestBed, bed_hosts: list[Host]):
    host = bed_hosts[0]
    deploy(testbed, host)
    wait_for(host.ml_url)
    predict(host.ml_url, CLIP_VISUAL).raise_for_status()

    host.pause()  # a hang: connects succeed, nothing answers
    with pytest.raises(httpx.TimeoutException):
        httpx.get(f"{host.ml_url}/ping", timeout=2)
    host.unpause()
    wait_for(host.ml_url)

    host.partition()  # a lost link: times out too
    with pytest.raises(httpx.TimeoutException):
        httpx.get(f"{host.ml_url}/ping", timeout=2)
    host.heal()
    wait_for(host.ml_url)

    host.disconnect()  # unplugged: refused at once
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{host.ml_url}/ping", timeout=2)
    host.connect()
    wait_for(host.ml_url)

    host.stop()  # shutdown; `restart: always` brings the service back with the host
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{host.ml_url}/ping", timeout=2)
    host.start()
    wait_for(host.ml_url)

    host.restart()  # planned reboot
    wait_for(host.ml_url)
    host.kill()  # crash
    host.start()
    wait_for(host.ml_url)
    # The model cache volume survived all of it.
    assert "ViT-B-32__openai" in inner(host, "exec", CONTAINER, "ls", "/cache/clip")


def test_more_hosts_join_the_bed(testbed: TestBed, more_hosts):
    (extra,) = more_hosts(1)
    assert extra.name == f"ml{len(testbed.hosts)}"
    assert f"[127.0.0.1]:{extra.ssh_port} ssh-ed25519 " in testbed.known_hosts.read_text()
    with testbed.ssh(extra) as conn:
        assert conn.run("docker info --format '{{.Driver}}'", hide=True).stdout.strip() == "overlay2"


def test_inventory_describes_the_bed(testbed: TestBed, tmp_path: Path):
    key = tmp_path / "api-key"
    key.write_text("secret\n")
    path = testbed.write_inventory(
        tmp_path / "inv" / "hosts.yml", "http://127.0.0.1:2283", key, hosts=testbed.hosts[:2],
        env={"MACHINE_LEARNING_STUB_MODE": "unhealthy"}, health_interval="2s",
    )  # fmt: skip
    inventory = yaml.safe_load(path.read_text())
    assert inventory["immich"] == {
        "url": "http://127.0.0.1:2283", "api_key_file": str(key), "local_ml_url": testbed.local_ml_url,
    }  # fmt: skip
    assert inventory["ssh"] == {"known_hosts": str(testbed.known_hosts)}
    assert inventory["defaults"] == {
        "ssh_user": "deploy", "ssh_key": str(testbed.client_key), "accel": "cpu", "registry": "registry.tb",
        "env": {"MACHINE_LEARNING_STUB_MODE": "unhealthy"}, "health_interval": "2s",
    }  # fmt: skip
    ml1 = testbed.hosts[0]
    assert inventory["hosts"]["ml1"] == {
        "address": "127.0.0.1", "ssh_port": ml1.ssh_port, "bind_address": ml1.ip, "ml_port": 3003,
        "url": ml1.ml_url,
    }  # fmt: skip
    assert inventory["groups"] == {"all-ml": ["ml1", "ml2"]}
