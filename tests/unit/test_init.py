"""`immich-remote init`: the inventory text it writes loads back through inventory/ as written, its
proposals (bind address, permissions, host specs) are right, and the command itself works against
the Immich fake with a host that cannot be reached (no Docker needed)."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from immich_remote.cli import cli
from immich_remote.errors import InputError
from immich_remote.init import (
    InitAnswers,
    InitHost,
    needed_permissions,
    parse_host_spec,
    permission_verdict,
    propose_bind,
    render_inventory,
    scalar,
)
from immich_remote.inventory import load_inventory
from tests.testbed.immich_fake import DEFAULT_API_KEY, ApiKey


def load_text(tmp_path: Path, text: str):
    path = tmp_path / "hosts.yml"
    path.write_text(text)
    return load_inventory(path)


def test_a_full_answer_set_loads_back_with_every_value(tmp_path):
    answers = InitAnswers(
        "http://192.168.1.10:2283", "api_key_command", "pass show 'immich/api key' | head -1",
        ssh_user="deploy", ssh_key="~/.ssh/id_ed25519", known_hosts=str(tmp_path / "known_hosts"),
        server_version="2.7.5", written_by="immich-remote 0.1.0 on 2026-12-07",
        hosts=[InitHost("gpu-box", "192.168.1.50", accel="cuda", verified=True,
                        notes=["probed: amd64 (16 CPUs); accel auto: NVIDIA GeForce RTX 4090: driver 550"]),
               InitHost("nuc", "nuc.lan", 2222, accel="openvino", bind_address="192.168.1.60"),
               InitHost("tunnel", "127.0.0.1", 2201, accel="cpu", bind_address="10.0.0.7"),
               InitHost("v6", "fd00::50", accel="auto")])
    text = render_inventory(answers, path=str(tmp_path / "hosts.yml"))
    inv = load_text(tmp_path, text)
    assert inv.immich.url == "http://192.168.1.10:2283"
    assert inv.immich.api_key_command == "pass show 'immich/api key' | head -1"
    assert inv.immich.api_key_env is None and inv.immich.keep_local
    assert inv.ssh.known_hosts == tmp_path / "known_hosts"
    gpu, nuc, tunnel, v6 = inv.hosts
    assert (gpu.address, gpu.accel, gpu.bind_address, gpu.url, gpu.ssh_user) == \
        ("192.168.1.50", "cuda", "192.168.1.50", "http://192.168.1.50:3003", "deploy")
    assert (nuc.ssh_port, nuc.accel, nuc.bind_address, nuc.url) == (2222, "openvino", "192.168.1.60", "http://nuc.lan:3003")
    # Reached through a loopback tunnel: Immich must call the bind address, not 127.0.0.1.
    assert (tunnel.bind_address, tunnel.url) == ("10.0.0.7", "http://10.0.0.7:3003")
    assert (v6.bind_address, v6.url) == ("fd00::50", "http://[fd00::50]:3003")
    assert "# probed: amd64 (16 CPUs)" in text and "Immich 2.7.5 when this file was written" in text
    assert f"-i {tmp_path / 'hosts.yml'} check" in text


@pytest.mark.parametrize(("source", "value"), [("api_key_env", "MY_IMMICH_KEY"), ("api_key_file", "~/immich key.txt"),
                                               ("api_key_command", "op read op://vault/immich/key")])
def test_each_key_source_is_written_as_its_name_never_a_key(tmp_path, source, value):
    text = render_inventory(InitAnswers("https://photos.example.org", source, value,
                                        hosts=[InitHost("box", "10.1.2.3")]))
    inv = load_text(tmp_path, text)
    assert inv.immich.api_key_source.endswith(str(Path(value).expanduser()) if source == "api_key_file" else
                                              (f"`{value}`" if source == "api_key_command" else value))
    assert inv.immich.url == "https://photos.example.org:443"
    assert [k for k in ("api_key_env", "api_key_file", "api_key_command") if k + ":" in text.replace("# ", "#")
            and f"  {k}:" in text] == [source]


def test_no_hosts_is_refused():
    with pytest.raises(InputError, match="at least one host"):
        render_inventory(InitAnswers("http://10.0.0.1:2283"))


@given(st.one_of(st.text(min_size=1, max_size=40), st.from_regex(r"[-+0-9a-z.:_/~@%=]{1,12}", fullmatch=True)))
@settings(max_examples=5 * settings().max_examples)  # cheap examples: 500 in the suite's profile (tests/conftest.py)
def test_scalar_reads_back_as_the_same_string(text):
    # Whatever a user types (a key command, a path, a user name) comes back from YAML unchanged.
    assert yaml.safe_load(f"k: {scalar(text)}")["k"] == text


@pytest.mark.parametrize("text", ["yes", "No", "on", "1e3", "0x1F", "12:30", "~", "null", "a: b", "#x", "-", "",
                                  "ünïcode", "deploy", "/abs/path", "~/.ssh/id", "2026-12-07", ".inf", "0:", "@x", "a\u2028b"])
def test_scalar_keeps_yaml_look_alikes_as_strings(text):
    assert yaml.safe_load(f"k: {scalar(text)}")["k"] == text


@pytest.mark.parametrize(("spec", "expected"), [
    ("gpu-box=192.168.1.50", ("gpu-box", "192.168.1.50", None)),
    ("gpu=192.168.1.50:2222", ("gpu", "192.168.1.50", 2222)),
    ("nuc=nuc.lan:22", ("nuc", "nuc.lan", 22)),
    ("v6=fd00::50", ("v6", "fd00::50", None)),
    ("v6=[fd00::50]:2200", ("v6", "fd00::50", 2200)),
    (" a.b_c = 10.0.0.1 ", ("a.b_c", "10.0.0.1", None)),
])
def test_host_specs(spec, expected):
    assert parse_host_spec(spec) == expected


@pytest.mark.parametrize(("spec", "message"), [("gpu", "expected NAME=ADDRESS"), ("=1.2.3.4", "expected NAME"),
                                               ("gpu=", "expected NAME"), ("yes=1.2.3.4", "not a usable host name"),
                                               ("g p=1.2.3.4", "not a usable"), ("gpu=1.2.3.4:99999", "not an SSH port"),
                                               ("gpu=1.2.3.4:ssh", "not an SSH port")])
def test_bad_host_specs_name_the_flag_and_the_fix(spec, message):
    with pytest.raises(InputError, match=message) as info:
        parse_host_spec(spec)
    assert f"--host '{spec}'" in info.value.message


@pytest.mark.parametrize(("address", "addresses", "bind"), [
    ("192.168.1.50", {"127.0.0.1", "192.168.1.50", "172.17.0.1"}, "192.168.1.50"),  # reached on a LAN IP
    ("127.0.0.1", {"127.0.0.1", "172.30.0.5", "::1"}, "172.30.0.5"),  # through a tunnel: never loopback
    ("127.0.0.1", {"127.0.0.1", "172.17.0.1", "172.18.0.1", "172.29.4.11"}, "172.29.4.11"),  # not Docker's bridges
    ("gpu", {"192.168.1.9", "10.0.0.5", "fd00::1"}, "10.0.0.5"),
    ("gpu-box", {"127.0.0.1", "100.64.1.2", "fd00::7"}, "100.64.1.2"),  # a name: Tailscale before ULA
    ("gpu-box", {"93.184.216.34", "fd00::7"}, "fd00::7"),
    ("93.184.216.34", {"93.184.216.34", "127.0.0.1"}, None),  # public only: nothing to propose
    ("10.0.0.9", set(), "10.0.0.9"),  # host addresses unknown: the private SSH address
])
def test_bind_proposal_is_a_private_address_of_the_host(address, addresses, bind):
    proposed, why = propose_bind(address, addresses)
    assert proposed == bind, why
    assert why


def test_permission_verdict_names_exactly_what_is_missing():
    v2 = needed_permissions(admin_config_api=False, queues_api=True)
    required, optional = permission_verdict(["systemConfig.read", "queue.read"], v2)
    assert [r.split(" ")[0] for r in required] == ["systemConfig.update"]
    assert [o.split(" ")[0] for o in optional] == ["job.create"]
    assert permission_verdict(["all"], v2) == ([], [])
    v3 = needed_permissions(admin_config_api=True, queues_api=True)
    required, _ = permission_verdict(["systemConfig.read", "systemConfig.update"], v3)
    assert [r.split(" ")[0] for r in required] == ["adminConfig.read", "adminConfig.update"]
    old = needed_permissions(admin_config_api=False, queues_api=False)
    assert [p for p, _, _ in old][2] == "job.read"


# --- the command, against the Immich fake, with no host reachable ------------------------------------

def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_init(tmp_path: Path, *args: str, key: str | None = DEFAULT_API_KEY):
    env = {"NO_COLOR": "1", "IMMICH_API_KEY": key} if key else {"NO_COLOR": "1"}
    if not key:
        os.environ.pop("IMMICH_API_KEY", None)
    return CliRunner().invoke(cli, ["init", "--yes", "--known-hosts", str(tmp_path / "known_hosts"), *args],
                              env=env, catch_exceptions=False)


def test_init_with_no_host_reachable_writes_a_valid_inventory_and_says_what_it_could_not_verify(
        tmp_path, immich_fake_factory):
    fake = immich_fake_factory("2.7.5", api_keys=[ApiKey(DEFAULT_API_KEY, permissions=("systemConfig.read",),
                                                         name="half a key")])
    out = tmp_path / "inv" / "hosts.yml"
    port = closed_port()
    result = run_init(tmp_path, "--immich-url", fake.url, "--host", f"gpu-box=127.0.0.1:{port}",
                      "--host", "nuc=10.255.255.1:1", "--ssh-user", "deploy", "--out", str(out))
    assert result.exit_code == 0, result.output
    inv = load_inventory(out)
    assert [h.name for h in inv.hosts] == ["gpu-box", "nuc"]
    assert (inv.hosts[0].ssh_port, inv.hosts[0].accel, inv.hosts[0].ssh_user) == (port, "auto", "deploy")
    assert inv.immich.api_key_env == "IMMICH_API_KEY"
    text = out.read_text()
    assert DEFAULT_API_KEY not in text and DEFAULT_API_KEY not in result.output
    assert "NOT verified by init" in text
    # The missing permission is named, and so is each host it could not reach, with what to run next.
    assert "lacks: systemConfig.update" in result.stderr
    assert "gpu-box not verified" in result.stderr and "nuc not verified" in result.stderr
    assert "trust gpu-box" in result.stdout and "check" in result.stdout
    assert not (tmp_path / "known_hosts").exists()  # nothing was trusted


def test_init_json_reports_the_server_version_and_the_unverified_hosts(tmp_path, immich_fake_factory):
    fake = immich_fake_factory("3.2.2")
    out = tmp_path / "hosts.yml"
    result = run_init(tmp_path, "--json", "--immich-url", fake.url, "--host", f"box=127.0.0.1:{closed_port()}",
                      "--out", str(out))
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["server_version"] == "3.2.2" and data["hosts"]["box"]["verified"] is False
    assert any("box" in p for p in data["not_verified"])
    assert "Immich 3.2.2 when this file was written" in out.read_text()


def test_init_without_a_server_still_writes_the_inventory(tmp_path):
    out = tmp_path / "hosts.yml"
    result = run_init(tmp_path, "--immich-url", f"http://127.0.0.1:{closed_port()}", "--api-key-file",
                      str(tmp_path / "key"), "--host", f"box=127.0.0.1:{closed_port()}", "--out", str(out), key=None)
    assert result.exit_code == 0, result.output
    assert "Immich server not verified" in result.stderr
    assert load_inventory(out).immich.api_key_file == tmp_path / "key"


def test_init_never_overwrites_without_force(tmp_path):
    out = tmp_path / "hosts.yml"
    out.write_text("# mine\n")
    result = run_init(tmp_path, "--immich-url", "http://10.0.0.1:2283", "--host", "a=10.0.0.2", "--out", str(out))
    assert result.exit_code == 2
    assert "already exists" in result.stderr and "--force" in result.stderr
    assert out.read_text() == "# mine\n"


@pytest.mark.parametrize(("args", "message"), [
    (("--host", "a=10.0.0.2"), "needs --immich-url"),
    (("--immich-url", "http://10.0.0.1:2283/photos", "--host", "a=10.0.0.2"), "has a path"),
    (("--immich-url", "http://10.0.0.1:2283", "--api-key-env", "A", "--api-key-file", "f", "--host", "a=10.0.0.2"),
     "only one of"),
])
def test_init_bad_flags_exit_2_with_one_message(tmp_path, args, message):
    result = run_init(tmp_path, "--out", str(tmp_path / "h.yml"), *args)
    assert result.exit_code == 2
    assert message in result.stderr and "Traceback" not in result.output
    assert not (tmp_path / "h.yml").exists()
