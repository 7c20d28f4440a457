"""SSH: the only code that opens connections to hosts (fabric on top of paramiko).

- Host keys are checked strictly: the user's ~/.ssh/known_hosts, any `UserKnownHostsFile` from
  ~/.ssh/config, and the inventory's `ssh.known_hosts`. An unknown key is refused with its
  fingerprint and the command that trusts it; a changed key is refused loudly. Never auto-added.
- ~/.ssh/config (HostName, User, Port, IdentityFile, ProxyJump), ssh-agent and per-host keys work
  as with OpenSSH.
- One connection per host for a whole run; handshakes in flight are bounded by a semaphore.
- Every remote command has a timeout, and so do connects, banners, auth and channel opens, so a
  hung host fails in seconds instead of hanging the run.

The package's modules: target.py (Target, CommandResult), remote.py (Remote: connecting and commands),
streams.py (Remote's transfers: streams, SFTP files, one TCP exchange), hostkeys.py (known_hosts,
fingerprints, reading a host's offered key).
"""

from __future__ import annotations

from .hostkeys import (
    DEFAULT_KNOWN_HOSTS,
    append_known_host,
    fingerprint,
    host_key_of,
    known_host_key,
    known_hosts_name,
)
from .remote import Remote, resolve_target
from .target import CommandResult, Target

__all__ = ["DEFAULT_KNOWN_HOSTS", "CommandResult", "Remote", "Target", "append_known_host", "fingerprint",
           "host_key_of", "known_host_key", "known_hosts_name", "resolve_target"]
