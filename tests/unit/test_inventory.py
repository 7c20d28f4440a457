"""Inventory parsing: good files, precedence, the Ansible format, and one clear error per bad file."""

import textwrap
from pathlib import Path

import pytest

from immich_remote.errors import InputError, InventoryError
from immich_remote.inventory import load_inventory

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str, name: str = "hosts.yml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip())
    return path


MINIMAL = """
immich:
  url: http://192.168.1.10:2283
hosts:
  gpu:
    address: 192.168.1.50
"""


def test_minimal_inventory_gets_safe_defaults(tmp_path):
    inv = load_inventory(write(tmp_path, MINIMAL))
    (host,) = inv.hosts
    assert host.bind_address == "192.168.1.50"  # its own address, never 0.0.0.0
    assert host.url == "http://192.168.1.50:3003"
    assert host.accel == "auto" and host.model_cache == "model-cache" and host.remote_dir == "~/immich-remote-ml"
    assert inv.immich.local_ml_url == "http://immich-machine-learning:3003"
    assert inv.immich.fallback == "keep-local" and inv.immich.api_key_env == "IMMICH_API_KEY"


def test_examples_shipped_in_the_repo_are_valid():
    fleet = load_inventory(REPO / "inventory" / "example-fleet.yml")
    assert [h.name for h in fleet.hosts] == ["nvidia-box", "nuc", "spare"]
    assert fleet.groups == {"gpus": ("nvidia-box", "nuc"), "cpu-only": ("spare",)}
    nuc = fleet.host("nuc")
    assert nuc.bind_address == "192.168.1.51" and nuc.url == "http://nuc.home.example:3003"
    assert nuc.model_cache_is_path
    assert fleet.host("spare").url == "http://100.101.102.103:3013"
    assert fleet.immich.api_key_file == Path.home() / ".config/immich-remote/api-key"
    assert fleet.ssh.known_hosts == (REPO / "inventory" / "known_hosts")
    assert fleet.ssh.command_timeout == 600
    ws = load_inventory(REPO / "inventory" / "example-workstation.yml")
    assert ws.hosts[0].accel == "cuda" and ws.hosts[0].env == {"MACHINE_LEARNING_MODEL_TTL": "600"}


def test_host_settings_win_over_defaults_and_env_merges(tmp_path):
    inv = load_inventory(write(tmp_path, """
        immich: {url: "http://immich:2283"}
        defaults:
          ssh_user: deploy
          accel: cpu
          priority: 50
          env: {MACHINE_LEARNING_MODEL_TTL: 300, MACHINE_LEARNING_WORKERS: 1}
        hosts:
          a: {address: 10.0.0.5, accel: cuda, env: {MACHINE_LEARNING_WORKERS: 2}}
          b: {address: 10.0.0.6, ssh_user: admin, priority: 10}
    """))
    a, b = inv.hosts
    assert (a.accel, a.ssh_user, a.priority) == ("cuda", "deploy", 50)
    assert a.env == {"MACHINE_LEARNING_MODEL_TTL": "300", "MACHINE_LEARNING_WORKERS": "2"}
    assert (b.accel, b.ssh_user, b.priority) == ("cpu", "admin", 10)


def test_select_by_name_group_glob_and_comma_list(tmp_path):
    inv = load_inventory(write(tmp_path, MINIMAL.replace("hosts:\n", "hosts:\n  gpu2:\n    address: 10.0.0.7\n")
                               + "groups:\n  gpus: [gpu, gpu2]\n"))
    assert [h.name for h in inv.select(["gpus"])] == ["gpu2", "gpu"]
    assert [h.name for h in inv.select(["gpu2"])] == ["gpu2"]
    assert [h.name for h in inv.select(["gp*"])] == ["gpu2", "gpu"]
    assert [h.name for h in inv.select(["gpu,gpu2"])] == ["gpu2", "gpu"]
    with pytest.raises(InputError, match="'nope' matches no host or group"):
        inv.select(["nope"])


ANSIBLE = """
all:
  vars:
    immich:
      url: http://192.168.1.10:2283
      api_key_env: MY_KEY
    ansible_user: deploy
    some_other_role_var: 42
  hosts:
    spare:
      ansible_host: 192.168.1.52
  children:
    gpus:
      vars:
        accel: cuda
      hosts:
        gpu1:
          ansible_host: 192.168.1.50
          ansible_port: 2222
          ansible_ssh_private_key_file: keys/gpu1
        gpu2:
          ansible_host: 192.168.1.51
          immich_remote_accel: rocm
      children:
        big:
          hosts:
            gpu1:
              immich_remote_priority: 5
"""


def test_ansible_inventory(tmp_path):
    inv = load_inventory(write(tmp_path, ANSIBLE))
    assert inv.format == "ansible"
    assert inv.immich.api_key_env == "MY_KEY"
    spare, gpu1, gpu2 = inv.hosts
    assert (spare.address, spare.ssh_user, spare.accel) == ("192.168.1.52", "deploy", "auto")
    assert (gpu1.ssh_port, gpu1.ssh_key, gpu1.accel, gpu1.priority) == (2222, tmp_path / "keys/gpu1", "cuda", 5)
    assert gpu2.accel == "rocm"  # host var beats group var
    assert inv.groups["gpus"] == ("gpu1", "gpu2") and inv.groups["big"] == ("gpu1",)


# --- invalid inventories: one message naming file, line, key path and the fix -----------------

BAD = {
    "typo-key": ("""
        immich: {url: "http://immich:2283"}
        hosts:
          gpu:
            address: 10.0.0.5
            acel: cuda
        """, ":5: hosts.gpu.acel: unknown key"),
    "bad-accel": ("""
        immich: {url: "http://immich:2283"}
        hosts:
          gpu:
            address: 10.0.0.5
            accel: cudaa
        """, ":5: hosts.gpu.accel: 'cudaa' is not allowed; expected one of 'auto', 'cpu', 'cuda'"),
    "arch-mismatch": ("""
        immich: {url: "http://immich:2283"}
        hosts:
          pi:
            address: 10.0.0.5
            arch: arm64
            accel: cuda
        """, ":6: hosts.pi.accel: accelerator 'cuda' has no image for arm64"),
    "missing-address": ("""
        immich: {url: "http://immich:2283"}
        hosts:
          gpu:
            accel: cuda
        """, ":3: hosts.gpu: missing `address`"),
    "name-needs-bind": ("""
        immich: {url: "http://immich:2283"}
        hosts:
          gpu:
            address: gpu.lan
        """, ":4: hosts.gpu.address: address 'gpu.lan' is a name"),
    "url-with-path": ("""
        immich: {url: "http://immich:2283"}
        hosts:
          gpu:
            address: 10.0.0.5
            url: http://10.0.0.5:3003/ml
        """, ":5: hosts.gpu.url: 'http://10.0.0.5:3003/ml' has a path"),
    "port-range": ("""
        immich: {url: "http://immich:2283"}
        hosts:
          gpu:
            address: 10.0.0.5
            ml_port: 70000
        """, ":5: hosts.gpu.ml_port: Input should be less than or equal to 65535"),
    "port-type": ("""
        immich: {url: "http://immich:2283"}
        defaults:
          ssh_port: twenty-two
        hosts:
          gpu: {address: 10.0.0.5}
        """, ":3: defaults.ssh_port: input should be a valid integer"),
    "api-key-in-file": ("""
        immich:
          url: http://immich:2283
          api_key: abc123
        hosts:
          gpu: {address: 10.0.0.5}
        """, ":3: immich.api_key: unknown key"),
    "two-key-sources": ("""
        immich:
          url: http://immich:2283
          api_key_env: K
          api_key_file: k.txt
        hosts:
          gpu: {address: 10.0.0.5}
        """, ":4: immich.api_key_file: give only one of"),
    "reserved-env": ("""
        immich: {url: "http://immich:2283"}
        hosts:
          gpu:
            address: 10.0.0.5
            env: {IMMICH_PORT: 2283}
        """, ":5: hosts.gpu.env: IMMICH_PORT must not be set"),
    "bad-duration": ("""
        immich: {url: "http://immich:2283"}
        defaults:
          health_timeout: soon
        hosts:
          gpu: {address: 10.0.0.5}
        """, ":3: defaults.health_timeout: 'soon' is not a duration"),
    "group-unknown-host": ("""
        immich: {url: "http://immich:2283"}
        hosts:
          gpu: {address: 10.0.0.5}
        groups:
          gpus: [gpu, gpu9]
        """, ":5: groups.gpus.1: 'gpu9' is not a host"),
    "duplicate-key": ("""
        immich: {url: "http://immich:2283"}
        hosts:
          gpu: {address: 10.0.0.5}
          gpu: {address: 10.0.0.6}
        """, ":4: invalid YAML: duplicate key 'gpu' (first on line 3)"),
    "bad-yaml": ("""
        immich: {url: "http://immich:2283"
        hosts:
        """, "invalid YAML"),
    "no-hosts": ("""
        immich: {url: "http://immich:2283"}
        """, "missing `hosts:` section"),
    "same-url": ("""
        immich: {url: "http://immich:2283"}
        hosts:
          a: {address: 10.0.0.5}
          b: {address: 10.0.0.6, url: "http://10.0.0.5:3003"}
        """, ":4: hosts.b: URL http://10.0.0.5:3003 is also host 'a''s URL"),
    "bad-volume": ("""
        immich: {url: "http://immich:2283"}
        hosts:
          a: {address: 10.0.0.5, model_cache: "my cache"}
        """, ":3: hosts.a.model_cache: expected a Docker volume name"),
    "remote-only-typo": ("""
        immich: {url: "http://immich:2283", fallback: remote}
        hosts:
          a: {address: 10.0.0.5}
        """, ":1: immich.fallback: 'remote' is not allowed"),
    "empty-file": ("", "empty file"),
    "list-top": ("- a\n- b\n", "expected a mapping at the top"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_invalid_inventory_gives_one_precise_message(tmp_path, case):
    text, expected = BAD[case]
    path = write(tmp_path, text)
    with pytest.raises(InventoryError) as err:
        load_inventory(path)
    message = str(err.value)
    assert str(path) in message
    assert expected in message, message
    assert "Traceback" not in message
    assert err.value.exit_code == 2


def test_missing_file_names_it_and_the_fix(tmp_path):
    with pytest.raises(InventoryError, match="no such inventory file") as err:
        load_inventory(tmp_path / "nope.yml")
    assert "example-workstation.yml" in str(err.value)


def test_ansible_errors_point_into_the_ansible_file(tmp_path):
    path = write(tmp_path, ANSIBLE.replace("accel: cuda", "accel: tpu"))
    with pytest.raises(InventoryError) as err:
        load_inventory(path)
    assert ":14: all.children.gpus.vars.accel: 'tpu' is not allowed" in str(err.value)


# --- regressions found by the property tests (tests/unit/test_properties.py) --------------------------

def test_empty_env_in_defaults_merges_with_a_hosts_env(tmp_path):
    inv = load_inventory(write(tmp_path, """
        immich: {url: "http://immich:2283"}
        defaults:
          env:
        hosts:
          gpu: {address: 10.0.0.5, env: {MACHINE_LEARNING_WORKERS: 2}}
        """))
    assert inv.hosts[0].env == {"MACHINE_LEARNING_WORKERS": "2"}


def test_ansible_group_with_keys_of_mixed_types_is_refused_not_crashed(tmp_path):
    path = write(tmp_path, """
        all:
          vars: {immich: {url: "http://immich:2283"}}
          hosts: {gpu: {ansible_host: 10.0.0.5}}
          1: x
          zz: y
        """)
    with pytest.raises(InventoryError, match=r":4: all.1: unknown key '1'; an Ansible group holds only"):
        load_inventory(path)


def test_ansible_immich_remote_ssh_and_other_ansible_variables_are_accepted(tmp_path):
    inv = load_inventory(write(tmp_path, """
        all:
          vars:
            immich: {url: "http://immich:2283"}
            immich_remote_ssh: {connect_timeout: 3s}
            ansible_python_interpreter: /usr/bin/python3
          hosts:
            gpu: {ansible_host: 10.0.0.5, ansible_connection: ssh, some_role_var: [1, 2]}
        """))
    assert inv.ssh.connect_timeout == 3 and inv.hosts[0].address == "10.0.0.5"


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf", "true", "0"])
def test_durations_must_be_finite_and_positive(tmp_path, value):
    path = write(tmp_path, f"""
        immich: {{url: "http://immich:2283"}}
        hosts:
          gpu: {{address: 10.0.0.5, health_timeout: {value}}}
        """)
    with pytest.raises(InventoryError, match=r":3: hosts.gpu.health_timeout: "):
        load_inventory(path)


def test_addresses_are_stored_bare_and_canonical(tmp_path):
    inv = load_inventory(write(tmp_path, """
        immich: {url: "http://immich:2283"}
        hosts:
          a: {address: " 10.0.0.5 "}
          b: {address: "[FD00:0::5]"}
          c: {address: gpu.lan., bind_address: "[fd00::7]"}
        """))
    a, b, c = inv.hosts
    assert (a.address, a.url) == ("10.0.0.5", "http://10.0.0.5:3003")
    assert (b.address, b.bind_address, b.url) == ("fd00::5", "fd00::5", "http://[fd00::5]:3003")
    assert (c.address, c.bind_address) == ("gpu.lan.", "fd00::7")


def test_yaml_surrogate_escapes_are_joined_or_refused(tmp_path):
    path = write(tmp_path, r"""
        immich: {url: "http://immich:2283"}
        hosts:
          gpu: {address: 10.0.0.5, remote_dir: "/srv/\ud83d\ude00"}
        """)
    assert load_inventory(path).hosts[0].remote_dir == "/srv/\U0001f600"
    path.write_text(path.read_text().replace(r"\ude00", ""))
    with pytest.raises(InventoryError, match=r":3: invalid YAML: a \\u escape makes half a character"):
        load_inventory(path)


def test_yaml_date_that_is_no_date_is_refused_with_its_line(tmp_path):
    path = write(tmp_path, """
        immich: {url: "http://immich:2283"}
        hosts:
          gpu: {address: 10.0.0.5, remote_dir: 2024-02-30}
        """)
    with pytest.raises(InventoryError, match=r":3: invalid YAML: '2024-02-30' looks like a date"):
        load_inventory(path)
