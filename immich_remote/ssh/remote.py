"""One SSH connection per host for a whole run: connecting with strict host keys, and running commands with
timeouts (one channel each, read by one loop). Transfers are in streams.py, host keys in hostkeys.py."""

from __future__ import annotations

import os
import select
import shlex
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import paramiko
from fabric import Config, Connection

from ..errors import HostKeyError, RemoteCommandError, SSHError
from .hostkeys import DEFAULT_KNOWN_HOSTS, RejectUnknown, fingerprint, known_hosts_name
from .streams import LOST_HINT, Streams
from .target import CommandResult, Target


class Remote(Streams):
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
        client.set_missing_host_key_policy(RejectUnknown(self.target.label, trust))
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
                                     hint=LOST_HINT)
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

    def _lost(self, why: str) -> None:
        """The host stopped answering (a timeout, a dropped connection): later commands fail at once."""
        self.stopped_answering = why
        self._sftp = None  # its requests in flight are lost with it


def resolve_target(target: Target, ssh_config: Path | None = None) -> tuple[str, int, str | None]:
    """(address, port, user) after applying ~/.ssh/config, as the connection will use them."""
    config = Config(runtime_ssh_path=str(ssh_config)) if ssh_config else Config()
    conn = Connection(target.address, user=target.user, port=target.port, config=config)
    return conn.host, conn.port, conn.user

