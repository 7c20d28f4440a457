"""The file being read: errors that name its line and key path, validation against a schema model,
paths relative to the file, and the rule for host and group names. Shared by both formats."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from ..errors import InventoryError
from ..yamlsource import line_of
from .messages import explain, fields_at, type_name

Where = tuple[Any, ...]  # a key path into the YAML, e.g. ("hosts", "gpu", "ml_port")

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class Source:
    """Parsed YAML of one inventory file, with what is needed to point at a key in it."""

    def __init__(self, path: Path, data: Any) -> None:
        self.path = path
        self.data = data
        self.base = path.resolve().parent

    def fail(self, where: Where, message: str, hint: str | None = None) -> InventoryError:
        """`file:line: key.path: message` (the error to raise)."""
        line = line_of(self.data, where)
        location = f"{self.path}:{line}" if line else str(self.path)
        key = ".".join(str(p) for p in where) or "(top level)"
        return InventoryError(f"{location}: {key}: {message}", hint=hint)

    def validate(self, model: type[BaseModel], value: Any, where: Where) -> Any:
        """`value` (the mapping at `where`; nothing counts as empty) as an instance of `model`."""
        if value is None:
            value = {}
        if not isinstance(value, Mapping):
            raise self.fail(where, f"expected a mapping, found {type_name(value)}.")
        try:
            return model.model_validate(dict(value))
        except ValidationError as exc:
            raise self.from_validation(exc, where, model) from None

    def from_validation(self, exc: ValidationError, where: Where,
                        model: type[BaseModel] | None = None) -> InventoryError:
        """Up to five of pydantic's errors, each on its own line with its file line and key path."""
        errors = exc.errors()
        messages = []
        for err in errors[:5]:
            loc = where + tuple(err["loc"])
            line = line_of(self.data, loc)
            location = f"{self.path}:{line}" if line else str(self.path)
            known = fields_at(model, tuple(err["loc"][:-1])) if err["type"] == "extra_forbidden" else []
            messages.append(f"{location}: {'.'.join(str(p) for p in loc)}: {explain(err, known)}")
        more = f"\n(and {len(errors) - 5} more)" if len(errors) > 5 else ""
        return InventoryError("\n".join(messages) + more,
                              hint="See inventory/example-fleet.yml for every field with a comment.")

    def file_path(self, value: str | None) -> Path | None:
        """A path from the inventory: `~` expanded, relative ones taken from the inventory's folder."""
        if not value:
            return None
        expanded = Path(os.path.expanduser(value))
        return expanded if expanded.is_absolute() else (self.base / expanded)

    def check_name(self, name: Any, where: Where) -> None:
        """Host and group names: letters, digits, '-', '_' and '.'; never a YAML boolean or null."""
        if isinstance(name, bool) or name is None:
            raise self.fail(where, f"'{name}' is not a valid name: YAML reads an unquoted yes/no/on/off/true/false "
                            "or ~ as a boolean or nothing.", hint="Quote the name, or choose another one.")
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise self.fail(where, f"'{name}' is not a valid name; use letters, digits, '-', '_' and '.'.")
