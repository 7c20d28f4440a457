"""The ML pool on the test bed: three stub hosts behind one HAProxy (Debian's package, from the bed registry),
deployed from the inventory's `pools:`, balancing, surviving a member failure, and upgrading under load.

Requests are counted by each member's OWN log (the stub logs `stub: POST /predict -> 200` per request), never
from the balancer's claims. Predictions go through the fake's model of Immich's routing (`fake.predict`), so a
request served by the local fallback is seen as such.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import yaml

from immich_remote.haproxy import set_state_command
from tests.integration.sandbox import Sandbox, inner, make_sandbox
from tests.testbed.balancer_image import runtime_api

pytestmark = pytest.mark.integration

POOL = "gpus"
PORT = 3010
# Real inference takes tens to hundreds of ms; the stub answers in about 1 ms, so with it least-connections
# would follow whichever stub the loaded test machine schedules first. A fixed service time per request makes
# the members equal, as the "within 20% of equal for equal weights" assumes.
SERVICE_TIME = {"MACHINE_LEARNING_STUB_PREDICT_DELAY": "0.2"}


def with_pool(box: Sandbox, balancer: str = "ml1", **extra) -> str:
    """Rewrite the sandbox's inventory with every host in one pool; returns the pool's URL."""
    box.write_inventory(env=SERVICE_TIME)
    data = yaml.safe_load(box.inventory.read_text())
    data["pools"] = {POOL: {"members": [h.name for h in box.hosts], "balancer": balancer,
                            "balancer_image": box.bed.balancer_image, **extra}}
    box.inventory.write_text(yaml.safe_dump(data, sort_keys=False))
    return f"http://{box.host_named(balancer).bind_address}:{PORT}"


def served(host) -> int:
    """/predict requests this member answered, from its own container log."""
    ids = inner(host, "ps", "-aq", "--filter", "label=com.docker.compose.service=immich-machine-learning").split()
    total = 0
    for cid in ids:
        logs = host.exec(["sh", "-c", f"docker logs {cid} 2>&1"], check=False).stdout
        total += logs.count("stub: POST /predict -> 200")
    return total


def burst(box: Sandbox, count: int, workers: int = 6) -> list:
    """`count` predictions through Immich's routing, `workers` at a time (Immich runs ML jobs concurrently)."""
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(lambda _: box.fake.predict("clip"), range(count)))


def test_a_pool_is_registered_as_one_url_and_spreads_requests_over_its_members(sandbox: Sandbox):
    pool_url = with_pool(sandbox)
    data = sandbox.cli_json("deploy")
    statuses = {h["host"]: h["status"] for h in data["hosts"]}
    assert statuses == {"ml1": "deployed", "ml2": "deployed", "ml3": "deployed", POOL: "deployed"}, data
    # Immich gets the pool's URL, then its own ML: never a member's own URL.
    assert sandbox.urls() == [pool_url, sandbox.bed.local_ml_url]

    before = {h.name: served(h) for h in sandbox.hosts}
    results = burst(sandbox, 90)
    assert {r.url for r in results} == {pool_url}  # every prediction answered through the pool, none by the fallback
    counts = {h.name: served(h) - before[h.name] for h in sandbox.hosts}
    assert sum(counts.values()) == 90, counts
    for count in counts.values():  # equal weights: each within 20% of a third
        assert 24 <= count <= 36, counts

    # The balancer's view is shown by status: every member ready and healthy.
    status = sandbox.cli_json("status")
    pool = next(p for p in status["pools"] if p["name"] == POOL)
    assert {m["name"]: m["state"] for m in pool["members"]} == {"ml1": "ready", "ml2": "ready", "ml3": "ready"}
    assert sum(m["requests"] for m in pool["members"]) >= 90  # the balancer's own count (checks excluded)
    # The ops record names the pool's URL in Immich's list and has the members' table.
    record = sandbox.cli("report").output
    assert f"1. {pool_url}: ML pool {POOL} (balancer on ml1)" in record, record
    assert "## ML pool gpus" in record and "| ml2 | ready |" in record, record

    # A second deploy changes nothing: no container recreated, no config write.
    again = sandbox.cli_json("deploy")
    assert {h["status"] for h in again["hosts"]} == {"unchanged"}, again

    # A stopped member costs no failed request once the balancer's check notices.
    stopped = sandbox.host_named("ml3")
    inner(stopped, "stop", "-t", "0", *inner(stopped, "ps", "-q", "--filter",
                                             "label=com.docker.compose.service=immich-machine-learning").split())
    time.sleep(6)  # the balancer's default check: every 2 s, down after 2 failures
    before = {h.name: served(h) for h in sandbox.hosts if h is not stopped}
    results = burst(sandbox, 40)
    assert {r.url for r in results} == {pool_url}
    assert all(len(r.attempts) == 1 for r in results)  # no request failed over to the local ML
    counts = {name: served(sandbox.host_named(name)) - n for name, n in before.items()}
    assert sum(counts.values()) == 40 and min(counts.values()) > 0, counts

    # The next deploy starts the stopped member again (drained, gated, back in rotation); a new weight
    # changes only the balancer's config: it alone is redeployed, last, its window measured.
    with_pool(sandbox, members=["ml1", "ml2", {"host": "ml3", "weight": 2}])
    changed = sandbox.cli_json("deploy")
    statuses = {h["host"]: h["status"] for h in changed["hosts"]}
    assert statuses == {"ml1": "unchanged", "ml2": "unchanged", "ml3": "restarted", POOL: "deployed"}, changed
    restarted = next(h for h in changed["hosts"] if h["host"] == "ml3")
    assert "back in rotation after" in restarted["message"], restarted
    balancer = next(h for h in changed["hosts"] if h["host"] == POOL)
    assert balancer["window"] is not None and balancer["window"] < 5, balancer  # Immich falls back this long
    assert sandbox.urls() == [pool_url, sandbox.bed.local_ml_url]


def test_upgrading_a_pool_under_load_fails_no_prediction_and_never_falls_back(testbed, fresh_hosts,
                                                                            immich_fake_factory, tmp_path):
    sandbox = make_sandbox(testbed, fresh_hosts, immich_fake_factory, tmp_path, version="2.7.4")
    pool_url = with_pool(sandbox)
    sandbox.cli("deploy")
    # The Immich server is upgraded (same stored config, a new process): its routing now drives the stream.
    sandbox.fake = immich_fake_factory("2.7.5", config=sandbox.fake.config, ml_url=testbed.local_ml_url)
    with_pool(sandbox)
    # A server that just started has not checked its URLs yet; until its first check of the pool answers,
    # Immich would try the local ML first. Start the stream as a server that has been up a moment.
    sandbox.fake.wait_for_health(pool_url, True, timeout=10)
    stop = threading.Event()
    outcomes: Counter[str] = Counter()
    errors: list[str] = []

    def stream() -> None:
        while not stop.is_set():
            try:
                result = sandbox.fake.predict("clip")
                outcomes["pool" if result.url == pool_url else result.url] += 1
                if len(result.attempts) > 1:
                    outcomes["retried"] += 1
            except Exception as exc:  # a failed prediction: what this test must never see
                errors.append(repr(exc))

    threads = [threading.Thread(target=stream) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        data = sandbox.cli_json("upgrade")
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    statuses = {h["host"]: h["status"] for h in data["hosts"]}
    assert statuses == {"ml1": "upgraded", "ml2": "upgraded", "ml3": "upgraded", POOL: "unchanged"}, data
    assert errors == []
    assert set(outcomes) <= {"pool"}, outcomes  # zero served by the local fallback, zero retried elsewhere
    assert outcomes["pool"] > 20, outcomes
    for host in data["hosts"]:
        if host["host"] != POOL:
            assert "drained at the balancer" in host["message"], host
    assert sandbox.urls() == [pool_url, sandbox.bed.local_ml_url]


def set_member(balancer_host, member: str, state: str) -> None:
    """Through the runtime API on the balancer host's loopback (as immich-remote does, from the host itself)."""
    answer = runtime_api(balancer_host, PORT + 1, set_state_command(member, state))
    assert answer == "", answer


def test_throughput_through_the_pool_grows_with_its_members(sandbox: Sandbox, record_property):
    # One inference at a time per host, 0.3 s each (the stub's model of a busy GPU): a host serves ~3.3/s.
    service = {"MACHINE_LEARNING_STUB_PREDICT_DELAY": "0.3", "MACHINE_LEARNING_STUB_PREDICT_WORKERS": "1"}
    with_pool(sandbox)
    data = yaml.safe_load(sandbox.inventory.read_text())
    data["defaults"]["env"] = service
    sandbox.inventory.write_text(yaml.safe_dump(data, sort_keys=False))
    sandbox.cli("deploy")
    balancer = sandbox.host_named("ml1")
    rates = {}
    for members in (1, 2, 3):
        for i, host in enumerate(sandbox.hosts):
            set_member(balancer, host.name, "ready" if i < members else "maint")
        burst(sandbox, 3, workers=3)  # warm the connections
        count = 24
        started = time.monotonic()
        results = burst(sandbox, count, workers=6)
        rates[members] = count / (time.monotonic() - started)
        assert all(len(r.attempts) == 1 for r in results)
    record_property("pool_throughput_rps", rates)
    print(f"requests/s through the pool by members: {rates}")
    assert rates[1] < 1 / 0.3 * 1.15  # one member: its service time bounds it
    assert rates[2] >= 1.6 * rates[1], rates  # close to 2x
    assert rates[3] >= 2.3 * rates[1], rates  # close to 3x

    # `remove` of a member drains it at the balancer and takes it out of the rotation before its container goes.
    removed = sandbox.cli_json("remove", "ml3")
    (result,) = removed["hosts"]
    assert result["status"] == "removed" and "drained at the balancer" in result["message"], result
    members = {m["name"]: m["state"] for m in sandbox.cli_json("status", expect=None)["pools"][0]["members"]}
    assert members == {"ml1": "ready", "ml2": "ready", "ml3": "maint"}, members
    assert all(len(r.attempts) == 1 for r in burst(sandbox, 6))  # the pool keeps serving on the other two
