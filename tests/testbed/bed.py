"""The test bed: remote hosts for immich-remote as Docker-in-Docker containers with their own sshd.

A `TestBed` owns, and labels `immich-remote-testbed=<bed id>`, everything it makes on the machine's engine:

- a bridge network with a free 172.29.N.0/24 (hosts get fixed IPs .11, .12, ...), and a firewall rule that
  drops anything the bridge would forward off the machine (besides the DNS settings that already make
  names outside the bed unresolvable);
- the registry (`registry.tb`, alias `ghcr.io`, .2) holding every stub ML tag, trusted by hosts via a test CA;
- the hosts `ml1`, `ml2`, ...: Debian with sshd (user `deploy`, key only), Docker 20.10 and Compose v2,
  `/var/lib/docker` on a volume, SSH and ML port (22, 3003) published on 127.0.0.1;
- a local stub ML (v2.7.5) on 127.0.0.1 standing in for the Immich server's own machine learning.

Host ports are picked once, outside the kernel's ephemeral range, and pinned: Docker hands out a new random
port on every restart of a container published with an ephemeral port, which would invalidate known_hosts
and inventories in the middle of a fault test. Several beds coexist; `cleanup_stale()` removes the remains
of beds whose owner process died.
"""

from __future__ import annotations

import ipaddress
import json
import os
import random
import secrets
import shlex
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import fabric
import paramiko
import yaml

from . import registry
from .balancer_image import BALANCER_TEST_TAG, ensure_balancer_image
from .engine import BedError, docker, log, run
from .hostimage import ensure_host_image
from .keys import keygen, known_hosts_line
from .stubml import STUB_REPO, ensure_stub_images

LABEL = "immich-remote-testbed"
OWNER_LABEL = "immich-remote-testbed.owner"
DETACHED = "detached"
SUBNET_PREFIX = "172.29"
LOCAL_ML_IMAGE = f"{STUB_REPO}:v2.7.5"
# --privileged fails on these machines (no CAP_SYS_RESOURCE for runc); this set works (testbed-notes §2).
HOST_RUN_FLAGS = [
    "--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE",
    "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
    "--security-opt", "systempaths=unconfined", "--device-cgroup-rule", "a *:* rwm",
    # Names outside the bed do not resolve (a stray pull fails in ~1 s instead of leaving the machine).
    "--dns", "127.0.0.1", "--dns-option", "timeout:1", "--dns-option", "attempts:1",
    # Time for the inner dockerd to stop its containers on `docker stop`; a fresh /run on every boot.
    "--stop-timeout", "30", "--tmpfs", "/run",
]  # fmt: skip
PORT_RETRIES = 5


@dataclass
class Container:
    """A container the bed made, with the lifecycle verbs fault tests use."""

    container: str

    def exec(
        self, cmd: list[str], *, user: str | None = None, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run `cmd` inside the container (`docker exec`); e.g. `["docker", "ps"]` asks a host's own engine."""
        return docker(
            "exec", *(["--user", user] if user else []), self.container, *cmd, timeout=timeout, check=check
        )

    def state(self) -> str:
        """Docker's status word: running, paused, exited, created, restarting."""
        return docker("inspect", "--format", "{{.State.Status}}", self.container).stdout.strip()

    def logs(self) -> str:
        """The container's output (stdout and stderr together); for a host: testbed-init, dockerd, sshd."""
        proc = docker("logs", self.container)
        return proc.stdout + proc.stderr

    def stop(self, timeout: int = 30) -> None:
        """A clean shutdown: SIGTERM, SIGKILL after `timeout` seconds."""
        docker("stop", "--time", str(timeout), self.container, timeout=timeout + 30)

    def start(self) -> None:
        docker("start", self.container)

    def restart(self) -> None:
        """A planned reboot: clean stop, then start."""
        docker("restart", "--time", "30", self.container, timeout=90)

    def kill(self) -> None:
        """A crash / power loss: SIGKILL, no clean shutdown (`start()` brings it back)."""
        docker("kill", self.container)

    def pause(self) -> None:
        """A hang: every process frozen; TCP connects still succeed, nothing answers."""
        docker("pause", self.container)

    def unpause(self) -> None:
        docker("unpause", self.container)


@dataclass
class Host(Container):
    """One remote host: `ssh -p <ssh_port> deploy@127.0.0.1`; its ML is published at `ml_url`."""

    name: str
    ip: str
    network: str
    ssh_port: int
    ml_port: int

    @property
    def bind_address(self) -> str:
        """The host's address on the bed network: where its inner engine should publish 3003."""
        return self.ip

    @property
    def ml_url(self) -> str:
        """Port 3003 of this host as the machine reaches it: http://127.0.0.1:<ml_port>."""
        return f"http://127.0.0.1:{self.ml_port}"

    def start(self, wait: bool = True) -> None:
        """Boot the host (after stop/kill); with `wait`, until SSH (and so its engine) answers."""
        super().start()
        if wait:
            self.wait_ssh()

    def restart(self, wait: bool = True) -> None:
        """Reboot: clean stop of the inner engine and its containers, then boot (see `start`)."""
        super().restart()
        if wait:
            self.wait_ssh()

    def wait_ssh(self, timeout: float = 60) -> None:
        """Wait until sshd sends its banner through the published port (sshd starts after dockerd is up)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.ssh_port), timeout=2) as conn:
                    conn.settimeout(2)
                    if conn.recv(64).startswith(b"SSH-"):
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                tail = "\n".join(self.logs().splitlines()[-15:])
                raise BedError(
                    f"{self.name}: no SSH banner on 127.0.0.1:{self.ssh_port} after {timeout:g} s "
                    f"({self.state()}); last lines of `docker logs {self.container}`:\n{tail}"
                )
            time.sleep(0.2)

    def disconnect(self) -> None:
        """Unplug the host from the bed network: its published ports vanish, connects are refused at once."""
        docker("network", "disconnect", self.network, self.container)

    def connect(self) -> None:
        """Plug the host back in with its old address."""
        docker("network", "connect", "--ip", self.ip, "--alias", self.name, self.network, self.container)

    def partition(self) -> None:
        """Drop every packet reaching the host from the bed network: connects time out like a lost link."""
        self.exec(["iptables", "-t", "raw", "-I", "PREROUTING", "-i", self._interface(), "-j", "DROP"])

    def heal(self) -> None:
        """Undo `partition()` (a no-op when not partitioned)."""
        rule = f"PREROUTING -i {self._interface()} -j DROP"
        self.exec(["sh", "-c", f"while iptables -t raw -D {rule} 2>/dev/null; do :; done"])

    def wipe(self) -> None:
        """Back to a fresh host: no inner containers, volumes, networks, images, or files of `deploy`."""
        script = (
            "docker ps -aq | xargs -r docker rm -f >/dev/null; "
            "docker volume ls -q | xargs -r docker volume rm >/dev/null; "
            "docker network prune -f >/dev/null; docker image prune -af >/dev/null; "
            "find /home/deploy -mindepth 1 -maxdepth 1 ! -name .ssh -exec rm -rf {} +"
        )
        self.exec(["sh", "-c", script], timeout=120)

    def recover(self) -> None:
        """Undo any fault (pause, stop, kill, disconnect, partition) and wait for SSH."""
        status = self.state()
        if status == "paused":
            self.unpause()
        if status in ("exited", "created"):
            self.start(wait=False)
        networks = docker("inspect", "--format", "{{json .NetworkSettings.Networks}}", self.container).stdout
        if self.network not in json.loads(networks):
            self.connect()
        self.heal()
        self.wait_ssh()

    def _interface(self) -> str:
        """The host's interface on the bed network (names change after a reconnect: never assume eth0)."""
        for line in self.exec(["ip", "-o", "-4", "addr", "show"]).stdout.splitlines():
            words = line.split()
            if f"{self.ip}/" in line:
                return words[1]
        raise BedError(f"{self.name}: no interface holds {self.ip}")


class TestBed:
    """Everything one test session needs besides the CLI and the Immich fake; see the module docstring.

    `with TestBed(workdir) as bed: bed.start(hosts=3)` tears down on exit. `workdir` receives the keys,
    known_hosts, certificates and `bed.json`; `TestBed.load(workdir)` reattaches to a running bed.
    """

    __test__ = False  # not a pytest test class despite the name
    registry_host = registry.REGISTRY_NAMES[0]
    # A pool's `balancer_image` on the bed: Debian's HAProxy, from the bed registry (balancer_image.py).
    balancer_image = f"{registry_host}/{BALANCER_TEST_TAG}"

    def __init__(self, workdir: Path, name: str = "irtb", *, detached: bool = False) -> None:
        """`name` prefixes every resource; `detached` beds survive their process (cleanup_stale skips them)."""
        self.workdir = workdir.resolve()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.id = f"{name}-{secrets.token_hex(3)}"
        self.owner = DETACHED if detached else str(os.getpid())
        self.client_key = self.workdir / "id_ed25519"
        self.known_hosts = self.workdir / "known_hosts"
        self.hosts: list[Host] = []
        self.network = self.id
        self.subnet = ""
        self.local_ml: Container | None = None
        self.local_ml_url = ""
        self.registry: Container | None = None
        self.registry_port = 0
        self.host_image = ""

    # -- lifecycle -------------------------------------------------------------------------------------

    def __enter__(self) -> TestBed:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.teardown()

    def start(self, hosts: int = 2) -> TestBed:
        """Build or load the images, then bring up network, registry, local ML and `hosts` hosts."""
        started = time.monotonic()
        try:
            with ThreadPoolExecutor(max_workers=3) as pool:
                host_image = pool.submit(ensure_host_image)
                registry_image = pool.submit(registry.ensure_registry_image)
                balancer_image = pool.submit(ensure_balancer_image)
                stubs = ensure_stub_images()
                self.host_image, registry_image_tag = host_image.result(), registry_image.result()
                stubs = [*stubs, balancer_image.result()]  # pushed with them: hosts pull it like a user's mirror
            log.info("bed %s: images ready after %.1f s", self.id, time.monotonic() - started)
            keygen(self.client_key, f"deploy@{self.id}")
            ca_crt = registry.make_certs(self.workdir / "certs")
            self._create_network()
            with ThreadPoolExecutor(max_workers=2) as pool:
                filled = pool.submit(self._start_registry, registry_image_tag, ca_crt, stubs)
                self._start_local_ml()
                self.add_hosts(hosts)
                filled.result()
        except BaseException:
            self.teardown()
            raise
        log.info("bed %s: %d hosts up after %.1f s", self.id, hosts, time.monotonic() - started)
        return self

    def add_hosts(self, count: int) -> list[Host]:
        """Start `count` more hosts in parallel and wait until each answers on SSH."""
        first = max((int(host.name.removeprefix("ml")) for host in self.hosts), default=0) + 1
        with ThreadPoolExecutor(max_workers=max(count, 1)) as pool:
            new = list(pool.map(self._run_host, range(first, first + count)))
            self.hosts.extend(new)
            self._write_known_hosts()
            list(pool.map(Host.wait_ssh, new))
        self.save_state()
        return new

    def remove_hosts(self, hosts: list[Host]) -> None:
        """Delete hosts (container and engine volume) from the bed."""
        for host in hosts:
            docker("rm", "-f", "-v", host.container, timeout=120)
            docker("volume", "rm", "-f", f"{host.container}-docker")
            self.hosts.remove(host)
        self._write_known_hosts()
        self.save_state()

    def teardown(self) -> None:
        """Remove everything labelled with this bed's id (also what a failed start left behind)."""
        remove_bed(self.id)

    # -- what tests use --------------------------------------------------------------------------------

    def host(self, name: str) -> Host:
        """The host called `name` (ml1, ml2, ...)."""
        for host in self.hosts:
            if host.name == name:
                return host
        raise KeyError(name)

    def ssh(self, host: Host, user: str = "deploy", timeout: float = 10) -> fabric.Connection:
        """A fabric `Connection` to `host` that checks its key strictly against the bed's known_hosts."""
        conn = fabric.Connection(
            "127.0.0.1",
            user=user,
            port=host.ssh_port,
            connect_timeout=timeout,
            # No ~/.ssh/config; no forwarding of our stdin (pytest's captured stdin cannot be read).
            config=fabric.Config(overrides={"load_ssh_configs": False, "run": {"in_stream": False}}),
            connect_kwargs={
                "key_filename": str(self.client_key),
                "look_for_keys": False,
                "allow_agent": False,
                "banner_timeout": timeout,
                "auth_timeout": timeout,
            },
        )
        conn.client.load_host_keys(str(self.known_hosts))
        conn.client.set_missing_host_key_policy(paramiko.RejectPolicy())
        return conn

    def write_inventory(
        self,
        path: Path,
        immich_url: str,
        api_key_file: Path,
        hosts: list[Host] | None = None,
        **defaults: Any,
    ) -> Path:
        """Write an immich-remote inventory for `hosts` (default: all); `defaults` extend/override its
        `defaults:` section (e.g. `env={"MACHINE_LEARNING_STUB_MODE": "unhealthy"}`). Paths are absolute."""
        chosen = self.hosts if hosts is None else hosts
        inventory = {
            "immich": {
                "url": immich_url,
                "api_key_file": str(Path(api_key_file).resolve()),
                "local_ml_url": self.local_ml_url,
            },
            "ssh": {"known_hosts": str(self.known_hosts)},
            "defaults": {
                "ssh_user": "deploy",
                "ssh_key": str(self.client_key),
                "accel": "cpu",
                "registry": self.registry_host,
                **defaults,
            },
            "hosts": {
                host.name: {
                    "address": "127.0.0.1",
                    "ssh_port": host.ssh_port,
                    "bind_address": host.bind_address,
                    "ml_port": 3003,
                    "url": host.ml_url,
                }
                for host in chosen
            },
            "groups": {"all-ml": [host.name for host in chosen]},
        }
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(inventory, sort_keys=False))
        return path.resolve()

    # -- state file ------------------------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        """What `bed.json` holds: ids, paths, and per host its container, IP, ports and ML URL."""
        return {
            "id": self.id,
            "owner": self.owner,
            "workdir": str(self.workdir),
            "network": self.network,
            "subnet": self.subnet,
            "host_image": self.host_image,
            "client_key": str(self.client_key),
            "known_hosts": str(self.known_hosts),
            "registry_host": self.registry_host,
            "registry": asdict(self.registry) if self.registry else None,
            "registry_port": self.registry_port,
            "local_ml": asdict(self.local_ml) if self.local_ml else None,
            "local_ml_url": self.local_ml_url,
            "hosts": [{**asdict(host), "ml_url": host.ml_url} for host in self.hosts],
        }

    def save_state(self) -> Path:
        """Write `workdir/bed.json` (see `describe`)."""
        path = self.workdir / "bed.json"
        path.write_text(json.dumps(self.describe(), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, workdir: Path) -> TestBed:
        """Reattach to the bed described by `workdir/bed.json` (e.g. one left running by `up`)."""
        state = json.loads((workdir / "bed.json").read_text())
        bed = cls(Path(state["workdir"]))
        bed.id, bed.owner = state["id"], state["owner"]
        bed.network, bed.subnet, bed.host_image = state["network"], state["subnet"], state["host_image"]
        bed.client_key, bed.known_hosts = Path(state["client_key"]), Path(state["known_hosts"])
        bed.registry = Container(**state["registry"]) if state["registry"] else None
        bed.registry_port = state["registry_port"]
        bed.local_ml = Container(**state["local_ml"]) if state["local_ml"] else None
        bed.local_ml_url = state["local_ml_url"]
        bed.hosts = [Host(**{k: v for k, v in host.items() if k != "ml_url"}) for host in state["hosts"]]
        return bed

    # -- building blocks -------------------------------------------------------------------------------

    def _labels(self) -> list[str]:
        return ["--label", f"{LABEL}={self.id}", "--label", f"{OWNER_LABEL}={self.owner}"]

    def _create_network(self) -> None:
        """A bridge on the first free 172.29.N.0/24, plus the rule that keeps its traffic on the machine."""
        bridge = f"tb{self.id.rpartition('-')[2]}"
        for subnet in _free_subnets():
            proc = docker(
                "network", "create", *self._labels(), "--subnet", str(subnet),
                "--opt", f"com.docker.network.bridge.name={bridge}", self.network, check=False,
            )  # fmt: skip
            if proc.returncode == 0:
                self.subnet = str(subnet)
                break
            if "overlap" not in proc.stderr:
                raise BedError(f"docker network create {self.network} failed: {proc.stderr.strip()}")
        else:
            raise BedError(f"no free {SUBNET_PREFIX}.N.0/24 subnet for the bed network")
        # Bridged traffic may go to the bed's own bridge only; replies to the machine are not forwarded.
        run(["iptables", "-I", "DOCKER-USER", "-i", bridge, "!", "-o", bridge,
             "-m", "comment", "--comment", f"{LABEL}={self.id}", "-j", "DROP"])  # fmt: skip

    def _address(self, last_octet: int) -> str:
        return str(ipaddress.ip_network(self.subnet)[last_octet])

    def _run_pinned(self, name: str, container_ports: list[int], args: list[str]) -> list[int]:
        """`docker run -d` publishing each container port on a free 127.0.0.1 port; returns the host ports.

        A port can be taken between the check and the run (another bed, a client's source port): retry.
        """
        for _ in range(PORT_RETRIES):
            ports = [_free_port() for _ in container_ports]
            publish = [
                f"-p127.0.0.1:{port}:{inner}" for port, inner in zip(ports, container_ports, strict=True)
            ]
            proc = docker(
                "run", "-d", "--name", name, *self._labels(), *publish, *args, check=False, timeout=120
            )
            if proc.returncode == 0:
                return ports
            docker("rm", "-f", name, check=False)
            if "port is already allocated" not in proc.stderr and "address already in use" not in proc.stderr:
                raise BedError(f"docker run {name} failed: {proc.stderr.strip()}")
        raise BedError(f"docker run {name}: no free port after {PORT_RETRIES} tries")

    def _run_host(self, index: int) -> Host:
        """Create host `ml<index>`: keys, engine volume, container (started, not waited for)."""
        name = f"ml{index}"
        container = f"{self.id}-{name}"
        keydir = self.workdir / "hosts" / name
        keygen(keydir / "ssh_host_ed25519_key", f"root@{name}")
        (keydir / "authorized_keys").write_text(self.client_key.with_suffix(".pub").read_text())
        volume = f"{container}-docker"
        docker("volume", "create", *self._labels(), volume)
        ip = self._address(10 + index)
        ssh_port, ml_port = self._run_pinned(container, [22, 3003], [
            "--hostname", name, "--network", self.network, "--ip", ip, "--network-alias", name,
            *HOST_RUN_FLAGS,
            "-v", f"{volume}:/var/lib/docker",
            "-v", f"{keydir}:/etc/testbed:ro",
            "-v", f"{self.workdir / 'certs' / 'certs.d'}:/etc/docker/certs.d:ro",
            self.host_image,
        ])  # fmt: skip
        return Host(
            container=container, name=name, ip=ip, network=self.network, ssh_port=ssh_port, ml_port=ml_port
        )

    def _write_known_hosts(self) -> None:
        lines = [
            known_hosts_line(h.ssh_port, self.workdir / "hosts" / h.name / "ssh_host_ed25519_key")
            for h in self.hosts
        ]
        self.known_hosts.write_text("".join(f"{line}\n" for line in lines))

    def _start_registry(self, image: str, ca_crt: Path, stubs: list[str]) -> None:
        """Run the registry on the bed network under its aliases, then push every stub tag to it."""
        name = f"{self.id}-registry"
        aliases = [f"--network-alias={alias}" for alias in registry.REGISTRY_NAMES]
        (self.registry_port,) = self._run_pinned(name, [443], [
            "--network", self.network, "--ip", self._address(2), *aliases, "--dns", "127.0.0.1",
            "-v", f"{ca_crt.parent}:/certs:ro", image,
        ])  # fmt: skip
        self.registry = Container(name)
        registry.wait_ready(self.registry_port, ca_crt)
        started = time.monotonic()
        registry.push(self.registry_port, stubs)
        log.info("bed %s: pushed %d stub tags in %.1f s", self.id, len(stubs), time.monotonic() - started)

    def _start_local_ml(self) -> None:
        """The stand-in for the Immich server's own ML container (the fallback URL)."""
        name = f"{self.id}-local-ml"
        (port,) = self._run_pinned(name, [3003], [
            "--network", self.network, "--ip", self._address(3), "--dns", "127.0.0.1", LOCAL_ML_IMAGE,
        ])  # fmt: skip
        self.local_ml = Container(name)
        self.local_ml_url = f"http://127.0.0.1:{port}"


def _free_port() -> int:
    """A random free 127.0.0.1 port below the kernel's ephemeral range (so no client socket takes it)."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    while True:
        port = random.randrange(10000, low)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port


def _free_subnets() -> list[ipaddress.IPv4Network]:
    """172.29.N.0/24 networks not used by a Docker network or a route on this machine."""
    used = [ipaddress.ip_network(word, strict=False) for word in _routes_and_docker_subnets()]
    candidates = [ipaddress.ip_network(f"{SUBNET_PREFIX}.{n}.0/24") for n in range(256)]
    return [net for net in candidates if not any(net.overlaps(other) for other in used)]


def _routes_and_docker_subnets() -> list[str]:
    words = run(["ip", "-4", "route", "show"]).stdout.split()
    networks = docker("network", "ls", "-q").stdout.split()
    if networks:
        fmt = "{{range .IPAM.Config}}{{.Subnet}} {{end}}"
        words += docker("network", "inspect", "--format", fmt, *networks).stdout.split()
    return [word for word in words if word[0].isdigit() and "/" in word and ":" not in word]


def remove_bed(bed_id: str) -> None:
    """Delete the containers, volumes, network and firewall rule labelled with `bed_id`."""
    label = f"label={LABEL}={bed_id}"
    containers = docker("ps", "-aq", "--filter", label).stdout.split()
    if containers:
        docker("rm", "-f", "-v", *containers, timeout=180)
    volumes = docker("volume", "ls", "-q", "--filter", label).stdout.split()
    if volumes:
        docker("volume", "rm", "-f", *volumes, timeout=120)
    networks = docker("network", "ls", "-q", "--filter", label).stdout.split()
    if networks:
        docker("network", "rm", *networks)
    for rule_bed, rule in _firewall_rules():
        if rule_bed == bed_id:
            run(["iptables", "-D", *rule])
    log.info("bed %s: removed", bed_id)


def _firewall_rules() -> list[tuple[str, list[str]]]:
    """(bed id, rule as `iptables -D` arguments) for each egress rule a bed put into DOCKER-USER."""
    rules = []
    for line in run(["iptables", "-S", "DOCKER-USER"]).stdout.splitlines():
        words = shlex.split(line)
        for word in words:
            if word.startswith(f"{LABEL}="):
                rules.append((word.partition("=")[2], words[1:]))
    return rules


def cleanup_stale() -> list[str]:
    """Remove the beds whose owner process is gone (not detached ones); returns their ids."""
    owners: dict[str, str] = {}
    fmt = f'{{{{.Label "{LABEL}"}}}} {{{{.Label "{OWNER_LABEL}"}}}}'
    for kind in ("container", "network", "volume"):
        every = ["-a"] if kind == "container" else []
        listing = docker(kind, "ls", *every, "--filter", f"label={LABEL}", "--format", fmt).stdout
        for line in listing.splitlines():
            bed_id, _, owner = line.partition(" ")
            owners[bed_id] = owner
    for bed_id, _ in _firewall_rules():
        owners.setdefault(bed_id, "")  # a rule whose bed has no resources left: nobody owns it
    stale = [bed_id for bed_id, owner in owners.items() if owner != DETACHED and not _alive(owner)]
    for bed_id in stale:
        remove_bed(bed_id)
    return stale


def _alive(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True
