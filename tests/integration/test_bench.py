"""`immich-remote bench` on the test bed: real /predict requests through each host's SSH connection
(and to the local ML from here), against stubs whose service time is known, so the figures can be
checked against physics: with N requests in flight and each taking D seconds, throughput is N / D."""

from __future__ import annotations

import pytest

from immich_remote.bench import TASK_QUEUE

pytestmark = pytest.mark.integration

DELAY = 1.5  # seconds the slowed host's stub sleeps in every /predict (MACHINE_LEARNING_STUB_PREDICT_DELAY)


def test_bench_matches_the_stubs_service_time_and_ranks_the_slow_host_last(sandbox):
    slow, fast = sandbox.hosts[0], sandbox.hosts[1]
    sandbox.host_settings[slow.name] = {"env": {"MACHINE_LEARNING_STUB_PREDICT_DELAY": str(DELAY)}}
    sandbox.write_inventory(hosts=[slow, fast])
    sandbox.cli("deploy")

    # --duration 3s instead of the default 20s: the stub's service time is fixed, so 3 s already holds
    # 2-3 back-to-back requests per worker on the slowed host, and the whole test stays under 90 s.
    data = sandbox.cli_json("bench", "--local", "--duration", "3s")

    targets = data["targets"]
    assert list(targets) == [slow.name, fast.name, "local"]
    assert targets[slow.name]["url"] == slow.ml_url and targets["local"]["url"] == sandbox.bed.local_ml_url
    jobs = sandbox.fake.config["job"]
    tasks = targets[slow.name]["tasks"]
    assert {"clip-image", "clip-text", "faces"} <= set(tasks)  # what the fake's config enables
    for task, figures in tasks.items():
        concurrency = jobs[TASK_QUEUE[task]]["concurrency"]  # Immich's job concurrency, as bench uses it
        assert figures["errors"] == 0 and figures["requests"] >= concurrency, figures
        # The stub guarantees a service time of at least DELAY; its own handling (a shell, awk, the SSH
        # channel) adds about 0.1 s on an idle bed, so there throughput is within 20% of
        # concurrency / DELAY; on a loaded machine the handling grows to seconds. What holds at any load:
        # never faster than concurrency / DELAY, no latency under DELAY, and `concurrency` workers back
        # to back give throughput = concurrency / latency (Little's law), here within 20% of the median.
        assert figures["throughput_per_s"] <= 1.05 * concurrency / DELAY, (task, figures)
        # The done criterion: within 20% of the known service time (measured -4% to -16% at load 25-30).
        assert figures["throughput_per_s"] >= 0.8 * concurrency / DELAY, (task, figures)
        assert DELAY * 1000 <= figures["p50_ms"] <= figures["p95_ms"] and figures["cold_ms"] >= DELAY * 1000
        expected = concurrency / (figures["p50_ms"] / 1000)
        assert abs(figures["throughput_per_s"] - expected) <= 0.2 * expected, (task, figures, expected)
        # Ranked: the two endpoints without the delay are faster in every task.
        ranked = sorted(targets, key=lambda name: -targets[name]["tasks"][task]["throughput_per_s"])
        assert ranked[-1] == slow.name, (task, {n: targets[n]["tasks"][task] for n in targets})
        for other in (fast.name, "local"):
            quick = targets[other]["tasks"][task]
            assert quick["errors"] == 0 and quick["p50_ms"] < figures["p50_ms"], (task, other, quick)

    # The chart a person reads ranks the slowed host last.
    text = sandbox.cli("bench", slow.name, fast.name, "--task", "faces", "--duration", "1s").stdout
    lines = [line.split()[0] for line in text.splitlines() if line.startswith("  ")]
    assert lines == [fast.name, slow.name], text
