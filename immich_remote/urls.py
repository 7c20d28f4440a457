"""ML URLs and bind addresses: derivation, normalisation, exposure rules and the order Immich gets.

Immich tries `machineLearning.urls` in order (healthy ones first), so the order *is* the policy:
remote hosts by priority, then any URL we do not manage, then the local container as fallback.
Immich joins `/ping` and `/predict` onto a URL with `new URL(path, url)`, which drops any path
the URL had, so a URL with a path would silently point somewhere else: it is refused here.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from urllib.parse import urlsplit

from .errors import InputError

DEFAULT_LOCAL_ML_URL = "http://immich-machine-learning:3003"
ML_CONTAINER_PORT = 3003

_CGNAT = ipaddress.ip_network("100.64.0.0/10")  # also Tailscale's range


def parse_ip(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        return None


def classify_address(address: str) -> str:
    """'loopback', 'private' (RFC 1918), 'ula', 'cgnat', 'link-local', 'unspecified', 'public' or 'name'."""
    ip = parse_ip(address)
    if ip is None:
        return "name"
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.version == 4 and ip in _CGNAT:
        return "cgnat"
    if ip.version == 6 and ip in ipaddress.ip_network("fc00::/7"):
        return "ula"
    if ip.is_private:
        return "private"
    return "public"


def host_for_url(address: str) -> str:
    """Bracket an IPv6 literal for use in a URL."""
    ip = parse_ip(address)
    return f"[{ip}]" if ip is not None and ip.version == 6 else address


def derive_url(address: str, port: int) -> str:
    return f"http://{host_for_url(address)}:{port}"


def normalise_url(url: str, *, where: str) -> str:
    """Canonical form `scheme://host:port` (lower-case scheme and host, explicit port, no slash).

    Raises InputError (naming `where`) for anything Immich would misuse: another scheme, a path,
    a query, credentials, or a missing host.
    """
    text = str(url).strip()
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise InputError(f"{where}: '{text}' is not a valid URL ({exc}).") from None
    if parts.scheme.lower() not in {"http", "https"} or not parts.hostname:
        raise InputError(f"{where}: '{text}' is not an http(s) URL.",
                         hint="Write it as http://ADDRESS:PORT, e.g. http://192.168.1.50:3003.")
    if parts.path not in {"", "/"} or parts.query or parts.fragment:
        raise InputError(
            f"{where}: '{text}' has a path; Immich drops URL paths (it calls new URL('/ping', url)), "
            "so requests would go to the server root instead.",
            hint="Point the URL at the ML service's root, e.g. http://192.168.1.50:3003, "
            "or publish it on its own port behind your proxy.")
    if parts.username or parts.password:
        raise InputError(f"{where}: '{text}' contains credentials; the ML service has no authentication.")
    scheme = parts.scheme.lower()
    default_port = 443 if scheme == "https" else 80
    return f"{scheme}://{host_for_url(parts.hostname.lower())}:{port or default_port}"


def url_key(url: str) -> str:
    """Comparison key: the normalised form, or the raw text if it cannot be normalised."""
    try:
        return normalise_url(url, where="url")
    except InputError:
        return str(url).strip()


def order_urls(*, current: Sequence[str], remote: Sequence[str], managed: Iterable[str],
               local: str, keep_local: bool = True) -> list[str]:
    """The URL list Immich should get.

    - `remote`: the remote URLs to register, already in priority order;
    - `managed`: every URL immich-remote owns (all inventory hosts); those not in `remote` are dropped;
    - URLs in `current` that are neither managed nor local are kept (in their order) after the remotes:
      someone added them by hand, and removing them is not ours to decide;
    - `local`: the server's own ML URL: last when `keep_local`, removed in remote-only mode.
    Duplicates (after normalisation) are removed, first occurrence wins.
    """
    managed_keys = {url_key(u) for u in managed} | {url_key(u) for u in remote}
    local_key = url_key(local)
    result: list[str] = []
    seen: set[str] = set()

    def add(url: str) -> None:
        key = url_key(url)
        if key not in seen:
            seen.add(key)
            result.append(url)

    for url in remote:
        add(url)
    for url in current:
        key = url_key(url)
        if key not in managed_keys and key != local_key:
            add(url)
    if keep_local:
        add(local)
    return result


def foreign_urls(current: Sequence[str], *, managed: Iterable[str], local: str | None) -> list[str]:
    """URLs in Immich's list that immich-remote neither manages nor treats as the local fallback."""
    known = {url_key(u) for u in managed} | ({url_key(local)} if local else set())
    return [u for u in current if url_key(u) not in known]
