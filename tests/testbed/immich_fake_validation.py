"""A small schema language that validates request bodies the way Immich does.

Immich 2.x validates with NestJS' ``ValidationPipe({transform: true, whitelist: true})`` and
class-validator; 3.x with nestjs-zod. Both *strip* unknown properties (neither forbids them), both
coerce ``"true"``/``"false"`` for booleans and ``Number()``-coerce a few numeric ffmpeg fields, and both
collect every failing field before answering 400. The error bodies differ:

- class-validator (2.x): ``{"message": ["ffmpeg.crf must be an integer number", ...], "error": "Bad Request",
  "statusCode": 400, "correlationId": ...}``; nested properties are prefixed ``parent.`` by NestJS, so an
  ``each`` message reads ``machineLearning.each value in urls must be a URL address``.
- Zod (3.x): ``{"message": "Validation failed", "errors": [{"code": ..., "path": [...], "message": ...}]}``.

A schema is built from :class:`Node` subclasses; :func:`validate` runs a coercion pass and a validation
pass and returns the coerced value plus :class:`Issue` objects, rendered by :func:`render_class_validator`
or :func:`render_zod`.
"""

from __future__ import annotations

import copy
import ipaddress
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

CLASS_VALIDATOR = "class-validator"
ZOD = "zod"


class _Missing:
    """Marker for an absent property (JavaScript ``undefined``)."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()

Path = tuple[str | int, ...]


@dataclass
class Issue:
    """One failed constraint at ``path``.

    ``kind`` is one of: type, min, max, positive, enum, not_empty, url, custom, nested, unknown.
    """

    path: Path
    kind: str
    value: Any = None
    expected: str = ""
    limit: Any = None
    values: Sequence[Any] = ()
    message: str = ""
    each: bool = False
    origin: str = "number"


@dataclass
class Context:
    """State of one validation run."""

    flavor: str
    unknown: str = "strip"  # or "reject"
    issues: list[Issue] = field(default_factory=list)
    stripped: list[str] = field(default_factory=list)

    def fail(self, path: Path, kind: str, value: Any = None, **kw: Any) -> None:
        self.issues.append(Issue(path=path, kind=kind, value=value, **kw))


# --- JavaScript-ish helpers -----------------------------------------------------------------------


def is_number(value: Any) -> bool:
    """A JSON number (Python bool excluded), finite."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def is_integer(value: Any) -> bool:
    return is_number(value) and float(value).is_integer()


def js_number(value: Any) -> Any:
    """JavaScript ``Number(value)`` for the inputs a JSON body can carry (objects are left alone)."""
    if isinstance(value, bool):
        return int(value)
    if value is None:
        return 0
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return 0
        try:
            return int(text, 0) if re.fullmatch(r"0[xXoObB][0-9a-fA-F]+|[+-]?\d+", text) else float(text)
        except ValueError:
            return math.nan
    return value


def zod_type_name(value: Any) -> str:
    """How Zod 4 names the received type in ``invalid_type`` messages."""
    if value is MISSING:
        return "undefined"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "NaN" if isinstance(value, float) and math.isnan(value) else "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


# --- URL validators -------------------------------------------------------------------------------

_FQDN_PART = re.compile(r"^[a-z_\u00a1-\uffff0-9-]+$", re.IGNORECASE)
_TLD = re.compile(
    r"^([a-z\u00a1-\u00a8\u00aa-\ud7ff\uf900-\ufdcf\ufdf0-\uffef]{2,}|xn[a-z0-9-]{2,})$", re.IGNORECASE
)


def _is_fqdn(host: str, *, require_tld: bool, allow_underscores: bool) -> bool:
    parts = host.split(".")
    tld = parts[-1]
    if require_tld and (len(parts) < 2 or not _TLD.match(tld)):
        return False
    if re.fullmatch(r"\d+", tld):
        return False
    for part in parts:
        if not part or len(part) > 63 or not _FQDN_PART.match(part):
            return False
        if re.search(r"[\uff01-\uff5e]", part) or part.startswith("-") or part.endswith("-"):
            return False
        if not allow_underscores and "_" in part:
            return False
    return True


def _is_ip(host: str, version: int | None = None) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return version is None or address.version == version


def is_url(
    url: Any,
    *,
    protocols: Sequence[str] = ("http", "https", "ftp"),
    require_tld: bool = True,
    require_protocol: bool = False,
    allow_underscores: bool = False,
) -> bool:
    """Approximation of validator.js ``isURL`` (what class-validator's ``@IsUrl`` calls).

    Note how lenient it is: without ``require_protocol`` a bare ``gpu-box:3003`` or ``ml_host`` passes,
    and ``ftp://`` is allowed by default. Only strings with spaces or no usable host fail.
    """
    if not isinstance(url, str) or not url or len(url) >= 2083 or re.search(r"[\s<>]", url):
        return False
    if url.lower().startswith("mailto:"):
        return False
    url = url.split("#", 1)[0].split("?", 1)[0]
    if "://" in url:
        protocol, url = url.split("://", 1)
        if protocol.lower() not in protocols:
            return False
    elif require_protocol or url.startswith("//"):
        return False
    host_part = url.split("/", 1)[0]
    if not host_part:
        return False
    if "@" in host_part:
        auth, host_part = host_part.rsplit("@", 1)
        user = auth.split(":", 1)[0]
        if not user or auth.count(":") > 1:
            return False
    bracketed = re.fullmatch(r"\[([^\]]+)\](?::(.*))?", host_part)
    if bracketed:
        host, port = bracketed.group(1), bracketed.group(2)
        if not _is_ip(host, 6):
            return False
    else:
        host, _, port = host_part.partition(":")
        if ":" in port:
            return False
        port = port if _ else None
    if port is not None and (not re.fullmatch(r"\d{1,5}", port) or not 0 < int(port) <= 65535):
        return False
    if not host:
        return False
    return (
        bool(bracketed)
        or _is_ip(host)
        or _is_fqdn(host, require_tld=require_tld, allow_underscores=allow_underscores)
    )


_SPECIAL_SCHEMES = ("http", "https", "ws", "wss", "ftp")


def is_whatwg_url(url: Any) -> bool:
    """Approximation of ``new URL(value.trim())`` succeeding (what Zod 4's ``z.url()`` checks)."""
    if not isinstance(url, str):
        return False
    url = url.strip()
    match = re.match(r"^([A-Za-z][A-Za-z0-9+.\-]*):(.*)$", url, re.DOTALL)
    if not match:
        return False
    scheme, rest = match.group(1).lower(), match.group(2)
    if scheme == "file":
        return True
    if scheme not in _SPECIAL_SCHEMES:
        return True
    authority = rest.lstrip("/\\")
    authority = re.split(r"[/\\?#]", authority, maxsplit=1)[0]
    if "@" in authority:
        authority = authority.rsplit("@", 1)[1]
    bracketed = re.fullmatch(r"\[([^\]]+)\](?::(\d*))?", authority)
    if bracketed:
        host, port = bracketed.group(1), bracketed.group(2)
        if not _is_ip(host, 6):
            return False
    else:
        host, sep, port = authority.partition(":")
        if sep and not re.fullmatch(r"\d*", port):
            return False
    if port and int(port) > 65535:
        return False
    return bool(host) and not re.search(r"[\s<>^|%\"]", host)


def whatwg_origin_join(base: str, path: str) -> str | None:
    """``new URL(path, base).href`` for an absolute ``path`` such as ``/ping``; ``None`` if base is invalid.

    The path, query and fragment of ``base`` are discarded, as the server's ``new URL('/ping', url)`` does.
    """
    if not is_whatwg_url(base):
        return None
    base = base.strip()
    scheme, rest = base.split(":", 1)
    if scheme.lower() not in _SPECIAL_SCHEMES:
        return None
    authority = re.split(r"[/\\?#]", rest.lstrip("/\\"), maxsplit=1)[0]
    return f"{scheme.lower()}://{authority}{path}"


# --- cron / time ----------------------------------------------------------------------------------

_CRON_NAMES = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec|sun|mon|tue|wed|thu|fri|sat)"
_CRON_ATOM = rf"(?:\d+|{_CRON_NAMES})"
_CRON_FIELD = re.compile(
    rf"^(?:\*|\?|{_CRON_ATOM}(?:-{_CRON_ATOM})?|L|\d+L|\d+#\d)(?:/\d+)?"
    rf"(?:,(?:\*|{_CRON_ATOM}(?:-{_CRON_ATOM})?)(?:/\d+)?)*$",
    re.IGNORECASE,
)


def is_cron(expression: Any) -> bool:
    """Approximation of the ``cron`` package accepting an expression (5 or 6 fields)."""
    if not isinstance(expression, str):
        return False
    fields = expression.split()
    if len(fields) not in (5, 6):
        return False
    return all(_CRON_FIELD.match(part) for part in fields)


def is_hh_mm(value: Any) -> bool:
    """``HH:mm`` (2.x luxon format) / ``HH:MM`` (3.x ``z.iso.time({precision: -1})``)."""
    return isinstance(value, str) and re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", value) is not None


# --- schema nodes ---------------------------------------------------------------------------------


class Node:
    """A schema node: ``coerce`` (transform pass) then ``check`` (validation pass)."""

    def coerce(self, value: Any) -> Any:
        return value

    def check(self, value: Any, path: Path, ctx: Context) -> Any:
        """Validate ``value`` (already coerced), record issues, return the value to keep."""
        raise NotImplementedError


class Bool(Node):
    """A boolean; the strings ``"true"``/``"false"`` are coerced (2.x ``ValidateBoolean``, 3.x ``configBool``)."""

    def __init__(self, coerce_strings: bool = True) -> None:
        self.coerce_strings = coerce_strings

    def coerce(self, value: Any) -> Any:
        if self.coerce_strings and value in ("true", "false"):
            return value == "true"
        return value

    def check(self, value: Any, path: Path, ctx: Context) -> Any:
        if not isinstance(value, bool):
            ctx.fail(path, "type", value, expected="boolean")
        return value


class Str(Node):
    """A string, optionally non-empty (``IsNotEmpty``) and with extra string checks."""

    def __init__(self, not_empty: bool = False, checks: Sequence[Callable[[str, Path, Context], None]] = ()):
        self.not_empty = not_empty
        self.checks = checks

    def check(self, value: Any, path: Path, ctx: Context) -> Any:
        if ctx.flavor == CLASS_VALIDATOR:
            if self.not_empty and value in ("", None, MISSING):
                ctx.fail(path, "not_empty", value)
            if not isinstance(value, str):
                ctx.fail(path, "type", value, expected="string")
            for extra in self.checks:
                extra(value, path, ctx)
            return value
        if not isinstance(value, str):
            ctx.fail(path, "type", value, expected="string")
            return value
        for extra in self.checks:
            extra(value, path, ctx)
        return value


class Num(Node):
    """A number (``integer`` for ``IsInt``/``z.int()``), with bounds and optional ``Number()`` coercion."""

    def __init__(
        self,
        integer: bool = False,
        min: float | None = None,
        max: float | None = None,
        positive: bool = False,
        coerce: bool = False,
    ) -> None:
        self.integer, self.min, self.max, self.positive, self.do_coerce = integer, min, max, positive, coerce

    def coerce(self, value: Any) -> Any:
        if self.do_coerce and value is not MISSING:
            return js_number(value)
        return value

    def check(self, value: Any, path: Path, ctx: Context) -> Any:
        ok_type = is_integer(value) if self.integer else is_number(value)
        expected = "integer" if self.integer else "number"
        if ctx.flavor == ZOD:
            if not ok_type:
                ctx.fail(path, "type", value, expected=expected)
                return value
            self._bounds(value, path, ctx)
            return value
        # class-validator runs every constraint; bounds on a non-number fail too.
        if self.max is not None and not (is_number(value) and value <= self.max):
            ctx.fail(path, "max", value, limit=self.max)
        if self.min is not None and not (is_number(value) and value >= self.min):
            ctx.fail(path, "min", value, limit=self.min)
        if self.positive and not (is_number(value) and value > 0):
            ctx.fail(path, "positive", value)
        if not ok_type:
            ctx.fail(path, "type", value, expected=expected)
        return value

    def _bounds(self, value: Any, path: Path, ctx: Context) -> None:
        if self.min is not None and value < self.min:
            ctx.fail(path, "min", value, limit=self.min)
        if self.positive and value <= 0:
            ctx.fail(path, "positive", value)
        if self.max is not None and value > self.max:
            ctx.fail(path, "max", value, limit=self.max)


class Enum(Node):
    """One of ``values`` (``IsEnum`` / ``z.enum``)."""

    def __init__(self, values: Sequence[Any]) -> None:
        self.values = list(values)

    def check(self, value: Any, path: Path, ctx: Context) -> Any:
        if isinstance(value, bool) or value not in self.values:
            ctx.fail(path, "enum", value, values=self.values)
        return value


class Url(Node):
    """A string accepted by validator.js ``isURL`` (2.x) or ``z.url()`` (3.x)."""

    def __init__(self, not_empty: bool = False, **is_url_options: Any) -> None:
        self.not_empty = not_empty
        self.options = is_url_options

    def check(self, value: Any, path: Path, ctx: Context) -> Any:
        if ctx.flavor == ZOD:
            if not isinstance(value, str):
                ctx.fail(path, "type", value, expected="string")
            elif not is_whatwg_url(value):
                ctx.fail(path, "url", value)
            return value
        if self.not_empty and value in ("", None, MISSING):
            ctx.fail(path, "not_empty", value)
        if not is_url(value, **self.options):
            ctx.fail(path, "url", value)
        return value


class Arr(Node):
    """An array of ``item``. ``each_on_scalar``: class-validator's ``{each: true}`` applied to a non-array
    checks the value itself (there is no ``IsArray`` on these 2.x fields)."""

    def __init__(self, item: Node, min_items: int | None = None, each_on_scalar: bool = False) -> None:
        self.item, self.min_items, self.each_on_scalar = item, min_items, each_on_scalar

    def coerce(self, value: Any) -> Any:
        return [self.item.coerce(v) for v in value] if isinstance(value, list) else value

    def check(self, value: Any, path: Path, ctx: Context) -> Any:
        if ctx.flavor == ZOD:
            if not isinstance(value, list):
                ctx.fail(path, "type", value, expected="array")
                return value
            if self.min_items is not None and len(value) < self.min_items:
                ctx.fail(path, "min", value, limit=self.min_items, origin="array")
            return [self.item.check(v, (*path, i), ctx) for i, v in enumerate(value)]
        if self.min_items is not None and not (isinstance(value, list) and len(value) >= self.min_items):
            ctx.fail(path, "min", value, limit=self.min_items, origin="array")
        if isinstance(value, list):
            sub = Context(flavor=ctx.flavor)
            for v in value:
                self.item.check(v, path, sub)
            kinds = {issue.kind for issue in sub.issues}
            for issue in sub.issues:
                if issue.kind in kinds:
                    kinds.discard(issue.kind)
                    issue.each = True
                    ctx.issues.append(issue)
        elif self.each_on_scalar:
            before = len(ctx.issues)
            self.item.check(value, path, ctx)
            for issue in ctx.issues[before:]:
                issue.each = True
        elif self.min_items is None:
            ctx.fail(path, "type", value, expected="array")
        return value


class Optional(Node):
    """May be absent (``@Optional()`` / ``.optional()``); ``nullable`` also allows ``null``."""

    def __init__(self, inner: Node, nullable: bool = False) -> None:
        self.inner, self.nullable = inner, nullable

    def coerce(self, value: Any) -> Any:
        return value if value is MISSING else self.inner.coerce(value)

    def check(self, value: Any, path: Path, ctx: Context) -> Any:
        if value is MISSING or (self.nullable and value is None):
            return value
        return self.inner.check(value, path, ctx)


class Nullable(Node):
    """Required, but ``null`` is allowed (``z.int().nullable()``)."""

    def __init__(self, inner: Node) -> None:
        self.inner = inner

    def coerce(self, value: Any) -> Any:
        return self.inner.coerce(value)

    def check(self, value: Any, path: Path, ctx: Context) -> Any:
        return value if value is None else self.inner.check(value, path, ctx)


class Default(Node):
    """Zod ``.optional().default(x)`` / ``.default(x).optional()``: absent becomes ``x``."""

    def __init__(self, inner: Node, default: Any) -> None:
        self.inner, self.default = inner, default

    def coerce(self, value: Any) -> Any:
        return self.default if value is MISSING else self.inner.coerce(value)

    def check(self, value: Any, path: Path, ctx: Context) -> Any:
        if value is MISSING:
            return copy.deepcopy(self.default)
        return self.inner.check(value, path, ctx)


class When(Node):
    """class-validator ``@ValidateIf(predicate)``: validate only when ``predicate(parent, value)``."""

    def __init__(self, predicate: Callable[[dict, Any], bool], inner: Node) -> None:
        self.predicate, self.inner = predicate, inner

    def coerce(self, value: Any) -> Any:
        return self.inner.coerce(value)

    def check(self, value: Any, path: Path, ctx: Context) -> Any:
        return self.inner.check(value, path, ctx)


class Obj(Node):
    """A nested DTO with ``fields`` (every field required unless wrapped in Optional/Default/When)."""

    def __init__(self, fields: dict[str, Node], refine: Callable[[dict, Path, Context], None] | None = None):
        self.fields, self.refine = fields, refine

    def coerce(self, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        return {k: (self.fields[k].coerce(v) if k in self.fields else v) for k, v in value.items()}

    def check(self, value: Any, path: Path, ctx: Context) -> Any:
        if not isinstance(value, dict):
            ctx.fail(path, "type", value, expected="object")
            if ctx.flavor == CLASS_VALIDATOR and value is not MISSING and not isinstance(value, list):
                ctx.fail(path, "nested", value)
            return value
        unknown = [k for k in value if k not in self.fields]
        if unknown and ctx.unknown == "reject":
            for key in unknown:
                ctx.fail((*path, key), "unknown", value[key])
        elif unknown:
            ctx.stripped.extend(".".join(map(str, (*path, k))) for k in unknown)
        before = len(ctx.issues)
        out: dict = {}
        for key, child in value.items():
            if key in self.fields:
                node = self.fields[key]
                if isinstance(node, When) and not node.predicate(value, child):
                    out[key] = child
                else:
                    out[key] = node.check(child, (*path, key), ctx)
        for key, node in self.fields.items():
            if key in value:
                continue
            if isinstance(node, When) and not node.predicate(value, MISSING):
                continue
            kept = node.check(MISSING, (*path, key), ctx)
            if isinstance(node, Default):
                out[key] = kept
        if self.refine and len(ctx.issues) == before:
            self.refine(out, path, ctx)
        return out


def validate(schema: Node, body: Any, *, flavor: str, unknown: str = "strip") -> tuple[Any, Context]:
    """Coerce and validate ``body``; return the value Immich would keep and the run's context."""
    ctx = Context(flavor=flavor, unknown=unknown)
    value = schema.check(schema.coerce(body), (), ctx)
    return value, ctx


# --- rendering ------------------------------------------------------------------------------------

_CV_TYPE = {
    "string": "{p} must be a string",
    "boolean": "{p} must be a boolean value",
    "number": "{p} must be a number conforming to the specified constraints",
    "integer": "{p} must be an integer number",
    "object": "{p} must be an object",
    "array": "{p} must be an array",
}


def _fmt_number(value: Any) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _cv_template(issue: Issue) -> str:
    if issue.kind == "type":
        return _CV_TYPE[issue.expected]
    if issue.kind == "min" and issue.origin == "array":
        return f"{{p}} must contain at least {issue.limit} elements"
    if issue.kind == "min":
        return f"{{p}} must not be less than {_fmt_number(issue.limit)}"
    if issue.kind == "max":
        return f"{{p}} must not be greater than {_fmt_number(issue.limit)}"
    if issue.kind == "positive":
        return "{p} must be a positive number"
    if issue.kind == "enum":
        return "{p} must be one of the following values: " + ", ".join(map(str, issue.values))
    if issue.kind == "not_empty":
        return "{p} should not be empty"
    if issue.kind == "url":
        return "{p} must be a URL address"
    if issue.kind == "nested":
        return "nested property {p} must be either object or array"
    if issue.kind == "unknown":
        return "property {p} should not exist"
    return issue.message


def render_class_validator(issues: Sequence[Issue]) -> list[str]:
    """NestJS ValidationPipe messages: ``parent.path.`` + the constraint message of the last property."""
    messages = []
    for issue in issues:
        *parents, prop = [str(p) for p in issue.path] or [""]
        template = _cv_template(issue)
        if issue.each and "{p}" in template:
            template = template.replace("{p}", "each value in {p}", 1)
        text = template.replace("{p}", prop)
        messages.append(".".join([*parents, text]) if parents else text)
    return messages


def render_zod(issues: Sequence[Issue]) -> list[dict]:
    """Zod 4 issue objects (``code``, ``path``, ``message`` and the code's extra keys)."""
    rendered = []
    for issue in issues:
        path = list(issue.path)
        if issue.kind == "type":
            expected = "int" if issue.expected == "integer" else issue.expected
            item = {
                "expected": expected,
                "code": "invalid_type",
                "path": path,
                "message": f"Invalid input: expected {expected}, received {zod_type_name(issue.value)}",
            }
        elif issue.kind in ("min", "positive", "max"):
            small = issue.kind != "max"
            limit = 0 if issue.kind == "positive" else issue.limit
            op = (">" if issue.kind == "positive" else ">=") if small else "<="
            noun = (
                f"to have {op}{limit} items" if issue.origin == "array" else f"to be {op}{_fmt_number(limit)}"
            )
            item = {
                "origin": issue.origin,
                "code": "too_small" if small else "too_big",
                ("minimum" if small else "maximum"): limit,
                "inclusive": issue.kind != "positive",
                "path": path,
                "message": f"Too {'small' if small else 'big'}: expected {issue.origin} {noun}",
            }
        elif issue.kind == "enum":
            item = {
                "code": "invalid_value",
                "values": list(issue.values),
                "path": path,
                "message": "Invalid option: expected one of " + "|".join(_js_json(v) for v in issue.values),
            }
        elif issue.kind == "url":
            item = {"code": "invalid_format", "format": "url", "path": path, "message": "Invalid URL"}
        elif issue.kind == "unknown":
            item = {
                "code": "unrecognized_keys",
                "keys": [path[-1]],
                "path": path[:-1],
                "message": f'Unrecognized key: "{path[-1]}"',
            }
        else:
            item = {"code": "custom", "path": path, "message": issue.message}
        rendered.append(item)
    return rendered


def _js_json(value: Any) -> str:
    return f'"{value}"' if isinstance(value, str) else str(value)
