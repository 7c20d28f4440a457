"""The ops record (immich_remote.report), pure: facts in, JSON and Markdown out."""

from __future__ import annotations

import json

from immich_remote.inventory import load_inventory
from immich_remote.report import (
    UPDATE_NOTE,
    backend_of,
    fallback_words,
    host_facts,
    last_rollout,
    report_data,
    size_text,
    to_markdown,
)

LOCAL = "http://immich-machine-learning:3003"
INVENTORY = """\
immich:
  url: http://immich.lan:2283
hosts:
  gpu-box:
    address: 192.168.1.50
    accel: cuda
    allow_from: 192.168.1.10
  nuc:
    address: 192.168.1.51
    model_cache: /srv/ml-cache
    firewall: false
"""


def inventory(tmp_path):
    path = tmp_path / "hosts.yml"
    path.write_text(INVENTORY)
    return load_inventory(path)


def status(**overrides):
    base = {"reachable": True, "state": "running", "health": "healthy", "image":
            "ghcr.io/immich-app/immich-machine-learning:v2.7.5-cuda", "running_version": "v2.7.5",
            "version_matches": True, "ping_ms": 3.0, "registered_position": 1, "cache_bytes": 1_288_490_189,
            "cache_volume": "immich_remote_ml_model-cache", "error": None,
            "firewall": "on", "firewall_detail": "DOCKER-USER drops other sources",
            "last_change": {"command": "deploy", "by": "ann@laptop", "at": "2026-12-01T10:00:00+00:00",
                            "image": "ghcr.io/immich-app/immich-machine-learning:v2.7.5-cuda"}}
    return {**base, **overrides}


SNAPSHOTS = [
    ("20261130T090000Z-deploy", "/state/snapshots/20261130T090000Z-deploy", {"command": "deploy", "by": "old"}),
    ("20261201T100000Z-upgrade", "/state/snapshots/20261201T100000Z-upgrade", {
        "command": "upgrade", "by": "ann@laptop", "at": "2026-12-01T10:00:00+00:00", "server_version": "v2.7.5",
        "hosts": ["gpu-box", "nuc"], "urls_before": ["http://192.168.1.50:3003", LOCAL],
        "urls_after": ["http://192.168.1.50:3003", "http://192.168.1.51:3003", LOCAL],
        "results": [{"host": "gpu-box", "status": "upgraded", "image": "x:v2.7.5-cuda", "previous_image": "x:v2.7.4-cuda"},
                    {"host": "nuc", "status": "deployed", "image": "x:v2.7.5"}]}),
    ("20261202T080000Z-config-restore", "/state/snapshots/20261202T080000Z-config-restore",
     {"command": "config-restore"}),
]


def record(tmp_path, *, fallback="keep-local", urls=None, nuc_status=None):
    inv = inventory(tmp_path)
    gpu, nuc = inv.host("gpu-box"), inv.host("nuc")
    hosts = [host_facts(gpu, status(), "v2.7.5"),
             host_facts(nuc, nuc_status or status(image="ghcr.io/immich-app/immich-machine-learning:v2.7.4",
                                                  firewall="off", firewall_detail="firewall: false",
                                                  running_version="v2.7.4", version_matches=False,
                                                  cache_volume=None, cache_bytes=524288000,
                                                  registered_position=2), "v2.7.5")]
    urls = urls if urls is not None else [gpu.url, nuc.url, "http://spare.lan:3003", LOCAL]
    server = {"url": "http://immich.lan:2283", "version": "v2.7.5", "error": None, "urls": urls,
              "fallback": fallback, "url_health": {gpu.url: "pong 3 ms"}, "would_use": gpu.url}
    return report_data(generated_at="2026-12-07T12:00:00+00:00", inventory_path=str(inv.path),
                       state_dir="/state", server=server, local_url=LOCAL, hosts=hosts,
                       last=last_rollout(SNAPSHOTS))


def test_backend_from_the_running_images_tag():
    assert backend_of("ghcr.io/immich-app/immich-machine-learning:v2.7.5-cuda") == "cuda"
    assert backend_of("registry.lan:5000/immich-machine-learning:v2.7.5-openvino") == "openvino"
    assert backend_of("ghcr.io/immich-app/immich-machine-learning:v2.7.5") == "cpu"
    assert backend_of(None) is None
    assert size_text(1_288_490_189) == "1.2 GB" and size_text(None) == "unknown"


def test_every_host_fact_is_in_the_json(tmp_path):
    data = json.loads(json.dumps(record(tmp_path)))
    gpu, nuc = data["hosts"]
    assert (gpu["address"], gpu["backend"], gpu["running_version"], gpu["bind_address"]) == \
        ("192.168.1.50", "cuda", "v2.7.5", "192.168.1.50")
    assert gpu["firewall"] == {"state": "on", "allow_from": ["192.168.1.10/32"], "read_on_host": True,
                               "text": "on (allow_from 192.168.1.10/32; DOCKER-USER drops other sources)"}
    assert gpu["model_cache"] == {"where": "model-cache", "kind": "volume", "volume": "immich_remote_ml_model-cache",
                                  "bytes": 1_288_490_189, "size": "1.2 GB"}
    assert nuc["firewall"]["state"] == "off" and nuc["firewall"]["read_on_host"]
    assert nuc["model_cache"]["kind"] == "path" and nuc["model_cache"]["where"] == "/srv/ml-cache"
    assert nuc["backend"] == "cpu" and nuc["version_matches"] is False


def test_url_list_in_order_with_what_each_is(tmp_path):
    urls = record(tmp_path)["immich"]["urls"]
    assert [u["position"] for u in urls] == [1, 2, 3, 4]
    assert [u["what"] for u in urls] == ["ML host gpu-box", "ML host nuc", "added by hand (not in the inventory)",
                                         "Immich's own ML (the local fallback)"]
    assert urls[0]["would_be_used_now"] and not urls[1]["would_be_used_now"]


def test_last_rollout_is_the_newest_deploy_or_upgrade_with_its_snapshot():
    last = last_rollout(SNAPSHOTS)
    assert (last["command"], last["by"], last["snapshot"]) == ("upgrade", "ann@laptop", "20261201T100000Z-upgrade")
    assert last["restore"] == "immich-remote config restore 20261201T100000Z-upgrade"
    assert [r["status"] for r in last["results"]] == ["upgraded", "deployed"]
    assert last_rollout(SNAPSHOTS[2:]) is None


def test_fallback_in_plain_words_checked_against_the_list():
    assert "Local kept as fallback" in fallback_words("keep-local", [LOCAL], LOCAL)
    assert "run `immich-remote deploy` to put it back" in fallback_words("keep-local", ["http://a:3003"], LOCAL)
    remote_only = fallback_words("remote-only", ["http://a:3003"], LOCAL)
    assert "ML jobs (smart search, face detection, OCR) fail" in remote_only and "guard" in remote_only
    assert "would serve as a fallback" in fallback_words("remote-only", ["http://a:3003", LOCAL], LOCAL)


def test_markdown_holds_every_fact(tmp_path):
    text = to_markdown(record(tmp_path, fallback="remote-only", urls=["http://192.168.1.50:3003"]))
    for expected in (
        "| gpu-box | 192.168.1.50 | http://192.168.1.50:3003 | cuda | v2.7.5 (running (healthy)) | 192.168.1.50:3003 "
        "| on (allow_from 192.168.1.10/32; DOCKER-USER drops other sources) | volume model-cache (immich_remote_ml_model-cache), 1.2 GB |",
        "| nuc | 192.168.1.51 |", "v2.7.4 (running (healthy)), server runs v2.7.5", "path /srv/ml-cache, 500.0 MB",
        "1. http://192.168.1.50:3003: ML host gpu-box [pong 3 ms; would be used now]",
        "Fallback (remote-only): Remote only", "ML jobs (smart search, face detection, OCR) fail",
        "`upgrade` by ann@laptop at 2026-12-01T10:00:00+00:00 (Immich v2.7.5)",
        "gpu-box upgraded (x:v2.7.5-cuda), nuc deployed (x:v2.7.5)",
        "Snapshot with the settings before it: `20261201T100000Z-upgrade`",
        "`immich-remote config restore 20261201T100000Z-upgrade`",
        "gpu-box: deploy at 2026-12-01T10:00:00+00:00 by ann@laptop",
        UPDATE_NOTE, "hold no media", "model cache can be downloaded again", "Keep the inventory",
        "state directory (/state)",
    ):
        assert expected in text, expected


def test_markdown_for_an_unreachable_host_and_no_history(tmp_path):
    data = record(tmp_path, nuc_status={"reachable": False, "error": "Host 'nuc': connection refused"})
    data["last_rollout"] = None
    text = to_markdown(data)
    assert "unreachable: Host 'nuc': connection refused" in text
    nuc = data["hosts"][1]["firewall"]  # not read on the host: as the inventory sets it
    assert nuc["state"] == "off" and not nuc["read_on_host"] and "no authentication" in nuc["text"]
    assert "No deploy or upgrade recorded in /state" in text


def test_guard_state_in_plain_words(tmp_path):
    assert "No guard state" in record(tmp_path)["guard"]["text"]
    data = report_data(generated_at="x", inventory_path="inv.yml", state_dir="/state", server={
        "url": "u", "urls": [], "fallback": "keep-local"}, local_url=LOCAL, hosts=[], last=None,
        guard={"paused": ["smartSearch", "ocr"], "since": "2026-12-07T10:00:00Z", "reason": "no ML URL answers"})
    assert data["guard"]["paused"] == ["smartSearch", "ocr"]
    assert ("Outage guard: The outage guard paused smartSearch, ocr at 2026-12-07T10:00:00Z (no ML URL answers)"
            in to_markdown(data))
