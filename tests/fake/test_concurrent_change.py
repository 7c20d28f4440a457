"""``change_config_on_read``: another admin saves settings while a client is between its requests."""

from __future__ import annotations

import pytest

from tests.fake.helpers import AUTH, client, merged

VERSIONS = ["2.7.5", "3.2.2"]
CHANGE = {"trash": {"days": 12}, "machineLearning": {"clip": {"enabled": False}}}


@pytest.fixture(params=VERSIONS)
def fake(request, immich_fake_factory):
    return immich_fake_factory(request.param)


def reads(fake, count: int, path: str = "/system-config") -> list[dict]:
    with client(fake) as c:
        return [c.get(path, headers=AUTH).json() for _ in range(count)]


def test_the_nth_read_sees_the_change_first(fake):
    before = fake.config
    fake.change_config_on_read(CHANGE, read=2)
    first, second, third = reads(fake, 3)
    assert first == before
    assert second == third == merged(before, CHANGE) == fake.config
    assert fake.config_writes() == []  # not the client's write
    assert fake.state()["pendingConfigChanges"] == 0


def test_read_1_means_the_next_read(fake):
    fake.change_config_on_read({"trash": {"days": 3}})
    assert reads(fake, 1)[0]["trash"]["days"] == 3


def test_both_config_paths_count_defaults_do_not(immich_fake_factory):
    fake = immich_fake_factory("3.2.2")
    fake.change_config_on_read({"trash": {"days": 5}}, read=2)
    with client(fake) as c:
        assert c.get("/admin/config/defaults", headers=AUTH).json()["trash"]["days"] == 30
        assert c.get("/admin/config", headers=AUTH).json()["trash"]["days"] == 30
        assert c.get("/system-config", headers=AUTH).json()["trash"]["days"] == 5


def test_several_changes_fire_once_each(fake):
    fake.change_config_on_read({"trash": {"days": 1}}, read=1)
    fake.change_config_on_read({"trash": {"days": 2}}, read=2)
    assert [r["trash"]["days"] for r in reads(fake, 3)] == [1, 2, 2]


def test_a_put_does_not_count_and_the_change_survives_until_read(fake):
    fake.change_config_on_read({"trash": {"days": 9}}, read=2)
    first = reads(fake, 1)[0]
    with client(fake) as c:
        sent = merged(first, {"machineLearning": {"urls": ["http://gpu-box:3003"]}})
        assert c.put("/system-config", headers=AUTH, json=sent).status_code == 200
        after = c.get("/system-config", headers=AUTH).json()
    assert after["trash"]["days"] == 9  # landed between the PUT and the read-back
    assert after["machineLearning"]["urls"] == ["http://gpu-box:3003"]
    assert fake.config_writes() == [sent]


def test_reset_forgets_pending_changes(fake):
    fake.change_config_on_read({"trash": {"days": 4}})
    fake.reset()
    assert reads(fake, 1)[0]["trash"]["days"] == 30


def test_bad_arguments_are_refused(fake):
    with pytest.raises(ValueError):
        fake.change_config_on_read({"trash": {"days": 4}}, read=0)
    with pytest.raises(TypeError):
        fake.change_config_on_read(["trash"])  # type: ignore[arg-type]
