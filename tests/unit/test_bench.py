"""bench's pure parts: the requests Immich would send, the synthetic image, the statistics and the JSON."""

from __future__ import annotations

import json
import struct
import zlib

import pytest

from immich_remote.bench import (
    TaskRun,
    bar,
    concurrency_for,
    enabled_tasks,
    percentile,
    ranking,
    results_data,
    synthetic_png,
    throughputs,
)
from immich_remote.ml_api import multipart, predict_entries


def test_percentile_interpolates_between_ranks():
    values = list(range(1, 101))
    assert percentile(values, 50) == 50.5
    assert percentile(values, 95) == pytest.approx(95.05)
    assert percentile([7.0], 95) == 7.0
    assert percentile([], 50) is None
    assert percentile([300, 100, 200], 50) == 200  # order does not matter


def test_task_run_figures_and_json_shape():
    run = TaskRun(concurrency=2, cold_ms=1234.56, latencies_ms=[100.0] * 8 + [200.0, 300.0], errors=1,
                  seconds=2.0, error="HTTP 500 b'...'")
    data = run.to_data()
    assert data == {"requests": 11, "errors": 1, "throughput_per_s": 5.0, "p50_ms": 100.0,
                    "p95_ms": 255.0,  # rank 9 * 0.95 = 8.55: 200 + 0.55 * (300 - 200)
                    "cold_ms": 1234.6, "error": "HTTP 500 b'...'"}
    assert TaskRun(concurrency=1).to_data() == {"requests": 0, "errors": 0, "throughput_per_s": None,
                                                "p50_ms": None, "p95_ms": None, "cold_ms": None}


def test_results_json_is_the_issue_shape_and_ranks_fastest_first():
    fast = TaskRun(2, cold_ms=300, latencies_ms=[50.0] * 40, seconds=1.0)
    slow = TaskRun(2, cold_ms=900, latencies_ms=[500.0] * 4, seconds=1.0)
    data = results_data({"slow": ("http://10.0.0.2:3003", {"faces": slow}),
                         "gpu-box": ("http://10.0.0.3:3003", {"faces": fast}),
                         "local": ("http://immich-machine-learning:3003", {"faces": TaskRun(2, errors=1)})})
    assert set(data) == {"targets"}
    assert data["targets"]["gpu-box"] == {"url": "http://10.0.0.3:3003", "tasks": {"faces": {
        "requests": 40, "errors": 0, "throughput_per_s": 40.0, "p50_ms": 50.0, "p95_ms": 50.0, "cold_ms": 300.0}}}
    json.dumps(data)
    assert ranking(data, "faces") == [("gpu-box", 40.0), ("slow", 4.0)]  # local answered nothing: not ranked
    assert throughputs(data) == {"slow": {"faces": 4.0}, "gpu-box": {"faces": 40.0}}


def test_bar_is_proportional():
    assert len(bar(40, 40, width=30)) == 30
    assert bar(20, 40, width=30) == "█" * 15
    assert bar(0.01, 40) == "▏"  # something measured always shows
    assert bar(0, 40) == "" and bar(5, 0) == ""


def test_concurrency_comes_from_immichs_job_config():
    assert concurrency_for("clip-image", None) == 2  # Immich's defaults: smartSearch 2, faceDetection 2, ocr 1
    assert concurrency_for("ocr", {}) == 1
    config = {"job": {"smartSearch": {"concurrency": 6}, "faceDetection": {"concurrency": 3}}}
    assert concurrency_for("clip-image", config) == 6 and concurrency_for("clip-text", config) == 6
    assert concurrency_for("faces", config) == 3 and concurrency_for("ocr", config) == 1


def test_only_enabled_features_are_measured():
    config = {"machineLearning": {"enabled": True, "clip": {"enabled": True}, "facialRecognition": {"enabled": False},
                                  "ocr": {"enabled": True}}}
    assert enabled_tasks(config) == (["clip-image", "clip-text", "ocr"], {"faces": "machineLearning.facialRecognition.enabled"})
    assert enabled_tasks({"machineLearning": {"enabled": False}})[0] == []
    assert enabled_tasks(None)[0] == ["clip-image", "clip-text", "faces", "ocr"]


def test_requests_carry_the_model_names_of_immichs_config():
    config = {"machineLearning": {"clip": {"modelName": "ViT-B-16-SigLIP__webli"},
                                  "facialRecognition": {"modelName": "antelopev2", "minScore": 0.6},
                                  "ocr": {"modelName": "PP-OCRv5_server", "minDetectionScore": 0.4,
                                          "minRecognitionScore": 0.9, "maxResolution": 1024}}}
    assert predict_entries("clip-image", config) == ({"clip": {"visual": {"modelName": "ViT-B-16-SigLIP__webli"}}}, True)
    assert predict_entries("clip-text", config) == (
        {"clip": {"textual": {"modelName": "ViT-B-16-SigLIP__webli", "options": {"language": "en"}}}}, False)
    assert predict_entries("faces", config) == ({"facial-recognition": {
        "detection": {"modelName": "antelopev2", "options": {"minScore": 0.6}},
        "recognition": {"modelName": "antelopev2"}}}, True)
    assert predict_entries("ocr", config) == ({"ocr": {
        "detection": {"modelName": "PP-OCRv5_server", "options": {"minScore": 0.4, "maxResolution": 1024}},
        "recognition": {"modelName": "PP-OCRv5_server", "options": {"minScore": 0.9}}}}, True)
    assert predict_entries("faces", None)[0]["facial-recognition"]["detection"]["modelName"] == "buffalo_l"
    with pytest.raises(ValueError):
        predict_entries("pets", config)


def test_multipart_holds_entries_and_exactly_one_input():
    entries, _ = predict_entries("clip-image", None)
    body, content_type = multipart(entries, image=b"\x89PNG-bytes", text=None)
    boundary = content_type.split("boundary=")[1]
    assert content_type.startswith("multipart/form-data; ")
    assert body.count(f"--{boundary}\r\n".encode()) == 2 and body.endswith(f"--{boundary}--\r\n".encode())
    assert json.dumps(entries).encode() in body and b'name="image"' in body and b'name="text"' not in body


def _chunks(png: bytes) -> list[tuple[bytes, bytes]]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, pos = [], 8
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos:pos + 4])
        kind, data = png[pos + 4:pos + 8], png[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", png[pos + 8 + length:pos + 12 + length])
        assert crc == zlib.crc32(kind + data) & 0xFFFFFFFF
        chunks.append((kind, data))
        pos += 12 + length
    return chunks


def test_synthetic_image_is_a_valid_png_with_faces_and_text_like_regions():
    png = synthetic_png(64, 48)
    chunks = _chunks(png)
    assert [k for k, _ in chunks] == [b"IHDR", b"IDAT", b"IEND"]
    width, height, depth, colour = struct.unpack(">IIBB", chunks[0][1][:10])
    assert (width, height, depth, colour) == (64, 48, 8, 2)
    raw = zlib.decompress(chunks[1][1])
    assert len(raw) == 48 * (1 + 64 * 3)
    pixels = {raw[i:i + 3] for row in range(48) for i in range(row * 193 + 1, row * 193 + 193, 3)}
    assert {b"\xe0\xb0\x90", b"\x20\x20\x20", b"\xf8\xf8\xf8"} <= pixels  # skin, dark marks, the white card
    assert len(synthetic_png()) < 64 * 1024  # the default 640x480 stays small on the wire
