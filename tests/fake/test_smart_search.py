"""`POST /api/search/smart` of the fake: routed through the server's ML URL list, with its errors."""

from __future__ import annotations

import pytest

from immich_remote.errors import ImmichAPIError, ImmichPermissionError
from tests.fake.helpers import AUTH, client, immich_client, merged
from tests.fake.test_ml_routing import configure_ml
from tests.testbed.immich_fake import ApiKey, FakeImmichServer

EMPTY = {
    "albums": {"total": 0, "count": 0, "items": [], "facets": []},
    "assets": {"total": 0, "count": 0, "items": [], "facets": [], "nextPage": None},
}


@pytest.fixture
def fake(immich_fake_factory) -> FakeImmichServer:
    return immich_fake_factory("2.7.5")


def search(fake: FakeImmichServer, body: dict, headers: dict = AUTH):
    with client(fake) as c:
        return c.post("/search/smart", headers=headers, json=body)


def test_served_by_the_first_url_then_by_the_fallback_when_it_is_down(fake, stub_ml_factory):
    remote, local = stub_ml_factory("remote"), stub_ml_factory("local")
    configure_ml(fake, [remote.url, local.url])
    fake.wait_for_health(remote.url)
    fake.wait_for_health(local.url)

    response = search(fake, {"query": "a red bicycle"})
    assert response.status_code == 200, response.text
    assert response.json() == EMPTY
    assert [p["text"] for p in remote.predictions] == ["a red bicycle"]
    # encodeText: the CLIP textual model from the config; no language sent -> empty options
    model = fake.config["machineLearning"]["clip"]["modelName"]
    assert remote.predictions[0]["entries"] == {"clip": {"textual": {"modelName": model, "options": {}}}}

    remote.stop()
    response = search(fake, {"query": "a blue boat", "language": "de"})
    assert response.status_code == 200, response.text
    assert [p["text"] for p in local.predictions] == ["a blue boat"]
    assert local.predictions[0]["entries"]["clip"]["textual"]["options"] == {"language": "de"}
    assert [s["url"] for s in fake.search.searches()] == [remote.url, local.url]


def test_every_url_down_is_a_500_and_the_server_logs_why(fake, stub_ml_factory):
    only = stub_ml_factory("remote")
    configure_ml(fake, [only.url])
    fake.wait_for_health(only.url)
    only.stop()
    response = search(fake, {"query": "mountains"})
    assert response.status_code == 500
    assert response.json()["message"] == "Internal server error"
    assert "failed for all URLs" in fake.search.searches()[-1]["error"]
    assert any("failed for all URLs" in e["message"] for e in fake.ml.log())
    # immich-remote's client reports the status, so the drill can tell "ML down" from other errors
    with immich_client(fake) as api, pytest.raises(ImmichAPIError) as caught:
        api.smart_search("mountains again")
    assert caught.value.status == 500


def test_a_query_seen_before_is_answered_from_the_cache_without_ml(fake, stub_ml_factory):
    only = stub_ml_factory("remote")
    configure_ml(fake, [only.url])
    fake.wait_for_health(only.url)
    assert search(fake, {"query": "cats"}).status_code == 200
    only.stop()
    # The server caches the embedding per model + query + language: no ML call, so no failure either.
    assert search(fake, {"query": " cats "}).status_code == 200  # trimmed: the same key
    assert search(fake, {"query": "cats", "language": "en"}).status_code == 500  # another key
    assert [s["cached"] for s in fake.search.searches()] == [False, True, False]


@pytest.mark.parametrize("switch", ["enabled", "clip"])
def test_smart_search_disabled_is_a_400_before_any_ml_call(fake, stub_ml_factory, switch):
    only = stub_ml_factory("remote")
    configure_ml(fake, [only.url])
    changes = {"enabled": False} if switch == "enabled" else {"clip": {"enabled": False}}
    fake.set_config(merged(fake.config, {"machineLearning": changes}))
    response = search(fake, {"query": "dogs"})
    assert response.status_code == 400
    assert response.json()["message"] == "Smart search is not enabled"
    assert only.predictions == []


def test_permission_is_asset_read_and_no_admin_is_needed(fake):
    fake.add_api_key(ApiKey("reader", permissions=("asset.read",), admin=False))
    fake.add_api_key(ApiKey("queues-only", permissions=("queue.read",)))
    response = search(fake, {"query": "x"}, headers={"x-api-key": "queues-only"})
    assert response.status_code == 403
    assert response.json()["message"] == "Missing required permission: asset.read"
    assert search(fake, {"query": "x"}, headers={}).status_code == 401
    # a non-admin key with asset.read passes auth (the default ML URL does not resolve: 500)
    assert search(fake, {"query": "x"}, headers={"x-api-key": "reader"}).status_code in (200, 500)
    with immich_client(fake, api_key="queues-only") as api, pytest.raises(ImmichPermissionError) as caught:
        api.smart_search("x")
    assert "asset.read" in caught.value.message


def test_body_validation_and_the_missing_query(fake, immich_fake_v3):
    response = search(fake, {"query": "x", "page": 0, "size": 5000})
    assert response.status_code == 400
    assert sorted(response.json()["message"]) == ["page must not be less than 1", "size must not be greater than 1000"]
    response = search(immich_fake_v3, {"query": "x", "size": 0})
    assert response.status_code == 400
    assert response.json()["errors"][0]["path"] == ["size"]
    for body in ({}, {"query": "   "}):
        response = search(fake, body)
        assert response.status_code == 400
        assert response.json()["message"] == "Either `query` or `queryAssetId` must be set"
    response = search(fake, {"queryAssetId": "4f1b4c9e-8a4e-4c1e-9d3a-1f0f9e7b2a10"})
    assert (response.status_code, response.json()["message"]) == (400, "Not found or no asset.read access")
