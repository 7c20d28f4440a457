"""The ONE module that talks to the pool balancer's runtime API (HAProxy's `stats socket`).

The API listens on the balancer host's 127.0.0.1 only; `ssh.Remote.tcp_exchange` opens the TCP connection
from the host itself (a direct-tcpip channel), so nothing is exposed. HAProxy answers one command line per
connection (non-interactive mode), ends the answer with an empty line and closes. The commands and the
parsers are pure (haproxy.py); here they are sent, the answers checked, and every write verified by reading
back.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from .errors import ImmichRemoteError
from .haproxy import (
    SHOW_SERVERS_STATE,
    SHOW_STAT,
    STATES,
    ConfigValueError,
    MemberStat,
    PoolStats,
    command_error,
    drained,
    parse_pool_stats,
    set_state_command,
    set_weight_command,
)


class BalancerError(ImmichRemoteError):
    """The balancer's runtime API did not answer, answered an error, or a change did not take."""


class Exchange(Protocol):
    """What BalancerAPI needs from `ssh.Remote`: one request, the whole answer until the peer closes."""

    def tcp_exchange(self, address: str, port: int, request: bytes, *, timeout: float = 5.0) -> bytes: ...


class BalancerAPI:
    """The runtime API of the balancer that `remote` reaches at address:port (from the balancer host)."""

    def __init__(self, remote: Exchange, port: int, address: str = "127.0.0.1", *, timeout: float = 5.0,
                 host: str | None = None) -> None:
        self.remote = remote
        self.port = port
        self.address = address
        self.timeout = timeout
        target = getattr(remote, "target", None)
        self.host = host or getattr(target, "label", None) or "the balancer host"

    def _where(self) -> str:
        return f"the balancer's runtime API on {self.host} ({self.address}:{self.port})"

    def command(self, line: str) -> str:
        """Send one command line, return the answer (text). BalancerError when nothing answers."""
        try:
            raw = self.remote.tcp_exchange(self.address, self.port, f"{line}\n".encode(), timeout=self.timeout)
        except ConnectionRefusedError as exc:
            raise BalancerError(
                f"Nothing listens on {self._where()} (`{line}`): {exc}.",
                hint="Is the balancer's container running? `immich-remote status` shows it; a deploy starts it.",
            ) from None
        except OSError as exc:  # ConnectionError, TimeoutError
            raise BalancerError(f"{self._where()} did not answer `{line}`: {exc or type(exc).__name__}.") from None
        if not raw:
            raise BalancerError(f"{self._where()} closed without answering `{line}` (is that port the balancer's?).")
        return raw.decode("utf-8", "replace")

    def _set(self, line: str) -> None:
        error = command_error(self.command(line))
        if error is not None:
            raise BalancerError(f"{self._where()} refused `{line}`: {error}")

    def stats(self) -> PoolStats:
        """Every member's state, health, sessions, requests and errors, plus the frontend/backend totals."""
        stat = self.command(SHOW_STAT)
        state = self.command(SHOW_SERVERS_STATE)
        try:
            return parse_pool_stats(stat, state)
        except ValueError as exc:
            raise BalancerError(f"{self._where()} answered something that is not HAProxy's statistics: {exc}") from None

    def member(self, name: str, stats: PoolStats | None = None) -> MemberStat:
        stats = stats or self.stats()
        found = stats.member(name)
        if found is None:
            names = ", ".join(m.name for m in stats.members) or "none"
            raise BalancerError(f"Member '{name}' is not in the pool at {self._where()} (members: {names}).",
                                hint="Deploy the pool so that the balancer's config lists it.")
        return found

    def set_state(self, name: str, state: str) -> MemberStat:
        """Put member `name` in `state` (ready, drain, maint) unless it already is; verified by reading back."""
        if state not in STATES:
            raise ConfigValueError(f"member state '{state}' is not one of {', '.join(STATES)}.")
        return self._change(name, set_state_command(name, state), lambda m: m.admin == state,
                            lambda m: f"reads '{m.admin}' ({m.status})")

    def set_weight(self, name: str, weight: int) -> MemberStat:
        """Change member `name`'s weight unless it already has it; verified by reading back."""
        return self._change(name, set_weight_command(name, weight), lambda m: m.weight == weight,
                            lambda m: f"has weight {m.weight}")

    def _change(self, name: str, line: str, done: Callable[[MemberStat], bool],
                found: Callable[[MemberStat], str]) -> MemberStat:
        """Send `line` only when member `name` is not `done` yet, then read it back: a write that did not
        take is an error naming what the member shows (`found`)."""
        current = self.member(name)
        if done(current):
            return current
        self._set(line)
        after = self.member(name)
        if not done(after):
            raise BalancerError(f"`{line}` was accepted by {self._where()} but member '{name}' {found(after)} "
                                "afterwards.")
        return after

    def wait_drained(self, name: str, timeout: float, poll: float = 0.2) -> float:
        """Wait until member `name` has no request in flight; return the seconds it took."""
        started = time.monotonic()
        while True:
            stats = self.stats()
            self.member(name, stats)
            if drained(stats, name):
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                stat = self.member(name, stats)
                raise BalancerError(
                    f"Member '{name}' still has {stat.scur} request(s) in flight and {stat.qcur} queued after "
                    f"{timeout:g} s of draining at {self._where()}.",
                    hint="A first model load can take minutes: wait longer, or check the member's logs.",
                )
            time.sleep(poll)
