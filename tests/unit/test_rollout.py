"""Canary-first rollout and the multi-host runner: order, batches, failure budget, skipped hosts.

No SSH: `stage` and `swap` are plain functions; `swap` records the order in which hosts change.
"""

import textwrap
import threading

import pytest

from immich_remote.errors import ImmichRemoteError
from immich_remote.inventory import load_inventory
from immich_remote.rollout import HostResult, canary_rollout, run_hosts, url_order, waves

NAMES = ["a", "b", "c", "d", "e"]


@pytest.fixture
def inv(tmp_path):
    path = tmp_path / "hosts.yml"
    path.write_text(textwrap.dedent("""
        immich: {url: "http://immich:2283"}
        defaults: {accel: cpu}
        hosts:
          a: {address: 10.0.0.1}
          b: {address: 10.0.0.2}
          c: {address: 10.0.0.3}
          d: {address: 10.0.0.4}
          e: {address: 10.0.0.5}
    """))
    return load_inventory(path)


@pytest.fixture
def hosts(inv):
    return [inv.host(n) for n in NAMES]


class Fleet:
    """`stage` and `swap` for canary_rollout, with the swap order recorded."""

    def __init__(self, *, final=None, fail=(), crash=(), stage_crash=()):
        self.final = dict(final or {})  # host -> status its stage returns (a final HostResult)
        self.fail, self.crash, self.stage_crash = set(fail), set(crash), set(stage_crash)
        self.swapped: list[str] = []
        self.lock = threading.Lock()

    def stage(self, host):
        if host.name in self.stage_crash:
            raise RuntimeError("probe blew up")
        if host.name in self.final:
            return HostResult(host.name, self.final[host.name], "from stage")
        return ("staged", host.name)

    def swap(self, staged):
        kind, name = staged
        assert kind == "staged"  # swap gets what stage returned
        with self.lock:
            self.swapped.append(name)
        if name in self.crash:
            raise RuntimeError(f"bug while swapping {name}")
        if name in self.fail:
            return HostResult(name, "rolled-back", "/ping never answered")
        return HostResult(name, "deployed", "ok")


def statuses(rollout):
    return {r.host: r.status for r in rollout.results}


# --- waves / url_order ---------------------------------------------------------------------------------------

def test_waves_put_the_first_alone_then_batches_in_order():
    assert waves([1, 2, 3, 4, 5, 6], 2) == [[1], [2, 3], [4, 5], [6]]
    assert waves([1, 2, 3], 10) == [[1], [2, 3]]
    assert waves([1], 3) == [[1]]
    assert waves([], 3) == []


def test_waves_of_one_go_host_by_host():
    assert waves(["x", "y", "z"], 1) == [["x"], ["y"], ["z"]]


def test_url_order_follows_immichs_list_and_puts_unlisted_hosts_last_by_name(hosts):
    urls = ["http://10.0.0.4:3003", "HTTP://10.0.0.2:3003/", "http://immich-machine-learning:3003"]
    ordered = url_order(list(reversed(hosts)), urls)
    assert [h.name for h in ordered] == ["d", "b", "a", "c", "e"]


def test_url_order_without_urls_is_by_name(hosts):
    assert [h.name for h in url_order(list(reversed(hosts)), [])] == NAMES


# --- canary_rollout --------------------------------------------------------------------------------------------

def test_canary_swaps_alone_first_then_the_rest_in_batches(hosts):
    fleet = Fleet()
    rollout = canary_rollout(hosts, fleet.stage, fleet.swap, command="deploy", batch=2)
    assert rollout.canary == "a"
    assert fleet.swapped[0] == "a"
    assert set(fleet.swapped[1:3]) == {"b", "c"} and set(fleet.swapped[3:]) == {"d", "e"}
    assert statuses(rollout) == dict.fromkeys(NAMES, "deployed")


def test_hosts_of_one_batch_swap_at_the_same_time(hosts):
    together = threading.Barrier(2, timeout=5)
    fleet = Fleet()

    def swap(staged):
        if staged[1] != "a":  # both hosts of each batch must be in swap at once to pass
            together.wait()
        return fleet.swap(staged)

    rollout = canary_rollout(hosts, fleet.stage, swap, command="deploy", batch=2)
    assert statuses(rollout) == dict.fromkeys(NAMES, "deployed")


def test_without_batch_the_rest_go_together_after_the_canary(hosts):
    fleet = Fleet(fail={"c"})
    rollout = canary_rollout(hosts, fleet.stage, fleet.swap, command="deploy")
    assert fleet.swapped[0] == "a" and sorted(fleet.swapped[1:]) == ["b", "c", "d", "e"]
    assert statuses(rollout)["c"] == "rolled-back"


def test_failed_canary_stops_the_rollout_and_says_how_to_go_on(hosts):
    fleet = Fleet(fail={"a"})
    rollout = canary_rollout(hosts, fleet.stage, fleet.swap, command="upgrade", batch=2)
    assert fleet.swapped == ["a"]
    assert statuses(rollout) == {"a": "rolled-back", "b": "skipped", "c": "skipped", "d": "skipped", "e": "skipped"}
    for result in rollout.results[1:]:
        assert "canary a failed" in result.message
        assert "--max-fail 2" in result.fix
        assert "--limit b,c,d,e upgrade" in result.fix
        assert "immich-remote upgrade" in result.fix
        assert not result.failed  # skipped hosts were not touched


def test_a_crashing_canary_counts_as_failed(hosts):
    fleet = Fleet(crash={"a"})
    rollout = canary_rollout(hosts, fleet.stage, fleet.swap, command="deploy", batch=2)
    assert fleet.swapped == ["a"]
    first = rollout.results[0]
    assert first.status == "failed" and "bug while swapping a" in first.message
    assert {r.status for r in rollout.results[1:]} == {"skipped"}


def test_max_fail_two_goes_on_after_the_canary_until_two_failures(hosts):
    fleet = Fleet(fail={"a", "c"})
    rollout = canary_rollout(hosts, fleet.stage, fleet.swap, command="deploy", batch=2, max_fail=2)
    assert fleet.swapped[0] == "a" and set(fleet.swapped[1:]) == {"b", "c"}
    assert statuses(rollout) == {"a": "rolled-back", "b": "deployed", "c": "rolled-back",
                                 "d": "skipped", "e": "skipped"}
    skipped = rollout.results[3]
    assert "--max-fail 3" in skipped.fix and "--limit d,e deploy" in skipped.fix


def test_max_fail_two_with_a_healthy_canary_names_the_failed_hosts(hosts):
    fleet = Fleet(fail={"b", "c"})
    rollout = canary_rollout(hosts, fleet.stage, fleet.swap, command="deploy", batch=2, max_fail=2)
    assert statuses(rollout) == {"a": "deployed", "b": "rolled-back", "c": "rolled-back",
                                 "d": "skipped", "e": "skipped"}
    message = rollout.results[3].message
    assert "2 host(s) failed" in message and "b" in message and "c" in message
    assert "canary" not in message


def test_a_failure_in_a_batch_does_not_stop_that_batch(hosts):
    fleet = Fleet(crash={"c"})
    rollout = canary_rollout(hosts, fleet.stage, fleet.swap, command="deploy", batch=3)
    assert fleet.swapped[0] == "a" and sorted(fleet.swapped) == ["a", "b", "c", "d"]
    result = statuses(rollout)
    assert result == {"a": "deployed", "b": "deployed", "c": "failed", "d": "deployed", "e": "skipped"}
    assert "RuntimeError" in rollout.results[2].message


def test_hosts_final_at_stage_keep_their_result_and_are_never_swapped(hosts):
    fleet = Fleet(final={"a": "unchanged", "c": "failed"})
    rollout = canary_rollout(hosts, fleet.stage, fleet.swap, command="deploy", batch=1)
    assert rollout.canary == "b"
    assert fleet.swapped == ["b", "d", "e"]
    assert statuses(rollout) == {"a": "unchanged", "b": "deployed", "c": "failed", "d": "deployed", "e": "deployed"}
    assert rollout.results[0].message == "from stage" and rollout.results[2].message == "from stage"


def test_a_failed_preflight_does_not_spend_the_failure_budget(hosts):
    fleet = Fleet(final={"a": "failed"})
    rollout = canary_rollout(hosts, fleet.stage, fleet.swap, command="deploy", batch=2)
    assert sorted(fleet.swapped) == ["b", "c", "d", "e"]
    assert statuses(rollout)["e"] == "deployed"


def test_a_crash_while_staging_one_host_fails_only_that_host(hosts):
    fleet = Fleet(stage_crash={"b"})
    rollout = canary_rollout(hosts, fleet.stage, fleet.swap, command="deploy", batch=2)
    assert "b" not in fleet.swapped and sorted(fleet.swapped) == ["a", "c", "d", "e"]
    failed = rollout.results[1]
    assert failed.status == "failed" and "probe blew up" in failed.message


def test_one_host_to_change_is_no_canary(hosts):
    fleet = Fleet(final={"a": "unchanged", "b": "unchanged", "d": "unchanged", "e": "unchanged"})
    rollout = canary_rollout(hosts, fleet.stage, fleet.swap, command="deploy", batch=2)
    assert rollout.canary is None
    assert fleet.swapped == ["c"]
    assert statuses(rollout)["c"] == "deployed"


def test_one_failing_host_alone_reports_no_skips(hosts):
    fleet = Fleet(final={"a": "unchanged", "b": "unchanged", "d": "unchanged", "e": "unchanged"}, fail={"c"})
    rollout = canary_rollout(hosts, fleet.stage, fleet.swap, command="deploy")
    assert rollout.canary is None
    assert statuses(rollout) == {"a": "unchanged", "b": "unchanged", "c": "rolled-back", "d": "unchanged",
                                 "e": "unchanged"}


def test_nothing_to_change_swaps_nothing(hosts):
    fleet = Fleet(final=dict.fromkeys(NAMES, "unchanged"))
    rollout = canary_rollout(hosts, fleet.stage, fleet.swap, command="deploy", batch=2)
    assert fleet.swapped == [] and rollout.canary is None
    assert statuses(rollout) == dict.fromkeys(NAMES, "unchanged")


def test_results_come_back_in_the_order_of_the_given_hosts(hosts):
    order = [hosts[i] for i in (3, 0, 4, 2, 1)]
    fleet = Fleet(final={"e": "unchanged"})
    rollout = canary_rollout(order, fleet.stage, fleet.swap, command="deploy", batch=2)
    assert [r.host for r in rollout.results] == ["d", "a", "e", "c", "b"]
    assert rollout.canary == "d" and fleet.swapped[0] == "d"


def test_the_rollout_follows_the_given_order_not_the_names(hosts):
    order = list(reversed(hosts))
    fleet = Fleet()
    rollout = canary_rollout(order, fleet.stage, fleet.swap, command="deploy", batch=1)
    assert rollout.canary == "e"
    assert fleet.swapped == ["e", "d", "c", "b", "a"]


# --- run_hosts ---------------------------------------------------------------------------------------------------

def test_run_hosts_results_in_host_order_and_errors_become_failed_results(hosts):
    def procedure(host):
        if host.name == "b":
            raise ImmichRemoteError("docker is not installed", hint="install Docker")
        if host.name == "c":
            raise KeyError("oops")
        if host.name == "d":
            return {"staged": "d"}  # not a HostResult: passed through as it is
        return HostResult(host.name, "deployed")

    results = run_hosts(hosts, procedure)
    assert [getattr(r, "host", None) for r in results] == ["a", "b", "c", None, "e"]
    assert (results[1].status, results[1].message, results[1].fix) == ("failed", "docker is not installed",
                                                                       "install Docker")
    assert results[2].status == "failed" and "KeyError" in results[2].message
    assert results[3] == {"staged": "d"}
    assert results[0].duration >= 0 and results[4].status == "deployed"


def test_run_hosts_keeps_a_duration_the_procedure_measured(hosts):
    results = run_hosts(hosts[:1], lambda h: HostResult(h.name, "unchanged", duration=12.5))
    assert results[0].duration == 12.5


def test_run_hosts_with_nothing_to_do():
    assert run_hosts([], lambda h: HostResult(h.name, "deployed")) == []


def test_run_hosts_bounds_parallelism(hosts):
    lock = threading.Lock()
    running, peak = 0, 0
    gate = threading.Event()

    def procedure(host):
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
            if running == 2:
                gate.set()
        gate.wait(timeout=2)
        with lock:
            running -= 1
        return HostResult(host.name, "deployed")

    results = run_hosts(hosts, procedure, parallel=2)
    assert peak == 2
    assert [r.status for r in results] == ["deployed"] * 5


def test_a_server_that_changes_version_mid_run_stops_the_remaining_waves(hosts):
    fleet = Fleet()
    asked = []

    def server_moved():
        asked.append(list(fleet.swapped))
        return "the Immich server changed from v2.7.5 to v2.7.6 during the run" if len(asked) == 2 else None

    rollout = canary_rollout(hosts, fleet.stage, fleet.swap, command="upgrade", batch=1, before_wave=server_moved)
    assert asked == [["a"], ["a", "b"]]  # asked before every wave after the canary's
    assert fleet.swapped == ["a", "b"]
    assert statuses(rollout) == {"a": "deployed", "b": "deployed", "c": "skipped", "d": "skipped", "e": "skipped"}
    skipped = next(r for r in rollout.results if r.host == "c")
    assert "changed from v2.7.5 to v2.7.6" in skipped.message and "immich-remote upgrade" in skipped.fix
