"""Immich's config object as data: replace only `machineLearning.urls` (deep copy, key order kept),
compare what was saved with what was sent, and the JSON for a config file. Pure: no requests."""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from typing import Any

from .errors import ImmichAPIError


def with_ml_urls(config: dict[str, Any], urls: Sequence[str]) -> dict[str, Any]:
    """A deep copy of the config with only `machineLearning.urls` replaced (key order kept)."""
    if not isinstance(config.get("machineLearning"), dict):
        raise ImmichAPIError("Immich's config has no machineLearning section; is this an Immich server >= 1.122?")
    result = copy.deepcopy(config)
    result["machineLearning"]["urls"] = list(urls)
    return result


def config_differences(expected: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    """The settings where `actual` differs from `expected`: top-level keys, and `machineLearning.<key>`
    inside the ML section (so a change next to the URLs is named precisely)."""
    differing = []
    for key in list(expected) + [k for k in actual if k not in expected]:
        mine, theirs = expected.get(key), actual.get(key)
        if mine == theirs:
            continue
        if key == "machineLearning" and isinstance(mine, dict) and isinstance(theirs, dict):
            differing += [f"machineLearning.{k}" for k in list(mine) + [k for k in theirs if k not in mine]
                          if mine.get(k) != theirs.get(k)]
        else:
            differing.append(key)
    return differing


def verify_saved(wanted: dict[str, Any], saved: dict[str, Any]) -> None:
    """Raise unless `saved` (read back after the PUT) is exactly `wanted` (what was PUT).

    A difference means someone else saved Immich's settings between our PUT and our read: theirs
    or ours may be the one that was lost, so a person has to look; it is never accepted silently.
    """
    urls = wanted["machineLearning"]["urls"]
    stored = (saved.get("machineLearning") or {}).get("urls")
    if stored != urls:
        raise ImmichAPIError(
            f"After saving, Immich reports machineLearning.urls = {stored!r}, not {urls!r}. "
            "Someone else may have changed Immich's settings at the same time.",
            hint="Check the Machine Learning settings in Immich (Administration > Settings), then run the "
                 "command again.")
    differing = config_differences(wanted, saved)
    if differing:
        raise ImmichAPIError(
            f"The ML URLs were saved, but Immich now reports other values than were saved for: "
            f"{', '.join(differing)}. Someone else changed Immich's settings at the same time.",
            hint=f"Check {', '.join(differing)} in Immich (Administration > Settings) and set again what "
                 "should be there; the ML URLs need no action.")


def config_file_snippet(config: dict[str, Any], urls: Sequence[str]) -> str:
    """The JSON a user with IMMICH_CONFIG_FILE puts into that file's machineLearning section."""
    ml = copy.deepcopy(config.get("machineLearning") or {})
    ml["urls"] = list(urls)
    return json.dumps({"machineLearning": ml}, indent=2)
