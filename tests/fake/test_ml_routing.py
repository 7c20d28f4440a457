"""The server's ML URL routing (availability checks, healthy-first order, fallback) against stub ML servers."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.fake.helpers import AUTH, client, merged
from tests.testbed.immich_fake import FakeImmichServer
from tests.testbed.immich_fake_ml import PredictionError

FAST_CHECKS = {"enabled": True, "interval": 100, "timeout": 500}


def configure_ml(fake: FakeImmichServer, urls: list[str], checks: dict = FAST_CHECKS) -> None:
    """Set ``machineLearning.urls``/``availabilityChecks`` through the API, as a user would."""
    body = merged(fake.config, {"machineLearning": {"urls": urls, "availabilityChecks": checks}})
    body["machineLearning"]["urls"] = urls
    with client(fake) as c:
        response = c.put("/system-config", headers=AUTH, json=body)
    assert response.status_code == 200, response.text


@pytest.fixture
def fake(immich_fake_factory) -> FakeImmichServer:
    return immich_fake_factory("2.7.5")


def test_healthy_first_then_configured_order(fake, stub_ml_factory):
    remote, local = stub_ml_factory("remote"), stub_ml_factory("local")
    remote.ping_status = 503  # alive for /predict but failing its health check
    configure_ml(fake, [remote.url, local.url])
    fake.wait_for_health(local.url, True)
    fake.wait_for_health(remote.url, False)
    assert fake.ml.order() == [local.url, remote.url]
    result = fake.predict("clip")
    assert result.url == local.url
    assert [a.url for a in result.attempts] == [local.url]


def test_falls_back_when_first_dies_and_returns_when_it_is_back(fake, stub_ml_factory):
    remote, local = stub_ml_factory("remote"), stub_ml_factory("local")
    configure_ml(fake, [remote.url, local.url])
    fake.wait_for_health(remote.url)
    fake.wait_for_health(local.url)
    assert fake.predict().url == remote.url

    remote.stop()
    result = fake.predict()
    assert result.url == local.url
    assert [a.url for a in result.attempts] in ([remote.url, local.url], [local.url])
    assert fake.health()[remote.url] is False
    assert [a.url for a in fake.predict().attempts] == [local.url]  # unhealthy URL goes last

    remote.start()
    fake.wait_for_health(remote.url, True)
    assert fake.predict().url == remote.url
    messages = [entry["message"] for entry in fake.ml.log()]
    assert f"Machine learning server became unhealthy ({remote.url})." in messages
    assert messages.count(f"Machine learning server became healthy ({remote.url}).") == 2


def test_checks_disabled_means_pure_configured_order(fake, stub_ml_factory):
    down, up = stub_ml_factory("down"), stub_ml_factory("up")
    down.stop()
    configure_ml(fake, [down.url, up.url], checks={"enabled": False, "interval": 100, "timeout": 500})
    for _ in range(2):
        result = fake.predict()
        assert result.url == up.url
        assert [a.url for a in result.attempts] == [down.url, up.url]
    assert up.pings == 0
    assert not [p for p in fake.ml.pings() if p["url"] in (down.url, up.url)]


def test_unchecked_urls_count_as_not_healthy(fake, stub_ml_factory):
    first, second = stub_ml_factory("first"), stub_ml_factory("second")
    configure_ml(fake, [first.url, second.url], checks={"enabled": True, "interval": 60000, "timeout": 500})
    fake.wait_for_health(first.url)  # the immediate first round of checks...
    fake.wait_for_health(second.url)
    first.stop()
    second.stop()
    with pytest.raises(PredictionError) as error:
        fake.predict("clip")
    entries = json.dumps({"clip": {"visual": {"modelName": "ViT-B-32__openai"}}}, separators=(",", ":"))
    assert str(error.value) == f"Machine learning request '{entries}' failed for all URLs"
    assert fake.health() == {first.url: False, second.url: False}


def test_path_of_configured_url_is_discarded(fake, stub_ml_factory):
    stub = stub_ml_factory()
    configured = stub.url + "/some/prefix"
    configure_ml(fake, [configured])
    fake.wait_for_health(configured)
    assert fake.predict().url == configured
    assert stub.pings >= 1 and len(stub.predictions) == 1  # the stub only serves /ping and /predict at root


def test_config_change_forgets_removed_urls(fake, stub_ml_factory):
    a, b = stub_ml_factory("a"), stub_ml_factory("b")
    configure_ml(fake, [a.url, b.url])
    fake.wait_for_health(a.url)
    fake.wait_for_health(b.url)
    configure_ml(fake, [b.url])
    assert a.url not in fake.health()


def test_predict_sends_the_servers_multipart_requests(fake, stub_ml_factory):
    stub = stub_ml_factory()
    configure_ml(fake, [stub.url], checks={"enabled": False, "interval": 100, "timeout": 500})
    for task in ("clip", "clip-textual", "facial-recognition", "ocr"):
        fake.predict(task)
    clip, text, faces, ocr = stub.predictions
    assert clip["entries"] == {"clip": {"visual": {"modelName": "ViT-B-32__openai"}}}
    assert clip["image"].startswith(b"\x89PNG") and clip["text"] is None
    assert text["entries"]["clip"]["textual"]["options"] == {"language": "en"} and text["text"]
    assert faces["entries"]["facial-recognition"]["detection"] == {
        "modelName": "buffalo_l",
        "options": {"minScore": 0.7},
    }
    assert ocr["entries"]["ocr"]["detection"]["options"] == {"minScore": 0.5, "maxResolution": 736}
    assert [p["task"] for p in fake.ml.predictions()] == ["clip", "clip-textual", "facial-recognition", "ocr"]


def test_non_2xx_answer_marks_unhealthy_and_moves_on(fake, stub_ml_factory):
    broken, good = stub_ml_factory("broken"), stub_ml_factory("good")
    broken.predict_status = 500
    configure_ml(fake, [broken.url, good.url], checks={"enabled": False, "interval": 100, "timeout": 500})
    result = fake.predict()
    assert result.url == good.url and result.attempts[0].status == 500
    assert fake.health() == {broken.url: False, good.url: True}


def test_slow_ping_times_out(fake, stub_ml_factory):
    slow = stub_ml_factory("slow")
    slow.delay = 1.0
    configure_ml(fake, [slow.url], checks={"enabled": True, "interval": 60000, "timeout": 100})
    fake.wait_for_health(slow.url, False, timeout=3)


def test_http_control_endpoint_predicts(fake, stub_ml_factory):
    stub = stub_ml_factory()
    configure_ml(fake, [stub.url], checks={"enabled": False, "interval": 100, "timeout": 500})
    with httpx.Client(base_url=fake.url, trust_env=False, verify=False, timeout=5) as c:
        ok = c.post("/_fake/predict", json={"task": "ocr"})
        stub.stop()
        failed = c.post("/_fake/predict", json={"task": "clip"})
        state = c.get("/_fake/state").json()
    assert ok.status_code == 200 and ok.json()["url"] == stub.url and "ocr" in ok.json()["body"]
    assert failed.status_code == 502 and "failed for all URLs" in failed.json()["error"]
    assert len(state["predictions"]) == 2
