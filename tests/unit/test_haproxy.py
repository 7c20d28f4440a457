"""The pool balancer's config and runtime-API parsers (pure), against real HAProxy 2.6.12 answers captured in
tests/fixtures/haproxy (unmodified; see its README for the scenario)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from immich_remote.errors import InputError
from immich_remote.haproxy import (
    SHOW_SERVERS_STATE,
    BalancerSpec,
    ConfigValueError,
    Member,
    command_error,
    drained,
    member_state,
    parse_pool_stats,
    parse_servers_state,
    parse_stat,
    parse_totals,
    set_state_command,
    set_weight_command,
)
from immich_remote.render import haproxy_config

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "haproxy"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


def spec(*members: Member, **kwargs) -> BalancerSpec:
    members = members or (Member("gpu-1", "10.0.0.11", 3003, 2), Member("nuc.lan", "10.0.0.12", 3003),
                          Member("old_box", "fd00::13", 3103))
    return BalancerSpec(pool="main", listen_port=3010, admin_port=3011, members=members, **kwargs)


def directives(config: str) -> list[str]:
    """The config's lines without comments and indentation."""
    return [line.strip() for line in config.splitlines() if line.strip() and not line.strip().startswith("#")]


# --- the config -------------------------------------------------------------------------------------


def test_config_has_one_server_line_per_member_with_its_weight_and_check():
    lines = directives(haproxy_config(spec()))
    servers = [line for line in lines if line.startswith("server ")]
    assert servers == [
        "server gpu-1 10.0.0.11:3003 weight 2 check",
        "server nuc.lan 10.0.0.12:3003 weight 1 check",
        "server old_box [fd00::13]:3103 weight 1 check",
    ]


def test_config_listens_balances_per_request_and_checks_ping_with_the_user_defaults():
    lines = directives(haproxy_config(spec()))
    for expected in ("bind *:3010", "stats socket ipv4@127.0.0.1:3011 level admin", "mode http", "balance leastconn",
                     "option http-keep-alive", "no option prefer-last-server", "http-reuse safe",
                     "option httpchk GET /ping", "http-check expect string pong",
                     "default-server inter 2s fall 2 rise 2 observe layer4 error-limit 3 on-error mark-down", "timeout connect 2s", "timeout server 10m",
                     "timeout client 10m", "timeout http-request 30s", "retries 2", "option redispatch 1",
                     "retry-on conn-failure empty-response response-timeout 503", "option http-buffer-request",
                     "tune.bufsize 1048576", "log stdout format raw local0 info"):
        assert expected in lines, expected
    # A container in the foreground: nothing that daemonizes or drops privileges itself.
    assert not [line for line in lines if re.match(r"(user|group|chroot|daemon|nbproc)\b", line)]
    # The only listeners: the pool port and the runtime API, the latter on the host's loopback only.
    assert [line for line in lines if line.startswith(("bind", "stats socket"))] == [
        "stats socket ipv4@127.0.0.1:3011 level admin", "bind *:3010"]
    private = directives(haproxy_config(spec(bind_address="10.0.0.5")))
    assert "bind 10.0.0.5:3010" in private and "stats socket ipv4@127.0.0.1:3011 level admin" in private


def test_check_settings_come_from_the_spec():
    lines = directives(haproxy_config(spec(check_interval=0.5, fall=3, rise=1, check_timeout=10)))
    assert "default-server inter 500ms fall 3 rise 1 observe layer4 error-limit 3 on-error mark-down" in lines
    assert "timeout check 10s" in lines


def test_config_is_deterministic():
    assert haproxy_config(spec()) == haproxy_config(spec())
    assert haproxy_config(spec()).encode() == haproxy_config(spec()).encode()
    assert haproxy_config(spec()) != haproxy_config(spec(Member("gpu-1", "10.0.0.11", 3003, 3)))


@pytest.mark.parametrize("name", ["", "-dash-first", "has space", "a;b", "ml/x", "x\ny", "é", "a" * 101])
def test_bad_member_names_are_refused(name):
    with pytest.raises(ConfigValueError, match="member name"):
        haproxy_config(spec(Member(name, "10.0.0.1", 3003)))
    with pytest.raises(ConfigValueError):
        set_state_command(name, "drain")


@pytest.mark.parametrize(("member", "message"), [
    (Member("a", "10.0.0.1", 0), "not a TCP port"),
    (Member("a", "10.0.0.1", 3003, 0), "weight 0"),
    (Member("a", "10.0.0.1", 3003, 257), "weight 257"),
    (Member("a", "bad host; rm", 3003), "neither an IP address nor a host name"),
])
def test_bad_ports_weights_and_addresses_are_refused(member, message):
    with pytest.raises(ConfigValueError, match=message) as raised:
        haproxy_config(spec(member))
    assert isinstance(raised.value, InputError) and raised.value.exit_code == 2


def test_duplicate_members_and_port_clash_are_refused():
    with pytest.raises(ConfigValueError, match="listed twice"):
        haproxy_config(spec(Member("a", "10.0.0.1", 3003), Member("a", "10.0.0.2", 3003)))
    with pytest.raises(ConfigValueError, match="both 3010"):
        haproxy_config(BalancerSpec("main", 3010, 3010, (Member("a", "10.0.0.1", 3003),)))


# --- runtime API commands -----------------------------------------------------------------------------


def test_runtime_commands():
    assert set_state_command("nuc.lan", "drain") == "set server ml/nuc.lan state drain"
    assert set_weight_command("gpu-1", 0) == "set server ml/gpu-1 weight 0"
    assert SHOW_SERVERS_STATE == "show servers state ml"
    with pytest.raises(ConfigValueError):
        set_state_command("gpu-1", "up")
    with pytest.raises(ConfigValueError):
        set_weight_command("gpu-1", 257)


def test_command_errors_are_haproxys_own_lines():
    assert command_error(fixture("set-ok.txt")) is None
    assert command_error(fixture("set-no-such-server.txt")) == "No such server."
    assert command_error(fixture("set-bad-weight.txt")) == "Absolute weight can only be between 0 and 256 inclusive."


# --- show stat ------------------------------------------------------------------------------------


def test_parse_stat_fresh_pool():
    members = parse_stat(fixture("show-stat-fresh.csv"))
    assert [(m.name, m.status, m.admin, m.weight, m.check_status) for m in members] == [
        ("ml1", "UP", "ready", 2, "L7OK"), ("ml-2.lan", "UP", "ready", 1, "L7OK"), ("ml_3", "DOWN", "ready", 1, "L4CON")]
    assert [member_state(m) for m in members] == ["ready", "ready", "down"]
    assert all(m.requests == 0 and m.scur == 0 for m in members)


def test_parse_stat_counts_requests_of_one_keep_alive_connection_per_member():
    # Six sequential POST /predict over ONE client connection went to both healthy members (3 + 3).
    members = {m.name: m for m in parse_stat(fixture("show-stat-idle.csv"))}
    assert members["ml1"].requests == 3 and members["ml-2.lan"].requests == 3 and members["ml_3"].requests == 0
    assert drained(list(members.values()), "ml1") and drained(list(members.values()), "ml-2.lan")
    frontend, backend = parse_totals(fixture("show-stat-idle.csv"))
    assert frontend.name == "pool" and frontend.requests == 6 and frontend.status == "OPEN"
    assert backend.name == "ml" and backend.requests == 6 and backend.status == "UP" and backend.errors == 0


def test_busy_pool_with_drain_maint_and_a_drained_down_member():
    stats = parse_pool_stats(fixture("show-stat-busy.csv"), fixture("show-servers-state-busy.txt"))
    ml1, ml2, ml3 = stats.members
    assert (ml1.status, ml1.admin, member_state(ml1), ml1.scur) == ("DRAIN", "drain", "drain", 3)
    assert (ml2.status, ml2.admin, member_state(ml2), ml2.scur) == ("MAINT", "maint", "maint", 1)
    # Down AND drained: only `show servers state` tells the drain apart; the status says DOWN.
    assert (ml3.status, ml3.admin, member_state(ml3)) == ("DOWN", "drain", "down")
    assert parse_stat(fixture("show-stat-busy.csv"))[2].admin == "ready"
    assert not drained(stats, "ml1") and not drained(stats, "ml-2.lan") and drained(stats, "ml_3")
    assert stats.frontend.scur == 5 and stats.backend.scur == 4
    with pytest.raises(KeyError):
        drained(stats, "nope")


def test_member_going_down_is_still_healthy_until_fall():
    stat = {m.name: m for m in parse_stat(fixture("show-stat-going-down.csv"))}["ml-2.lan"]
    assert stat.status == "UP 1/2" and stat.check_status == "L4CON"
    assert stat.healthy and member_state(stat) == "ready"


def test_parse_servers_state():
    states = parse_servers_state(fixture("show-servers-state-busy.txt"))
    assert states == {"ml1": (2, 8), "ml-2.lan": (0, 1), "ml_3": (0, 8)}


def test_garbage_is_not_statistics():
    with pytest.raises(ValueError, match="not `show stat`"):
        parse_stat("Unknown command.\n")
    with pytest.raises(ValueError, match="not `show servers state`"):
        parse_servers_state("No such backend.\n\n")
