"""The subset of the Workflows standard library this engine provides.

Each function records its parameter names so it can be called both ways the reference allows:
positionally in an expression (``${text.split(s, ",")}``) and with named ``args`` in a ``call`` step.
Blocking functions (``http.*``, ``sys.sleep``, ``sys.log``) may only be called from a ``call`` step;
the engine implements those itself and they are listed here only for validation.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import math
import re
import urllib.parse
import uuid
import zoneinfo
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from .values import (
    WorkflowError,
    check_int,
    copy_value,
    error,
    is_int,
    is_number,
    to_string,
    type_name,
)


class Runtime(Protocol):
    """What the few context-dependent functions read: the (virtual) clock and the environment."""

    def now(self) -> float: ...

    def get_env(self, name: str) -> str | None: ...


@dataclass(frozen=True)
class StdFunc:
    name: str
    params: tuple[str, ...]
    fn: Callable[..., Any] | None  # None for blocking functions the engine runs itself
    defaults: Mapping[str, Any] = field(default_factory=dict)
    needs_runtime: bool = False
    blocking: bool = False

    def bind(self, args: list[Any] | Mapping[str, Any]) -> list[Any]:
        """Positional or named arguments -> a full positional list; a wrong call is a TypeError."""
        if isinstance(args, Mapping):
            unknown = sorted(set(args) - set(self.params))
            if unknown:
                raise error("TypeError", f"{self.name}() got unexpected argument(s) {', '.join(unknown)}")
            values = []
            for p in self.params:
                if p in args:
                    values.append(args[p])
                elif p in self.defaults:
                    values.append(self.defaults[p])
                else:
                    raise error("TypeError", f"{self.name}() missing required argument {p!r}")
            return values
        if len(args) > len(self.params):
            raise error("TypeError", f"{self.name}() takes at most {len(self.params)} arguments, got {len(args)}")
        values = list(args)
        for p in self.params[len(args):]:
            if p not in self.defaults:
                raise error("TypeError", f"{self.name}() missing required argument {p!r}")
            values.append(self.defaults[p])
        return values

    def required(self) -> set[str]:
        return {p for p in self.params if p not in self.defaults}


class FunctionRef:
    """A standard-library function used as a value, e.g. ``${http.default_retry_predicate}``."""

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return f"<function {self.name}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FunctionRef) and other.name == self.name

    def __hash__(self) -> int:
        return hash(self.name)


@dataclass(frozen=True)
class RetryPolicy:
    """A default retry policy object such as ``${http.default_retry}``."""

    name: str
    predicate: FunctionRef
    max_retries: int
    initial_delay: float
    max_delay: float
    multiplier: float


class ModuleRef:
    """A module name used in an expression (``http``, ``retry``...): ``.name`` finds its members."""

    def __init__(self, name: str):
        self.name = name

    def get_field(self, name: str) -> Any:
        qualified = f"{self.name}.{name}"
        if qualified in CONSTANTS:
            return copy_value(CONSTANTS[qualified])
        if qualified in FUNCTIONS:
            return FunctionRef(qualified)
        raise error("KeyError", f"{self.name} has no member {name!r}")

    def __repr__(self) -> str:
        return f"<module {self.name}>"


# ---------------------------------------------------------------------------------- expression helpers


def _require(value: Any, kind: type | tuple[type, ...], fname: str, what: str) -> None:
    if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise error("TypeError", f"{fname}(): {what} must not be a boolean")
    if not isinstance(value, kind):
        raise error("TypeError", f"{fname}(): {what} has the wrong type ({type_name(value)})")


def _string_arg(value: Any, fname: str, what: str = "argument") -> str:
    if not isinstance(value, str):
        raise error("TypeError", f"{fname}(): {what} must be a string, got {type_name(value)}")
    return value


def default(value: Any, fallback: Any) -> Any:
    """``default(val, defaultVal)``: ``val`` unless it is null."""
    return fallback if value is None else value


def keys(value: Any) -> list[str]:
    if not isinstance(value, dict):
        raise error("TypeError", f"keys() needs a map, got {type_name(value)}")
    return list(value.keys())


def length(value: Any) -> int:
    """``len()`` of a list (elements), a map (entries) or a string (characters)."""
    if isinstance(value, list | dict | str | bytes):
        return len(value)
    raise error("TypeError", f"len() needs a list, map or string, got {type_name(value)}")


def to_int(value: Any) -> int:
    """``int()`` accepts a string or a double (truncated towards zero); an integer is returned as is."""
    if is_int(value):
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise error("ValueError", f"int() cannot convert {value!r}")
        return check_int(int(value))
    if isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"[+-]?\d+", text) is None:
            raise error("ValueError", f"int() cannot parse {value!r} as an integer")
        return check_int(int(text))
    raise error("TypeError", f"int() cannot convert a {type_name(value)}")


def to_double(value: Any) -> float:
    """``double()`` accepts a string or an integer; a double is returned as is."""
    if isinstance(value, float):
        return value
    if is_int(value):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", text) is None:
            raise error("ValueError", f"double() cannot parse {value!r} as a number")
        return float(text)
    raise error("TypeError", f"double() cannot convert a {type_name(value)}")


# --------------------------------------------------------------------------------------------- modules


def map_get(value: Any, path: Any) -> Any:
    """``map.get(map, keys)``: the value at ``keys`` (a string, or a list of strings for a nested path), or null.

    https://cloud.google.com/workflows/docs/reference/stdlib/map/get: "If the input is not a map or if
    the map does not contain the key, returns null"; the same for a nested object that is not a map.
    Only a key that is not a string (or a list of strings) is a TypeError.
    """
    keys_ = path if isinstance(path, list) else [path]
    for key in keys_:
        if not isinstance(key, str):
            raise error("TypeError", f"map.get(): keys must be a string or a list of strings, got {type_name(key)}")
    current = value
    for key in keys_:
        if not isinstance(current, dict):
            return None
        current = current.get(key)
    return current


def map_delete(value: Any, key: Any) -> dict[str, Any]:
    _require(value, dict, "map.delete", "map")
    _string_arg(key, "map.delete", "key")
    return {k: v for k, v in value.items() if k != key}


def map_merge(first: Any, second: Any) -> dict[str, Any]:
    _require(first, dict, "map.merge", "first")
    _require(second, dict, "map.merge", "second")
    return {**first, **second}


def map_merge_nested(first: Any, second: Any) -> dict[str, Any]:
    _require(first, dict, "map.merge_nested", "first")
    _require(second, dict, "map.merge_nested", "second")
    merged = dict(first)
    for k, v in second.items():
        if isinstance(merged.get(k), dict) and isinstance(v, dict):
            merged[k] = map_merge_nested(merged[k], v)
        else:
            merged[k] = v
    return merged


def list_concat(objs: Any, value: Any) -> list[Any]:
    """``list.concat(objs, val)``: a new list with ``val`` appended."""
    _require(objs, list, "list.concat", "objs")
    return [*objs, value]


def list_prepend(objs: Any, value: Any) -> list[Any]:
    """``list.prepend(objs, val)``: a copy of ``objs`` with ``val`` first; TypeError if ``objs`` is not a list.

    https://cloud.google.com/workflows/docs/reference/stdlib/list/prepend
    """
    _require(objs, list, "list.prepend", "objs")
    return [value, *objs]


def _json_ready(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list):
        return [_json_ready(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    # json.encode: "ValueError: If the input contains types that cannot be JSON-encoded. Examples of
    # such types include callable and bytes." (https://cloud.google.com/workflows/docs/reference/stdlib/json/encode)
    raise error("ValueError", f"json.encode(): a {type_name(value)} cannot be JSON-encoded")


def _json_text(data: Any, indent: Any) -> str:
    """The encoding with the documented ``indent`` options (json/encode page).

    ``indent`` is a boolean or a map with optional string ``prefix`` (default "") and ``indent``
    (default four spaces); ``true`` is the empty map, ``false`` or absent is no indentation. When
    indenting, each element starts on a new line with ``prefix`` then one ``indent`` per nesting level.
    """
    ready = _json_ready(data)
    if indent is None or indent is False:
        return json.dumps(ready, separators=(",", ":"), ensure_ascii=False)
    if indent is True:
        indent = {}
    if not isinstance(indent, dict):
        raise error("TypeError", f"json.encode(): indent must be a boolean or a map, got {type_name(indent)}")
    unknown = sorted(set(indent) - {"prefix", "indent"})
    if unknown:
        raise error("ValueError", f"json.encode(): unknown indent option {unknown[0]!r}")
    prefix, unit = indent.get("prefix", ""), indent.get("indent", "    ")
    if not isinstance(prefix, str) or not isinstance(unit, str):
        raise error("TypeError", "json.encode(): indent options prefix and indent must be strings")
    text = json.dumps(ready, indent=unit, separators=(",", ": "), ensure_ascii=False)
    return text.replace("\n", "\n" + prefix)


def json_encode(data: Any, indent: Any = None) -> bytes:
    """``json.encode`` returns bytes (UTF-8 JSON)."""
    return _json_text(data, indent).encode("utf-8")


def json_encode_to_string(data: Any, indent: Any = None) -> str:
    return _json_text(data, indent)


def json_decode(data: Any) -> Any:
    """``json.decode`` of bytes or a string; numbers keep their integer or double type."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise error("ValueError", f"json.decode(): not UTF-8: {exc}") from None
    if not isinstance(data, str):
        raise error("TypeError", f"json.decode(): needs bytes or a string, got {type_name(data)}")
    try:
        return json.loads(data)
    except json.JSONDecodeError as exc:
        raise error("ValueError", f"json.decode(): invalid JSON: {exc}") from None


def text_split(source: Any, separator: Any) -> list[str]:
    s = _string_arg(source, "text.split", "source")
    sep = _string_arg(separator, "text.split", "separator")
    if sep == "":
        raise error("ValueError", "text.split(): the separator must not be empty")
    return s.split(sep)


def text_replace_all(source: Any, substr: Any, repl: Any) -> str:
    s = _string_arg(source, "text.replace_all", "source")
    old = _string_arg(substr, "text.replace_all", "substr")
    new = _string_arg(repl, "text.replace_all", "repl")
    if old == "":
        raise error("ValueError", "text.replace_all(): substr must not be empty")
    return s.replace(old, new)


def text_find_all(source: Any, substr: Any) -> list[dict[str, Any]]:
    """Every non-overlapping occurrence as ``{"index": i, "match": substr}``."""
    s = _string_arg(source, "text.find_all", "source")
    sub = _string_arg(substr, "text.find_all", "substr")
    if sub == "":
        raise error("ValueError", "text.find_all(): substr must not be empty")
    found, start = [], 0
    while (i := s.find(sub, start)) != -1:
        found.append({"index": i, "match": sub})
        start = i + len(sub)
    return found


def _regex(pattern: Any, fname: str) -> re.Pattern[str]:
    try:
        return re.compile(_string_arg(pattern, fname, "regexp"))
    except re.error as exc:
        raise error("ValueError", f"{fname}(): invalid regular expression: {exc}") from None


def text_find_all_regex(source: Any, regexp: Any) -> list[dict[str, Any]]:
    s = _string_arg(source, "text.find_all_regex", "source")
    return [{"index": m.start(), "match": m.group(0)} for m in _regex(regexp, "text.find_all_regex").finditer(s)]


def text_match_regex(source: Any, regexp: Any) -> bool:
    s = _string_arg(source, "text.match_regex", "source")
    return _regex(regexp, "text.match_regex").search(s) is not None


def text_replace_all_regex(source: Any, regexp: Any, repl: Any) -> str:
    s = _string_arg(source, "text.replace_all_regex", "source")
    r = _string_arg(repl, "text.replace_all_regex", "repl")
    return _regex(regexp, "text.replace_all_regex").sub(lambda _m: r, s)


def text_substring(source: Any, start: Any, end: Any) -> str:
    s = _string_arg(source, "text.substring", "source")
    if not (is_int(start) and is_int(end)):
        raise error("TypeError", "text.substring(): start and end must be integers")
    return s[max(0, start):max(0, end)]


def text_to_lower(source: Any) -> str:
    return _string_arg(source, "text.to_lower", "source").lower()


def text_to_upper(source: Any) -> str:
    return _string_arg(source, "text.to_upper", "source").upper()


def text_url_encode(source: Any) -> str:
    return urllib.parse.quote(_string_arg(source, "text.url_encode", "source"), safe="")


def text_url_decode(source: Any) -> str:
    return urllib.parse.unquote(_string_arg(source, "text.url_decode", "source"))


def text_encode(text: Any, charset: Any = "UTF-8") -> bytes:
    try:
        return _string_arg(text, "text.encode", "text").encode(_string_arg(charset, "text.encode", "charset"))
    except (LookupError, UnicodeEncodeError) as exc:
        raise error("ValueError", f"text.encode(): {exc}") from None


def text_decode(data: Any, charset: Any = "UTF-8") -> str:
    if not isinstance(data, bytes):
        raise error("TypeError", f"text.decode(): needs bytes, got {type_name(data)}")
    try:
        return data.decode(_string_arg(charset, "text.decode", "charset"))
    except (LookupError, UnicodeDecodeError) as exc:
        raise error("ValueError", f"text.decode(): {exc}") from None


def base64_encode(data: Any, padding: Any = True) -> str:
    if not isinstance(data, bytes):
        raise error("TypeError", f"base64.encode(): needs bytes, got {type_name(data)}")
    out = base64.b64encode(data).decode("ascii")
    return out if padding else out.rstrip("=")


def base64_decode(data: Any, padding: Any = True) -> bytes:
    text = _string_arg(data, "base64.decode", "data")
    if not padding:
        text += "=" * (-len(text) % 4)
    try:
        return base64.b64decode(text, validate=True)
    except ValueError as exc:
        raise error("ValueError", f"base64.decode(): {exc}") from None


def math_abs(x: Any) -> Any:
    if not is_number(x):
        raise error("TypeError", f"math.abs(): needs a number, got {type_name(x)}")
    return check_int(abs(x)) if is_int(x) else abs(x)


def math_max(x: Any, y: Any) -> Any:
    if not (is_number(x) and is_number(y)):
        raise error("TypeError", "math.max(): needs two numbers")
    return x if x >= y else y


def math_min(x: Any, y: Any) -> Any:
    if not (is_number(x) and is_number(y)):
        raise error("TypeError", "math.min(): needs two numbers")
    return x if x <= y else y


def math_floor(x: Any) -> int:
    """``math.floor(x)``: the largest integer not greater than ``x``; TypeError unless ``x`` is a number.

    https://cloud.google.com/workflows/docs/reference/stdlib/math/floor (``math.floor(23.67)`` is 23,
    ``math.floor(-23.67)`` is -24, ``math.floor(0)`` is 0).
    """
    if not is_number(x):
        raise error("TypeError", f"math.floor(): needs an integer or a double, got {type_name(x)}")
    if is_int(x):
        return x
    if math.isnan(x) or math.isinf(x):
        raise error("ValueError", f"math.floor(): {x!r} has no integer floor")
    return check_int(math.floor(x))


# hash module: https://cloud.google.com/workflows/docs/reference/stdlib/hash/compute_checksum and
# https://cloud.google.com/workflows/docs/reference/stdlib/hash/compute_hmac ("Supported algorithms: MD5,
# SHA1, SHA224, SHA256, SHA384, SHA512"; TypeError for non-bytes data/key or a non-string algorithm,
# ValueError for another algorithm). Both return bytes.
HASH_ALGORITHMS = {"MD5": "md5", "SHA1": "sha1", "SHA224": "sha224", "SHA256": "sha256", "SHA384": "sha384",
                   "SHA512": "sha512"}


def _hash_algorithm(algorithm: Any, fname: str) -> str:
    if not isinstance(algorithm, str):
        raise error("TypeError", f"{fname}(): algorithm must be a string, got {type_name(algorithm)}")
    if algorithm not in HASH_ALGORITHMS:
        raise error("ValueError", f"{fname}(): unsupported algorithm {algorithm!r} (supported: "
                                  f"{', '.join(HASH_ALGORITHMS)})")
    return HASH_ALGORITHMS[algorithm]


def hash_compute_checksum(data: Any, algorithm: Any) -> bytes:
    if not isinstance(data, bytes):
        raise error("TypeError", f"hash.compute_checksum(): data must be bytes, got {type_name(data)}")
    return hashlib.new(_hash_algorithm(algorithm, "hash.compute_checksum"), data).digest()


def hash_compute_hmac(key: Any, data: Any, algorithm: Any) -> bytes:
    if not isinstance(key, bytes) or not isinstance(data, bytes):
        raise error("TypeError", "hash.compute_hmac(): key and data must be bytes")
    return hmac.new(key, data, _hash_algorithm(algorithm, "hash.compute_hmac")).digest()


def get_type(value: Any) -> str:
    """``get_type(value)``, the expression helpers' type function: the Workflows name of the value's type."""
    return type_name(value)


def sys_now(rt: Runtime) -> float:
    """Seconds since the epoch, as a double, from the execution's clock (virtual in tests)."""
    return float(rt.now())


def sys_get_env(rt: Runtime, name: Any, fallback: Any = None) -> Any:
    value = rt.get_env(_string_arg(name, "sys.get_env", "name"))
    return fallback if value is None else value


def _zone(timezone: Any, fname: str) -> dt.tzinfo:
    if timezone is None:
        return dt.UTC
    try:
        return zoneinfo.ZoneInfo(_string_arg(timezone, fname, "timezone"))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise error("ValueError", f"{fname}(): unknown time zone {timezone!r}: {exc}") from None


def time_format(seconds: Any, timezone: Any = None) -> str:
    """``time.format(seconds, timezone)``, https://cloud.google.com/workflows/docs/reference/stdlib/time/format.

    ISO 8601 with microsecond precision, always six digits: ``time.format(1720788633)`` is
    ``"2024-07-12T12:50:33.000000Z"``, with ``"Europe/Paris"`` ``"2024-07-12T14:50:33.000000+02:00"``.
    No time zone or an empty one means UTC; a zero offset is written ``Z`` (the page's ``"GMT"`` example).
    """
    if not is_number(seconds):
        raise error("TypeError", f"time.format(): seconds must be a number, got {type_name(seconds)}")
    if timezone == "":
        timezone = None
    moment = dt.datetime.fromtimestamp(seconds, tz=_zone(timezone, "time.format"))
    text = moment.isoformat(timespec="microseconds")
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def time_parse(value: Any) -> float:
    text = _string_arg(value, "time.parse", "value")
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise error("ValueError", f"time.parse(): {exc}") from None
    if moment.tzinfo is None:
        raise error("ValueError", f"time.parse(): {text!r} has no time zone offset")
    return moment.timestamp()


def uuid_generate() -> str:
    return str(uuid.uuid4())


# ---------------------------------------------------------------------------------------- retry helpers

RETRIABLE_IDEMPOTENT = {429, 502, 503, 504}
RETRIABLE_NON_IDEMPOTENT = {429, 503}


def _tags(e: Any) -> list[str]:
    return WorkflowError(e).tags


def default_retry_predicate(e: Any) -> bool:
    """Reference: retries on 429, 502, 503, 504 and on any ConnectionError, ConnectionFailedError, TimeoutError."""
    tags = _tags(e)
    if "HttpError" in tags and isinstance(e, dict) and e.get("code") in RETRIABLE_IDEMPOTENT:
        return True
    return any(t in tags for t in ("ConnectionError", "ConnectionFailedError", "TimeoutError"))


def default_retry_predicate_non_idempotent(e: Any) -> bool:
    """Reference: retries on 429 and 503, and on ConnectionFailedError."""
    tags = _tags(e)
    if "HttpError" in tags and isinstance(e, dict) and e.get("code") in RETRIABLE_NON_IDEMPOTENT:
        return True
    return "ConnectionFailedError" in tags


def retry_always(e: Any) -> bool:
    return True


def retry_never(e: Any) -> bool:
    return False


# ---------------------------------------------------------------------------------------------- tables

HTTP_PARAMS = ("url", "headers", "body", "query", "auth", "timeout", "private_service_name", "ca_certificate")


def _f(name: str, params: tuple[str, ...], fn: Callable[..., Any] | None, *, defaults: Mapping[str, Any] | None = None,
       runtime: bool = False, blocking: bool = False) -> StdFunc:
    return StdFunc(name, params, fn, defaults or {}, runtime, blocking)


RUN_EXECUTION = "googleapis.workflowexecutions.v1.projects.locations.workflows.executions.run"

FUNCTIONS: dict[str, StdFunc] = {f.name: f for f in (
    _f("default", ("val", "default_val"), default),
    _f("keys", ("map",), keys),
    _f("len", ("value",), length),
    _f("int", ("value",), to_int),
    _f("double", ("value",), to_double),
    _f("string", ("value",), to_string),
    _f("map.get", ("map", "keys"), map_get),
    _f("map.delete", ("map", "key"), map_delete),
    _f("map.merge", ("first", "second"), map_merge),
    _f("map.merge_nested", ("first", "second"), map_merge_nested),
    _f("list.concat", ("objs", "val"), list_concat),
    _f("list.prepend", ("objs", "val"), list_prepend),
    _f("json.encode", ("data", "indent"), json_encode, defaults={"indent": None}),
    _f("json.encode_to_string", ("data", "indent"), json_encode_to_string, defaults={"indent": None}),
    _f("json.decode", ("data",), json_decode),
    _f("text.split", ("source", "separator"), text_split),
    _f("text.replace_all", ("source", "substr", "repl"), text_replace_all),
    _f("text.find_all", ("source", "substr"), text_find_all),
    _f("text.find_all_regex", ("source", "regexp"), text_find_all_regex),
    _f("text.match_regex", ("source", "regexp"), text_match_regex),
    _f("text.replace_all_regex", ("source", "regexp", "repl"), text_replace_all_regex),
    _f("text.substring", ("source", "start", "end"), text_substring),
    _f("text.to_lower", ("source",), text_to_lower),
    _f("text.to_upper", ("source",), text_to_upper),
    _f("text.url_encode", ("source",), text_url_encode),
    _f("text.url_decode", ("source",), text_url_decode),
    _f("text.encode", ("text", "charset"), text_encode, defaults={"charset": "UTF-8"}),
    _f("text.decode", ("data", "charset"), text_decode, defaults={"charset": "UTF-8"}),
    _f("base64.encode", ("data", "padding"), base64_encode, defaults={"padding": True}),
    _f("base64.decode", ("data", "padding"), base64_decode, defaults={"padding": True}),
    _f("math.abs", ("x",), math_abs),
    _f("math.max", ("x", "y"), math_max),
    _f("math.min", ("x", "y"), math_min),
    _f("math.floor", ("x",), math_floor),
    _f("hash.compute_checksum", ("data", "algorithm"), hash_compute_checksum),
    _f("hash.compute_hmac", ("key", "data", "algorithm"), hash_compute_hmac),
    _f("get_type", ("value",), get_type),
    _f("sys.now", (), sys_now, runtime=True),
    _f("sys.get_env", ("name", "default"), sys_get_env, defaults={"default": None}, runtime=True),
    _f("time.format", ("seconds", "timezone"), time_format, defaults={"timezone": None}),
    _f("time.parse", ("value",), time_parse),
    _f("uuid.generate", (), uuid_generate),
    _f("http.default_retry_predicate", ("exception",), default_retry_predicate),
    _f("http.default_retry_predicate_non_idempotent", ("exception",), default_retry_predicate_non_idempotent),
    _f("retry.always", ("exception",), retry_always),
    _f("retry.never", ("exception",), retry_never),
    # Blocking calls: the engine runs these from `call` steps only.
    _f("http.get", HTTP_PARAMS, None, blocking=True),
    _f("http.post", HTTP_PARAMS, None, blocking=True),
    _f("http.put", HTTP_PARAMS, None, blocking=True),
    _f("http.patch", HTTP_PARAMS, None, blocking=True),
    _f("http.delete", HTTP_PARAMS, None, blocking=True),
    _f("http.request", ("method", *HTTP_PARAMS), None, blocking=True),
    _f("sys.sleep", ("seconds",), None, blocking=True),
    # The Workflow Executions connector's helper: start another deployed workflow and wait for its result
    # (https://cloud.google.com/workflows/docs/reference/googleapis/workflowexecutions/v1/
    # projects.locations.workflows.executions/run); the engine runs it against the deployed workflows.
    _f(RUN_EXECUTION, ("workflow_id", "location", "project_id", "argument", "connector_params"), None,
       defaults={"location": None, "project_id": None, "argument": None, "connector_params": None}, blocking=True),
    _f("sys.sleep_until", ("time",), None, blocking=True),
    _f("sys.log", ("data", "text", "json", "severity", "timeout"), None, blocking=True),
)}

# Default backoff and policies, as the reference's retry.default_backoff / http.default_retry describe them.
DEFAULT_BACKOFF = {"initial_delay": 1, "max_delay": 60, "multiplier": 1.25}
CONSTANTS: dict[str, Any] = {
    "retry.default_backoff": DEFAULT_BACKOFF,
    "http.default_retry": RetryPolicy("http.default_retry", FunctionRef("http.default_retry_predicate"), 5,
                                      1, 60, 1.25),
    "http.default_retry_non_idempotent": RetryPolicy(
        "http.default_retry_non_idempotent", FunctionRef("http.default_retry_predicate_non_idempotent"), 5, 1, 60,
        1.25),
}

# Documented functions the emulator refuses before running, with the reason. Each needs something
# that cannot be reproduced faithfully offline, and faking it would let a workflow pass here that
# fails on the service. Standard library overview:
# https://cloud.google.com/workflows/docs/reference/stdlib/overview
REFUSED: dict[str, str] = {
    "events.create_callback_endpoint": "callbacks need an endpoint that outside callers reach over HTTP "
                                       "(https://cloud.google.com/workflows/docs/reference/stdlib/events/"
                                       "create_callback_endpoint)",
    "events.await_callback": "callbacks need an endpoint that outside callers reach over HTTP "
                             "(https://cloud.google.com/workflows/docs/reference/stdlib/events/await_callback)",
    "experimental.executions.map": "it starts executions of other deployed workflows, which do not exist here "
                                   "(https://cloud.google.com/workflows/docs/reference/stdlib/experimental.executions/"
                                   "map)",
    "experimental.executions.run": "it starts an execution of another deployed workflow, which does not exist here "
                                   "(https://cloud.google.com/workflows/docs/reference/stdlib/experimental.executions/"
                                   "run)",
    "bool": "it is not a documented conversion function: the expression helpers list double(), int() and "
            "string() (https://cloud.google.com/workflows/docs/reference/stdlib/expression-helpers)",
}
REFUSED_PREFIXES = {
    "googleapis.": "connectors call Google Cloud APIs, which are not emulated "
                   "(https://cloud.google.com/workflows/docs/reference/googleapis)",
}

MODULES = frozenset(name.split(".")[0] for name in (*FUNCTIONS, *CONSTANTS, *REFUSED) if "." in name) | {
    "events", "googleapis", "experimental"}


def refusal(name: str) -> str:
    """Why ``name`` cannot be called here: a message naming the function, for load-time errors."""
    if name in REFUSED:
        return f"{name} is not supported by this emulator: {REFUSED[name]}"
    for prefix, reason in REFUSED_PREFIXES.items():
        if name.startswith(prefix):
            return f"{name} is not supported by this emulator: {reason}"
    if name.split(".")[0] in MODULES:
        return (f"{name} is not a function of the Workflows standard library reference, so this emulator does not "
                "support it (https://cloud.google.com/workflows/docs/reference/stdlib/overview)")
    return (f"unknown function {name!r}: neither a subworkflow of this definition nor a standard library function "
            "this emulator supports")
# HTTP method of each shortcut; http.request takes it as an argument.
HTTP_METHODS = {"http.get": "GET", "http.post": "POST", "http.put": "PUT", "http.patch": "PATCH",
                "http.delete": "DELETE"}


def call_function(name: str, args: list[Any] | Mapping[str, Any], rt: Runtime) -> Any:
    """Run a non-blocking standard-library function with positional or named arguments."""
    func = FUNCTIONS.get(name)
    if func is None:
        raise error("KeyError", f"unknown function {name}")
    if func.blocking or func.fn is None:
        raise error("TypeError", f"{name} is a blocking call: use it in a call step, not in an expression")
    values = func.bind(args)
    return func.fn(rt, *values) if func.needs_runtime else func.fn(*values)
