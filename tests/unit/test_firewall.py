"""The ML-port firewall without a host: who may reach the port (inventory), the rules and the program
(firewall.py), the compose service (render), the `firewall` step (steps), and check's verdict."""

from __future__ import annotations

import json
import shutil
import subprocess
import textwrap

import pytest
import yaml

from immich_remote.deployment import parse_deployment
from immich_remote.errors import InventoryError
from immich_remote.firewall import EXIT_CANNOT, firewall_check, firewall_plan, program, rules, verify_script
from immich_remote.inventory import load_inventory
from immich_remote.render import render_host
from immich_remote.steps import plan_steps
from immich_remote.versions import ImmichVersion
from tests.unit.compose import compose_config, valid_config, write_rendering

V = ImmichVersion.parse("2.7.5")


def inventory(tmp_path, text: str):
    path = tmp_path / "hosts.yml"
    path.write_text(textwrap.dedent(text).lstrip())
    return load_inventory(path)


FLEET = """
    immich:
      url: http://immich.lan:2283
      server_address: 192.168.1.10
    hosts:
      gpu: {address: 192.168.1.50}
      nuc: {address: 192.168.1.51, allow_from: [192.168.1.10, 10.8.0.0/24, 192.168.1.10]}
      vpn: {address: 192.168.1.52, allow_from: 100.64.0.7}
      spare: {address: 192.168.1.53, firewall: false}
      local: {address: 127.0.0.1, ml_port: 3004}
"""


def test_allow_from_defaults_to_the_server_and_is_normalised(tmp_path):
    inv = inventory(tmp_path, FLEET)
    gpu, nuc, vpn, spare = (inv.host(n) for n in ("gpu", "nuc", "vpn", "spare"))
    assert gpu.allow_from == ("192.168.1.10/32",) and gpu.allow_from_origin == "immich.server_address"
    assert nuc.allow_from == ("192.168.1.10/32", "10.8.0.0/24") and nuc.allow_from_origin == "allow_from"
    assert vpn.allow_from == ("100.64.0.7/32",)
    assert gpu.firewall and not spare.firewall


@pytest.mark.parametrize("ssh_host,expected", [("192.168.1.9", ("192.168.1.9/32",)), ("immich.lan", ()),
                                               ("127.0.0.1", ())])
def test_without_server_address_an_ip_ssh_host_is_the_source(tmp_path, ssh_host, expected):
    inv = inventory(tmp_path, f"""
        immich: {{url: "http://immich.lan:2283", ssh_host: "{ssh_host}"}}
        hosts:
          gpu: {{address: 192.168.1.50}}
    """)
    assert inv.host("gpu").allow_from == expected


BAD = {
    "name": ("allow_from: [immich.lan]", "names are not allowed"),
    "host-bits": ("allow_from: 192.168.1.10/24", "write the network as 192.168.1.0/24"),
    "everyone": ("allow_from: 0.0.0.0/0", "set firewall: false"),
    "empty": ("allow_from: []", "expected an address or CIDR"),
    "mapping": ("allow_from: {a: 1}", "expected an address or CIDR"),
    "family": ("allow_from: [fd00::10]", "is IPv6, but this host's ML port is published on IPv4"),
    "firewall-word": ("firewall: maybe", "expected true or false"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_firewall_settings_name_the_key_and_the_fix(tmp_path, case):
    setting, expected = BAD[case]
    with pytest.raises(InventoryError) as err:
        inventory(tmp_path, f"""
            immich: {{url: "http://immich.lan:2283"}}
            hosts:
              gpu:
                address: 192.168.1.50
                {setting}
        """)
    message = str(err.value)
    assert "hosts.gpu" in message and expected in message, message
    assert err.value.exit_code == 2


def test_server_address_must_be_an_ip(tmp_path):
    with pytest.raises(InventoryError) as err:
        inventory(tmp_path, """
            immich: {url: "http://immich.lan:2283", server_address: immich.lan}
            hosts:
              gpu: {address: 192.168.1.50}
        """)
    assert "immich.server_address" in str(err.value) and "is not an IP address" in str(err.value)


def test_plan_states_and_check_verdicts(tmp_path):
    inv = inventory(tmp_path, FLEET)
    plans = {h.name: firewall_plan(h) for h in inv.hosts}
    assert {n: p.state for n, p in plans.items()} == {"gpu": "on", "nuc": "on", "vpn": "on", "spare": "off",
                                                       "local": "loopback"}
    assert [p.enabled for p in plans.values()] == [True, True, True, False, False]
    spare = firewall_check(inv.host("spare"))
    assert spare.status == "warn" and "firewall: false" in spare.detail and "allow_from" in spare.fix
    assert firewall_check(inv.host("gpu")).status == "pass"
    unset = inventory(tmp_path, """
        immich: {url: "http://immich.lan:2283"}
        hosts:
          gpu: {address: 192.168.1.50}
    """).host("gpu")
    verdict = firewall_check(unset)
    assert verdict.status == "warn" and "immich.server_address" in verdict.fix


def test_rules_allow_each_source_before_one_drop_matching_the_published_port(tmp_path):
    plan = firewall_plan(inventory(tmp_path, FLEET).host("nuc"))
    specs = rules(plan)
    assert [s[-1] for s in specs] == ["RETURN", "RETURN", "DROP"]
    assert [s[s.index("-s") + 1] for s in specs[:2]] == ["192.168.1.10/32", "10.8.0.0/24"]
    for spec in specs:  # after Docker's DNAT only conntrack still knows the published address and port
        assert spec[spec.index("--ctorigdst") + 1] == "192.168.1.51"
        assert spec[spec.index("--ctorigdstport") + 1] == "3003"
        assert "-s" not in spec[spec.index("-j"):]


def test_ipv6_bind_address_gets_ip6tables(tmp_path):
    inv = inventory(tmp_path, """
        immich: {url: "http://immich.lan:2283", server_address: "fd00::10"}
        hosts:
          gpu: {address: "fd00::50"}
    """)
    plan = firewall_plan(inv.host("gpu"))
    assert plan.command == "ip6tables" and plan.allow == ("fd00::10/128",)


@pytest.mark.skipif(shutil.which("sh") is None, reason="no sh")
def test_program_and_verify_script_are_valid_sh(tmp_path):
    plan = firewall_plan(inventory(tmp_path, FLEET).host("nuc"))
    for text in (program(plan), verify_script(plan, "docker compose ps -a -q firewall")):
        done = subprocess.run(["sh", "-n"], input=text, capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr
    text = program(plan)
    assert "chroot /host iptables --wait" in text and "trap 'each del" in text and f"exit {EXIT_CANNOT}" in text


def test_rendered_firewall_service_and_the_ml_service_stay_apart(tmp_path):
    inv = inventory(tmp_path, FLEET)
    on = render_host(inv.host("gpu"), V, "cpu")
    off = render_host(inv.host("spare"), V, "cpu")
    services = yaml.safe_load(on.file("docker-compose.yml").content)["services"]
    assert set(services) == {"immich-machine-learning", "firewall"} and on.firewall
    fw = services["firewall"]
    assert fw["image"] == services["immich-machine-learning"]["image"]  # the same image: nothing else to pull
    assert fw["network_mode"] == "host" and fw["restart"] == "unless-stopped" and fw["healthcheck"] == {"disable": True}
    assert fw["entrypoint"][2] == program(firewall_plan(inv.host("gpu"))).replace("$", "$$")
    assert set(yaml.safe_load(off.file("docker-compose.yml").content)["services"]) == {"immich-machine-learning"}
    assert not off.firewall


def test_rendered_firewall_passes_compose_config(tmp_path):
    rendering = render_host(inventory(tmp_path, FLEET).host("nuc"), V, "cuda")
    fw = valid_config(compose_config(write_rendering(rendering, tmp_path / "rendered")))["services"]["firewall"]
    assert fw["cap_add"] == ["NET_ADMIN", "NET_RAW"] and "deploy" not in fw  # no GPU for the firewall
    assert [(v["source"], v["target"], v.get("read_only", False)) for v in fw["volumes"]] == [
        ("/", "/host", True), ("/run", "/host/run", False)]


def _containers(image: str, firewall: str | None) -> str:
    def one(service: str, status: str, labels: dict) -> dict:
        return {"Name": f"/immich_remote_ml-{service}-1", "RestartCount": 0,
                "State": {"Status": status, "Health": {"Status": "healthy"} if service != "firewall" else None},
                "Config": {"Image": image, "Env": [], "Labels": {"com.docker.compose.service": service, **labels}},
                "HostConfig": {"PortBindings": {}}}
    items = [one("immich-machine-learning", "running", {})]
    if firewall:
        items.append(one("firewall", firewall, {"immich-remote.firewall": "true"}))
    return json.dumps(items)


def _state(rendering, firewall: str | None):
    files = "\n".join(f"{h}  {n}" for n, h in rendering.hashes.items())
    return parse_deployment(files + '\n--state--\n{"current": "r1"}\n--lock--\n--releases--\nr1\n',
                            _containers(rendering.image, firewall))


def test_firewall_step_and_a_stopped_firewall_is_restarted(tmp_path):
    inv = inventory(tmp_path, FLEET)
    rendering = render_host(inv.host("gpu"), V, "cpu")
    first = plan_steps(rendering, parse_deployment("", "[]"))
    assert first.names.index("firewall") == first.names.index("gate") + 1
    assert plan_steps(rendering, _state(rendering, "running")).action == "unchanged"
    stopped = plan_steps(rendering, _state(rendering, "exited"))
    assert stopped.action == "start" and "firewall container is not running" in stopped.reason
    assert "firewall" in stopped.names
    spare = render_host(inv.host("spare"), V, "cpu")
    assert "firewall" not in plan_steps(spare, parse_deployment("", "[]")).names


def test_the_ml_container_is_never_the_firewall(tmp_path):
    rendering = render_host(inventory(tmp_path, FLEET).host("gpu"), V, "cpu")
    only_firewall = json.loads(_containers(rendering.image, "running"))[1:]
    state = parse_deployment("", json.dumps(only_firewall))
    assert state.container is None  # the ML container is gone: not "running" because the firewall runs


def test_status_and_isolation_verdicts(tmp_path):
    from immich_remote.firewall import firewall_status, isolation_check

    inv = inventory(tmp_path, FLEET)
    gpu, spare = inv.host("gpu"), inv.host("spare")
    assert firewall_status(gpu, {"immich-machine-learning": "running", "firewall": "running"})[0] == "on"
    state, detail = firewall_status(gpu, {"immich-machine-learning": "running", "firewall": "exited"})
    assert state == "stopped" and "nothing guards 192.168.1.50:3003" in detail and "deploy" in detail
    assert firewall_status(gpu, {"immich-machine-learning": "running"})[0] == "stopped"
    state, detail = firewall_status(spare, {})
    assert state == "off" and "fix:" in detail
    assert isolation_check(gpu, "nuc", "dropped").status == "pass"
    answered = isolation_check(gpu, "nuc", "answered")
    assert answered.status == "fail" and "nuc" in answered.detail and "deploy" in answered.fix
    assert isolation_check(gpu, "nuc", "refused").status == "warn"
