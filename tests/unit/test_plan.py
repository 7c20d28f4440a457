"""Pure planning: URL list after a change, warnings, stable plan data."""

import textwrap

import pytest

from immich_remote.errors import InputError
from immich_remote.inventory import load_inventory
from immich_remote.plan import desired_urls, plan_offline
from immich_remote.versions import ImmichVersion

LOCAL = "http://immich-machine-learning:3003"


@pytest.fixture
def inv(tmp_path):
    path = tmp_path / "hosts.yml"
    path.write_text(textwrap.dedent("""
        immich: {url: "http://immich:2283"}
        defaults: {accel: cpu}
        hosts:
          slow: {address: 10.0.0.7, priority: 30}
          fast: {address: 10.0.0.5, priority: 10}
          mid:  {address: 10.0.0.6, priority: 20}
    """))
    return load_inventory(path)


def test_registered_hosts_in_priority_order_then_local(inv):
    assert desired_urls(inv, current=[LOCAL], registered=inv.hosts) == [
        "http://10.0.0.5:3003", "http://10.0.0.6:3003", "http://10.0.0.7:3003", LOCAL]


def test_hosts_outside_this_run_keep_their_registration(inv):
    current = ["http://10.0.0.7:3003", LOCAL]
    after = desired_urls(inv, current=current, registered=[inv.host("fast")])
    assert after == ["http://10.0.0.5:3003", "http://10.0.0.7:3003", LOCAL]


def test_a_failed_new_host_is_not_added(inv):
    after = desired_urls(inv, current=[LOCAL], registered=[inv.host("fast")])
    assert after == ["http://10.0.0.5:3003", LOCAL]


def test_removed_host_goes_and_local_stays(inv):
    current = ["http://10.0.0.5:3003", "http://10.0.0.6:3003", LOCAL]
    after = desired_urls(inv, current=current, registered=[], removed=[inv.host("fast")])
    assert after == ["http://10.0.0.6:3003", LOCAL]


def test_plan_data_is_stable_and_complete(inv):
    hosts = inv.select(["fast"])
    a = plan_offline(inv, hosts, ImmichVersion(2, 7, 5)).to_data()
    b = plan_offline(inv, hosts, ImmichVersion(2, 7, 5)).to_data()
    assert a == b
    (host,) = a["hosts"]
    assert host["image"] == "ghcr.io/immich-app/immich-machine-learning:v2.7.5"
    assert [f["name"] for f in host["files"]] == ["docker-compose.yml"] and len(host["files"][0]["sha256"]) == 64
    assert a["urls_after"] == ["http://10.0.0.5:3003", LOCAL]
    assert a["urls_before"] is None
    assert any("not read (offline)" in w for w in a["warnings"])


def write(tmp_path, body):
    path = tmp_path / "i.yml"
    path.write_text(textwrap.dedent(body))
    return load_inventory(path)


def test_warnings_for_exposure_fallback_and_auto(tmp_path):
    inv = write(tmp_path, """
        immich: {url: "http://immich:2283", fallback: remote-only}
        hosts:
          pub: {address: 203.0.113.9, bind_address: 8.8.4.4}
          any: {address: 10.0.0.5, bind_address: 0.0.0.0}
          auto: {address: 10.0.0.6}
    """)
    plan = plan_offline(inv, inv.hosts, ImmichVersion(2, 7, 5))
    warnings = {h.host: " ".join(h.warnings) for h in plan.hosts}
    assert "public address" in warnings["pub"] and "--allow-public" in warnings["pub"]
    assert "every interface" in warnings["any"]
    assert "accel is auto" in warnings["auto"]
    assert any("remote-only" in w and "FAIL" in w for w in plan.warnings)
    assert LOCAL not in plan.urls_after


def test_foreign_urls_are_reported(inv):
    plan = plan_offline(inv, inv.hosts, ImmichVersion(2, 7, 5), urls_before=["http://old:3003", LOCAL])
    assert any("http://old:3003" in w for w in plan.warnings)
    assert plan.urls_after[-2:] == ["http://old:3003", LOCAL]


def test_host_url_equal_to_local_is_refused(tmp_path):
    inv = write(tmp_path, """
        immich: {url: "http://immich:2283", local_ml_url: "http://10.0.0.5:3003"}
        hosts:
          a: {address: 10.0.0.5}
    """)
    with pytest.raises(InputError, match="same as immich.local_ml_url"):
        plan_offline(inv, inv.hosts, ImmichVersion(2, 7, 5))


def test_removed_host_already_gone_from_the_inventory_is_not_kept_as_hand_added(inv):
    from dataclasses import replace
    gone = replace(inv.host("fast"), name="gone", url="http://10.0.0.99:3003")
    current = ["http://10.0.0.99:3003/", "http://10.0.0.6:3003", LOCAL]
    after = desired_urls(inv, current=current, registered=[], removed=[gone])
    assert after == ["http://10.0.0.6:3003", LOCAL]
