"""Property tests (hypothesis): the inventory loader never crashes, the URL list is always right,
and registering URLs never touches any other part of Immich's config.

- Inventories: random YAML text, random structures in both formats (native and Ansible), random
  types in every known field, unknown keys, odd names, addresses, ports and URLs. The loader
  returns an Inventory or raises InputError naming the file; any other exception is a bug.
- The URL list: for random current lists (duplicates, hand-added URLs, trailing slashes, case
  differences, the local URL present or not), random registered/removed hosts and both fallback
  modes, the rules of README.md hold.
- `with_ml_urls`: only machineLearning.urls changes, key order is kept, the input is not mutated.
"""

from __future__ import annotations

import copy
import json
import tempfile
from pathlib import Path

import hypothesis.configuration
import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from immich_remote.errors import ImmichAPIError, InputError
from immich_remote.immich_config import with_ml_urls
from immich_remote.inventory import (
    Host,
    HostSettings,
    ImmichServer,
    ImmichSettings,
    Inventory,
    SSHOptions,
    SSHSettings,
    load_inventory,
)
from immich_remote.plan import by_priority, desired_urls
from immich_remote.urls import classify_address, derive_url, normalise_url, parse_ip, url_key

# Hypothesis keeps caches in ./.hypothesis by default; keep the checkout clean.
hypothesis.configuration.set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "immich-remote-hypothesis")

REPO = Path(__file__).resolve().parents[2]
LOCAL_URLS = ["http://immich-machine-learning:3003", "http://127.0.0.1:3003", "http://[fd00::1]:3003"]
FLEET_TEXT = (REPO / "inventory" / "example-fleet.yml").read_text()

# Example counts come from the Hypothesis profile (tests/conftest.py: 100 in the suite, 1,000 with
# --hypothesis-profile=thorough); the simpler properties below run half as many. No deadline, no database.
PROPS = settings(deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
FAST = settings(PROPS, max_examples=max(10, settings().max_examples // 2))


@pytest.fixture(scope="module")
def workdir():
    with tempfile.TemporaryDirectory(prefix="immich-remote-props-") as d:
        yield Path(d)


# --- strategies: values ------------------------------------------------------------------------------

HOST_FIELDS = sorted(HostSettings.model_fields)
IMMICH_FIELDS = sorted(ImmichSettings.model_fields)
SSH_FIELDS = sorted(SSHSettings.model_fields)
ANSIBLE_NAMES = ["ansible_host", "ansible_user", "ansible_port", "ansible_ssh_private_key_file",
                 "ansible_ssh_host", "ansible_connection", "ansible_python_interpreter"]
TYPOS = ["adress", "helth_timeout", "acel", "bind_adress", "mlport", "api_kye_env", "local_ml", "host",
         "group", "default", "imich", "childs", "var"]

ipv4 = st.ip_addresses(v=4).map(str)
ipv6 = st.ip_addresses(v=6).map(str)
hostname = st.from_regex(r"\A[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?(\.[a-z]{2,5}){0,2}\Z")
odd_text = st.text(max_size=12)
address = st.one_of(ipv4, ipv6, ipv6.map(lambda a: f"[{a}]"), hostname, odd_text,
                    st.sampled_from(["0.0.0.0", "::", "127.0.0.1", "8.8.8.8", "192.168.1.50:22", "a/b", " ", ""]))
port = st.one_of(st.integers(1, 65535), st.integers(-5, 5), st.integers(65530, 70000),
                 st.sampled_from(["22", "http", True, 3.5, None]))


@st.composite
def url(draw):
    if draw(st.integers(0, 5)) == 0:
        return draw(odd_text)
    scheme = draw(st.sampled_from(["http", "https", "HTTP", "ftp", ""]))
    host = draw(st.one_of(ipv4, ipv6.map(lambda a: f"[{a}]"), ipv6, hostname, odd_text))
    port_part = draw(st.one_of(st.just(""), st.integers(0, 70000).map(lambda p: f":{p}"), st.just(":x")))
    tail = draw(st.sampled_from(["", "/", "/ml", "?a=1", "#f", "//"]))
    user = draw(st.sampled_from(["", "", "", "u:p@"]))
    return f"{scheme}://{user}{host}{port_part}{tail}"


duration = st.one_of(st.integers(-5, 10_000), st.floats(allow_nan=True, allow_infinity=True),
                     st.sampled_from(["30s", "500ms", "2m", "1h", "1.5m", "soon", "0s", "-1s", "", "1e400", ".inf"]))
scalar = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(), st.text(max_size=15),
                   st.dates(), st.binary(max_size=4))
key = st.one_of(st.sampled_from(HOST_FIELDS + IMMICH_FIELDS + SSH_FIELDS + ANSIBLE_NAMES + TYPOS
                                + ["hosts", "vars", "children", "immich", "ssh", "defaults", "groups", "all"]),
                st.text(max_size=10), st.integers(-3, 3), st.booleans(), st.none())
anything = st.recursive(scalar, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                        st.dictionaries(key, inner, max_size=4)),
                        max_leaves=6)

PLAUSIBLE = {
    "address": address, "bind_address": address, "url": url(), "local_ml_url": url(),
    "ssh_port": port, "ml_port": port, "max_handshakes": port, "priority": st.integers(-10, 10**6),
    "accel": st.sampled_from(["auto", "cpu", "cuda", "rocm", "openvino", "openvino-wsl", "armnn", "rknn",
                              "cuda12", "CUDA", "gpu", ""]),
    "arch": st.sampled_from(["amd64", "arm64", "x86_64", "aarch64"]),
    "fallback": st.sampled_from(["keep-local", "remote-only", "remote", "local"]),
    "health_timeout": duration, "health_interval": duration, "timeout": duration,
    "connect_timeout": duration, "command_timeout": duration,
    "model_cache": st.sampled_from(["model-cache", "/srv/cache", "my cache", "", "-x", "a" * 3]),
    "env": st.dictionaries(st.one_of(st.sampled_from(["MACHINE_LEARNING_WORKERS", "IMMICH_PORT", "IMMICH_HOST",
                                                      "1BAD", "A-B"]), st.text(max_size=6)),
                           st.one_of(scalar, st.lists(scalar, max_size=2)), max_size=3),
    "verify_tls": st.one_of(st.booleans(), st.sampled_from(["yes", "no", "maybe", 2])),
}


def field_value(name: str):
    return st.one_of(PLAUSIBLE.get(name, st.text(max_size=20)), anything)


@st.composite
def settings_dict(draw, fields: list[str], prefix: str = ""):
    """Some of `fields` with plausible-or-random values, maybe plus unknown keys."""
    chosen = draw(st.lists(st.sampled_from(fields), unique=True, max_size=6))
    result = {f"{prefix}{name}": draw(field_value(name)) for name in chosen}
    for extra in draw(st.lists(key, max_size=2)):
        result.setdefault(extra, draw(anything))
    return result


def host_settings(prefix: str = ""):
    @st.composite
    def build(draw):
        result = draw(settings_dict(HOST_FIELDS, prefix))
        if draw(st.booleans()):  # most real hosts have an address
            result.setdefault(f"{prefix}address", draw(address))
        return result
    return build()


host_name = st.one_of(st.from_regex(r"\A[a-z][a-z0-9-]{0,8}\Z"), st.sampled_from(["all", "gpu", "yes", "a b"]),
                      st.integers(0, 3), st.booleans(), st.none())


def maybe_random(strategy):
    """Usually the structure, sometimes any value of any type in its place."""
    return st.one_of(strategy, strategy, strategy, anything)


@st.composite
def native_inventory(draw):
    doc = {}
    if draw(st.integers(0, 9)):
        immich = draw(settings_dict(IMMICH_FIELDS))
        if draw(st.booleans()):
            immich["url"] = draw(url())
        doc["immich"] = draw(maybe_random(st.just(immich)))
    if draw(st.booleans()):
        doc["ssh"] = draw(maybe_random(settings_dict(SSH_FIELDS)))
    if draw(st.booleans()):
        doc["defaults"] = draw(maybe_random(host_settings()))
    if draw(st.integers(0, 9)):
        doc["hosts"] = draw(maybe_random(st.dictionaries(host_name, maybe_random(host_settings()), max_size=4)))
    names = list(doc["hosts"]) if isinstance(doc.get("hosts"), dict) else []
    if draw(st.booleans()):
        member = st.one_of(st.sampled_from(names), anything) if names else anything
        doc["groups"] = draw(maybe_random(st.dictionaries(host_name, maybe_random(st.lists(member, max_size=3)),
                                                          max_size=3)))
    if draw(st.integers(0, 4)) == 0:
        doc["state_dir"] = draw(field_value("state_dir"))
    for extra in draw(st.lists(key, max_size=2)):
        doc.setdefault(extra, draw(anything))
    return doc


@st.composite
def ansible_vars(draw) -> dict:
    result = {}
    for name in draw(st.lists(st.sampled_from(HOST_FIELDS), unique=True, max_size=4)):
        spelled = draw(st.sampled_from([name, f"immich_remote_{name}"]))
        result[spelled] = draw(field_value(name))
    for alias in draw(st.lists(st.sampled_from(ANSIBLE_NAMES), unique=True, max_size=2)):
        result[alias] = draw(address if "host" in alias else field_value("ssh_port") if "port" in alias
                             else st.text(max_size=8))
    for extra in draw(st.lists(st.one_of(key, st.sampled_from(["immich_remote_adress", "immich_remote_ssh"])),
                               max_size=2)):
        result.setdefault(extra, draw(anything))
    return result


@st.composite
def ansible_group(draw, depth: int = 0):
    node = {}
    if draw(st.booleans()):
        node["vars"] = draw(maybe_random(ansible_vars()))
    if draw(st.integers(0, 3)):
        node["hosts"] = draw(maybe_random(st.dictionaries(
            host_name, st.one_of(st.none(), ansible_vars()), max_size=3)))
    if depth < 2 and draw(st.booleans()):
        node["children"] = draw(maybe_random(st.dictionaries(host_name, st.one_of(st.none(), ansible_group(depth + 1)),
                                                             max_size=2)))
    if draw(st.integers(0, 5)) == 0:
        node[draw(key)] = draw(anything)
    return node


@st.composite
def ansible_inventory(draw):
    root = draw(ansible_group())
    all_vars = root.get("vars") if isinstance(root.get("vars"), dict) else {}
    if draw(st.integers(0, 9)):
        immich = draw(settings_dict(IMMICH_FIELDS))
        if draw(st.booleans()):
            immich["url"] = draw(url())
        all_vars["immich"] = draw(maybe_random(st.just(immich)))
    if draw(st.booleans()):
        all_vars["immich_remote_ssh"] = draw(maybe_random(settings_dict(SSH_FIELDS)))
    root["vars"] = all_vars
    return {"all": draw(maybe_random(st.just(root)))}


# Mostly valid inventories: good values everywhere, then at most one random edit, so that the
# success path (merging, URLs, uniqueness) is exercised as much as the error path.
private_ipv4 = st.one_of(st.ip_addresses(network="10.0.0.0/8"), st.ip_addresses(network="192.168.0.0/16"),
                         st.ip_addresses(network="100.64.0.0/10")).map(str)
ula = st.ip_addresses(network="fd00::/8").map(str)
good_duration = st.one_of(st.integers(1, 600), st.sampled_from(["30s", "500ms", "2m", "1.5m", "1h", "90"]))
GOOD = {
    "ssh_user": st.sampled_from(["deploy", "root", "ml"]), "ssh_port": st.integers(1, 65535),
    "accel": st.sampled_from(["auto", "cpu", "cuda", "openvino", "armnn"]), "arch": st.sampled_from(["amd64", "arm64"]),
    "ml_port": st.integers(1, 65535), "remote_dir": st.sampled_from(["~/ml", "/opt/immich-ml"]),
    "model_cache": st.sampled_from(["model-cache", "/srv/ml-cache"]), "priority": st.integers(-5, 50),
    "env": st.dictionaries(st.sampled_from(["MACHINE_LEARNING_WORKERS", "MACHINE_LEARNING_MODEL_TTL"]),
                           st.one_of(st.integers(0, 9), st.booleans(), st.text(max_size=5)), max_size=2),
    "health_timeout": good_duration, "health_interval": good_duration,
    "registry": st.just("registry.lan:5000"),
}


@st.composite
def good_host(draw, prefix: str = "", address_key: str = "address"):
    kind = draw(st.sampled_from(["ipv4", "ipv6", "bracketed", "name"]))
    result = {}
    if kind == "name":
        result[address_key] = draw(hostname)
        result[f"{prefix}bind_address"] = draw(st.one_of(private_ipv4, ula))
    else:
        ip = draw(private_ipv4 if kind == "ipv4" else ula)
        result[address_key] = f"[{ip}]" if kind == "bracketed" else ip
    for name in draw(st.lists(st.sampled_from(sorted(GOOD)), unique=True, max_size=4)):
        result[f"{prefix}{name}"] = draw(GOOD[name])
    return result


good_immich = st.fixed_dictionaries({"url": st.sampled_from(["http://immich:2283", "https://photos.example",
                                                             "http://[fd00::10]:2283"])},
                                    optional={"local_ml_url": st.sampled_from(LOCAL_URLS),
                                              "fallback": st.sampled_from(["keep-local", "remote-only"]),
                                              "timeout": good_duration, "api_key_env": st.just("MY_KEY")})
good_names = st.lists(st.from_regex(r"\A[a-z][a-z0-9-]{0,6}\Z"), min_size=1, max_size=4, unique=True)


@st.composite
def one_random_edit(draw, doc):
    """Replace one value somewhere in `doc` with anything, or add an unknown key; or leave it alone."""
    choice = draw(st.integers(0, 3))
    if choice == 0:
        return doc
    node = doc
    while True:
        keys = list(node) if isinstance(node, dict) else []
        if not keys:
            return doc
        k = draw(st.sampled_from(keys))
        if isinstance(node[k], dict) and node[k] and draw(st.booleans()):
            node = node[k]
            continue
        if choice == 1:
            node[k] = draw(anything)
        elif choice == 2:
            node[draw(key)] = draw(anything)
        else:
            node[k] = None
        return doc


@st.composite
def mostly_valid_native(draw):
    names = draw(good_names)
    doc = {"immich": draw(good_immich)}
    if draw(st.booleans()):
        doc["defaults"] = {k: draw(GOOD[k]) for k in draw(st.lists(st.sampled_from(sorted(GOOD)), unique=True,
                                                                    max_size=3))}
    doc["hosts"] = {name: draw(good_host()) for name in names}
    if draw(st.booleans()):
        doc["groups"] = {"grp": draw(st.lists(st.sampled_from(names), min_size=1, max_size=3))}
    return draw(one_random_edit(doc))


@st.composite
def mostly_valid_ansible(draw):
    names = draw(good_names)
    split = draw(st.integers(0, len(names)))
    hosts = {n: draw(good_host(prefix=draw(st.sampled_from(["", "immich_remote_"])), address_key="ansible_host"))
             for n in names}
    group_vars = {f"immich_remote_{k}": draw(GOOD[k]) for k in draw(st.lists(st.sampled_from(sorted(GOOD)),
                                                                             unique=True, max_size=2))}
    doc = {"all": {"vars": {"immich": draw(good_immich), "ansible_user": "deploy"},
                   "hosts": {n: hosts[n] for n in names[:split]},
                   "children": {"grp": {"vars": group_vars, "hosts": {n: hosts[n] for n in names[split:]}}}}}
    return draw(one_random_edit(doc))


def dump(doc) -> str:
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)


# --- the property: an Inventory or one clear InputError naming the file ---------------------------

def load_or_input_error(path: Path) -> Inventory | None:
    try:
        inventory = load_inventory(path)
    except InputError as exc:
        text = str(exc)
        assert str(path) in text, text
        assert exc.exit_code == 2
        assert "Traceback" not in text and "\n\n" not in text, text
        assert "pydantic" not in text.lower() and "For further information" not in text, text
        assert "LineDict" not in text and "LineList" not in text, text
        return None
    assert isinstance(inventory, Inventory)
    urls = [h.url for h in inventory.hosts]
    assert len(set(urls)) == len(urls)
    for host in inventory.hosts:
        assert normalise_url(host.url, where="url") == host.url
        assert parse_ip(host.bind_address) is not None and "[" not in host.bind_address
        assert not host.address.startswith("[")
        assert 1 <= host.ml_port <= 65535 and host.health_timeout > 0 and host.health_interval > 0
    assert normalise_url(inventory.immich.local_ml_url, where="local_ml_url") == inventory.immich.local_ml_url
    assert inventory.immich.timeout > 0 and inventory.immich.timeout != float("inf")
    return inventory


def check_text(workdir: Path, text: str) -> Inventory | None:
    path = workdir / "hosts.yml"
    path.write_text(text, encoding="utf-8")
    return load_or_input_error(path)


@PROPS
@given(native_inventory())
def test_random_native_inventories_load_or_fail_clearly(workdir, doc):
    check_text(workdir, dump(doc))


@PROPS
@given(ansible_inventory())
def test_random_ansible_inventories_load_or_fail_clearly(workdir, doc):
    check_text(workdir, dump(doc))


@PROPS
@given(st.one_of(mostly_valid_native(), mostly_valid_ansible()))
def test_mostly_valid_inventories_load_or_fail_clearly(workdir, doc):
    check_text(workdir, dump(doc))


@FAST
@given(anything)
def test_any_yaml_document_loads_or_fails_clearly(workdir, doc):
    check_text(workdir, dump(doc))


YAML_CHARS = st.sampled_from(list("abc:-[]{}#&*!|>'\"%@`,?\n \t0129.~=<\x07\ufeff") + [
    "  ", "\n  ", ": ", "- ", "---", "<<: ", "&a ", "*a", "!!set ", "!!binary ", '"\\ud800"', '"\\ud83d\\ude00"',
    "2024-13-45", "0x1F", ".nan", "yes"])


@FAST
@given(st.lists(YAML_CHARS, max_size=60).map("".join))
def test_random_yaml_text_loads_or_fails_clearly(workdir, text):
    check_text(workdir, text)


@FAST
@given(st.data())
def test_mangled_example_inventory_loads_or_fails_clearly(workdir, data):
    """The example fleet with random edits: lines deleted, duplicated, re-indented, characters inserted."""
    lines = FLEET_TEXT.splitlines()
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(lines) - 1))
        edit = data.draw(st.sampled_from(["delete", "duplicate", "indent", "dedent", "insert", "replace-value"]))
        if edit == "delete":
            del lines[i]
        elif edit == "duplicate":
            lines.insert(i, lines[i])
        elif edit == "indent":
            lines[i] = " " + lines[i]
        elif edit == "dedent":
            lines[i] = lines[i][1:]
        elif edit == "insert":
            at = data.draw(st.integers(0, len(lines[i])))
            lines[i] = lines[i][:at] + data.draw(YAML_CHARS) + lines[i][at:]
        elif ":" in lines[i]:
            head = lines[i].split(":", 1)[0]
            lines[i] = f"{head}: {json.dumps(data.draw(scalar.filter(lambda v: not isinstance(v, (bytes,)))), default=str)}"
        if not lines:
            break
    check_text(workdir, "\n".join(lines) + "\n")


# --- URL rules ------------------------------------------------------------------------------------------

@FAST
@given(url())
def test_normalise_url_is_idempotent_or_refuses_with_input_error(text):
    try:
        once = normalise_url(text, where="url")
    except InputError as exc:
        assert "url:" in str(exc)
        assert url_key(text) == str(text).strip()
        return
    assert normalise_url(once, where="url") == once == url_key(text)
    assert normalise_url(f" {once}/ ", where="url") == once


# --- the URL list Immich gets ---------------------------------------------------------------------------

LOCALS = LOCAL_URLS


def make_host(name: str, address_: str, port_: int, priority: int, index: int) -> Host:
    return Host(name=name, address=address_, ssh_user=None, ssh_port=None, ssh_key=None, accel="cpu", arch=None,
                bind_address=address_ if classify_address(address_) != "name" else "10.0.0.1", ml_port=port_,
                url=normalise_url(derive_url(address_, port_), where="url"), remote_dir="~/ml",
                model_cache="model-cache", env={}, registry=None, image_repository=None, priority=priority,
                health_timeout=180.0, health_interval=10.0, index=index)


def make_inventory(hosts: list[Host], local: str, keep_local: bool) -> Inventory:
    server = ImmichServer(url="http://immich:2283", api_key_env="IMMICH_API_KEY", api_key_file=None,
                          api_key_command=None, local_ml_url=normalise_url(local, where="local_ml_url"),
                          fallback="keep-local" if keep_local else "remote-only", timeout=10.0, verify_tls=True)
    return Inventory(path=Path("hosts.yml"), format="native", immich=server,
                     ssh=SSHOptions(None, None, 10.0, 600.0, 4), hosts=tuple(hosts))


ml_address = st.one_of(st.sampled_from(["10.0.0.5", "10.0.0.6", "192.168.1.50", "fd00::5", "gpu-box",
                                        "GPU-box.lan", "nuc.home.example"]), ipv4)


@st.composite
def variant(draw, canonical: str) -> str:
    """The same URL as a person or Immich's UI might have typed it."""
    text = canonical
    if draw(st.booleans()):
        scheme, rest = text.split("://", 1)
        text = f"{scheme}://{rest.upper()}" if draw(st.booleans()) else f"{scheme.upper()}://{rest}"
    if draw(st.booleans()):
        text += "/"
    if draw(st.booleans()):
        text = f" {text} "
    return text


FOREIGN = ["http://old-box:3003", "http://OLD-box:3003/", "https://ml.example.com:443", "http://10.9.9.9:3003",
           "not a url", "http://immich-machine-learning:3004"]


def spec_url(spec: tuple[str, int]) -> str:
    return normalise_url(derive_url(*spec), where="url")


def host_name_of(host: Host) -> str:
    return host.name


@st.composite
def url_scenario(draw):
    specs = draw(st.lists(st.tuples(ml_address, st.sampled_from([3003, 3013, 80, 8080])), max_size=6,
                          unique_by=spec_url))
    priorities = draw(st.lists(st.integers(0, 3), min_size=len(specs), max_size=len(specs)))
    hosts = [make_host(f"h{i}", a, p, priorities[i], i) for i, (a, p) in enumerate(specs)]
    local = draw(st.sampled_from(LOCALS))
    assume(all(h.url != normalise_url(local, where="l") for h in hosts))
    keep_local = draw(st.booleans())
    inventory = make_inventory(hosts, local, keep_local)
    # hosts that were removed from the inventory file already (`remove` of a host no longer listed)
    gone = [make_host(f"gone{i}", a, 3003, 0, 100 + i) for i, a in enumerate(draw(st.lists(
        st.sampled_from(["10.7.7.1", "10.7.7.2"]), unique=True, max_size=2)))]
    pool = [draw(variant(h.url)) for h in hosts + gone] + [draw(variant(local))] + FOREIGN
    current = draw(st.lists(st.sampled_from(pool), max_size=10))
    registered = draw(st.lists(st.sampled_from(hosts), unique_by=host_name_of)) if hosts else []
    removed = (draw(st.lists(st.sampled_from(hosts), unique_by=host_name_of)) if hosts else []) + gone
    return inventory, current, registered, removed


@PROPS
@given(url_scenario())
def test_desired_urls_follow_the_rules(scenario):
    inventory, current, registered, removed = scenario
    result = desired_urls(inventory, current=current, registered=registered, removed=removed)
    keys = [url_key(u) for u in result]
    local_key = url_key(inventory.immich.local_ml_url)
    removed_keys = {url_key(h.url) for h in removed}
    managed_keys = {url_key(h.url) for h in inventory.hosts} | removed_keys

    # never a duplicate (after normalisation)
    assert len(set(keys)) == len(keys), result
    # the local fallback: kept and last in keep-local mode, gone in remote-only mode
    if inventory.immich.keep_local:
        assert keys[-1] == local_key and keys.count(local_key) == 1
        assert result[-1] == inventory.immich.local_ml_url
    else:
        assert local_key not in keys
    # removed hosts' URLs are gone
    assert not removed_keys & set(keys)
    # registered hosts (and hosts already registered in Immich) first, by priority, then hand-added URLs
    current_keys = {url_key(u) for u in current}
    wanted = {h.name: h for h in registered}
    wanted.update({h.name: h for h in inventory.hosts if url_key(h.url) in current_keys})
    expected_remote = [h.url for h in by_priority(wanted.values()) if url_key(h.url) not in removed_keys]
    assert result[:len(expected_remote)] == expected_remote
    # hand-added URLs are kept, in their order, between the remote hosts and the local one
    foreign = list(dict.fromkeys(k for k in (url_key(u) for u in current) if k not in managed_keys | {local_key}))
    rest = keys[len(expected_remote):]
    if inventory.immich.keep_local:
        rest = rest[:-1]
    assert rest == foreign
    # nothing else: the result is exactly those three parts
    assert len(result) == len(expected_remote) + len(foreign) + int(inventory.immich.keep_local)
    # a second run with nothing changed gives the same list (so deploy makes no write)
    assert desired_urls(inventory, current=result, registered=registered, removed=removed) == result


# --- with_ml_urls: only machineLearning.urls changes --------------------------------------------------

json_scalar = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=8))
json_value = st.recursive(json_scalar, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)), max_leaves=6)
ml_urls = st.lists(st.sampled_from(["http://10.0.0.5:3003", "http://immich-machine-learning:3003",
                                    "http://old-box:3003/"]), max_size=4)


@st.composite
def immich_config(draw):
    ml = draw(st.dictionaries(st.text(max_size=8).filter(lambda k: k != "urls"), json_value, max_size=5))
    if draw(st.booleans()):  # most servers have urls; put it at a random place among the keys
        items = list(ml.items())
        items.insert(draw(st.integers(0, len(items))), ("urls", draw(st.one_of(ml_urls, json_value))))
        ml = dict(items)
    items = list(draw(st.dictionaries(st.text(max_size=10).filter(lambda k: k != "machineLearning"), json_value,
                                      max_size=6)).items())
    items.insert(draw(st.integers(0, len(items))), ("machineLearning", ml))
    return dict(items)


@PROPS
@given(immich_config(), ml_urls)
def test_with_ml_urls_changes_only_the_url_list(config, urls):
    before = json.dumps(config)  # key order included
    snapshot = copy.deepcopy(config)
    result = with_ml_urls(config, urls)
    assert json.dumps(config) == before and config == snapshot  # the input is not mutated
    assert list(result) == list(config)  # top-level key order kept
    for name in config:
        if name != "machineLearning":
            assert json.dumps(result[name]) == json.dumps(config[name])
    ml_before, ml_after = config["machineLearning"], result["machineLearning"]
    expected_keys = list(ml_before) if "urls" in ml_before else [*ml_before, "urls"]
    assert list(ml_after) == expected_keys
    for name in ml_before:
        if name != "urls":
            assert json.dumps(ml_after[name]) == json.dumps(ml_before[name])
    assert ml_after["urls"] == list(urls)
    # the result shares nothing mutable with the input
    ml_after["urls"].append("http://x:1")
    for name, value in result.items():
        if isinstance(value, (dict, list)) and name != "machineLearning":
            value.clear()
    assert config == snapshot


@FAST
@given(st.dictionaries(st.text(max_size=8).filter(lambda k: k != "machineLearning"), json_value, max_size=4),
       st.one_of(st.none(), json_scalar, st.lists(json_scalar, max_size=2)))
def test_with_ml_urls_refuses_a_config_without_a_machine_learning_section(config, ml):
    if ml is not None:
        config = {**config, "machineLearning": ml}
    with pytest.raises(ImmichAPIError):
        with_ml_urls(config, ["http://10.0.0.5:3003"])
