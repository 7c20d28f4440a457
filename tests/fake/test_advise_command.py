"""`immich-remote advise` and `bench --local` as a user runs them (click), against the in-process Immich
fake (queues, library size, config) and an in-process ML endpoint standing in for the server's own ML."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import Result

from tests.fake import helpers
from tests.fake.helpers import closed_port
from tests.testbed.immich_fake import DEFAULT_API_KEY, ApiKey, FakeImmichServer

DELAY = 0.25  # seconds the local ML stand-in takes per /predict


def run(tmp_path: Path, fake: FakeImmichServer, local_ml: str, *args: str, key: str = DEFAULT_API_KEY,
        expect: int | None = 0) -> Result:
    """The command with `local_ml` as the server's own ML and one host, desk, whose SSH port is closed."""
    return helpers.run(fake, tmp_path, *args, key=key, expect=expect, immich=f"  local_ml_url: {local_ml}\n",
                       rest=f"ssh:\n  connect_timeout: 3s\n"
                            f"hosts:\n  desk:\n    address: 127.0.0.1\n    ssh_port: {closed_port()}\n")


def test_advise_reads_queues_and_library_and_estimates_from_the_measured_local_ml(
        tmp_path, immich_fake_factory, stub_ml_factory):
    fake = immich_fake_factory("2.7.5")
    config = fake.config
    config["machineLearning"]["ocr"]["enabled"] = False  # a feature turned off is not measured (nor waited for)
    fake.set_config(config)
    fake.set_queue("smartSearch", waiting=48210)
    fake.set_queue("faceDetection", waiting=1000, active=2)
    fake.set_library(photos=48210, videos=1200, photo_bytes=180 * 1024**3)
    local = stub_ml_factory("local")
    local.delay = DELAY

    data = json.loads(run(tmp_path, fake, local.url, "advise", "--measure", "--duration", "1s", "--json").stdout)

    assert data["row"] == "large-import"
    assert set(data) == {"row", "recommendation", "reasons", "estimates"}
    assert "library: 48,210 photos, 1,200 videos" in data["reasons"]
    assert any(r.startswith("desk: probe failed") for r in data["reasons"])  # said, not hidden
    assert "the Immich server's host was not probed: set immich.ssh_host in the inventory" in data["reasons"]
    search = data["estimates"]["smartSearch"]
    assert search["backlog"] == 48210 and set(search) == {"backlog", "local_s"}  # desk was not reachable
    # smartSearch runs 2 at a time (Immich's default) and each request takes DELAY: 8 per second at best.
    # Never faster than that; the stand-in shares this process (and a busy CI machine), so it may be
    # slower: the 20% physics check is tests/integration/test_bench.py's, on real hosts.
    expected = 48210 / (2 / DELAY)
    assert 0.95 * expected <= search["local_s"] <= 1.5 * expected, search
    assert data["estimates"]["faceDetection"]["backlog"] == 1002
    # Only GET requests reached Immich.
    assert {r.method for r in fake.requests()} == {"GET"}
    assert any(r.path == "/api/server/statistics" for r in fake.requests())
    # The requests carried the models of Immich's config.
    models = {json.dumps(p["entries"], sort_keys=True) for p in local.predictions}
    assert any('"modelName": "ViT-B-32__openai"' in m and '"visual"' in m for m in models)
    assert any('"facial-recognition"' in m for m in models) and not any('"ocr"' in m for m in models), models


def test_a_key_without_server_statistics_gives_advice_and_says_what_it_could_not_read(
        tmp_path, immich_fake_factory, stub_ml_factory):
    limited = ApiKey("limited-key", permissions=("systemConfig.read", "queue.read"))
    fake = immich_fake_factory("2.7.5", api_keys=[ApiKey(DEFAULT_API_KEY), limited])
    result = run(tmp_path, fake, stub_ml_factory("local").url, "advise", key="limited-key")
    assert result.stdout.startswith("Advice: keep-local")
    assert "the library size could not be read (The API key lacks permission server.statistics" in result.stdout


def test_bench_local_reports_each_task_and_fails_a_host_that_does_not_answer(
        tmp_path, immich_fake_factory, stub_ml_factory):
    fake = immich_fake_factory("2.7.5")
    local = stub_ml_factory("local")
    result = run(tmp_path, fake, local.url, "bench", "--local", "--direct", "--task", "clip-text",
                 "--duration", "1s", "--json", expect=1)
    data = json.loads(result.stdout)
    assert list(data["targets"]) == ["desk", "local"]
    desk = data["targets"]["desk"]["tasks"]["clip-text"]
    assert desk["requests"] == 1 and desk["errors"] == 1 and desk["throughput_per_s"] is None and desk["error"]
    figures = data["targets"]["local"]["tasks"]["clip-text"]
    assert figures["errors"] == 0 and figures["requests"] >= 2 and figures["throughput_per_s"] > 0
    assert figures["p50_ms"] <= figures["p95_ms"] and figures["cold_ms"] is not None
    assert {p["entries"]["clip"]["textual"]["modelName"] for p in local.predictions} == {"ViT-B-32__openai"}
