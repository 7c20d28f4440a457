"""The outage guard's decisions, pure (no I/O): behind `immich-remote guard`.

When no ML URL answers, Immich does not keep ML jobs waiting: they fail and are dropped (reference/
immich.md 7.3: "failed for all URLs", no automatic retry). The guard watches the URLs the way the
server does (`GET /ping`, the server's `availabilityChecks.timeout`) and the ML queues:

- `url_health`: one URL's verdict (up, down, or unknown: a name that does not resolve where the guard
  runs, such as the server's own `http://immich-machine-learning:3003` seen from another machine);
- `decide`: given the URLs, the queues and what the guard itself paused, the one action due now:
  `none`, `pause` (a total outage: no URL up and none unknown), or `resume` (a URL is back: queue
  the missing jobs of the queues the guard paused, `force: false`, then resume exactly those);
- `GuardMemory`: what the guard paused, kept in a small state file so a restart changes nothing and
  a queue paused by someone else is never resumed by the guard.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import InputError

UP, DOWN, UNKNOWN = "up", "down", "unknown"
NONE, PAUSE, RESUME = "none", "pause", "resume"
DEFAULT_CHECK_TIMEOUT = 2.0  # seconds: Immich's machineLearning.availabilityChecks.timeout default (2000 ms)
STATE_FILE = "guard.json"

# How "the name does not resolve" reads in socket/httpx errors (glibc, musl, macOS, Windows).
_UNRESOLVED = ("name or service not known", "nodename nor servname", "temporary failure in name resolution",
               "no address associated with hostname", "name does not resolve", "getaddrinfo failed",
               "name resolution")


@dataclass(frozen=True)
class UrlHealth:
    url: str
    state: str  # UP, DOWN or UNKNOWN
    detail: str

    def to_data(self) -> dict[str, str]:
        return {"url": self.url, "state": self.state, "detail": self.detail}


def _unresolved(error: str | None) -> bool:
    text = (error or "").lower()
    return any(marker in text for marker in _UNRESOLVED)


def url_health(url: str, here: tuple[bool, float | None, str | None],
               via_server: tuple[bool, str] | None = None) -> UrlHealth:
    """The verdict on one URL from `GET /ping` here (`ml_api.ping_direct`'s answer) and, when it did
    not answer here and the inventory names `immich.ssh_host`, from the Immich server's host.

    A name that does not resolve here is UNKNOWN, not DOWN, unless the server's host got no answer
    either for an address it could resolve: the server may reach it inside its Docker network.
    """
    ok, latency, error = here
    if ok:
        return UrlHealth(url, UP, f"pong in {latency or 0:.0f} ms from here")
    if via_server is not None and via_server[0]:
        return UrlHealth(url, UP, f"pong from the Immich server's host (from here: {error})")
    where = f"from here: {error}" + (f"; from the Immich server's host: {via_server[1]}" if via_server else "")
    if _unresolved(error):
        return UrlHealth(url, UNKNOWN, f"cannot be checked: the name does not resolve here ({where})")
    return UrlHealth(url, DOWN, where)


def check_timeout(config: Mapping[str, Any]) -> float:
    """The server's availability-check timeout in seconds (`machineLearning.availabilityChecks.timeout`,
    in ms); the default 2 s when the config has none (servers before 2.0 had it as an env variable)."""
    ml = config.get("machineLearning") if isinstance(config.get("machineLearning"), Mapping) else {}
    checks = ml.get("availabilityChecks") if isinstance(ml.get("availabilityChecks"), Mapping) else {}
    value = checks.get("timeout")
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return float(value) / 1000.0
    return DEFAULT_CHECK_TIMEOUT


def ml_urls(config: Mapping[str, Any]) -> tuple[bool, list[str]]:
    """(machineLearning.enabled, machineLearning.urls in order) from Immich's config."""
    ml = config.get("machineLearning") if isinstance(config.get("machineLearning"), Mapping) else {}
    urls = ml.get("urls") if isinstance(ml.get("urls"), list) else ([ml["url"]] if ml.get("url") else [])
    return bool(ml.get("enabled", True)), [str(u) for u in urls]


@dataclass
class GuardMemory:
    """What the guard paused on which server (the state file's content)."""

    server: str
    paused: list[str] = field(default_factory=list)
    since: str | None = None
    reason: str | None = None

    def to_data(self) -> dict[str, Any]:
        return {"server": self.server, "paused": list(self.paused), "since": self.since, "reason": self.reason}

    @classmethod
    def from_data(cls, data: Any, *, server: str, source: str) -> GuardMemory:
        """The memory read from the state file at `source`; an empty one for another server (the
        guard never resumes queues on a server it did not pause them on)."""
        if data is None:
            return cls(server)
        paused = data.get("paused") if isinstance(data, dict) else None
        if not isinstance(paused, list) or not all(isinstance(q, str) for q in paused):
            raise InputError(f"The guard's state file {source} is not what the guard writes "
                             "(expected {\"server\": ..., \"paused\": [queue names]}).",
                             hint="Check which ML queues are paused (`immich-remote jobs`), resume them if they "
                             "should run (`immich-remote jobs resume`), then delete the file.")
        if str(data.get("server", "")).rstrip("/") != server.rstrip("/"):
            return cls(server)
        return cls(server, list(dict.fromkeys(paused)), data.get("since"), data.get("reason"))


@dataclass(frozen=True)
class Decision:
    action: str  # NONE, PAUSE or RESUME
    reason: str
    outage: bool
    pause: tuple[str, ...] = ()
    resume: tuple[str, ...] = ()
    run_missing: tuple[str, ...] = ()  # sent before the resume: the start waits in the paused queue
    forget: tuple[str, ...] = ()  # remembered queues that someone else resumed (or that are gone)

    def to_data(self) -> dict[str, Any]:
        return {"action": self.action, "reason": self.reason, "outage": self.outage, "pause": list(self.pause),
                "resume": list(self.resume), "runMissing": list(self.run_missing), "forget": list(self.forget)}


def _describe(health: Sequence[UrlHealth]) -> str:
    return "; ".join(f"{h.url} ({h.detail})" for h in health)


def decide(*, ml_enabled: bool, health: Sequence[UrlHealth], queues: Mapping[str, Mapping[str, Any]],
           remembered: Sequence[str], enabled: Sequence[str]) -> Decision:
    """The one action due now.

    `health`: every URL of Immich's list, in order; `queues`: the ML queues the server has
    (`jobs.ml_queue_counts`, with `isPaused`); `remembered`: the queues the guard paused;
    `enabled`: the ML queues whose feature is on (`jobs.enabled_ml_queues`).

    - Outage (ML enabled, no URL up, none unknown): pause every ML queue that runs. Queues paused
      already (by anyone) are left alone and not claimed.
    - No outage: the remembered queues that are still paused are the guard's to resume; first their
      missing jobs are queued (only the enabled ones; `force: false`), while the queue is paused and
      has no active job, so the start is accepted and waits; then they are resumed.
    - A remembered queue that runs again (someone resumed it) or no longer exists is forgotten.
    """
    ours = [q for q in remembered if q in queues and queues[q].get("isPaused")]
    forget = tuple(q for q in remembered if q not in ours)
    up = [h for h in health if h.state == UP]
    unknown = [h for h in health if h.state == UNKNOWN]
    if not ml_enabled:
        outage, why = False, "machine learning is disabled in Immich's settings"
    elif not health:
        outage, why = True, "Immich's ML URL list is empty"
    else:
        outage = not up and not unknown
        why = f"no ML URL answers /ping: {_describe(health)}" if outage else ""
    if outage:
        running = tuple(q for q in queues if not queues[q].get("isPaused"))
        if running:
            return Decision(PAUSE, f"{why}; pausing the ML queues so their jobs wait instead of failing", True,
                            pause=running, forget=forget)
        held = ", ".join(ours) or "none"
        return Decision(NONE, f"{why}; the ML queues are paused already (by the guard: {held})", True, forget=forget)
    if up:
        why = why or f"{up[0].url} answers /ping ({up[0].detail})"
    elif unknown:
        why = why or (f"no URL is known to be down: {_describe(unknown)}; the guard pauses only when every "
                      "URL is down")
    if ours:
        return Decision(RESUME, f"{why}; resuming the queues the guard paused and queueing their missing jobs",
                        False, resume=tuple(ours), run_missing=tuple(q for q in ours if q in enabled),
                        forget=forget)
    return Decision(NONE, why, False, forget=forget)


def remember(memory: GuardMemory, decision: Decision, *, paused: Sequence[str] = (), resumed: Sequence[str] = (),
             at: str | None = None) -> GuardMemory:
    """The memory after `decision` was carried out: `paused`/`resumed` are the queues where it worked."""
    kept = [q for q in memory.paused if q not in decision.forget and q not in resumed]
    added = [q for q in paused if q not in kept]
    if not kept and not added:
        return GuardMemory(memory.server)
    since = memory.since if kept else at
    reason = memory.reason if kept else decision.reason
    return GuardMemory(memory.server, kept + added, since, reason)
