"""What a connection moves besides commands: streamed uploads and downloads, small files over SFTP, and
one TCP exchange through a direct-tcpip channel (HTTP to an ML container, HAProxy's runtime API). A mixin of
`Remote` (ssh/remote.py): it uses the connection and the timeouts kept there."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

import paramiko

from ..errors import RemoteCommandError, SSHError
from .target import CommandResult

# Reading or writing one of the small files a run manages (a few KB): a host that takes longer is hung
# or cut off, whatever ssh.command_timeout allows for pulls.
FILE_TIMEOUT = 30.0
LOST_HINT = ("Check the host; when it answers again, run the command again (with --break-lock if its lock was "
             "left behind).")
T = TypeVar("T")


class Streams:
    """Remote's transfers (see remote.py for the connection and the commands)."""

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


