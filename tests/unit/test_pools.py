"""`pools:` in the inventory, the URL list a pool gives Immich, and the balancer's rendering: pure, no hosts."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from immich_remote.errors import InputError
from immich_remote.inventory import load_inventory
from immich_remote.names import balancer_service
from immich_remote.plan import desired_urls
from immich_remote.pool import balancer_targets
from immich_remote.render import render_target
from immich_remote.versions import ImmichVersion

LOCAL = "http://immich-machine-learning:3003"
VERSION = ImmichVersion.parse("2.7.5")


def inventory(tmp_path: Path, pools: dict, **immich) -> object:
    data = {
        "immich": {"url": "http://immich.lan:2283", **immich},
        "hosts": {"gpu1": {"address": "10.0.0.11"}, "gpu2": {"address": "10.0.0.12"},
                  "nuc": {"address": "10.0.0.13", "priority": 50}, "solo": {"address": "10.0.0.14"}},
        "pools": pools,
    }
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return load_inventory(path)


def gpus(**extra) -> dict:
    return {"gpus": {"members": ["gpu1", {"host": "gpu2", "weight": 2}, "nuc"], "balancer": "gpu1", **extra}}


def test_a_pool_resolves_to_one_url_on_its_balancer_host(tmp_path):
    inv = inventory(tmp_path, gpus())
    (pool,) = inv.pools
    assert pool.url == "http://10.0.0.11:3010" and pool.admin_port == 3011
    assert [(m.host, m.weight) for m in pool.members] == [("gpu1", 1), ("gpu2", 2), ("nuc", 1)]
    target = pool.target
    assert (target.name, target.address, target.service) == ("gpus", "10.0.0.11", balancer_service("gpus"))
    assert target.remote_dir == "~/immich-remote-pool-gpus"  # never the ML directory of its host
    assert [h.name for h in inv.registrable] == ["gpus", "solo"]
    assert inv.pool_of("gpu2") is pool and inv.pool_of("solo") is None


def test_immich_gets_the_pool_url_first_never_a_members_own_and_keeps_local_last(tmp_path):
    inv = inventory(tmp_path, gpus())
    hosts = list(inv.hosts)
    # A member that was registered on its own before joining the pool is taken out in the same write.
    current = ["http://10.0.0.12:3003", LOCAL]
    after = desired_urls(inv, current=current, registered=[*hosts, *balancer_targets(inv, hosts)])
    assert after == ["http://10.0.0.11:3010", "http://10.0.0.14:3003", LOCAL]
    # Members alone (the balancer failed): nothing of the pool is registered, the fallback stays.
    assert desired_urls(inv, current=[LOCAL], registered=hosts[:3]) == [LOCAL]


def test_the_pools_priority_places_it_among_the_hosts(tmp_path):
    inv = inventory(tmp_path, gpus(priority=200))
    targets = [*inv.hosts, *inv.balancers]
    assert desired_urls(inv, current=[LOCAL], registered=targets) == [
        "http://10.0.0.14:3003", "http://10.0.0.11:3010", LOCAL]


def test_the_balancer_renders_haproxy_with_every_member_and_its_weight(tmp_path):
    inv = inventory(tmp_path, gpus())
    rendering = render_target(inv.pools[0].target, inv, VERSION, "cpu")
    assert [f.name for f in rendering.files] == ["docker-compose.yml", "haproxy.cfg"]
    config = rendering.file("haproxy.cfg").content.decode()
    assert "server gpu2 10.0.0.12:3003 weight 2 check" in config
    assert "bind 10.0.0.11:3010" in config and "stats socket ipv4@127.0.0.1:3011" in config
    compose = yaml.safe_load(rendering.file("docker-compose.yml").content)
    service = compose["services"]["haproxy"]
    assert compose["name"] == "immich_remote_pool_gpus" and service["image"] == "haproxy:3.0.5"
    assert service["network_mode"] == "host" and "ports" not in service  # nothing published beyond the bind
    # A change of members changes the config hash label, so compose recreates the container.
    other = inventory(tmp_path, {"gpus": {"members": ["gpu1", "gpu2"], "balancer": "gpu1"}})
    changed = render_target(other.pools[0].target, other, VERSION, "cpu")
    assert changed.digest != rendering.digest
    assert yaml.safe_load(changed.file("docker-compose.yml").content)["services"]["haproxy"]["labels"][
        "immich-remote.config-sha256"] != service["labels"]["immich-remote.config-sha256"]


def test_balancer_targets_cover_the_pools_of_the_chosen_hosts_only(tmp_path):
    inv = inventory(tmp_path, gpus())
    assert balancer_targets(inv, [inv.host("solo")]) == []
    assert [t.name for t in balancer_targets(inv, [inv.host("nuc")])] == ["gpus"]


@pytest.mark.parametrize(("pools", "immich", "words"), [
    ({"gpus": {"members": ["gpu1", "ghost"], "balancer": "gpu1"}}, {}, ["pools.gpus.members.1", "'ghost' is not a host"]),
    ({"a": {"members": ["gpu1"], "balancer": "gpu1"}, "b": {"members": ["gpu1"], "balancer": "gpu2"}}, {},
     ["already in pool 'a'", "one pool at most"]),
    ({"gpus": {"members": ["gpu1"], "balancer": "immich"}}, {}, ["immich.ssh_host is not set"]),
    ({"gpus": {"members": ["gpu1"], "balancer": "gpu1", "port": 3003}}, {}, ["port 3003", "gpu1"]),
    ({"gpu1": {"members": ["gpu2"], "balancer": "gpu2"}}, {}, ["already a host or group name"]),
    ({"gpus": {"members": [], "balancer": "gpu1"}}, {}, ["at least one member"]),
    ({"gpus": {"members": ["gpu1"], "balancer": "gpu1", "weight": 2}}, {}, ["pools.gpus.weight"]),
    ({"gpus": {"members": [{"host": "gpu1", "weight": 0}], "balancer": "gpu1"}}, {}, ["weight"]),
])
def test_bad_pools_are_refused_with_the_key_and_the_fix(tmp_path, pools, immich, words):
    with pytest.raises(InputError) as caught:
        inventory(tmp_path, pools, **immich)
    text = f"{caught.value.message} {caught.value.hint or ''}"
    for word in words:
        assert word in text, text


def test_a_balancer_on_the_immich_host_uses_its_ssh_settings(tmp_path):
    inv = inventory(tmp_path, {"gpus": {"members": ["gpu1", "gpu2"], "balancer": "immich"}},
                    ssh_host="192.168.1.10", ssh_user="admin")
    target = inv.pools[0].target
    assert (target.address, target.ssh_user, target.bind_address) == ("192.168.1.10", "admin", "192.168.1.10")
    assert inv.pools[0].url == "http://192.168.1.10:3010"


def test_a_firewalled_member_lets_its_balancer_in(tmp_path):
    inv = inventory(tmp_path, {"gpus": {"members": ["gpu1", "gpu2"], "balancer": "nuc"}}, server_address="10.0.0.2")
    assert inv.host("gpu2").allow_from == ("10.0.0.2/32", "10.0.0.13/32")
    assert inv.host("solo").allow_from == ("10.0.0.2/32",)  # outside the pool: the server only


def test_the_pool_port_takes_the_immich_server_only_when_it_is_known(tmp_path):
    known = inventory(tmp_path, gpus(), server_address="10.0.0.2")
    config = render_target(known.pools[0].target, known, VERSION, "cpu").file("haproxy.cfg").content.decode()
    assert "acl from_immich src 10.0.0.2/32" in config and "tcp-request connection reject if !from_immich" in config
    given = inventory(tmp_path, gpus(allow_from=["10.0.0.0/24"]), server_address="10.0.0.2")
    assert given.pools[0].allow_from == ("10.0.0.0/24",)
    unknown = inventory(tmp_path, gpus())
    assert "tcp-request connection reject" not in render_target(
        unknown.pools[0].target, unknown, VERSION, "cpu").file("haproxy.cfg").content.decode()
    from immich_remote.plan import plan_offline

    (pool_plan,) = plan_offline(unknown, list(unknown.hosts), VERSION).pools
    assert any("anyone who reaches 10.0.0.11:3010 can use it" in w for w in pool_plan.warnings)


def test_a_pools_name_selects_its_members(tmp_path):
    inv = inventory(tmp_path, gpus())
    assert [h.name for h in inv.select(["gpus"])] == ["gpu1", "gpu2", "nuc"]
    with pytest.raises(InputError) as caught:
        inv.select(["gpu"])
    assert "gpus (pool)" in caught.value.hint
