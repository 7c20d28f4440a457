import pytest

from immich_remote.errors import InputError
from immich_remote.urls import classify_address, derive_url, normalise_url, order_urls

LOCAL = "http://immich-machine-learning:3003"


@pytest.mark.parametrize("address,kind", [
    ("192.168.1.50", "private"), ("10.0.0.5", "private"), ("172.16.3.4", "private"),
    ("100.101.102.103", "cgnat"), ("fd12:3456::5", "ula"), ("127.0.0.1", "loopback"), ("::1", "loopback"),
    ("0.0.0.0", "unspecified"), ("::", "unspecified"), ("8.8.8.8", "public"), ("2001:4860::8888", "public"),
    ("169.254.1.2", "link-local"), ("gpu.lan", "name"),
])
def test_classify_address(address, kind):
    assert classify_address(address) == kind


def test_derive_url_brackets_ipv6():
    assert derive_url("192.168.1.50", 3003) == "http://192.168.1.50:3003"
    assert derive_url("fd00::5", 3013) == "http://[fd00::5]:3013"


@pytest.mark.parametrize("url,expected", [
    ("http://192.168.1.50:3003", "http://192.168.1.50:3003"),
    ("HTTP://GPU.lan:3003/", "http://gpu.lan:3003"),
    ("http://gpu.lan", "http://gpu.lan:80"),
    ("https://ml.example", "https://ml.example:443"),
    ("http://[FD00::5]:3003", "http://[fd00::5]:3003"),
])
def test_normalise(url, expected):
    assert normalise_url(url, where="t") == expected


@pytest.mark.parametrize("url,fragment", [
    ("http://gpu.lan:3003/ml", "has a path"),
    ("http://gpu.lan:3003/?x=1", "has a path"),
    ("ftp://gpu.lan:3003", "not an http(s) URL"),
    ("gpu.lan:3003", "not an http(s) URL"),
    ("http://user:pw@gpu.lan:3003", "credentials"),
    ("http://gpu.lan:99999", "not a valid URL"),
])
def test_urls_immich_would_misuse_are_refused(url, fragment):
    with pytest.raises(InputError) as err:
        normalise_url(url, where="hosts.gpu.url")
    assert fragment in str(err.value) and "hosts.gpu.url" in str(err.value)


def test_remote_first_then_local_fallback():
    urls = order_urls(current=[LOCAL], remote=["http://10.0.0.5:3003", "http://10.0.0.6:3003"],
                      managed=["http://10.0.0.5:3003", "http://10.0.0.6:3003"], local=LOCAL)
    assert urls == ["http://10.0.0.5:3003", "http://10.0.0.6:3003", LOCAL]


def test_local_moves_last_even_if_the_ui_put_it_first_or_appended_remote_after_it():
    current = [LOCAL, "http://10.0.0.5:3003"]  # what Immich's UI "Add URL" produces
    assert order_urls(current=current, remote=["http://10.0.0.5:3003"], managed=["http://10.0.0.5:3003"],
                      local=LOCAL) == ["http://10.0.0.5:3003", LOCAL]


def test_foreign_urls_are_kept_between_remote_and_local():
    current = ["http://old-box:3003", LOCAL]
    assert order_urls(current=current, remote=["http://10.0.0.5:3003"], managed=["http://10.0.0.5:3003"],
                      local=LOCAL) == ["http://10.0.0.5:3003", "http://old-box:3003", LOCAL]


def test_duplicates_after_normalisation_are_dropped():
    current = ["http://10.0.0.5:3003/", LOCAL, LOCAL + "/"]
    assert order_urls(current=current, remote=["http://10.0.0.5:3003"], managed=["http://10.0.0.5:3003"],
                      local=LOCAL) == ["http://10.0.0.5:3003", LOCAL]


def test_managed_url_not_wanted_any_more_is_removed():
    current = ["http://10.0.0.5:3003", "http://10.0.0.6:3003", LOCAL]
    assert order_urls(current=current, remote=["http://10.0.0.6:3003"],
                      managed=["http://10.0.0.5:3003", "http://10.0.0.6:3003"], local=LOCAL) == [
        "http://10.0.0.6:3003", LOCAL]


def test_remote_only_drops_the_local_url():
    assert order_urls(current=[LOCAL], remote=["http://10.0.0.5:3003"], managed=[], local=LOCAL,
                      keep_local=False) == ["http://10.0.0.5:3003"]
