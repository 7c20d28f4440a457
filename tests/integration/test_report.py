"""`immich-remote report` on the test bed: the ops record after a real deploy holds every fact the
user's guide asks for, and the snapshot it names really restores the settings from before the deploy."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.integration

CACHE = "immich_remote_ml_model-cache"


def test_report_after_a_deploy_holds_every_fact_and_its_snapshot_restores(sandbox):
    box = sandbox
    before = box.urls()
    box.cli("deploy")
    after = box.urls()
    writes_before_report = len(box.fake.config_writes())

    status = {h["host"]: h for h in box.cli_json("status")["hosts"]}  # the same facts, as status reads them
    data = json.loads(box.cli("report", "--format", "json").stdout)
    hosts = {h["name"]: h for h in data["hosts"]}
    assert list(hosts) == [h.name for h in box.hosts]
    for host in box.hosts:
        record = hosts[host.name]
        assert (record["address"], record["url"], record["bind_address"]) == ("127.0.0.1", host.ml_url,
                                                                                host.bind_address)
        assert record["backend"] == "cpu" and record["running_version"] == "v2.7.5"
        assert record["version_matches"] is True and record["container"].startswith("running")
        assert record["model_cache"]["volume"] == CACHE and isinstance(record["model_cache"]["bytes"], int)
        assert record["firewall"]["state"] == status[host.name]["firewall"] and record["firewall"]["read_on_host"]
        assert record["last_change"]["command"] == "deploy"
    immich = data["immich"]
    assert [u["url"] for u in immich["urls"]] == after
    assert immich["urls"][-1]["what"] == "Immich's own ML (the local fallback)"
    assert "Local kept as fallback" in immich["fallback_words"]
    last = data["last_rollout"]
    assert last["command"] == "deploy" and "@" in last["by"] and last["urls_before"] == before
    assert {r["host"]: r["status"] for r in last["results"]} == dict.fromkeys(hosts, "deployed")
    assert "immich-remote upgrade" in data["update_note"] and "hold no media" in data["backup_note"]
    assert len(box.fake.config_writes()) == writes_before_report  # read-only

    out = box.workdir / "ops" / "immich-ml.md"
    box.cli("report", "--out", str(out))
    text = out.read_text()
    assert out.stat().st_mode & 0o777 == 0o600
    assert all(f"| {h.name} | 127.0.0.1 | {h.ml_url} | cpu | v2.7.5" in text for h in box.hosts)
    assert f"`{last['restore']}`" in text

    box.cli(*last["restore"].split()[1:])  # the command the report names
    assert box.urls() == before
