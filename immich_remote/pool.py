"""Rolling a pool's members through its balancer: drain a member, swap it, put it back, one at a time.

The pool's URL never goes down during an upgrade: a member leaves the rotation (`drain`: no new requests,
the ones in flight finish) before its container is replaced, and comes back (`ready`) once its health gate
passed; the next member waits until the balancer's own health check sees this one UP again. Members of the
same pool never swap at the same time, whatever the batch size. The balancer itself is a deploy target
like a host (names.balancer_service); `balancer_targets` says which ones a run covers, and the commands
run them last and alone.

The decisions are pure (`balancer_targets`, `drain_plan`); `PoolGate` talks to the balancer through
balancer_api.py over the balancer host's SSH connection.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from .errors import ImmichRemoteError
from .inventory import Host, Inventory, Pool
from .rollout import HostResult

DRAIN_TIMEOUT = 120.0  # in-flight requests finish well within this (a first model load may not: then we go on)
BACK_UP_TIMEOUT = 60.0  # the balancer's check (2 s x rise 2) sees a healthy member UP in ~4-6 s
SERVING = ("deployed", "unchanged", "restarted", "upgraded")


def balancer_targets(inventory: Inventory, hosts: Sequence[Host]) -> list[Host]:
    """Pure: the balancers a run over `hosts` covers: each pool with a member among them."""
    names = {h.name for h in hosts}
    return [p.target for p in inventory.pools if names & set(p.member_names)]


@dataclass
class DrainRecord:
    """What happened at the balancer around one member's swap (shown in the host's detail and JSON)."""

    drained_s: float | None = None
    back_up_s: float | None = None
    note: str = ""

    def detail(self) -> str:
        parts = []
        if self.drained_s is not None:
            parts.append(f"drained at the balancer in {self.drained_s:.1f}s")
        if self.back_up_s is not None:
            parts.append(f"back in rotation after {self.back_up_s:.1f}s")
        if self.note:
            parts.append(self.note)
        return "; ".join(parts)


@dataclass
class PoolGate:
    """Per run: one lock per pool (members swap one at a time) and each balancer's runtime API."""

    inventory: Inventory
    remote_for: Callable[[Host], object]  # Connections.remote
    progress: Callable[[str, str], None] = lambda host, text: None
    _locks: dict[str, threading.Lock] = field(default_factory=dict)
    _guard: threading.Lock = field(default_factory=threading.Lock)

    def _lock(self, pool: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(pool, threading.Lock())

    def api(self, pool: Pool):  # -> BalancerAPI | None
        """The balancer's runtime API, or None when it does not run (yet): then there is nothing to drain."""
        try:
            return read_balancer(pool, self.remote_for(pool.target))[0]
        except ImmichRemoteError:  # BalancerError included
            return None

    def around(self, host: Host, swap: Callable[[], HostResult]) -> HostResult:
        """Swap `host`; a pool member is drained first and put back after, one member of a pool at a time."""
        pool = self.inventory.pool_of(host.name)
        if pool is None:
            return swap()
        with self._lock(pool.name):
            api = self.api(pool)
            record = DrainRecord()
            if api is None:
                record.note = f"pool {pool.name}'s balancer is not running: nothing to drain"
                return _with(swap(), record)
            record = self._drain(api, host)
            result = swap()
            self._back(api, host, result, record)
            return _with(result, record)

    def removing(self, host: Host, remove: Callable[[], HostResult]) -> HostResult:
        """`remove` of a pool member: drained first, then out of the rotation for good (`maint`) before its
        container goes, so no request is cut off and the balancer's check does not count it as a failure."""
        pool = self.inventory.pool_of(host.name)
        api = self.api(pool) if pool is not None else None
        if api is None:
            return remove()
        from .balancer_api import BalancerError

        record = self._drain(api, host)
        try:
            api.set_state(host.name, "maint")
        except BalancerError as exc:
            record.note = f"taking it out of the balancer failed: {exc.message.rstrip('.')}"
        result = remove()
        if not record.note:
            record.note = f"left in maintenance at pool {pool.name}'s balancer: take it out of the pool in the inventory"
        return _with(result, record)

    def _drain(self, api, host: Host) -> DrainRecord:
        from .balancer_api import BalancerError

        record = DrainRecord()
        self.progress(host.name, "draining at the balancer")
        try:
            api.set_state(host.name, "drain")
            record.drained_s = api.wait_drained(host.name, DRAIN_TIMEOUT)
        except BalancerError as exc:
            record.note = f"draining did not finish ({exc.message.rstrip('.')}); swapped anyway"
        return record

    def _back(self, api, host: Host, result: HostResult, record: DrainRecord) -> None:
        """Back in rotation (also after a rollback: the old container serves again; the balancer's check
        keeps a member that does not answer out). Wait until the balancer sees it UP before the next one."""
        from .balancer_api import BalancerError

        self.progress(host.name, "back into the balancer's rotation")
        started = time.monotonic()
        try:
            api.set_state(host.name, "ready")
            if result.status not in SERVING:
                return
            while True:
                member = api.member(host.name)
                if member.healthy and member.status.split(" ")[0] == "UP":
                    record.back_up_s = time.monotonic() - started
                    return
                if time.monotonic() - started > BACK_UP_TIMEOUT:
                    record.note = (f"the balancer still sees it {member.status} ({member.check_status}) after "
                                   f"{BACK_UP_TIMEOUT:g}s")
                    return
                time.sleep(0.25)
        except BalancerError as exc:
            record.note = f"putting it back at the balancer failed: {exc.message.rstrip('.')}"


def _with(result: HostResult, record: DrainRecord) -> HostResult:
    text = record.detail()
    if text:
        result.message = "; ".join(filter(None, [result.message, text]))
        result.details = {**(result.details or {}), "pool": {"drained_s": record.drained_s,
                                                             "back_up_s": record.back_up_s, "note": record.note}}
    return result


@dataclass
class PoolStatus:
    """A pool as its balancer sees it, for `status` and `report`."""

    name: str
    url: str
    balancer: str
    members: list[dict] = field(default_factory=list)  # name, state, status, check, weight, current, requests, errors
    current: int | None = None  # requests in flight through the pool now
    requests: int | None = None  # requests since the balancer started
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and any(m["state"] == "ready" for m in self.members)

    def to_data(self) -> dict:
        from dataclasses import asdict

        return asdict(self)


def read_balancer(pool: Pool, remote):  # -> tuple[BalancerAPI, PoolStats]
    """Connect to the balancer's host and read its statistics once: the API and what it said. Raises
    ImmichRemoteError (BalancerError when the runtime API does not answer)."""
    from .balancer_api import BalancerAPI

    remote.connect()
    api = BalancerAPI(remote, pool.admin_port, host=pool.balancer_host)
    return api, api.stats()


def pool_status(pool: Pool, remote) -> PoolStatus:
    """Read the pool's members from its balancer's runtime API (`remote`: the balancer host's connection)."""
    from .haproxy import member_state

    result = PoolStatus(pool.name, pool.url, pool.balancer_host)
    try:
        stats = read_balancer(pool, remote)[1]
    except ImmichRemoteError as exc:
        result.error = exc.message
        return result
    weights = {m.host: m.weight for m in pool.members}
    for m in stats.members:
        result.members.append({"name": m.name, "state": member_state(m), "status": m.status,
                               "check": m.check_status, "weight": m.weight, "configured_weight": weights.get(m.name),
                               "current": m.scur, "requests": m.requests, "errors": m.eresp + m.econ})
    if stats.frontend is not None:
        result.current, result.requests = stats.frontend.scur, stats.frontend.requests
    return result
