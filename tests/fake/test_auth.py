"""Auth and the NestJS order of checks: route 404 -> 401 -> 403 -> validation 400 -> service 400."""

from __future__ import annotations

import re
import uuid
from datetime import datetime

import pytest

from tests.fake.helpers import AUTH, client
from tests.testbed.immich_fake import DEFAULT_API_KEY, ApiKey

VERSIONS = ["2.7.5", "3.2.2"]


@pytest.fixture(params=VERSIONS)
def fake(request, immich_fake_factory):
    keys = [
        ApiKey(DEFAULT_API_KEY),
        ApiKey("read-only", permissions=("systemConfig.read",)),
        ApiKey("updater", permissions=("systemConfig.update",)),
        ApiKey("non-admin", permissions=("all",), admin=False),
        ApiKey("about-only", permissions=("server.about",), admin=False),
    ]
    return immich_fake_factory(request.param, api_keys=keys)


def message(response) -> object:
    return response.json()["message"]


def test_missing_key_is_401(fake):
    with client(fake) as c:
        response = c.get("/system-config")
    assert response.status_code == 401
    assert message(response) == "Authentication required"


def test_unknown_key_is_401(fake):
    with client(fake) as c:
        response = c.put("/system-config", headers={"x-api-key": "nope"}, json={})
    assert response.status_code == 401
    assert message(response) == "Invalid API key"


def test_key_in_query_string_is_accepted(fake):
    with client(fake) as c:
        assert c.get("/system-config", params={"apiKey": DEFAULT_API_KEY}).status_code == 200
    assert fake.requests(path="/api/system-config")[-1].query == {"apiKey": ["<redacted>"]}


def test_missing_permission_is_403_naming_it(fake):
    with client(fake) as c:
        response = c.put("/system-config", headers={"x-api-key": "read-only"}, json={})
    assert response.status_code == 403
    assert message(response) == "Missing required permission: systemConfig.update"


def test_empty_put_tells_update_permission_apart_without_changing_anything(fake):
    """Immich's order: ``PUT {}`` answers 400 (validation) with the permission, 403 without it.

    (The CLI no longer sends it: it reads the key's permissions from ``GET /api-keys/me``.)"""
    before = fake.config
    with client(fake) as c:
        allowed = c.put("/system-config", headers={"x-api-key": "updater"}, json={})
        denied = c.put("/system-config", headers={"x-api-key": "read-only"}, json={})
    assert allowed.status_code == 400
    assert denied.status_code == 403
    assert fake.config == before
    assert fake.config_writes() == []


def test_non_admin_key_is_forbidden_before_permission_check(fake):
    with client(fake) as c:
        response = c.get("/system-config", headers={"x-api-key": "non-admin"})
    assert response.status_code == 403
    assert message(response) == "Forbidden"


def test_permission_checked_before_body_validation_and_lock(immich_fake_factory):
    fake = immich_fake_factory(
        "2.7.5", locked=True, api_keys=[ApiKey("r", permissions=("systemConfig.read",))]
    )
    with client(fake) as c:
        response = c.put("/system-config", headers={"x-api-key": "r"}, json=fake.config)
    assert response.status_code == 403


def test_public_routes_need_no_key(fake):
    with client(fake) as c:
        assert c.get("/server/version").status_code == 200
        assert c.get("/server/ping").json() == {"res": "pong"}
        assert c.get("/server/features").status_code == 200
        assert c.get("/server/version", headers={"x-api-key": "garbage"}).status_code == 200


def test_about_needs_server_about_not_admin(fake):
    with client(fake) as c:
        assert c.get("/server/about").status_code == 401
        assert c.get("/server/about", headers={"x-api-key": "read-only"}).status_code == 403
        response = c.get("/server/about", headers={"x-api-key": "about-only"})
    assert response.status_code == 200
    assert response.json()["version"] == f"v{fake.version}"


def test_unknown_route_is_404_before_auth(fake):
    with client(fake) as c:
        response = c.get("/does-not-exist")
    assert response.status_code == 404
    assert message(response) == "Cannot GET /api/does-not-exist"


def test_malformed_json_is_400_before_auth(fake):
    with client(fake) as c:
        response = c.put("/system-config", content=b"{nope", headers={"content-type": "application/json"})
    assert response.status_code == 400


def test_v2_error_body_shape(immich_fake):
    """class-validator era: message list, ``error``, ``statusCode``, ``correlationId`` = ``x-immich-cid``."""
    with client(immich_fake) as c:
        response = c.put("/system-config", headers=AUTH, json={})
    body = response.json()
    assert body["error"] == "Bad Request"
    assert body["statusCode"] == 400
    assert isinstance(body["message"], list)
    assert body["correlationId"] == response.headers["x-immich-cid"]


def test_v3_error_body_shape(immich_fake_v3):
    """Zod era: ``{message, errors}`` for validation, ``{message}`` otherwise, id in ``X-Correlation-ID``."""
    with client(immich_fake_v3) as c:
        response = c.put("/system-config", headers=AUTH, json={})
        forbidden = c.get("/system-config")
    body = response.json()
    assert body["message"] == "Validation failed"
    assert {"code", "path", "message"} <= set(body["errors"][0])
    assert "statusCode" not in body and "correlationId" not in body
    assert response.headers["x-correlation-id"]
    assert forbidden.json() == {"message": "Authentication required"}


def test_request_log_redacts_the_key(fake):
    with client(fake) as c:
        c.get("/system-config", headers=AUTH)
    recorded = fake.requests("GET", "/api/system-config")[-1]
    assert recorded.headers["x-api-key"] == "<redacted>"
    assert recorded.status == 200
    assert DEFAULT_API_KEY not in str(recorded.to_json())


# --- GET /api-keys/me: a valid key, no permission -----------------------------------------------------

ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")  # JavaScript toISOString()


@pytest.mark.parametrize(
    ("secret", "permissions"),
    [
        (DEFAULT_API_KEY, ["all"]),
        ("read-only", ["systemConfig.read"]),
        ("non-admin", ["all"]),  # not an admin: the route needs no admin either
        ("about-only", ["server.about"]),
    ],
)
def test_my_api_key_needs_a_valid_key_but_no_permission(fake, secret, permissions):
    with client(fake) as c:
        response = c.get("/api-keys/me", headers={"x-api-key": secret})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"createdAt", "id", "name", "permissions", "updatedAt"}  # ApiKeyResponseDto
    assert body["permissions"] == permissions
    assert body["name"] == "immich-remote test key"
    assert uuid.UUID(body["id"]).version == 4
    assert ISO.match(body["createdAt"]) and ISO.match(body["updatedAt"])
    assert datetime.fromisoformat(body["createdAt"].replace("Z", "+00:00")).tzinfo is not None
    assert secret not in response.text  # Immich never returns the secret


def test_my_api_key_is_the_callers_own_key(fake):
    with client(fake) as c:
        mine = c.get("/api-keys/me", headers={"x-api-key": "read-only"}).json()
        other = c.get("/api-keys/me", headers={"x-api-key": "updater"}).json()
        again = c.get("/api-keys/me", params={"apiKey": "read-only"}).json()
    assert mine["id"] != other["id"]
    assert again == mine  # stable: the same key, the same record
    assert other["permissions"] == ["systemConfig.update"]


def test_my_api_key_without_or_with_an_unknown_key_is_401(fake):
    with client(fake) as c:
        missing = c.get("/api-keys/me")
        unknown = c.get("/api-keys/me", headers={"x-api-key": "nope"})
        reference = c.get("/system-config", headers={"x-api-key": "nope"})
    assert (missing.status_code, message(missing)) == (401, "Authentication required")
    assert (unknown.status_code, message(unknown)) == (401, "Invalid API key")
    # the same error body as every other 401 of this version (keys, shape), bar the correlation id
    assert set(unknown.json()) == set(reference.json())
    assert {k: v for k, v in unknown.json().items() if k != "correlationId"} == {
        k: v for k, v in reference.json().items() if k != "correlationId"
    }


def test_my_api_key_is_read_only_and_logged(fake):
    before = fake.config
    with client(fake) as c:
        assert c.put("/api-keys/me", headers=AUTH, json={}).status_code == 404  # no such route
        c.get("/api-keys/me", headers=AUTH)
    assert fake.config == before and fake.config_writes() == []
    recorded = fake.requests("GET", "/api/api-keys/me")[-1]
    assert recorded.status == 200 and recorded.headers["x-api-key"] == "<redacted>"


def test_my_api_key_reports_what_the_key_was_given(immich_fake_factory):
    key = ApiKey("ops", permissions=("adminConfig.read", "adminConfig.update"), name="ops laptop")
    fake = immich_fake_factory("3.2.2", api_keys=[key])
    with client(fake) as c:
        body = c.get("/api-keys/me", headers={"x-api-key": "ops"}).json()
    assert body == {
        "id": key.id,
        "name": "ops laptop",
        "createdAt": key.created_at,
        "updatedAt": key.created_at,
        "permissions": ["adminConfig.read", "adminConfig.update"],
    }
