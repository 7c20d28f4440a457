"""Immich versions and the image tags pinned to them.

The ML image must run exactly the server's release. Only a full `vX.Y.Z` release can be pinned:
moving tags (`release`, `latest`, `main`), partial versions (`v2`, `2.7`) and prereleases are refused,
because a host would then drift away from the server on its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .errors import VersionError

_MOVING_TAGS = {"release", "latest", "main", "stable", "nightly", "edge"}
_VERSION_RE = re.compile(r"^[vV]?(\d+)\.(\d+)\.(\d+)$")
_PRERELEASE_RE = re.compile(r"^[vV]?\d+\.\d+\.\d+[-+.]?(rc|beta|alpha|pre|dev)[.\-]?\d*.*$", re.IGNORECASE)
_PARTIAL_RE = re.compile(r"^[vV]?\d+(\.\d+)?$")


@dataclass(frozen=True, order=True)
class ImmichVersion:
    """A released Immich version, e.g. 2.7.5."""

    major: int
    minor: int
    patch: int

    @classmethod
    def parse(cls, text: str, *, source: str = "--server-version") -> ImmichVersion:
        """Parse `2.7.5` or `v2.7.5`; refuse anything that cannot be pinned, saying why."""
        value = str(text).strip()
        match = _VERSION_RE.match(value)
        if match:
            return cls(*(int(part) for part in match.groups()))
        if value.lower() in _MOVING_TAGS or value.lower().startswith(("release-", "pr-", "commit-")):
            raise VersionError(
                f"{source}: '{value}' is a moving tag, not a version.",
                hint="The ML container must run exactly the server's release; give it as X.Y.Z, e.g. 2.7.5.",
            )
        if _PRERELEASE_RE.match(value):
            raise VersionError(
                f"{source}: '{value}' is a prerelease.",
                hint="immich-remote pins ML hosts to released versions only; wait for the release or give X.Y.Z.",
            )
        if _PARTIAL_RE.match(value):
            raise VersionError(
                f"{source}: '{value}' is not a full version.",
                hint="Give major.minor.patch, e.g. 2.7.5 (the server's Settings > About shows it).",
            )
        raise VersionError(f"{source}: '{value}' is not a version.", hint="Expected X.Y.Z, e.g. 2.7.5.")

    @classmethod
    def from_server(cls, payload: Any) -> ImmichVersion:
        """Build from `GET /api/server/version` (`{major, minor, patch, prerelease}`)."""
        source = "the Immich server's /api/server/version"
        try:
            major, minor, patch = (int(payload[key]) for key in ("major", "minor", "patch"))
        except (KeyError, TypeError, ValueError) as exc:
            raise VersionError(f"{source} returned an unexpected answer: {payload!r}.") from exc
        prerelease = payload.get("prerelease")
        if prerelease not in (None, 0):
            raise VersionError(
                f"The Immich server runs a prerelease ({major}.{minor}.{patch}, prerelease {prerelease}).",
                hint="ML images are published for releases only; pin one with --server-version X.Y.Z "
                "at your own risk, or wait for the release.",
            )
        return cls(major, minor, patch)

    @property
    def tag(self) -> str:
        """The image tag for the CPU image, e.g. `v2.7.5`."""
        return f"v{self.major}.{self.minor}.{self.patch}"

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"

    # Version-gated behaviour of the server, named for what it means.
    @property
    def has_admin_config_api(self) -> bool:
        """`/api/admin/config` exists from 3.2.0 (`/api/system-config` is deprecated then)."""
        return (self.major, self.minor) >= (3, 2)

    @property
    def has_queues_api(self) -> bool:
        """`/api/queues` exists from 2.4.0."""
        return (self.major, self.minor) >= (2, 4)

    @property
    def needs_x86_64_v2(self) -> bool:
        """Immich 3.x ML images need an x86-64-v2 CPU (numpy floor)."""
        return self.major >= 3


def tag_from_image(image: str) -> str | None:
    """The version part of an image reference, e.g. `...:v2.7.5-cuda` -> `v2.7.5`; None if unpinned."""
    tag = image.rsplit(":", 1)[-1] if ":" in image.rsplit("/", 1)[-1] else ""
    match = re.match(r"^(v\d+\.\d+\.\d+)", tag)
    return match.group(1) if match else None
