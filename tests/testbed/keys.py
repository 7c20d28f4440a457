"""SSH keys of a bed: one client key (the deploy user's) and one ed25519 host key per host, via ssh-keygen."""

from __future__ import annotations

from pathlib import Path

from .engine import run


def keygen(path: Path, comment: str) -> Path:
    """Create an unencrypted ed25519 key pair at `path` / `path.pub` (kept if present); return `path`."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path])
    return path


def known_hosts_line(port: int, host_key: Path) -> str:
    """`[127.0.0.1]:<port> ssh-ed25519 AAAA...`: how OpenSSH and paramiko record a host on a custom port."""
    key_type, key_data = host_key.with_suffix(".pub").read_text().split()[:2]
    return f"[127.0.0.1]:{port} {key_type} {key_data}"
