"""SSH: the only module that opens connections to hosts (fabric on top of paramiko).

- Host keys are checked strictly: the user's ~/.ssh/known_hosts, any `UserKnownHostsFile` from
  ~/.ssh/config, and the inventory's `ssh.known_hosts`. An unknown key is refused with its
  fingerprint and the command that trusts it; a changed key is refused loudly. Never auto-added.
- ~/.ssh/config (HostName, User, Port, IdentityFile, ProxyJump), ssh-agent and per-host keys work
  as with OpenSSH.
- One connection per host for a whole run; handshakes in flight are bounded by a semaphore.
- Every remote command has a timeout, and so do connects, banners, auth and channel opens, so a
  hung host fails in seconds instead of hanging the run.
"""

from __future__ import annotations

import base64
import hashlib
import os
import select
import shlex
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import paramiko
from fabric import Config, Connection

from .errors import HostKeyError, RemoteCommandError, SSHError

DEFAULT_KNOWN_HOSTS = Path("~/.ssh/known_hosts")
# Reading or writing one of the small files a run manages (a few KB): a host that takes longer is hung
# or cut off, whatever ssh.command_timeout allows for pulls.
FILE_TIMEOUT = 30.0
LOST_HINT = ("Check the host; when it answers again, run the command again (with --break-lock if its lock was "
             "left behind).")
T = TypeVar("T")


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH's SHA256 fingerprint, e.g. `SHA256:n1Xx...` (what `ssh-keygen -lf` prints)."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def known_hosts_name(host: str, port: int) -> str:
    """The name a known_hosts line uses: `host` on port 22, `[host]:port` otherwise."""
    return host if port == 22 else f"[{host}]:{port}"


class _RejectUnknown(paramiko.MissingHostKeyPolicy):
    """Refuse unknown hosts, keeping the offered key so the error can show its fingerprint."""

    def __init__(self, label: str, trust_hint: str) -> None:
        self.label = label
        self.trust_hint = trust_hint

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        raise HostKeyError(
            f"Host '{self.label}' ({hostname}) is not in known_hosts; its {key.get_name()} key fingerprint is "
            f"{fingerprint(key)}. Refusing to connect to an unverified host.",
            hint=f"Check the fingerprint on the host (`ssh-keygen -lf /etc/ssh/ssh_host_{_key_file(key)}_key.pub`), "
            f"then run: {self.trust_hint}")


def _key_file(key: paramiko.PKey) -> str:
    return {"ssh-ed25519": "ed25519", "ssh-rsa": "rsa"}.get(key.get_name(), "ecdsa")


@dataclass
class CommandResult:
    command: str
    stdout: str
    stderr: str
    exit_status: int
    duration: float

    @property
    def ok(self) -> bool:
        return self.exit_status == 0


@dataclass(frozen=True)
class Target:
    """Where to connect: a name for messages plus what OpenSSH would need."""

    label: str
    address: str
    user: str | None = None
    port: int | None = None
    key: Path | None = None


class Remote:
    """One SSH connection to one host, reused for every step of a run."""

    def __init__(self, target: Target, *, known_hosts: Sequence[Path] = (), ssh_config: Path | None = None,
                 connect_timeout: float = 10.0, command_timeout: float = 600.0,
                 handshake_gate: threading.Semaphore | None = None) -> None:
        self.target = target
        self.command_timeout = command_timeout
        self.connect_timeout = connect_timeout
        self.stopped_answering = ""  # why, once a command timed out: later commands fail at once
        self._gate = handshake_gate or threading.Semaphore(4)
        config = Config(runtime_ssh_path=str(ssh_config)) if ssh_config else Config()
        connect_kwargs: dict = {"banner_timeout": connect_timeout, "auth_timeout": connect_timeout,
                                "channel_timeout": connect_timeout}
        if target.key:
            connect_kwargs["key_filename"] = [str(target.key)]
        self.conn = Connection(target.address, user=target.user, port=target.port, config=config,
                               connect_timeout=int(max(1, connect_timeout)), connect_kwargs=connect_kwargs)
        self._known_hosts = self._known_hosts_files(known_hosts)
        self._sftp: paramiko.SFTPClient | None = None
        self._connecting = threading.Lock()  # a host's Remote may be shared (e.g. read as a cache seed)

    # --- connecting -----------------------------------------------------------------------------
    def _known_hosts_files(self, extra: Sequence[Path]) -> list[Path]:
        files = [DEFAULT_KNOWN_HOSTS.expanduser()]
        for item in self.conn.ssh_config.get("userknownhostsfile", "").split():
            files.append(Path(os.path.expanduser(item)))
        files.extend(Path(p).expanduser() for p in extra)
        return list(dict.fromkeys(files))

    @property
    def where(self) -> str:
        user = f"{self.conn.user}@" if self.conn.user else ""
        return f"{user}{self.conn.host}:{self.conn.port}"

    def connect(self) -> Remote:
        with self._connecting:
            return self._connect()

    def _connect(self) -> Remote:
        if self.conn.is_connected:
            return self
        client = self.conn.client
        host_keys = client.get_host_keys()
        for path in self._known_hosts:
            if path.is_file():
                try:
                    host_keys.load(str(path))
                except (OSError, paramiko.SSHException) as exc:
                    raise SSHError(f"Cannot read known_hosts file {path}: {exc}.") from None
        trust = f"immich-remote trust {shlex.quote(self.target.label)}"
        client.set_missing_host_key_policy(_RejectUnknown(self.target.label, trust))
        with self._gate:
            try:
                self.conn.open()
            except HostKeyError:
                raise
            except paramiko.BadHostKeyException as exc:
                name = known_hosts_name(self.conn.host, self.conn.port)
                raise HostKeyError(
                    f"Host '{self.target.label}' ({self.where}) presented a DIFFERENT host key than known_hosts "
                    f"records ({exc.key.get_name()} {fingerprint(exc.key)}, expected {fingerprint(exc.expected_key)}). "
                    "This can be an attack; immich-remote refuses to connect.",
                    hint=f"If the host was reinstalled, remove the old key with `ssh-keygen -R '{name}'`, verify the "
                    f"new one and run `{trust}`.") from None
            except paramiko.AuthenticationException as exc:
                raise SSHError(
                    f"Host '{self.target.label}': SSH authentication failed as {self.conn.user} at {self.where} ({exc}).",
                    hint="Load the key into ssh-agent, set ssh_key in the inventory, or check ~/.ssh/config; the "
                    "deploy user needs key-based login.") from None
            except TimeoutError as exc:
                raise SSHError(f"Host '{self.target.label}': no SSH answer from {self.where} within "
                               f"{self.connect_timeout:g} s ({exc or 'timed out'}).",
                               hint="Is the host up and reachable? Is something blocking port "
                               f"{self.conn.port}?") from None
            except (paramiko.SSHException, OSError, EOFError) as exc:
                text = str(exc) or type(exc).__name__
                if "banner" in text or "No existing session" in text:  # TCP accepted, then silence: a hung host
                    raise SSHError(f"Host '{self.target.label}': no SSH answer from {self.where} within "
                                   f"{self.connect_timeout:g} s (the connection opened, then nothing: the host may be "
                                   "hung or overloaded).", hint="Check the host's console; retry when it answers.") from None
                raise SSHError(f"Host '{self.target.label}': cannot connect to {self.where}: {text}.",
                               hint="Check the address and SSH port in the inventory, and that sshd runs.") from None
        return self

    def close(self) -> None:
        if self._sftp is not None:
            try:
                self._sftp.close()
            except Exception:  # noqa: BLE001 - closing a dead channel must not mask the real error
                pass
            self._sftp = None
        self.conn.close()

    def _alive(self) -> bool:
        transport = self.conn.client.get_transport()
        return transport is not None and transport.is_active()

    def __enter__(self) -> Remote:
        return self.connect()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- commands -------------------------------------------------------------------------------
    def run(self, command: str | Sequence[str], *, timeout: float | None = None, check: bool = True,
            what: str | None = None) -> CommandResult:
        """Run a command (a shell string, or argv that is quoted for you) with a timeout; stdin is closed."""
        return self.run_all([command], timeout=timeout, check=check, what=what)[0]

    def run_all(self, commands: Sequence[str | Sequence[str]], *, timeout: float | None = None, check: bool = True,
                what: str | None = None) -> list[CommandResult]:
        """Run commands at the same time, one channel each on this one connection (e.g. the parts of the
        probe): the wall time of the slowest, not the sum. Results in the order given; `timeout` bounds all."""
        texts = [c if isinstance(c, str) else shlex.join(c) for c in commands]
        limit = timeout or self.command_timeout
        if self.stopped_answering:
            # A command already timed out on this host in this run: it is hung or cut off. Fail at once
            # instead of waiting a full timeout for every later command (a rollback has several).
            raise RemoteCommandError(f"Host '{self.target.label}': {what or 'a command'} not tried: the host "
                                     f"stopped answering ({self.stopped_answering}).", command=texts[0],
                                     hint="Check the host; when it answers again, run the command again "
                                     "(with --break-lock if its lock was left behind).")
        self.connect()
        started = time.monotonic()
        try:
            outcomes = self._exec(texts, started + limit)
        except TimeoutError:
            self._lost(f"{what or 'a command'} did not finish within {limit:g} s")
            raise RemoteCommandError(
                f"Host '{self.target.label}': {what or 'a command'} did not finish within {limit:g} s "
                "(the host may be hung or overloaded).", command=texts[0],
                hint="Retry when the host responds; raise ssh.command_timeout for slow pulls.") from None
        except (paramiko.SSHException, OSError, EOFError) as exc:
            self._lost(f"the SSH connection failed during {what or 'a command'}: "
                       f"{str(exc).rstrip('.') or type(exc).__name__}")
            raise SSHError(f"Host '{self.target.label}': {self.stopped_answering}.") from None
        if any(status == -1 for _, _, status in outcomes) and not self._alive():  # the connection went away
            self._lost(f"the SSH connection was lost during {what or 'a command'}")
            raise SSHError(f"Host '{self.target.label}': {self.stopped_answering}.", hint=LOST_HINT)
        results = [CommandResult(text, out, err, status, time.monotonic() - started)
                   for text, (out, err, status) in zip(texts, outcomes, strict=True)]
        for done in results if check else ():
            if not done.ok:
                detail = (done.stderr.strip() or done.stdout.strip()).splitlines()[-5:]
                raise RemoteCommandError(
                    f"Host '{self.target.label}': {what or 'command'} failed (exit {done.exit_status}): "
                    + (" | ".join(detail) or "no output"),
                    command=done.command, stdout=done.stdout, stderr=done.stderr, exit_status=done.exit_status)
        return results

    def _exec(self, texts: Sequence[str], deadline: float) -> list[tuple[str, str, int]]:
        """One `exec` channel per command (no pty, stdin closed), all read in one loop as output comes
        (select on the channels: no helper threads, no polling sleeps) until every command has exited."""
        transport = self.conn.client.get_transport()
        if transport is None or not transport.is_active():
            raise EOFError("the SSH connection is closed")
        channels: list[paramiko.Channel] = []
        try:
            for text in texts:
                channel = transport.open_session(timeout=self.connect_timeout)
                channels.append(channel)
                channel.exec_command(text)
                channel.shutdown_write()
            out: list[list[bytes]] = [[] for _ in channels]
            err: list[list[bytes]] = [[] for _ in channels]
            while True:
                for i, channel in enumerate(channels):
                    while channel.recv_ready():
                        out[i].append(channel.recv(65536))
                    while channel.recv_stderr_ready():
                        err[i].append(channel.recv_stderr(65536))
                waiting = [c for c in channels if not (c.closed or c.eof_received and c.exit_status_ready())
                           or c.recv_ready() or c.recv_stderr_ready()]
                if not waiting:
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError()
                if all(c.eof_received for c in waiting):  # output done, exit status on its way: no busy loop
                    waiting[0].status_event.wait(min(left, 1.0))
                else:
                    select.select([c for c in waiting if not c.eof_received], [], [], min(left, 1.0))
            return [(b"".join(o).decode(errors="replace"), b"".join(e).decode(errors="replace"),
                     c.recv_exit_status() if c.exit_status_ready() else -1)
                    for c, o, e in zip(channels, out, err, strict=True)]
        finally:
            for channel in channels:
                channel.close()

    def stream_in(self, command: str, chunks: Iterable[bytes], *, timeout: float | None = None,
                  what: str = "a streamed upload") -> CommandResult:
        """Run `command` with `chunks` on its stdin over this connection (e.g. `docker load`)."""
        self.connect()
        limit = timeout or self.command_timeout
        started = time.monotonic()
        transport = self.conn.client.get_transport()
        if transport is None:
            raise SSHError(f"Host '{self.target.label}': the SSH connection is closed.")
        channel = transport.open_session(timeout=self.connect_timeout)
        channel.settimeout(limit)
        try:
            channel.exec_command(command)
            for chunk in chunks:
                channel.sendall(chunk)
                if time.monotonic() - started > limit:
                    raise TimeoutError()
            channel.shutdown_write()
            stdout = channel.makefile("rb").read()
            stderr = channel.makefile_stderr("rb").read()
            status = channel.recv_exit_status()
        except TimeoutError:
            raise RemoteCommandError(f"Host '{self.target.label}': {what} did not finish within {limit:g} s.",
                                     command=command) from None
        finally:
            channel.close()
        done = CommandResult(command, stdout.decode(errors="replace"), stderr.decode(errors="replace"), status,
                             time.monotonic() - started)
        if not done.ok:
            raise RemoteCommandError(f"Host '{self.target.label}': {what} failed (exit {status}): "
                                     f"{done.stderr.strip()[-300:] or done.stdout.strip()[-300:]}",
                                     command=command, stdout=done.stdout, stderr=done.stderr, exit_status=status)
        return done

    def stream_out(self, command: str, *, timeout: float | None = None, what: str = "a streamed download",
                   chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """Run `command` and yield its stdout as it comes (e.g. `tar -c`, piped into another host's
        `stream_in`); a non-zero exit raises RemoteCommandError once the output has ended."""
        self.connect()
        limit, started = timeout or self.command_timeout, time.monotonic()
        channel = self.conn.client.get_transport().open_session(timeout=self.connect_timeout)  # type: ignore[union-attr]
        channel.settimeout(limit)
        try:
            channel.exec_command(command)
            while data := channel.recv(chunk_size):
                yield data
                if time.monotonic() - started > limit:
                    raise TimeoutError()
            status, stderr = channel.recv_exit_status(), channel.makefile_stderr("rb").read().decode(errors="replace")
        except (paramiko.SSHException, OSError, EOFError) as exc:  # TimeoutError included; the connection broke
            why = f"did not finish within {limit:g} s" if isinstance(exc, TimeoutError) else \
                f"stopped: {exc or type(exc).__name__}"
            raise RemoteCommandError(f"Host '{self.target.label}': {what} {why}.", command=command) from None
        finally:
            channel.close()
        if status != 0:
            raise RemoteCommandError(f"Host '{self.target.label}': {what} failed (exit {status}): "
                                     f"{stderr.strip()[-300:] or 'no output'}", command=command, stderr=stderr,
                                     exit_status=status)

    # --- files ------------------------------------------------------------------------------------
    @property
    def sftp(self) -> paramiko.SFTPClient:
        self.connect()
        if self._sftp is None:
            self._sftp = self.conn.sftp()
        return self._sftp

    def _lost(self, why: str) -> None:
        """The host stopped answering (a timeout, a dropped connection): later commands fail at once."""
        self.stopped_answering = why
        self._sftp = None  # its requests in flight are lost with it

    def _file_op(self, what: str, timeout: float | None, op: Callable[[paramiko.SFTPClient], T]) -> T:
        """Run one SFTP operation on a small file, bounded by `timeout` (default FILE_TIMEOUT)."""
        limit = min(timeout or FILE_TIMEOUT, self.command_timeout)
        if self.stopped_answering:
            raise RemoteCommandError(f"Host '{self.target.label}': {what} not tried: the host stopped answering "
                                     f"({self.stopped_answering}).", hint=LOST_HINT)
        try:
            sftp = self.sftp
            channel = sftp.get_channel()
            if channel is not None:
                channel.settimeout(limit)
            return op(sftp)
        except TimeoutError:
            self._lost(f"{what} did not finish within {limit:g} s")
            raise RemoteCommandError(f"Host '{self.target.label}': {what} did not finish within {limit:g} s (the "
                                     "host may be hung or cut off).", hint=LOST_HINT) from None
        except (paramiko.SSHException, EOFError) as exc:
            self._lost(f"the SSH connection failed while {what}: {str(exc).rstrip(': ') or type(exc).__name__}")
            raise SSHError(f"Host '{self.target.label}': {self.stopped_answering}.", hint=LOST_HINT) from None

    def write_file(self, path: str, content: bytes, *, mode: int = 0o644, timeout: float | None = None) -> None:
        """Write a small file (bounded like `_file_op`). A refusal by the host (permission, no such
        directory, disk full) raises SSHError; SFTP reports most of them only as "Failure"."""
        def write(sftp: paramiko.SFTPClient) -> None:
            handle = sftp.open(path, "wb")
            handle.write(content)
            handle.close()  # the data goes out here, and the host's verdict on it comes back
            sftp.chmod(path, mode)

        try:
            self._file_op(f"writing {path}", timeout, write)
        except OSError as exc:
            raise SSHError(f"Host '{self.target.label}': cannot write {path}: {exc}.",
                           hint="Check that the deploy user owns the remote directory.") from None

    def read_file(self, path: str, *, timeout: float | None = None) -> bytes | None:
        """A small remote file's content; None when it does not exist or cannot be read. A host that
        does not answer raises (bounded like `_file_op`), rather than passing for a missing file."""
        def read(sftp: paramiko.SFTPClient) -> bytes:
            with sftp.open(path, "rb") as handle:
                return handle.read()

        try:
            return self._file_op(f"reading {path}", timeout, read)
        except OSError:
            return None

    # --- TCP from the host --------------------------------------------------------------------------
    def tcp_exchange(self, address: str, port: int, request: bytes, *, timeout: float = 5.0) -> bytes:
        """Send `request` to address:port *from the host itself* and return everything it answers.

        A `direct-tcpip` channel opens the TCP connection on the host's side, so this tests exactly
        the bind address and port, needs no curl on the host, and never exposes the port. Raises
        ConnectionRefusedError when nothing listens there, ConnectionError when the channel cannot be
        opened, TimeoutError when the answer is not complete within `timeout`.
        """
        self.connect()
        transport = self.conn.client.get_transport()
        if transport is None:
            raise SSHError(f"Host '{self.target.label}': the SSH connection is closed.")
        try:
            channel = transport.open_channel("direct-tcpip", (address, port), ("127.0.0.1", 0), timeout=timeout)
        except paramiko.ChannelException as exc:
            raise ConnectionRefusedError(f"{address}:{port}: {exc.text}") from None
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise ConnectionError(f"{address}:{port}: {exc}") from None
        try:
            channel.settimeout(timeout)
            channel.sendall(request)
            return _read_all_channel(channel, deadline=time.monotonic() + timeout)
        finally:
            channel.close()


def _read_all_channel(channel: paramiko.Channel, *, deadline: float) -> bytes:
    chunks: list[bytes] = []
    while True:
        if time.monotonic() > deadline:
            raise TimeoutError("no complete HTTP answer in time")
        data = channel.recv(65536)
        if not data:
            return b"".join(chunks)
        chunks.append(data)


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


def resolve_target(target: Target, ssh_config: Path | None = None) -> tuple[str, int, str | None]:
    """(address, port, user) after applying ~/.ssh/config, as the connection will use them."""
    config = Config(runtime_ssh_path=str(ssh_config)) if ssh_config else Config()
    conn = Connection(target.address, user=target.user, port=target.port, config=config)
    return conn.host, conn.port, conn.user
