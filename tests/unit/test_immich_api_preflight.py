"""`immich_checks` against the in-process Immich fake: GET requests only, and a missing permission is
reported (named, with the fix) from the key's permission list, before anything changes."""

from __future__ import annotations

import httpx
import pytest

from immich_remote.immich_api import ImmichClient
from immich_remote.inventory import ImmichServer
from immich_remote.preflight import FAIL, PASS, WARN, immich_checks
from tests.fake.helpers import immich_client
from tests.testbed.immich_fake import DEFAULT_API_KEY, ApiKey

# version -> (read, update) permission the config endpoint needs
ENDPOINT_PERMISSIONS = {
    "2.3.1": ("systemConfig.read", "systemConfig.update"),
    "2.7.5": ("systemConfig.read", "systemConfig.update"),
    "3.1.0": ("systemConfig.read", "systemConfig.update"),
    "3.2.2": ("adminConfig.read", "adminConfig.update"),
}


def run(fake, secret: str = DEFAULT_API_KEY, **kwargs):
    with immich_client(fake, secret) as api:
        return immich_checks(api, **kwargs)


def by_name(report) -> dict:
    return {c.name: c for c in report.checks}


def non_get(fake) -> list[str]:
    return [f"{r.method} {r.path}" for r in fake.requests() if r.method != "GET"]


@pytest.mark.parametrize("version", sorted(ENDPOINT_PERMISSIONS))
@pytest.mark.parametrize("need_jobs", [False, True])
def test_full_permission_key_passes_with_get_requests_only(immich_fake_factory, version, need_jobs):
    fake = immich_fake_factory(version)
    report = run(fake, need_jobs=need_jobs)
    assert report.ok, report.checks
    names = ["server", "api key", "permission"] + (["jobs"] if need_jobs else []) + ["config"]
    assert [c.name for c in report.checks] == names
    assert all(c.status == PASS for c in report.checks)
    assert ENDPOINT_PERMISSIONS[version][1] in by_name(report)["permission"].detail
    assert report.config == fake.config
    assert fake.requests() and non_get(fake) == []
    assert ("GET", "/api/api-keys/me") in {(r.method, r.path) for r in fake.requests()}
    assert fake.config_writes() == []


@pytest.mark.parametrize("version", sorted(ENDPOINT_PERMISSIONS))
def test_key_without_update_permission_fails_naming_it_without_a_write(immich_fake_factory, version):
    read, update = ENDPOINT_PERMISSIONS[version]
    fake = immich_fake_factory(version, api_keys=[ApiKey("reader", permissions=(read, "server.about"))])
    report = run(fake, "reader")
    assert not report.ok
    checks = by_name(report)
    assert checks["api key"].status == PASS and read in checks["api key"].detail
    assert checks["permission"].status == FAIL
    assert f"lacks permission {update}" in checks["permission"].detail
    assert update in checks["permission"].fix and "Account Settings > API Keys" in checks["permission"].fix
    assert non_get(fake) == [] and fake.config_writes() == []


def test_the_other_generations_update_permission_does_not_count(immich_fake_factory):
    """3.2+ uses /admin/config: systemConfig.update no longer lets the key save the ML URLs there."""
    fake = immich_fake_factory(
        "3.2.2", api_keys=[ApiKey("old-style", permissions=("adminConfig.read", "systemConfig.update"))]
    )
    check = by_name(run(fake, "old-style"))["permission"]
    assert check.status == FAIL and "lacks permission adminConfig.update" in check.detail
    assert non_get(fake) == []


@pytest.mark.parametrize(
    ("version", "permissions", "missing"),
    [
        ("2.7.5", ("systemConfig.read", "systemConfig.update", "job.create"), "queue.read"),
        ("2.3.1", ("systemConfig.read", "systemConfig.update", "job.create"), "job.read"),
        ("2.3.1", ("systemConfig.read", "systemConfig.update", "queue.read", "job.create"), "job.read"),
        ("3.2.2", ("adminConfig.read", "adminConfig.update", "queue.read"), "job.create"),
    ],
)
def test_jobs_permissions_come_from_the_list(immich_fake_factory, version, permissions, missing):
    fake = immich_fake_factory(version, api_keys=[ApiKey("k", permissions=permissions)])
    report = run(fake, "k", need_jobs=True)
    jobs = by_name(report)["jobs"]
    assert jobs.status == FAIL and f"lacks permission {missing}" in jobs.detail and missing in jobs.fix
    assert by_name(report)["permission"].status == PASS
    assert non_get(fake) == []
    assert not any(r.path in ("/api/queues", "/api/jobs") for r in fake.requests())  # no probing


def test_jobs_pass_with_exact_permissions(immich_fake_factory):
    permissions = ("systemConfig.read", "systemConfig.update", "queue.read", "job.create")
    fake = immich_fake_factory("2.7.5", api_keys=[ApiKey("k", permissions=permissions)])
    report = run(fake, "k", need_jobs=True)
    assert report.ok and by_name(report)["jobs"].status == PASS


def test_every_missing_permission_is_reported_at_once(immich_fake_factory):
    fake = immich_fake_factory("2.7.5", api_keys=[ApiKey("nothing", permissions=("server.about",))])
    checks = by_name(run(fake, "nothing", need_jobs=True))
    assert checks["api key"].status == FAIL and "lacks permission systemConfig.read" in checks["api key"].detail
    assert checks["permission"].status == FAIL and "systemConfig.update" in checks["permission"].detail
    assert checks["jobs"].status == FAIL and "queue.read and job.create" in checks["jobs"].detail
    assert "config" not in checks  # the config could not be read
    assert non_get(fake) == []


def test_wrong_key_is_reported_as_before(immich_fake):
    report = run(immich_fake, "not-a-key")
    assert [c.name for c in report.checks] == ["server", "api key"]
    check = report.checks[-1]
    assert check.status == FAIL and "rejected the API key" in check.detail and "401" in check.detail
    assert "Account Settings > API Keys" in check.fix
    assert "not-a-key" not in check.detail + check.fix
    assert non_get(immich_fake) == []


def test_non_admin_key_is_told_so(immich_fake_factory):
    fake = immich_fake_factory("2.7.5", api_keys=[ApiKey("user", admin=False)])
    checks = by_name(run(fake, "user"))
    assert checks["api key"].status == FAIL and "not an admin" in checks["api key"].detail
    assert non_get(fake) == []


def test_locked_config_is_a_warning_and_still_get_only(immich_fake_factory):
    fake = immich_fake_factory("2.7.5", locked=True)
    report = run(fake)
    assert report.ok and by_name(report)["config"].status == WARN and report.locked
    assert non_get(fake) == []


def test_server_without_my_api_key_route_warns_and_still_writes_nothing():
    """A server that answers 404 on /api-keys/me cannot tell the key's permissions without a write:
    the check says so (WARN, naming the permission) rather than probing with a PUT."""
    seen: list[tuple[str, str]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append((request.method, request.url.path))
        routes = {
            "/api/server/version": {"major": 2, "minor": 1, "patch": 0},
            "/api/system-config": {"machineLearning": {"urls": ["http://immich-machine-learning:3003"]}},
            "/api/server/features": {"configFile": False},
        }
        if request.method == "GET" and request.url.path in routes:
            return httpx.Response(200, json=routes[request.url.path])
        return httpx.Response(404, json={"message": f"Cannot {request.method} {request.url.path}",
                                         "error": "Not Found", "statusCode": 404})

    server = ImmichServer(
        url="http://immich.test", api_key_env="IMMICH_API_KEY", api_key_file=None, api_key_command=None,
        local_ml_url="http://immich-machine-learning:3003", fallback="keep-local", timeout=5.0, verify_tls=True)
    with ImmichClient(server, api_key="k", transport=httpx.MockTransport(answer)) as api:
        report = immich_checks(api, need_jobs=True)
    checks = by_name(report)
    assert report.ok and checks["api key"].status == PASS
    assert checks["permission"].status == WARN and "systemConfig.update" in checks["permission"].detail
    assert checks["jobs"].status == WARN and "job.read and job.create" in checks["jobs"].detail
    assert ("GET", "/api/api-keys/me") in seen and all(method == "GET" for method, _ in seen)
