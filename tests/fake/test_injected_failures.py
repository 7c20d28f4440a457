"""The fake's fault injection: a server that breaks mid-run answers errors for chosen requests."""

from __future__ import annotations

import time

from tests.fake.helpers import AUTH, client


def test_the_next_requests_fail_then_the_server_answers_again(immich_fake):
    immich_fake.fail_requests("PUT", "/api/system-config", status=500, count=2)
    config = immich_fake.config
    with client(immich_fake) as http:
        answers = [http.put("/system-config", json=config, headers=AUTH) for _ in range(3)]
        assert http.get("/system-config", headers=AUTH).status_code == 200  # other requests are served
    assert [a.status_code for a in answers] == [500, 500, 200]
    assert answers[0].json()["message"] == "Internal server error"
    assert [r.status for r in immich_fake.requests(method="PUT")] == [500, 500, 200]  # logged as answered
    assert len(immich_fake.config_writes()) == 1  # a failed request writes nothing


def test_reset_forgets_pending_failures(immich_fake):
    immich_fake.fail_requests("GET", "/api/server/version", status=503, count=5)
    immich_fake.reset()
    with client(immich_fake) as http:
        assert http.get("/server/version").status_code == 200


def test_a_slow_server_answers_the_next_requests_late(immich_fake):
    immich_fake.delay_requests("GET", "/api/server/version", seconds=0.5)
    with client(immich_fake) as http:
        started = time.monotonic()
        assert http.get("/server/version").status_code == 200
        first = time.monotonic() - started
        started = time.monotonic()
        assert http.get("/server/version").status_code == 200
        second = time.monotonic() - started
    assert first >= 0.5 and second < 0.5
