"""The ML-port firewall on real hosts: the Immich server's address gets pong, another host on the same
network is dropped; the rules come back after a reboot of the host and leave with `remove`."""

from __future__ import annotations

import ipaddress
import time
import urllib.request

import pytest

from tests.integration.sandbox import inner

pytestmark = pytest.mark.integration

COMMENT = "immich-remote ml"


def ping_from(source, host) -> str:
    """GET /ping on `host`'s ML port from another test host on the bed network (curl; 3 s to answer)."""
    done = source.exec(["curl", "-sS", "--max-time", "3", f"http://{host.ip}:3003/ping"], check=False, timeout=30)
    return done.stdout.strip() if done.returncode == 0 else f"curl exit {done.returncode}: {done.stderr.strip()}"


def ping_here(host) -> str:
    """GET /ping on `host`'s ML URL from this machine: the path the Immich fake uses."""
    try:
        with urllib.request.urlopen(f"{host.ml_url}/ping", timeout=3) as answer:
            return answer.read().decode()
    except OSError as exc:
        return f"no answer: {exc}"


def our_rules(host) -> list[str]:
    """DOCKER-USER rules carrying our comment, read with the host's own iptables (as root on the host)."""
    listing = host.exec(["iptables", "-S", "DOCKER-USER"], check=False).stdout
    return [line for line in listing.splitlines() if COMMENT in line]


def wait_for(predicate, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while not (value := predicate()) and time.monotonic() < deadline:
        time.sleep(0.5)
    return value


def test_only_the_immich_server_reaches_the_ml_port(sandbox):
    ml1, ml2 = sandbox.hosts[:2]
    # The Immich fake runs on this machine: ml1 sees its requests coming from the bed network's gateway.
    server = str(ipaddress.ip_network(sandbox.bed.subnet)[1])
    sandbox.host_settings["ml2"] = {"firewall": False}  # in the inventory, never deployed: the "other host"
    sandbox.write_inventory(hosts=[ml1, ml2])
    text = sandbox.inventory.read_text().replace("immich:\n", f"immich:\n  server_address: {server}\n", 1)
    sandbox.inventory.write_text(text)

    result = sandbox.cli_json("deploy", "ml1")["hosts"][0]
    assert result["status"] == "deployed", result
    assert "firewall" in result["steps"] and "drops everything to" in result["message"], result
    assert ping_here(ml1) == "pong"  # the server's address is allowed
    assert ping_from(ml2, ml1).startswith("curl exit 28")  # another host: dropped, the connect times out
    rules = our_rules(ml1)
    assert len(rules) == 2 and f"-s {server}/32" in rules[0] and rules[1].endswith("-j DROP"), rules
    assert sandbox.urls()[0] == ml1.ml_url  # registered as usual: the health gate was not blocked
    status = sandbox.cli_json("status", "ml1", expect=None)["hosts"][0]
    assert status["firewall"] == "on" and status["state"] == "running", status  # the ML container, not the firewall

    checks = {name: {c["name"]: c for c in host["checks"]}
              for name, host in sandbox.cli_json("check", expect=None)["hosts"].items()}
    assert checks["ml1"]["firewall from others"]["status"] == "pass", checks["ml1"]  # ml2's request: dropped
    assert checks["ml2"]["firewall"]["status"] == "warn" and "firewall: false" in checks["ml2"]["firewall"]["detail"]

    again = sandbox.cli_json("deploy", "ml1")["hosts"][0]  # idempotent: nothing to do, the same two rules
    assert again["status"] == "unchanged", again
    assert our_rules(ml1) == rules

    ml1.restart()  # a reboot: a fresh network namespace, dockerd starts the containers again
    assert wait_for(lambda: our_rules(ml1) == rules), our_rules(ml1)
    assert wait_for(lambda: ping_here(ml1) == "pong", 60) is True
    assert ping_from(ml2, ml1).startswith("curl exit 28")

    firewall = inner(ml1, "ps", "-q", "--filter", "label=com.docker.compose.service=firewall").strip()
    inner(ml1, "stop", firewall)  # SIGTERM: the container removes its rules; status says the port is open
    assert our_rules(ml1) == []
    assert sandbox.cli_json("status", "ml1", expect=None)["hosts"][0]["firewall"] == "stopped"
    inner(ml1, "start", firewall)
    assert wait_for(lambda: our_rules(ml1) == rules)

    sandbox.cli("remove", "ml1")
    assert our_rules(ml1) == []
