"""A real OpenSSH server on 127.0.0.1 for Docker-free tests of the SSH layer.

No Docker, no fakes: `sshd -D` from the machine's openssh-server package (installed by
scripts/install-system.sh, like the test bed's hosts), with its own host key, one client key and a
config in a temporary directory. It logs in as the user running the tests. Tests that need it are
skipped with the reason when sshd is not installed (run `make install-system` first).
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LocalSshd:
    port: int
    user: str
    client_key: Path
    host_key_pub: str  # "ssh-ed25519 AAAA..."
    known_hosts: Path  # holds the right key for [127.0.0.1]:port
    dir: Path

    @property
    def known_hosts_line(self) -> str:
        return f"[127.0.0.1]:{self.port} {self.host_key_pub}"


def _keygen(path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return " ".join(path.with_suffix(".pub").read_text().split()[:2])


def start_sshd(base: Path) -> tuple[subprocess.Popen, LocalSshd]:
    if not os.access(SSHD, os.X_OK):
        pytest.skip("OpenSSH server not installed (run `make install-system`)")
    base.mkdir(parents=True, exist_ok=True)
    host_key = base / "host_ed25519"
    host_pub = _keygen(host_key)
    client_key = base / "client_ed25519"
    client_pub = _keygen(client_key)
    (base / "authorized_keys").write_text(client_pub + "\n")
    port = free_port()
    config = base / "sshd_config"
    config.write_text("\n".join([
        f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {host_key}",
        f"AuthorizedKeysFile {base / 'authorized_keys'}", "PasswordAuthentication no",
        "KbdInteractiveAuthentication no", "UsePAM no", "StrictModes no", "PermitRootLogin prohibit-password",
        f"PidFile {base / 'sshd.pid'}", "AllowTcpForwarding yes", "Subsystem sftp internal-sftp",
        "LogLevel ERROR", "",
    ]))
    Path("/run/sshd").mkdir(exist_ok=True)  # privilege separation directory sshd insists on
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                if s.recv(64).startswith(b"SSH-"):
                    break
        except OSError:
            time.sleep(0.05)
    else:
        proc.kill()
        raise RuntimeError(f"sshd did not start: {proc.stderr.read().decode() if proc.stderr else ''}")
    known = base / "known_hosts"
    server = LocalSshd(port, getpass.getuser(), client_key, host_pub, known, base)
    known.write_text(server.known_hosts_line + "\n")
    return proc, server


@pytest.fixture(scope="session")
def local_sshd(tmp_path_factory: pytest.TempPathFactory):
    proc, server = start_sshd(tmp_path_factory.mktemp("sshd"))
    yield server
    proc.terminate()
    proc.wait(timeout=10)
