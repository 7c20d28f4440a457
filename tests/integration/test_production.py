"""Production behaviour, seen from outside and with the defaults a user gets: no write request to
Immich unless a change is due, upgrade windows reported as a client sees them, canary-first order,
no failed prediction while hosts swap, and a broken version stopped at the canary."""

from __future__ import annotations

import http.client
import json
import threading
import time
from datetime import datetime, timezone
from urllib.parse import urlsplit

import pytest

from tests.integration.sandbox import IMAGE, inner, make_sandbox, ml_container
from tests.testbed.immich_fake_ml import PredictionError

pytestmark = pytest.mark.integration


class OutsidePoller:
    """GET /ping on a host's ML URL every 0.1 s from this machine, as a client would, in threads: a new
    request starts every 0.1 s even while an earlier one hangs, and each is timed by when it started."""

    def __init__(self, url: str) -> None:
        parsed = urlsplit(url)
        self.address, self.port = parsed.hostname, parsed.port
        self._samples: list[tuple[float, bool]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def samples(self) -> list[tuple[float, bool]]:
        return sorted(self._samples)

    def _one(self, at: float) -> None:  # `at`: wall clock, comparable with Docker's timestamps
        conn = http.client.HTTPConnection(self.address, self.port, timeout=2.0)  # cheap: no TLS context per call
        try:
            conn.request("GET", "/ping")
            ok = conn.getresponse().read() == b"pong"
        except (OSError, http.client.HTTPException):
            ok = False
        finally:
            conn.close()
        self._samples.append((time.time() if ok else at, ok))  # a pong when it arrived, a failure when tried

    def _run(self) -> None:
        while not self._stop.is_set():
            at = time.time()
            threading.Thread(target=self._one, args=(at,), daemon=True).start()
            self._stop.wait(max(0.0, 0.1 - (time.time() - at)))

    def __enter__(self) -> OutsidePoller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        time.sleep(2.1)  # the last requests finish

    def outage_around(self, moment: float) -> float | None:
        """The length of the outage that contains `moment` (wall clock): last pong before it -> first pong
        after it, as seen from here; None when /ping answered at that moment."""
        before = [at for at, ok in self.samples if ok and at <= moment]
        after = [at for at, ok in self.samples if ok and at >= moment]
        if not before or not after:
            return None
        return min(after) - max(before)


def started_at(host) -> float:
    """The wall-clock start of the host's ML container (Docker's RFC 3339 with nanoseconds)."""
    text = ml_container(host)["State"]["StartedAt"]
    head, _, frac = text.rstrip("Z").partition(".")
    return datetime.fromisoformat(head).replace(tzinfo=timezone.utc).timestamp() + float("0." + (frac or "0"))


class PredictionStream:
    """About 5 predictions a second through the fake's model of the server's ML routing."""

    def __init__(self, fake, rate: float = 5.0) -> None:
        self.fake, self.interval = fake, 1.0 / rate
        self.served: list[str] = []
        self.failed: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            at = time.monotonic()
            try:
                self.served.append(self.fake.predict("clip").url)
            except PredictionError as exc:
                self.failed.append(str(exc))
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - at)))

    def __enter__(self) -> PredictionStream:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


def server_upgrades_to(box, factory, version: str) -> None:
    box.fake = factory(version, config=box.fake.config, ml_url=box.bed.local_ml_url)
    box.write_inventory()


def writes_since(fake, mark: int) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in fake.requests()[mark:] if r.method != "GET"]


def test_only_a_real_change_sends_a_write_request_to_immich(sandbox):
    sandbox.cli("deploy")
    for args in (["check"], ["status"], ["plan"], ["deploy", "--dry-run"], ["deploy"], ["upgrade", "--check"],
                 ["upgrade"]):
        mark = len(sandbox.fake.requests())
        sandbox.cli(*args)
        assert writes_since(sandbox.fake, mark) == [], f"`{' '.join(args)}` sent a write request"
        assert len(sandbox.fake.requests()) > mark  # it did talk to Immich (reads only)


def steps_of(data) -> dict[str, list[str]]:
    return {h["host"]: h["steps"] for h in data["hosts"]}


def test_a_dry_run_lists_exactly_the_steps_the_run_then_executes(sandbox):
    first_dry, first = sandbox.cli_json("deploy", "--dry-run"), sandbox.cli_json("deploy")
    assert steps_of(first_dry) == steps_of(first) and "upload" in first["hosts"][0]["steps"]
    sandbox.write_inventory(env={"MACHINE_LEARNING_MODEL_TTL": "600"})  # new files everywhere
    change_dry, change = sandbox.cli_json("deploy", "--dry-run"), sandbox.cli_json("deploy")
    assert steps_of(change_dry) == steps_of(change)
    inner(sandbox.host_named("ml2"), "stop", ml_container(sandbox.host_named("ml2"))["Id"])  # one stopped container
    start_dry, start = sandbox.cli_json("deploy", "--dry-run"), sandbox.cli_json("deploy")
    assert steps_of(start_dry) == steps_of(start)
    assert steps_of(start)["ml1"] == [] and "upload" not in steps_of(start)["ml2"] and "up" in steps_of(start)["ml2"]
    assert [h["status"] for h in start["hosts"]] == ["unchanged", "restarted", "unchanged"]


def test_upgrade_rollback_and_remove_dry_runs_list_exactly_the_steps_their_runs_execute(
        testbed, fresh_hosts, immich_fake_factory, tmp_path):
    box = make_sandbox(testbed, fresh_hosts, immich_fake_factory, tmp_path, version="2.7.4")
    box.cli("deploy")
    server_upgrades_to(box, immich_fake_factory, "2.7.5")
    upgrade_dry, upgrade = box.cli_json("upgrade", "--dry-run"), box.cli_json("upgrade")
    assert steps_of(upgrade_dry) == steps_of(upgrade) and all("image" in s for s in steps_of(upgrade).values())
    assert [h["status"] for h in upgrade["hosts"]] == ["upgraded"] * 3
    back_dry, back = box.cli_json("rollback", "ml1", "--dry-run"), box.cli_json("rollback", "ml1")
    assert steps_of(back_dry) == steps_of(back) and "gate" in steps_of(back)["ml1"]
    assert back["hosts"][0]["status"] == "reverted" and "v2.7.4" in back["hosts"][0]["image"]
    mark = len(box.fake.requests())
    remove_dry = box.cli_json("remove", "ml2", "--dry-run")
    assert writes_since(box.fake, mark) == [] and ml_container(box.host_named("ml2"))["State"]["Running"]
    assert remove_dry["immich"]["changed"] and ml2_url(box) not in remove_dry["immich"]["urls_after"]
    remove = box.cli_json("remove", "ml2")
    assert steps_of(remove_dry) == steps_of(remove) == {"ml2": ["lock", "record", "down", "unlink", "state",
                                                                "history"]}
    assert ml_container(box.host_named("ml2")) is None and ml2_url(box) not in box.urls()
    again_dry, again = box.cli_json("remove", "ml2", "--dry-run"), box.cli_json("remove", "ml2")
    assert steps_of(again_dry) == steps_of(again) == {"ml2": []} and again["hosts"][0]["status"] == "unchanged"


def ml2_url(box) -> str:
    return box.host_named("ml2").ml_url


def test_dry_run_of_a_host_with_nothing_to_do_shows_no_diff(sandbox):
    sandbox.cli("deploy")
    data = sandbox.cli_json("deploy", "--dry-run")
    assert [(h["status"], h["action"], h["diff"]) for h in data["hosts"]] == [("dry-run", "unchanged", {})] * 3
    human = sandbox.cli("deploy", "--dry-run").output
    assert "/dev/null" not in human and "no change" in human


def test_upgrade_under_traffic_canary_first_windows_as_measured_outside_and_no_failed_prediction(
        testbed, fresh_hosts, immich_fake_factory, tmp_path):
    box = make_sandbox(testbed, fresh_hosts, immich_fake_factory, tmp_path, version="2.7.4")
    box.cli("deploy")
    server_upgrades_to(box, immich_fake_factory, "2.7.5")
    for host in box.hosts:
        box.fake.wait_for_health(host.ml_url, True, timeout=10)
    pollers = {h.name: OutsidePoller(h.ml_url) for h in box.hosts}
    for poller in pollers.values():
        poller.__enter__()
    try:
        time.sleep(0.5)
        with PredictionStream(box.fake) as stream:
            data = box.cli_json("upgrade")
            time.sleep(0.5)
    finally:
        for poller in pollers.values():
            poller.__exit__()
    assert data["canary"] == "ml3"
    assert [(h["host"], h["status"]) for h in data["hosts"]] == [("ml1", "upgraded"), ("ml2", "upgraded"),
                                                                  ("ml3", "upgraded")]
    starts = {h.name: started_at(h) for h in box.hosts}
    # Reverse URL order, one at a time: ml3 (canary), then ml2, then the primary ml1 last.
    assert starts["ml3"] < starts["ml2"] < starts["ml1"]
    for h in data["hosts"]:
        outside = pollers[h["host"]].outage_around(starts[h["host"]])
        assert outside is not None and abs(h["window"] - outside) <= 0.5, (h["host"], h["window"], outside)
    # keep-local: while a host swaps, Immich's routing falls through to the next URL; nothing fails.
    assert stream.failed == [] and len(stream.served) >= 10


def test_a_version_that_listens_but_never_answers_stops_at_the_canary(testbed, fresh_hosts, immich_fake_factory,
                                                                      tmp_path):
    box = make_sandbox(testbed, fresh_hosts, immich_fake_factory, tmp_path, version="2.7.4")
    box.write_inventory(env={"MACHINE_LEARNING_STUB_MODE": "hang", "MACHINE_LEARNING_STUB_ONLY_VERSIONS": "v2.7.5"})
    box.cli("deploy")
    server_upgrades_to(box, immich_fake_factory, "2.7.5")
    started = time.monotonic()
    data = json.loads(box.cli("--json", "upgrade", expect=1).stdout)
    elapsed = time.monotonic() - started
    assert [h["status"] for h in data["hosts"]] == ["skipped", "skipped", "rolled-back"]
    assert all(ml_container(h)["Config"]["Image"] == f"{IMAGE}:v2.7.4" for h in box.hosts)
    assert [ml_container(h)["State"]["Status"] for h in box.hosts] == ["running"] * 3
    # Given up by Docker's own healthcheck (default settings) or at health_timeout (3 min), not per host.
    assert elapsed < 240, elapsed
