"""ImmichClient against the in-process Immich fake: the key's permissions, and the config
read-modify-write that keeps someone else's concurrent change (Immich has no ETag)."""

from __future__ import annotations

import json

import pytest

from immich_remote.errors import ImmichAPIError
from immich_remote.immich_api import (
    ApiKeyInfo,
    missing_permissions,
    permission_granted,
    queue_read_permission,
)
from immich_remote.immich_config import config_differences, verify_saved, with_ml_urls
from immich_remote.versions import ImmichVersion
from tests.fake.helpers import immich_client
from tests.testbed.immich_fake import DEFAULT_API_KEY, ApiKey

VERSIONS = ["2.7.5", "3.2.2"]
REMOTE = "http://gpu-box.lan:3003"
LOCAL = "http://immich-machine-learning:3003"


@pytest.fixture(params=VERSIONS)
def fake(request, immich_fake_factory):
    return immich_fake_factory(request.param)


def config_path(fake) -> str:
    return "/api/admin/config" if fake.version.at_least(3, 2) else "/api/system-config"


# --- pure helpers --------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("permissions", "needed", "granted"),
    [
        (["all"], "systemConfig.update", True),
        (["all"], "adminConfig.update", True),
        (["systemConfig.read", "systemConfig.update"], "systemConfig.update", True),
        (["systemConfig.read"], "systemConfig.update", False),
        (["adminConfig.update"], "systemConfig.update", False),  # no aliasing between the two names
        ([], "job.read", False),
        (("job.read", "job.create"), "job.create", True),
    ],
)
def test_permission_granted(permissions, needed, granted):
    assert permission_granted(permissions, needed) is granted


def test_missing_permissions_keeps_the_order_asked():
    assert missing_permissions(["job.read"], ["queue.read", "job.create", "job.read"]) == ["queue.read", "job.create"]
    assert missing_permissions(["all"], ["queue.read", "job.create"]) == []
    key = ApiKeyInfo("id", "name", ("systemConfig.read",))
    assert key.missing("systemConfig.read", "systemConfig.update") == ["systemConfig.update"]
    assert not key.grants("systemConfig.update") and key.grants("systemConfig.read")


@pytest.mark.parametrize(("version", "expected"), [("2.3.1", "job.read"), ("2.4.0", "queue.read"), ("3.2.2", "queue.read")])
def test_queue_read_permission_follows_the_queues_api(version, expected):
    assert queue_read_permission(ImmichVersion.parse(version)) == expected


def test_with_ml_urls_copies_and_keeps_key_order():
    config = {"b": {"x": 1}, "machineLearning": {"enabled": True, "urls": [LOCAL], "clip": {"enabled": True}}, "a": 2}
    out = with_ml_urls(config, [REMOTE, LOCAL])
    assert config["machineLearning"]["urls"] == [LOCAL]  # untouched
    assert out["machineLearning"]["urls"] == [REMOTE, LOCAL]
    assert list(out) == list(config) and list(out["machineLearning"]) == list(config["machineLearning"])
    assert out["b"] is not config["b"]


def test_config_differences_names_top_level_and_ml_keys():
    base = {"trash": {"days": 30}, "machineLearning": {"urls": [LOCAL], "clip": {"enabled": True}}, "map": {}}
    other = json.loads(json.dumps(base))
    assert config_differences(base, other) == []
    other["trash"]["days"] = 3
    other["machineLearning"]["clip"]["enabled"] = False
    other["extra"] = 1
    assert config_differences(base, other) == ["trash", "machineLearning.clip", "extra"]


def test_verify_saved_checks_urls_first():
    wanted = {"trash": {"days": 30}, "machineLearning": {"urls": [REMOTE, LOCAL]}}
    verify_saved(wanted, json.loads(json.dumps(wanted)))
    with pytest.raises(ImmichAPIError, match="machineLearning.urls"):
        verify_saved(wanted, {"trash": {"days": 30}, "machineLearning": {"urls": [LOCAL]}})


# --- my_api_key ----------------------------------------------------------------------------------------

def test_my_api_key_reads_the_permissions_with_a_get(immich_fake_factory):
    keys = [ApiKey(DEFAULT_API_KEY), ApiKey("limited", permissions=("systemConfig.read",), admin=False)]
    fake = immich_fake_factory("2.7.5", api_keys=keys)
    with immich_client(fake) as api:
        assert api.my_api_key().permissions == ("all",)
    with immich_client(fake, "limited") as api:
        info = api.my_api_key()
    assert info.permissions == ("systemConfig.read",) and info.id == keys[1].id
    assert {(r.method, r.path) for r in fake.requests()} == {("GET", "/api/api-keys/me")}


def test_my_api_key_with_a_wrong_key_is_a_401_naming_the_source_not_the_key(fake):
    with immich_client(fake, "wrong-secret") as api, pytest.raises(ImmichAPIError) as caught:
        api.my_api_key()
    assert caught.value.status == 401
    assert "rejected the API key from environment variable IMMICH_API_KEY" in caught.value.message
    assert "wrong-secret" not in str(caught.value)


# --- set_ml_urls: GET -> GET -> PUT -> GET verify -------------------------------------------------------

def test_set_ml_urls_reads_twice_then_writes_once_and_verifies(fake):
    before = fake.config
    with immich_client(fake) as api:
        replaced, after = api.set_ml_urls([REMOTE, LOCAL])
    path = config_path(fake)
    assert [(r.method, r.path) for r in fake.requests() if r.path == path] == [
        ("GET", path), ("GET", path), ("PUT", path), ("GET", path)
    ]
    assert replaced == before
    assert after == fake.config == with_ml_urls(before, [REMOTE, LOCAL])
    assert json.dumps(fake.config_writes()[0]) == json.dumps(with_ml_urls(before, [REMOTE, LOCAL]))  # key order


def test_set_ml_urls_writes_nothing_when_the_urls_are_already_there(fake):
    with immich_client(fake) as api:
        api.set_ml_urls([LOCAL])
    assert fake.requests(method="PUT") == [] and fake.config_writes() == []


def test_change_between_first_read_and_put_is_kept(fake):
    """(a) Someone saves other settings after our first GET: we build our object on theirs, one PUT."""
    theirs = {"trash": {"days": 12}, "machineLearning": {"clip": {"enabled": False}}}
    fake.change_config_on_read(theirs, read=2)  # our re-read right before the PUT sees it
    with immich_client(fake) as api:
        replaced, after = api.set_ml_urls([REMOTE, LOCAL])
    assert len(fake.config_writes()) == 1 and len(fake.requests(method="PUT")) == 1
    stored = fake.config
    assert stored["trash"]["days"] == 12 and stored["machineLearning"]["clip"]["enabled"] is False  # theirs kept
    assert stored["machineLearning"]["urls"] == [REMOTE, LOCAL]  # ours applied
    assert replaced["trash"]["days"] == 12 and after == stored
    path = config_path(fake)
    assert [r.method for r in fake.requests() if r.path == path] == ["GET", "GET", "GET", "PUT", "GET"]


def test_change_between_put_and_verification_is_reported(fake):
    """(b) Someone saves other settings after our PUT: the read-back differs, and we say so."""
    fake.change_config_on_read({"trash": {"days": 3}, "server": {"loginPageMessage": "maintenance"}}, read=3)
    with immich_client(fake) as api, pytest.raises(ImmichAPIError) as caught:
        api.set_ml_urls([REMOTE, LOCAL])
    message = caught.value.message
    assert "trash, server" in message
    assert "Someone else changed Immich's settings at the same time" in message
    assert "Check trash, server" in (caught.value.hint or "")
    assert len(fake.config_writes()) == 1  # our one PUT happened; it is the verification that failed


def test_their_urls_replacing_ours_after_the_put_is_reported(fake):
    fake.change_config_on_read({"machineLearning": {"urls": [LOCAL]}}, read=3)
    with immich_client(fake) as api, pytest.raises(ImmichAPIError, match="machineLearning.urls") as caught:
        api.set_ml_urls([REMOTE, LOCAL])
    assert "Someone else may have changed" in caught.value.message


def test_a_config_that_keeps_changing_is_left_alone(fake):
    for read in (2, 3, 4):
        fake.change_config_on_read({"trash": {"days": read}}, read=read)
    with immich_client(fake) as api, pytest.raises(ImmichAPIError, match="changed 3 times") as caught:
        api.set_ml_urls([REMOTE, LOCAL])
    assert "nothing was written" in caught.value.message
    assert fake.requests(method="PUT") == [] and fake.config_writes() == []


def test_two_changes_then_calm_still_succeeds(fake):
    fake.change_config_on_read({"trash": {"days": 2}}, read=2)
    fake.change_config_on_read({"trash": {"days": 3}}, read=3)
    with immich_client(fake) as api:
        api.set_ml_urls([REMOTE, LOCAL])
    assert fake.config["trash"]["days"] == 3 and fake.config["machineLearning"]["urls"] == [REMOTE, LOCAL]
    assert len(fake.config_writes()) == 1


def test_a_url_list_function_sees_a_url_added_meanwhile(fake):
    """With a function of the stored list, a URL someone adds between our reads is not lost."""
    added = "http://nuc.lan:3003"
    fake.change_config_on_read({"machineLearning": {"urls": [added, LOCAL]}}, read=2)
    seen: list[list[str]] = []

    def remote_first(current: list[str]) -> list[str]:
        seen.append(current)
        return [REMOTE] + [u for u in current if u != REMOTE]

    with immich_client(fake) as api:
        api.set_ml_urls(remote_first)
    assert seen == [[LOCAL], [added, LOCAL]]
    assert fake.config["machineLearning"]["urls"] == [REMOTE, added, LOCAL]
    assert len(fake.config_writes()) == 1
