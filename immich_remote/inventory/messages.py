"""Plain words for inventory errors: YAML type names, short values, suggestions, pydantic errors as sentences."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel


def did_you_mean(word: Any, choices: Iterable[str]) -> str:
    """` Did you mean 'x'?` for the closest choice, or ''."""
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" Did you mean '{close[0]}'?" if close else ""


def type_name(value: Any) -> str:
    """What YAML made of a value, as a reader would say it: `a mapping`, `a boolean`, ..."""
    if value is None:
        return "nothing"
    for kind, name in ((bool, "a boolean"), (Mapping, "a mapping"), (list, "a list"), (str, "a string"),
                       ((int, float), "a number"), (bytes, "binary data"), ((set, frozenset), "a set")):
        if isinstance(value, kind):
            return name
    return f"a {type(value).__name__}"  # a date or a timestamp (YAML reads 2024-01-01 as one)


def short(value: Any) -> str:
    """A value for a message: plain containers, at most one line of 60 characters."""
    if value is None:
        return "(an empty value)"
    if isinstance(value, Mapping):
        value = dict(value)
    elif isinstance(value, list):
        value = list(value)
    text = " ".join(repr(value).split())
    return text if len(text) <= 60 else text[:57] + "..."


def fields_at(model: type[BaseModel] | None, loc: tuple[Any, ...]) -> list[str]:
    """The keys the model accepts at `loc` (a path of field names into nested models)."""
    for part in loc:
        info = model.model_fields.get(part) if model is not None and isinstance(part, str) else None
        annotation = info.annotation if info is not None else None
        model = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    return list(model.model_fields) if model is not None else []


def explain(err: Mapping[str, Any], known: list[str] | None = None) -> str:
    """One pydantic error as a sentence; `known` are the keys accepted where an unknown key was found."""
    kind, value = err["type"], err.get("input")
    if kind == "extra_forbidden":
        key = err["loc"][-1] if err["loc"] else ""
        suggestion = did_you_mean(key, known or [])
        if suggestion:
            return f"unknown key '{key}'.{suggestion}"
        return (f"unknown key '{key}'; remove it or check the spelling"
                + (f" (known keys here: {', '.join(known)})." if known else "."))
    if kind == "invalid_key":
        return f"the key {short(value)} is {type_name(value)}; keys are names (text)."
    if kind == "missing":
        return "required but missing."
    if kind == "literal_error":
        expected = str(err.get("ctx", {}).get("expected", ""))
        return (f"'{value}' is not allowed; expected one of {expected}."
                + did_you_mean(value, re.findall(r"'([^']*)'", expected)))
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"expected a mapping, found {type_name(value)} {short(value)}."
    if kind == "list_type":
        return f"expected a list, found {type_name(value)} {short(value)}."
    if kind.startswith(("int_", "float_", "bool_", "string_", "dict_", "list_")) and "ctx" not in err:
        return f"{err['msg'].rstrip('.').lower()}, found {type_name(value)} {short(value)}."
    if kind == "value_error":
        return str(err["msg"]).removeprefix("Value error, ") + ("" if str(err["msg"]).endswith(".") else ".")
    return f"{err['msg']} (found {short(value)})."
