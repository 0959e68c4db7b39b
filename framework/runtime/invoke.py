"""Calling a task's function at its boundary: inputs and results are checked against the type hints.

This is the one place a task is invoked, on the local runner and in every cloud's task shim, so a
task behaves the same everywhere: arguments are validated (and converted, e.g. a JSON string to a
``datetime.date``) with pydantic, the result is checked against the return annotation and turned
into plain JSON, and the task's data-quality checks (:mod:`strato.checks`) run on that JSON.
"""

from __future__ import annotations

import inspect
import math
import typing
from collections.abc import Callable, Iterable
from typing import Any

_adapters: dict[Callable[..., Any], tuple[dict[str, Any], Any]] = {}
_hints: dict[Callable[..., Any], dict[str, Any]] = {}
# A value whose type is exactly one of these, under that same annotation, is what pydantic would return
# (validated and dumped to JSON alike), so checking it needs neither pydantic nor a TypeAdapter.
_SCALARS = (int, float, str, bool)


def _checked_hints(fn: Callable[..., Any]) -> dict[str, Any]:
    """The annotations worth checking: each parameter's and ``"return"``'s, ``Any`` and missing ones left out."""
    cached = _hints.get(fn)
    if cached is not None:
        return cached
    try:
        hints = typing.get_type_hints(fn)
    except Exception:  # unresolvable annotations: check nothing rather than fail the task
        hints = {}
    names = [*inspect.signature(fn).parameters, "return"]
    checked = {name: hints[name] for name in names if name in hints and hints[name] is not Any}
    _hints[fn] = checked
    return checked


def _plain(hint: Any, value: Any) -> bool:
    """``value`` passes ``hint`` unchanged: a scalar of exactly the annotated type (no subclass, no coercion),
    or a ``list[...]`` / ``dict[str, ...]`` holding only such values (e.g. ``list[int]`` of ints)."""
    if hint in _SCALARS:
        return type(value) is hint
    origin = getattr(hint, "__origin__", None)
    args: tuple[Any, ...] = getattr(hint, "__args__", ())
    if origin is list and type(value) is list and len(args) == 1:
        item = args[0]
        if item in _SCALARS:  # the common case, without a call per element
            return all(type(v) is item for v in value)
        return all(_plain(item, v) for v in value)
    if origin is dict and type(value) is dict and len(args) == 2 and args[0] is str:
        return all(type(k) is str for k in value) and all(_plain(args[1], v) for v in value.values())
    return False


def _mentions_float(hint: Any) -> bool:
    return hint is float or any(_mentions_float(a) for a in getattr(hint, "__args__", ()))


def all_plain(fn: Callable[..., Any], args: dict[str, Any]) -> bool:
    """Every argument in ``args`` is a scalar of exactly its annotated type (or unannotated)."""
    hints = _checked_hints(fn)
    for name, value in args.items():  # a loop, not all(...): this runs once per task call
        hint = hints.get(name)
        if hint is not None and type(value) is not hint and not _plain(hint, value):
            return False
    return True


def _type_adapters(fn: Callable[..., Any]) -> tuple[dict[str, Any], Any]:
    cached = _adapters.get(fn)
    if cached is not None:
        return cached
    from pydantic import TypeAdapter

    hints = _checked_hints(fn)
    params = {name: TypeAdapter(hint) for name, hint in hints.items() if name != "return"}
    ret_adapter = TypeAdapter(hints["return"]) if "return" in hints else None
    _adapters[fn] = (params, ret_adapter)
    return params, ret_adapter


def _describe(exc: Any) -> str:
    errors = exc.errors(include_url=False)
    parts = []
    for err in errors[:3]:
        loc = "".join(f"[{p!r}]" for p in err.get("loc", ()))
        parts.append(f"{loc + ': ' if loc else ''}{err['msg']} (got {err.get('input')!r})")
    more = f" and {len(errors) - 3} more" if len(errors) > 3 else ""
    return "; ".join(parts) + more


def check_arguments(task_name: str, fn: Callable[..., Any], args: dict[str, Any]) -> dict[str, Any]:
    """Validate (and convert) arguments against the parameter annotations."""
    if all_plain(fn, args):
        return args  # unchanged: the call gets its own keyword dict from **args
    from pydantic import ValidationError

    adapters, _ = _type_adapters(fn)
    checked = dict(args)
    for name, adapter in adapters.items():
        if name in args:
            try:
                checked[name] = adapter.validate_python(args[name])
            except ValidationError as exc:
                raise TypeError(f"task {task_name!r}, parameter {name!r}: {_describe(exc)}") from None
    return checked


def to_json_result(task_name: str, fn: Callable[..., Any], result: Any) -> Any:
    """Check the result against the return annotation and convert it to plain JSON values."""
    hint = _checked_hints(fn).get("return")
    if hint is not None and _plain(hint, result):  # int, str, bool: JSON as they are; a float must be finite
        return _finite(task_name, result) if _mentions_float(hint) else result
    from pydantic import ValidationError
    from pydantic_core import PydanticSerializationError, to_jsonable_python

    _, adapter = _type_adapters(fn)
    _refuse_unordered(task_name, result)
    try:
        if adapter is not None:
            validated = adapter.validate_python(result)
            return _finite(task_name, adapter.dump_python(validated, mode="json"))
        return _finite(task_name, to_jsonable_python(result))
    except ValidationError as exc:
        raise TypeError(f"task {task_name!r} returned a value that does not match its return type: "
                        f"{_describe(exc)}") from None
    except PydanticSerializationError:
        raise TypeError(f"task {task_name!r} returned a {type(result).__name__}, which is not JSON-serialisable") \
            from None


def _walk(value: Any, path: str = "") -> Iterable[tuple[str, Any]]:
    yield path, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, f"{path}[{key!r}]")
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _walk(item, f"{path}[{index}]")


def _at(path: str) -> str:
    return f" at result{path}" if path else ""


def _refuse_unordered(task_name: str, result: Any) -> None:
    """A set has no order (it changes with the hash seed), so its JSON would differ from run to run."""
    for path, value in _walk(result):
        if isinstance(value, (set, frozenset)):
            raise TypeError(f"task {task_name!r} returned a {type(value).__name__}{_at(path)}, which is not JSON "
                            "and has no stable order; return a sorted list (e.g. sorted(values))")
    _finite(task_name, result)


def _finite(task_name: str, result: Any) -> Any:
    """NaN and Infinity are not JSON: refused here rather than written as non-standard JSON."""
    for path, value in _walk(result):
        if isinstance(value, float) and not math.isfinite(value):
            raise TypeError(f"task {task_name!r} returned {value!r}{_at(path)}, which is not JSON; return "
                            "null or a finite number instead")
    return result


def invoke(task_name: str, fn: Callable[..., Any], args: dict[str, Any], secrets: Iterable[str] = (),
           checks: bool = True) -> Any:
    """Run a task function: checked arguments in, JSON out.

    Secret references in the arguments are resolved here, and only for the names in ``secrets`` (what
    the IR grants the task; any other reference is refused), so a secret's value exists only inside
    the call. ``checks=False`` says the task has no data-quality checks (the caller knows from its IR).
    """
    if not secrets:  # without grants a reference stays a reference: the task sees no secret
        result = to_json_result(task_name, fn, fn(**check_arguments(task_name, fn, args)))
        return _checked(task_name, fn, result) if checks else result
    from ..secrets import resolve, secret_names, secret_source

    allowed = frozenset(secrets)
    found = {name: resolve({"$strato_secret": name}, allowed) for name in set(secret_names(args))}  # read once
    with secret_source(found.__getitem__):
        resolved = resolve(args, allowed)
    from .logs import redact_secrets

    redact_secrets(v for v in found.values() if v)  # what the task prints or logs is stored without them
    try:
        return _checked(task_name, fn, to_json_result(task_name, fn, fn(**check_arguments(task_name, fn, resolved))))
    except Exception as exc:  # the error is stored and shown: never with a secret's value in it
        _redact(exc, sorted((v for v in found.values() if v), key=len, reverse=True))
        raise


def _checked(task_name: str, fn: Callable[..., Any], result: Any) -> Any:
    """The result, after the task's data-quality checks passed (``@task(checks=...)``)."""
    from ..checks import run_checks

    run_checks(task_name, fn, result)
    return result


def _redact(exc: BaseException, values: list[str]) -> None:
    """Replace secret values in an exception's arguments (what its message is made of) by ``***``."""
    def clean(item: Any) -> Any:
        if isinstance(item, str):
            for value in values:
                item = item.replace(value, "***")
        return item

    if values and any(isinstance(a, str) and any(v in a for v in values) for a in exc.args):
        exc.args = tuple(clean(a) for a in exc.args)


def error_of(exc: BaseException) -> dict[str, str]:
    """The error object every backend reports: ``{"error": ClassName, "cause": message}``."""
    return {"error": type(exc).__name__, "cause": str(exc)}
