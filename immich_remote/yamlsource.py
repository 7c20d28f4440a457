"""YAML loading that remembers where every key came from, for error messages with line numbers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .errors import InventoryError


class LineDict(dict):
    """A mapping that knows the line of each of its keys (1-based)."""

    line: int = 0
    key_lines: dict[Any, int]


class LineList(list):
    """A sequence that knows the line of each of its items (1-based)."""

    line: int = 0
    item_lines: list[int]


class _Loader(yaml.SafeLoader):
    def construct_yaml_timestamp(self, node: yaml.ScalarNode) -> Any:
        """PyYAML raises a bare ValueError for date-like text that is no date (`2020-13-45`)."""
        try:
            return super().construct_yaml_timestamp(node)
        except (ValueError, OverflowError):
            raise yaml.constructor.ConstructorError(
                None, None, f"'{node.value}' looks like a date but is not a valid one (quote it if it is text)",
                node.start_mark) from None

    def construct_yaml_str(self, node: yaml.ScalarNode) -> str:
        """A "\\ud83d\\ude00" escape pair is one character; a lone surrogate is no text at all (and would
        crash whatever encodes the string later)."""
        value = super().construct_yaml_str(node)
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            try:
                value = value.encode("utf-16-le", "surrogatepass").decode("utf-16-le")
            except UnicodeDecodeError:
                raise yaml.constructor.ConstructorError(
                    None, None, "a \\u escape makes half a character (a lone UTF-16 surrogate such as \\ud800); "
                    "write the character itself or its \\U00XXXXXX escape", node.start_mark) from None
        return value


class _DuplicateKey(yaml.constructor.ConstructorError):
    """A key given twice in one mapping (PyYAML itself would silently keep the last one)."""


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    result = LineDict()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, (str, int, float, bool)) and key is not None:
            raise yaml.constructor.ConstructorError(None, None, "a key must be a plain value", key_node.start_mark)
        if key in result:
            raise _DuplicateKey(
                None, None, f"duplicate key '{key}' (first on line {result.key_lines[key]})", key_node.start_mark)
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = key_node.start_mark.line + 1
    return result


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> LineList:
    result = LineList(loader.construct_object(child, deep=True) for child in node.value)
    result.line = node.start_mark.line + 1
    result.item_lines = [child.start_mark.line + 1 for child in node.value]
    return result


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)
_Loader.add_constructor("tag:yaml.org,2002:timestamp", _Loader.construct_yaml_timestamp)
_Loader.add_constructor("tag:yaml.org,2002:str", _Loader.construct_yaml_str)


def load_yaml(path: Path) -> Any:
    """Parse a YAML file; syntax errors become InventoryError with file and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InventoryError(f"{path}: no such inventory file.",
                             hint="Pass one with -i/--inventory (or IMMICH_REMOTE_INVENTORY), or copy "
                             "inventory/example-workstation.yml to inventory/hosts.yml and edit it.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InventoryError(f"{path}: cannot read the inventory ({exc}).") from None
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark else ""
        problem = _one_line(exc.problem or "cannot parse this").removeprefix("but ")
        if exc.context:
            other = exc.context_mark and mark and exc.context_mark.line != mark.line
            problem += f" ({_one_line(exc.context)}{f', from line {exc.context_mark.line + 1}' if other else ''})"
        hint = ("Each key may appear only once in a mapping: rename one entry or merge the two."
                if isinstance(exc, _DuplicateKey) else
                "Check the indentation and quoting around that line (text with ': ', '#', '{' or a leading "
                "'*', '&', '!', '@' or '`' needs quotes).")
        raise InventoryError(f"{path}{line}: invalid YAML: {_one_line(problem)}.", hint=hint) from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, max(exc.position, 0)) + 1
        raise InventoryError(f"{path}:{line}: invalid YAML: character {_char(exc.character)} is not allowed "
                             "in YAML (a control or other special character).", hint="Remove it, or write it as an "
                             "escape such as \\x07 inside double quotes.") from None
    except yaml.YAMLError as exc:
        raise InventoryError(f"{path}: invalid YAML: {_one_line(str(exc))}.") from None
    except RecursionError:
        raise InventoryError(f"{path}: invalid YAML: nested too deeply to read.",
                             hint="An inventory needs only a few levels of nesting; check for runaway brackets.") \
            from None
    except (ValueError, TypeError, OverflowError) as exc:  # a constructor PyYAML does not guard
        raise InventoryError(f"{path}: invalid YAML: {_one_line(str(exc))}.",
                             hint="Quote values that are meant as text.") from None


def _char(character: int | str) -> str:
    code = character if isinstance(character, int) else ord(str(character)[:1] or "\0")
    return f"#x{code:04x}"


def _one_line(text: str) -> str:
    return " ".join(str(text).split()).rstrip(".")


def line_of(data: Any, path: tuple[Any, ...]) -> int | None:
    """The line of the deepest key in `path` that exists in `data` (None if nothing matches)."""
    line = getattr(data, "line", None)
    node = data
    for part in path:
        if isinstance(node, LineDict) and part in node:
            line = node.key_lines.get(part, line)
            node = node[part]
        elif isinstance(node, LineList) and isinstance(part, int) and 0 <= part < len(node):
            line = node.item_lines[part]
            node = node[part]
        else:
            break
    return line
