"""Unit tests of the fake's validators (validator.js isURL, WHATWG URL, cron, message rendering)."""

from __future__ import annotations

import pytest

from tests.testbed.immich_fake_validation import (
    CLASS_VALIDATOR,
    ZOD,
    Arr,
    Num,
    Obj,
    Url,
    is_cron,
    is_url,
    is_whatwg_url,
    render_class_validator,
    render_zod,
    validate,
    whatwg_origin_join,
)

ML_URL = {"require_tld": False, "allow_underscores": True}


@pytest.mark.parametrize(
    "url",
    [
        "http://immich-machine-learning:3003",
        "http://10.0.0.5:3003",
        "https://ml.example.org",
        "http://ml_box:3003",
        "http://[::1]:3003",
        "http://localhost:3003/some/path",
        "gpu-box:3003",  # validator.js needs no protocol unless require_protocol
        "ftp://ml.lan",
    ],
)
def test_is_url_accepts_what_validator_js_accepts(url):
    assert is_url(url, **ML_URL)


@pytest.mark.parametrize(
    "url",
    ["", "not a url", "http://", "http://gpu box:3003", "http://host:99999", "mailto:a@b.c", "ws://x", 5],
)
def test_is_url_rejects(url):
    assert not is_url(url, **ML_URL)


def test_is_url_require_tld_by_default():
    assert not is_url("http://localhost:3003")
    assert is_url("https://tiles.immich.cloud/v1/style/light.json")


@pytest.mark.parametrize(
    ("url", "valid"),
    [
        ("https://x.org/a", True),
        ("not-a-url", False),
        ("http://", False),
        ("app.immich:///cb", True),
        ("", False),
    ],
)
def test_whatwg_url(url, valid):
    assert is_whatwg_url(url) is valid


@pytest.mark.parametrize(
    ("base", "joined"),
    [
        ("http://h:3003", "http://h:3003/ping"),
        ("http://h:3003/ml/v1?x=1#f", "http://h:3003/ping"),
        ("HTTP://h", "http://h/ping"),
        ("not a url", None),
        ("gpu-box:3003", None),
    ],
)
def test_origin_join_discards_path(base, joined):
    assert whatwg_origin_join(base, "/ping") == joined


@pytest.mark.parametrize(
    ("expression", "valid"), [("0 02 * * *", True), ("*/5 1-3 * * mon", True), ("bad", False)]
)
def test_cron(expression, valid):
    assert is_cron(expression) is valid


def test_class_validator_messages_are_prefixed_like_nestjs():
    schema = Obj(
        {
            "ml": Obj(
                {"urls": Arr(Url(**ML_URL), min_items=1, each_on_scalar=True), "n": Num(integer=True, min=1)}
            )
        }
    )
    _, ctx = validate(schema, {"ml": {"urls": ["bad url"], "n": "x"}, "extra": 1}, flavor=CLASS_VALIDATOR)
    assert render_class_validator(ctx.issues) == [
        "ml.each value in urls must be a URL address",
        "ml.n must not be less than 1",
        "ml.n must be an integer number",
    ]
    assert ctx.stripped == ["extra"]


def test_zod_issues():
    schema = Obj({"ml": Obj({"urls": Arr(Num(), min_items=1), "n": Num(integer=True, max=3)})})
    _, ctx = validate(schema, {"ml": {"urls": [], "n": 4}}, flavor=ZOD)
    assert render_zod(ctx.issues) == [
        {
            "origin": "array",
            "code": "too_small",
            "minimum": 1,
            "inclusive": True,
            "path": ["ml", "urls"],
            "message": "Too small: expected array to have >=1 items",
        },
        {
            "origin": "number",
            "code": "too_big",
            "maximum": 3,
            "inclusive": True,
            "path": ["ml", "n"],
            "message": "Too big: expected number to be <=3",
        },
    ]


def test_number_coercion_like_javascript():
    _, ctx = validate(Obj({"crf": Num(integer=True, coerce=True)}), {"crf": "23"}, flavor=ZOD)
    assert ctx.issues == []
    kept, _ = validate(Obj({"crf": Num(integer=True, coerce=True)}), {"crf": "23"}, flavor=ZOD)
    assert kept == {"crf": 23}
