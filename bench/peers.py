"""The tools `make bench` compares, each deploying the SAME compose files (rendered by immich-remote)
to the same test hosts: immich-remote itself, Ansible (community.docker.docker_compose_v2, wait: true,
forks >= hosts, pipelining on), compose-farm (`cf up`; it assumes the files are already on every host,
so the harness copies them first and reports that time apart), and a bare parallel OpenSSH loop.

Peers are installed from PyPI into their own virtual environments under .bench/ on first use, and
each one's version is recorded with the results.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from bench.fleet import CLI, Fleet, bare_loop, must, timed

REPO = Path(__file__).resolve().parents[1]
VENVS = REPO / ".bench"


def venv_tool(name: str, package: str, tool: str) -> Path:
    """The console script `tool` from `package`, installed into .bench/<name> from PyPI if missing."""
    venv = VENVS / name
    script = venv / "bin" / tool
    if not script.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", package], check=True)
    return script


def version_of(script: Path, *args: str) -> str:
    done = subprocess.run([str(script), *args], capture_output=True, text=True)
    return (done.stdout or done.stderr).strip().splitlines()[0]


class ImmichRemote:
    name = "immich-remote"

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self.version = version_of(Path(CLI), "--version")

    def run(self, version: str, *, upgrade: bool = False) -> float:
        seconds, done = timed([CLI, "-i", str(self.fleet.inventory), "--json", "upgrade" if upgrade else "deploy"],
                              env=self.fleet.env)
        must(self.name, done)
        data = json.loads(done.stdout)
        bad = [h for h in data["hosts"] if h["status"] not in ("deployed", "unchanged", "upgraded", "restarted")]
        if bad:
            raise SystemExit(f"immich-remote: {bad}")
        return seconds


class Ansible:
    name = "ansible"
    PLAYBOOK = """\
- hosts: ml
  gather_facts: false
  tasks:
    - name: compose directory
      ansible.builtin.file: {path: /home/deploy/ansible-ml, state: directory, mode: "0755"}
    - name: compose file (rendered by immich-remote, the same bytes every tool deploys)
      ansible.builtin.copy:
        src: "{{ rendered }}/{{ inventory_hostname }}/docker-compose.yml"
        dest: /home/deploy/ansible-ml/docker-compose.yml
        mode: "0644"
    - name: up and healthy
      community.docker.docker_compose_v2: {project_src: /home/deploy/ansible-ml, state: present, wait: true,
                                           pull: never}
"""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self.playbook_bin = venv_tool("ansible", "ansible", "ansible-playbook")
        self.version = version_of(self.playbook_bin, "--version")
        self.dir = fleet.workdir / "ansible"
        self.dir.mkdir(exist_ok=True)
        (self.dir / "site.yml").write_text(self.PLAYBOOK)
        (self.dir / "ansible.cfg").write_text(
            f"[defaults]\nforks = {max(8, len(fleet.hosts))}\nhost_key_checking = True\n"
            "interpreter_python = /usr/bin/python3\nstdout_callback = default\nretry_files_enabled = False\n"
            f"[ssh_connection]\npipelining = True\nssh_args = -o UserKnownHostsFile={fleet.bed.known_hosts} "
            "-o ControlMaster=auto -o ControlPersist=60s\n")
        hosts = {h.name: {"ansible_host": "127.0.0.1", "ansible_port": h.ssh_port, "ansible_user": "deploy",
                          "ansible_ssh_private_key_file": str(fleet.bed.client_key)} for h in fleet.hosts}
        (self.dir / "hosts.yml").write_text(yaml.safe_dump({"ml": {"hosts": hosts}}))

    def run(self, version: str, *, upgrade: bool = False) -> float:
        rendered = self.fleet.render(version)
        seconds, done = timed([str(self.playbook_bin), "-i", "hosts.yml", "site.yml", "-e", f"rendered={rendered}"],
                              cwd=self.dir, env={**os.environ, "ANSIBLE_CONFIG": str(self.dir / "ansible.cfg")})
        must(self.name, done)
        return seconds


class ComposeFarm:
    name = "compose-farm"

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self.cf = venv_tool("cf", "compose-farm", "cf")
        self.version = version_of(self.cf, "--version")
        self.home = fleet.workdir / "cf-home"
        keys = self.home / ".ssh" / "compose-farm"
        keys.mkdir(parents=True, exist_ok=True)
        shutil.copy(fleet.bed.client_key, keys / "id_ed25519")
        (keys / "id_ed25519").chmod(0o600)
        shutil.copy(f"{fleet.bed.client_key}.pub", keys / "id_ed25519.pub")  # cf uses its key only as a pair
        # compose-farm runs commands on THIS machine for a host at 127.0.0.1, so it reaches each test host at
        # its bed-network address, port 22; the known_hosts lines are the bed's, re-keyed to those addresses.
        by_port = {str(h.ssh_port): h.ip for h in fleet.hosts}
        lines = []
        for line in fleet.bed.known_hosts.read_text().splitlines():
            name, *key = line.split()
            port = name.rsplit(":", 1)[-1]
            if port in by_port:
                lines.append(" ".join([by_port[port], *key]))
        (keys / "known_hosts").write_text("\n".join(lines) + "\n")
        # compose-farm reads each compose file on this machine too (it assumes shared storage mounted at
        # the same path everywhere): the files go to the same absolute path here and on every host.
        self.compose_dir = Path(f"/tmp/cf-bench-{os.getpid()}")
        self.config = fleet.workdir / "compose-farm.yaml"
        self.config.write_text(yaml.safe_dump({
            "compose_dir": str(self.compose_dir),
            "hosts": {h.name: {"address": h.ip, "user": "deploy", "port": 22} for h in fleet.hosts},
            "stacks": {f"ml-{h.name}": h.name for h in fleet.hosts},
        }))
        self.sync_seconds: list[float] = []

    def sync(self, rendered: Path) -> float:
        """compose-farm expects the files on every host already (shared storage): copy them, timed apart."""
        for host in self.fleet.hosts:
            local = self.compose_dir / f"ml-{host.name}"
            local.mkdir(parents=True, exist_ok=True)
            shutil.copy(rendered / host.name / "docker-compose.yml", local / "docker-compose.yml")

        def remote(host) -> str:
            stack = self.compose_dir / f"ml-{host.name}"
            return f"mkdir -p {stack} && cat > {stack}/docker-compose.yml"
        seconds, codes = self.fleet.pipe_compose(rendered, remote)
        if any(codes):
            raise SystemExit("compose-farm: copying the files failed")
        return seconds

    def run(self, version: str, *, upgrade: bool = False) -> float:
        self.sync_seconds.append(self.sync(self.fleet.render(version)))
        seconds, done = timed([str(self.cf), "up", "--all", "--config", str(self.config)],
                              env={**os.environ, "HOME": str(self.home), "NO_COLOR": "1"})
        must(self.name, done)
        return seconds


class BareLoop:
    """One OpenSSH session per host, all in parallel: the compose file on stdin, `up -d --wait`."""

    name = "bare OpenSSH loop"

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self.version = version_of(Path(shutil.which("ssh") or "ssh"), "-V")

    def run(self, version: str, *, upgrade: bool = False) -> float:
        return bare_loop(self.fleet, version)


TOOLS = (ImmichRemote, Ansible, ComposeFarm, BareLoop)
