import pytest

from immich_remote.errors import VersionError
from immich_remote.versions import ImmichVersion, tag_from_image


@pytest.mark.parametrize("text", ["2.7.5", "v2.7.5", "V2.7.5", " 2.7.5 ", "v2.7.5"])
def test_release_forms_pin_the_same_tag(text):
    assert ImmichVersion.parse(text).tag == "v2.7.5"


def test_multi_digit_parts():
    assert ImmichVersion.parse("1.122.10").tag == "v1.122.10"


@pytest.mark.parametrize("text,reason", [
    ("release", "moving tag"), ("latest", "moving tag"), ("main", "moving tag"), ("release-cuda", "moving tag"),
    ("v2.8.0-rc.1", "prerelease"), ("2.8.0-beta", "prerelease"), ("v3.0.0rc1", "prerelease"),
    ("v2", "not a full version"), ("2.7", "not a full version"),
    ("two", "not a version"), ("", "not a version"), ("v2.7.5-cuda", "not a version"),
])
def test_unpinnable_versions_are_refused_with_the_reason(text, reason):
    with pytest.raises(VersionError) as err:
        ImmichVersion.parse(text)
    assert reason in str(err.value)


def test_server_payload_and_prerelease_refusal():
    assert ImmichVersion.from_server({"major": 3, "minor": 2, "patch": 2, "prerelease": None}).tag == "v3.2.2"
    with pytest.raises(VersionError, match="prerelease"):
        ImmichVersion.from_server({"major": 3, "minor": 3, "patch": 0, "prerelease": 1})
    with pytest.raises(VersionError, match="unexpected answer"):
        ImmichVersion.from_server({"version": "v3.2.2"})


def test_version_gates():
    assert not ImmichVersion(3, 1, 9).has_admin_config_api
    assert ImmichVersion(3, 2, 0).has_admin_config_api
    assert not ImmichVersion(2, 3, 1).has_queues_api and ImmichVersion(2, 4, 0).has_queues_api
    assert ImmichVersion(3, 0, 0).needs_x86_64_v2 and not ImmichVersion(2, 7, 5).needs_x86_64_v2


def test_ordering():
    assert ImmichVersion.parse("2.10.0") > ImmichVersion.parse("2.9.9")


@pytest.mark.parametrize("image,tag", [
    ("ghcr.io/immich-app/immich-machine-learning:v2.7.5-cuda", "v2.7.5"),
    ("registry.tb:5000/immich-app/immich-machine-learning:v3.2.2", "v3.2.2"),
    ("ghcr.io/immich-app/immich-machine-learning:release", None),
    ("registry.tb:5000/immich-app/immich-machine-learning", None),
])
def test_tag_from_image(image, tag):
    assert tag_from_image(image) == tag
