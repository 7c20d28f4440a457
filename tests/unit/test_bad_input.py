"""The bad-input matrix, through the real command line: every mistake a user can make in the
inventory ends with exit code 2 and one paragraph naming the file, the line and key (or host), and
the fix; never a traceback.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from immich_remote.cli import cli
from immich_remote.errors import EXIT_BAD_INPUT, InputError
from immich_remote.immich_api import resolve_api_key
from immich_remote.inventory import load_inventory


def write(tmp_path: Path, text: str, name: str = "hosts.yml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def invoke(*args: str, env: dict | None = None):
    result = CliRunner().invoke(cli, list(args), env=env)
    # an error the CLI handled ends in SystemExit; anything else escaped it (a traceback for the user)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    return result


def refused(path: Path, *args: str) -> str:
    """Run `inventory check` (or `args`) on `path`; expect exit 2 and one paragraph; return it flattened."""
    result = invoke("-i", str(path), *(args or ("inventory", "check")))
    assert result.exit_code == EXIT_BAD_INPUT, result.output
    output = result.output.strip()
    assert output.startswith("error: "), output
    assert "\n\n" not in output, output  # one paragraph
    assert str(path) in output, output  # names the file
    return " ".join(output.split())


# --- the matrix: (inventory text, what the message must say: location, problem, fix) -----------------

CASES = {
    "malformed-yaml-flow": ("""
        immich: {url: "http://immich:2283"
        hosts:
          gpu: {address: 10.0.0.5}
        """, [":2: invalid YAML: expected ',' or '}'", "while parsing a flow mapping, from line 1",
              "Check the indentation and quoting"]),
    "malformed-yaml-indent": ("""
        immich:
          url: http://immich:2283
        hosts:
          gpu:
            address: 10.0.0.5
           accel: cuda
        """, [":6: invalid YAML:", "Check the indentation"]),
    "malformed-yaml-tab": ("immich:\n\turl: http://immich:2283\n", [":2: invalid YAML: found character '\\t'"]),
    "yaml-invalid-date": ("""
        immich: {url: "http://immich:2283"}
        hosts:
          gpu: {address: 10.0.0.5, remote_dir: 2024-13-45}
        """, [":3: invalid YAML: '2024-13-45' looks like a date but is not a valid one", "quote it"]),
    "yaml-control-character": ("immich: \x07\n", [":1: invalid YAML: character #x0007 is not allowed", "Remove it"]),
    "unknown-key-host": ("""
        immich: {url: "http://immich:2283"}
        hosts:
          gpu:
            adress: 10.0.0.5
        """, [":4: hosts.gpu.adress: unknown key 'adress'. Did you mean 'address'?"]),
    "unknown-key-defaults": ("""
        immich: {url: "http://immich:2283"}
        defaults:
          helth_timeout: 3m
        hosts:
          gpu: {address: 10.0.0.5}
        """, [":3: defaults.helth_timeout: unknown key 'helth_timeout'. Did you mean 'health_timeout'?"]),
    "unknown-key-immich": ("""
        immich:
          url: http://immich:2283
          api_kye_env: MY_KEY
        hosts:
          gpu: {address: 10.0.0.5}
        """, [":3: immich.api_kye_env: unknown key 'api_kye_env'. Did you mean 'api_key_env'?"]),
    "unknown-key-ssh": ("""
        immich: {url: "http://immich:2283"}
        ssh:
          conect_timeout: 5s
        hosts:
          gpu: {address: 10.0.0.5}
        """, [":3: ssh.conect_timeout: unknown key 'conect_timeout'. Did you mean 'connect_timeout'?"]),
    "unknown-key-no-close-match": ("""
        immich: {url: "http://immich:2283"}
        hosts:
          gpu: {address: 10.0.0.5, colour: blue}
        """, [":3: hosts.gpu.colour: unknown key 'colour'; remove it or check the spelling",
              "known keys here: address,"]),
    "unknown-section": ("""
        immich: {url: "http://immich:2283"}
        host:
          gpu: {address: 10.0.0.5}
        """, [":2: host: unknown key 'host' and no `hosts:` section. Did you mean 'hosts'?",
              "Rename `host:` to `hosts:`"]),
    "unknown-top-level-key": ("""
        immich: {url: "http://immich:2283"}
        hosts:
          gpu: {address: 10.0.0.5}
        default:
          accel: cpu
        """, [":4: default: unknown key 'default'. Did you mean 'defaults'?"]),
    "wrong-type-port-text": ("""
        immich: {url: "http://immich:2283"}
        hosts:
          gpu: {address: 10.0.0.5, ssh_port: twenty-two}
        """, [":3: hosts.gpu.ssh_port: input should be a valid integer", "'twenty-two'"]),
    "wrong-type-port-boolean": ("""
        immich: {url: "http://immich:2283"}
        hosts:
          gpu: {address: 10.0.0.5, ml_port: yes}
        """, [":3: hosts.gpu.ml_port: expected a number, found the boolean true"]),
    "wrong-type-address-list": ("""
        immich: {url: "http://immich:2283"}
        hosts:
          gpu:
            address: [10.0.0.5]
        """, [":4: hosts.gpu.address: input should be a valid string, found a list ['10.0.0.5']"]),
    "wrong-type-immich-string": ("""
        immich: http://immich:2283
        hosts:
          gpu: {address: 10.0.0.5}
        """, [":1: immich: expected a mapping, found a string 'http://immich:2283'"]),
    "wrong-type-hosts-list": ("""
        immich: {url: "http://immich:2283"}
        hosts:
          - gpu
        """, [":2: hosts: expected a mapping of host name -> settings"]),
    "wrong-type-env-list": ("""
        immich: {url: "http://immich:2283"}
        hosts:
          gpu: {address: 10.0.0.5, env: [A=1]}
        """, [":3: hosts.gpu.env: expected a mapping of VARIABLE: value"]),
    "wrong-type-group-member": ("""
        immich: {url: "http://immich:2283"}
        hosts:
          gpu: {address: 10.0.0.5}
        groups:
          gpus: [[gpu]]
        """, [":5: groups.gpus.0: expected a host name, found a list ['gpu']", "`gpus: [gpu]`"]),
    "wrong-type-duration": ("""
        immich: {url: "http://immich:2283", timeout: .inf}
        hosts:
          gpu: {address: 10.0.0.5}
        """, [":1: immich.timeout: 'inf' is not a duration; write it like 30s, 500ms or 2m"]),
    "boolean-host-name": ("""
        immich: {url: "http://immich:2283"}
        hosts:
          yes: {address: 10.0.0.5}
        """, [":3: hosts.True: 'True' is not a valid name: YAML reads an unquoted yes/no", "Quote the name"]),
    "duplicate-host-name": ("""
        immich: {url: "http://immich:2283"}
        hosts:
          gpu: {address: 10.0.0.5}
          nuc: {address: 10.0.0.6}
          gpu: {address: 10.0.0.7}
        """, [":5: invalid YAML: duplicate key 'gpu' (first on line 3)",
              "Each key may appear only once in a mapping: rename one entry or merge the two."]),
    "duplicate-url-same-address-and-port": ("""
        immich: {url: "http://immich:2283"}
        hosts:
          a: {address: 10.0.0.5}
          b: {address: 10.0.0.5, ssh_port: 2222}
        """, [":4: hosts.b: URL http://10.0.0.5:3003 is also host 'a''s URL",
              "Give one of them another address or ml_port"]),
    "duplicate-url-explicit": ("""
        immich: {url: "http://immich:2283"}
        hosts:
          a: {address: 10.0.0.5}
          b: {address: 10.0.0.6, url: "HTTP://10.0.0.5:3003/"}
        """, [":4: hosts.b: URL http://10.0.0.5:3003 is also host 'a''s URL"]),
    "unknown-backend": ("""
        immich: {url: "http://immich:2283"}
        hosts:
          gpu:
            address: 10.0.0.5
            accel: cuda12
        """, [":5: hosts.gpu.accel: 'cuda12' is not allowed; expected one of 'auto', 'cpu', 'cuda'",
              "Did you mean 'cuda'?"]),
    "backend-not-for-arch": ("""
        immich: {url: "http://immich:2283"}
        hosts:
          pi: {address: 10.0.0.5, arch: arm64, accel: cuda}
        """, [":3: hosts.pi.accel: accelerator 'cuda' has no image for arm64", "For arm64 use one of:"]),
    "url-with-path": ("""
        immich: {url: "http://immich:2283"}
        hosts:
          gpu:
            address: 10.0.0.5
            url: http://10.0.0.5:3003/ml
        """, [":5: hosts.gpu.url: 'http://10.0.0.5:3003/ml' has a path",
              "Point the URL at the ML service's root"]),
    "server-url-with-path": ("""
        immich:
          url: https://photos.example/immich
        hosts:
          gpu: {address: 10.0.0.5}
        """, [":2: immich.url: 'https://photos.example/immich' has a path"]),
    "address-with-port": ("""
        immich: {url: "http://immich:2283"}
        hosts:
          gpu: {address: "10.0.0.5:2222"}
        """, [":3: hosts.gpu.address: '10.0.0.5:2222' is not an IP address or a host name (a port does not belong",
              "Set the SSH port with ssh_port"]),
    "ipv6-with-port": ("""
        immich: {url: "http://immich:2283"}
        hosts:
          gpu: {address: "[fd00::5]:22"}
        """, [":3: hosts.gpu.address: '[fd00::5]:22' is not an IP address or a host name", "ssh_port"]),
    "address-not-a-name": ("""
        immich: {url: "http://immich:2283"}
        hosts:
          gpu: {address: "gpu box", bind_address: 10.0.0.5}
        """, [":3: hosts.gpu.address: 'gpu box' is not an IP address or a host name"]),
    "name-address-needs-bind": ("""
        immich: {url: "http://immich:2283"}
        hosts:
          gpu: {address: gpu.lan}
        """, [":3: hosts.gpu.address: address 'gpu.lan' is a name", "Set bind_address"]),
    "bind-address-is-a-name": ("""
        immich: {url: "http://immich:2283"}
        hosts:
          gpu: {address: 10.0.0.5, bind_address: gpu.lan}
        """, [":3: hosts.gpu.bind_address: 'gpu.lan' is not an IP address", "private IP"]),
    "missing-address": ("""
        immich: {url: "http://immich:2283"}
        hosts:
          gpu: {accel: cuda}
        """, [":3: hosts.gpu: missing `address`"]),
    "ansible-prefixed-typo": ("""
        all:
          vars:
            immich: {url: "http://immich:2283"}
          hosts:
            gpu:
              ansible_host: 10.0.0.5
              immich_remote_helth_timeout: 3m
        """, [":7: all.hosts.gpu.immich_remote_helth_timeout: unknown setting",
              "Did you mean 'immich_remote_health_timeout'?"]),
    "ansible-group-typo": ("""
        all:
          vars:
            immich: {url: "http://immich:2283"}
          children:
            gpus:
              host:
                gpu: {ansible_host: 10.0.0.5}
        """, [":6: all.children.gpus.host: unknown key 'host'", "Did you mean 'hosts'?"]),
    "ansible-unknown-backend": ("""
        all:
          vars:
            immich: {url: "http://immich:2283"}
            immich_remote_accel: cuda12
          hosts:
            gpu: {ansible_host: 10.0.0.5}
        """, [":4: all.vars.immich_remote_accel: 'cuda12' is not allowed", "Did you mean 'cuda'?"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_inventory_is_refused_with_one_clear_message(tmp_path, case):
    text, expected = CASES[case]
    path = write(tmp_path, text)
    message = refused(path)
    for fragment in expected:
        assert f"{path}{fragment}" in message if fragment.startswith(":") else fragment in message, (fragment, message)


@pytest.mark.parametrize("command", [("inventory", "check"), ("plan", "--server-version", "2.7.5"),
                                     ("render", "--server-version", "2.7.5", "--out", "out"),
                                     ("--json", "inventory", "check")])
def test_every_command_refuses_a_bad_inventory_the_same_way(tmp_path, command):
    path = write(tmp_path, CASES["unknown-key-host"][0])
    message = refused(path, *command)
    assert f"{path}:4: hosts.gpu.adress: unknown key 'adress'. Did you mean 'address'?" in message


def test_missing_inventory_file_names_it_and_the_fix(tmp_path):
    message = refused(tmp_path / "nope.yml")
    assert "no such inventory file" in message and "example-workstation.yml" in message


def test_unknown_host_on_the_command_line_is_bad_input(tmp_path):
    path = write(tmp_path, CASES["name-address-needs-bind"][0].replace("gpu.lan}", "10.0.0.5}"))
    result = invoke("-i", str(path), "plan", "gpx", "--server-version", "2.7.5")
    assert result.exit_code == EXIT_BAD_INPUT
    assert "'gpx' matches no host or group" in result.output and "Known: gpu" in result.output


# --- IPv6: supported; bracketed in URLs, bare everywhere else -------------------------------------------

def test_ipv6_addresses_are_supported_and_bracketed_in_urls(tmp_path):
    path = write(tmp_path, """
        immich: {url: "http://[fd00::10]:2283", local_ml_url: "http://[FD00::10]:3003"}
        hosts:
          a: {address: "fd00::5"}
          b: {address: "[fd00:0::6]", ml_port: 3013}
          c: {address: gpu.lan, bind_address: "[FD00::7]"}
        """)
    result = invoke("-i", str(path), "--json", "inventory", "check")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    hosts = {h["name"]: h for h in data["hosts"]}
    assert hosts["a"]["url"] == "http://[fd00::5]:3003" and hosts["a"]["bind_address"] == "fd00::5"
    assert hosts["b"]["url"] == "http://[fd00::6]:3013" and hosts["b"]["bind_address"] == "fd00::6"
    assert hosts["b"]["ssh"] == "fd00::6"  # what SSH gets: no brackets
    assert hosts["c"]["url"] == "http://gpu.lan:3003" and hosts["c"]["bind_address"] == "fd00::7"
    assert data["immich"]["url"] == "http://[fd00::10]:2283"
    assert data["immich"]["local_ml_url"] == "http://[fd00::10]:3003"
    plan = json.loads(invoke("-i", str(path), "--json", "plan", "--server-version", "2.7.5").stdout)
    assert plan["urls_after"] == ["http://[fd00::5]:3003", "http://[fd00::6]:3013", "http://gpu.lan:3003",
                                  "http://[fd00::10]:3003"]


def test_ipv6_with_an_unbalanced_bracket_is_refused(tmp_path):
    path = write(tmp_path, """
        immich: {url: "http://immich:2283"}
        hosts:
          gpu: {address: "[fd00::5"}
        """)
    message = refused(path)
    assert f"{path}:3: hosts.gpu.address: '[fd00::5' has an unbalanced bracket" in message
    assert "Write address: fd00::5" in message


# --- a public bind address: valid input, refused when a host is checked or deployed ---------------------

PUBLIC = """
    immich: {url: "http://immich:2283"}
    hosts:
      cloud: {address: 203.0.113.9, bind_address: 8.8.8.8, accel: cpu}
      wide: {address: 10.0.0.5, bind_address: 0.0.0.0, accel: cpu}
      lan: {address: 10.0.0.6, accel: cpu}
    """


def test_public_bind_address_is_reported_by_inventory_check_and_plan(tmp_path):
    """Loading accepts it (an operator may pass --allow-public); the offline commands warn with the fix,
    and `check`/`deploy` refuse the host in preflight (tests/integration/test_refusals.py)."""
    path = write(tmp_path, PUBLIC)
    for args in (("inventory", "check"), ("plan", "--server-version", "2.7.5")):
        result = invoke("-i", str(path), *args)
        assert result.exit_code == 0, result.output
        flat = " ".join(result.output.split())
        assert ("warning: cloud: bind_address 8.8.8.8 is a public address: the ML API has no authentication" in flat
                and "deploy refuses this without --allow-public" in flat), flat
        assert "warning: wide: bind_address 0.0.0.0 listens on every interface" in flat
        assert "give the host's private IP instead" in flat
        assert "warning: lan:" not in flat
    data = json.loads(invoke("-i", str(path), "--json", "inventory", "check").stdout)
    warnings = {h["name"]: h["warnings"] for h in data["hosts"]}
    assert any("--allow-public" in w for w in warnings["cloud"]) and warnings["lan"] == []


# --- the API key: env var missing, file missing or unreadable ------------------------------------------
# Every command that needs the key asks the Immich server for its version first, so the key's
# errors are tested on resolve_api_key itself (the CLI prints the same InputError, exit 2).

def server_with(tmp_path: Path, immich_line: str):
    path = write(tmp_path, f"""
        immich: {{url: "http://immich:2283", {immich_line}}}
        hosts:
          gpu: {{address: 10.0.0.5}}
        """)
    return load_inventory(path).immich


def test_missing_api_key_env_var_names_it_and_the_fix(tmp_path, monkeypatch):
    monkeypatch.delenv("IMMICH_REMOTE_TEST_KEY", raising=False)
    server = server_with(tmp_path, "api_key_env: IMMICH_REMOTE_TEST_KEY")
    with pytest.raises(InputError) as err:
        resolve_api_key(server)
    text = str(err.value)
    assert err.value.exit_code == EXIT_BAD_INPUT
    assert "IMMICH_REMOTE_TEST_KEY" in text and "immich.api_key_env" in text and "not set" in text
    assert "export IMMICH_REMOTE_TEST_KEY=" in text and "\n\n" not in text
    monkeypatch.setenv("IMMICH_REMOTE_TEST_KEY", "  secret  ")
    assert resolve_api_key(server) == "secret"


def test_default_api_key_env_var_is_immich_api_key(tmp_path, monkeypatch):
    monkeypatch.delenv("IMMICH_API_KEY", raising=False)
    with pytest.raises(InputError, match="IMMICH_API_KEY"):
        resolve_api_key(server_with(tmp_path, "timeout: 5s"))


def test_missing_api_key_file_names_the_file_relative_to_the_inventory(tmp_path):
    server = server_with(tmp_path, "api_key_file: secrets/key")
    assert server.api_key_file == tmp_path / "secrets" / "key"
    with pytest.raises(InputError) as err:
        resolve_api_key(server)
    text = str(err.value)
    assert err.value.exit_code == EXIT_BAD_INPUT
    assert f"immich.api_key_file: cannot read {tmp_path / 'secrets' / 'key'}" in text
    assert "chmod 600" in text and "\n\n" not in text


def test_unreadable_or_empty_api_key_file(tmp_path):
    (tmp_path / "keydir").mkdir()
    with pytest.raises(InputError, match=r"immich.api_key_file: cannot read .*keydir"):
        resolve_api_key(server_with(tmp_path, "api_key_file: keydir"))  # a directory: unreadable even for root
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(InputError, match=r"immich.api_key_file: .*empty is empty"):
        resolve_api_key(server_with(tmp_path, "api_key_file: empty"))
    (tmp_path / "key").write_text("abc123\n")
    assert resolve_api_key(server_with(tmp_path, "api_key_file: key")) == "abc123"


def test_two_api_key_sources_are_refused_at_load(tmp_path):
    path = write(tmp_path, """
        immich:
          url: http://immich:2283
          api_key_env: K
          api_key_file: k.txt
        hosts:
          gpu: {address: 10.0.0.5}
        """)
    message = refused(path)
    assert f"{path}:4: immich.api_key_file: give only one of api_key_env, api_key_file, api_key_command" in message
