"""Host keys: strict known_hosts checking, fingerprints, reading a host's offered key, and trusting it
(`trust`, `init`). Part of the ssh package: the only code that talks SSH."""

from __future__ import annotations

import base64
import hashlib
import socket
from collections.abc import Iterable
from pathlib import Path

import paramiko

from ..errors import HostKeyError, SSHError

DEFAULT_KNOWN_HOSTS = Path("~/.ssh/known_hosts")


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH's SHA256 fingerprint, e.g. `SHA256:n1Xx...` (what `ssh-keygen -lf` prints)."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def known_hosts_name(host: str, port: int) -> str:
    """The name a known_hosts line uses: `host` on port 22, `[host]:port` otherwise."""
    return host if port == 22 else f"[{host}]:{port}"


class RejectUnknown(paramiko.MissingHostKeyPolicy):
    """Refuse unknown hosts, keeping the offered key so the error can show its fingerprint."""

    def __init__(self, label: str, trust_hint: str) -> None:
        self.label = label
        self.trust_hint = trust_hint

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        raise HostKeyError(
            f"Host '{self.label}' ({hostname}) is not in known_hosts; its {key.get_name()} key fingerprint is "
            f"{fingerprint(key)}. Refusing to connect to an unverified host.",
            hint=f"Check the fingerprint on the host (`ssh-keygen -lf /etc/ssh/ssh_host_{key_file(key)}_key.pub`), "
            f"then run: {self.trust_hint}")


def key_file(key: paramiko.PKey) -> str:
    return {"ssh-ed25519": "ed25519", "ssh-rsa": "rsa"}.get(key.get_name(), "ecdsa")




def known_host_key(files: Iterable[Path], address: str, port: int, key_type: str) -> paramiko.PKey | None:
    """The `key_type` key that these known_hosts files record for address:port, if any."""
    keys = paramiko.HostKeys()
    for path in files:
        if path.is_file():
            keys.load(str(path))
    entry = keys.lookup(known_hosts_name(address, port)) or {}
    return entry.get(key_type)


def host_key_of(address: str, port: int, *, timeout: float = 10.0) -> paramiko.PKey:
    """Fetch a server's host key without authenticating (for `immich-remote trust`)."""
    try:
        sock = socket.create_connection((address, port), timeout=timeout)
    except OSError as exc:
        raise SSHError(f"Cannot connect to {address}:{port}: {exc}.") from None
    transport = paramiko.Transport(sock)
    transport.banner_timeout = timeout
    try:
        transport.start_client(timeout=timeout)
        return transport.get_remote_server_key()
    except (paramiko.SSHException, EOFError, OSError) as exc:
        raise SSHError(f"{address}:{port} did not complete an SSH handshake: {exc}.") from None
    finally:
        transport.close()


def append_known_host(path: Path, address: str, port: int, key: paramiko.PKey) -> str:
    """Record a host key in a known_hosts file (created 0600 if needed); returns the line written."""
    line = f"{known_hosts_name(address, port)} {key.get_name()} {key.get_base64()}"
    path = path.expanduser()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    exists = path.exists()
    with open(path, "a", encoding="utf-8") as handle:
        if exists and path.stat().st_size and not path.read_bytes().endswith(b"\n"):
            handle.write("\n")
        handle.write(line + "\n")
    if not exists:
        path.chmod(0o600)
    return line
