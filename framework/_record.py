"""Dataclasses that compile nothing at import.

``dataclasses.dataclass`` writes and compiles each class's ``__init__``, ``__repr__``, ``__eq__``,
``__hash__`` and frozen ``__setattr__``/``__delattr__`` when the class statement runs: about 0.7 ms per
frozen class here, which for the fifty-odd classes a ``strato run`` imports was a fifth of its start-up
(``bench/README.md`` E). :func:`record` lets ``dataclasses`` process the fields (so ``fields()``,
``replace()``, ``asdict()``, ``__match_args__`` and type checkers see an ordinary dataclass) and then:

- ``__eq__``, ``__hash__`` and ``__repr__`` are shared functions over an ``operator.attrgetter`` of the
  class's fields: no code is compiled, and they compare, hash and print as the dataclass would;
- a frozen record shares one ``__setattr__``/``__delattr__`` that always refuse, as a frozen
  dataclass's do (``FrozenInstanceError``), and a slotted one restores its state through ``object``
  so ``copy`` and ``pickle`` work;
- ``__init__`` is compiled the first time the class is instantiated, the same code ``dataclasses``
  writes (defaults, default factories, ``__post_init__``), so a class that is imported but never
  built costs its field processing only.

Fields must be ``init`` fields (the classes here need nothing else); anything else is refused at import.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable
from typing import Any, TypeVar, dataclass_transform, overload

_T = TypeVar("_T", bound=type)
_FACTORY = object()  # the default of a parameter whose field has a default factory
INIT_FILE_PREFIX = "<record "  # the file name of a compiled __init__ (tracebacks, caller_location)


@overload
def record(cls: _T, /) -> _T: ...


@overload
def record(*, frozen: bool = True, eq: bool = True, repr: bool = True, slots: bool = False) -> Callable[[_T], _T]: ...


@dataclass_transform(frozen_default=True, field_specifiers=(dataclasses.field, dataclasses.Field))
def record(cls: Any = None, /, *, frozen: bool = True, eq: bool = True, repr: bool = True,
           slots: bool = False) -> Any:
    """A dataclass (frozen unless ``frozen=False``) that compiles its ``__init__`` on first use."""

    def wrap(cls: Any) -> Any:
        return _record(cls, frozen=frozen, eq=eq, repr=repr, slots=slots)

    return wrap if cls is None else wrap(cls)


def _record(cls: Any, frozen: bool, eq: bool, repr: bool, slots: bool) -> Any:
    for name in ("__init__", "__repr__", "__eq__", "__hash__", "__setattr__", "__delattr__"):
        if name in cls.__dict__ and not (name == "__hash__" and cls.__dict__[name] is None):
            raise TypeError(f"{cls.__qualname__} defines {name}: make it a plain dataclass, not a record")
    undocumented = not cls.__dict__.get("__doc__")
    if undocumented:  # dataclasses would build one from inspect.signature(), which parses text for a builtin
        cls.__doc__ = cls.__qualname__
    cls = dataclasses.dataclass(cls, init=False, repr=False, eq=False, slots=slots)
    fields = dataclasses.fields(cls)
    if undocumented:
        cls.__doc__ = f"{cls.__name__}({', '.join(f.name for f in fields)})"
    if any("InitVar" in str(f.type) for f in cls.__dataclass_fields__.values()):  # fields() leaves them out
        raise TypeError(f"{cls.__qualname__}: a record cannot have InitVar fields")
    for f in fields:
        if not f.init or f.kw_only is True:
            raise TypeError(f"{cls.__qualname__}.{f.name}: a record's fields are all positional init fields")

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        if cls.__init__ is __init__:
            cls.__init__ = _compiled_init(cls, fields, frozen)
        cls.__init__(self, *args, **kwargs)

    __init__.__qualname__ = f"{cls.__qualname__}.__init__"
    cls.__init__ = __init__
    if repr:
        cls.__repr__ = _repr_of([f.name for f in fields if f.repr])
    if eq:
        compared = _getter([f.name for f in fields if f.compare])
        cls.__eq__ = _eq_of(compared)
        # the hash a dataclass gets: by value when frozen, none for a mutable class that compares by value
        hashed = _getter([f.name for f in fields if (f.compare if f.hash is None else f.hash)])
        cls.__hash__ = (lambda self: hash(hashed(self))) if frozen else None
    if frozen:
        cls.__setattr__ = _refuse_assignment
        cls.__delattr__ = _refuse_deletion
        if slots:
            cls.__getstate__ = _slotted_state
            cls.__setstate__ = _restore_slotted_state
    return cls


def _compiled_init(cls: Any, fields: tuple[dataclasses.Field[Any], ...], frozen: bool) -> Callable[..., None]:
    """The ``__init__`` ``dataclasses`` would write, compiled once; field names are identifiers, so the
    source holds no text from outside the class definition."""
    namespace: dict[str, Any] = {"__set": object.__setattr__, "__FACTORY": _FACTORY}
    params, body = ["__record_self__"], []
    for f in fields:
        if f.default is not dataclasses.MISSING:
            namespace[f"__default_{f.name}"] = f.default
            params.append(f"{f.name}=__default_{f.name}")
        elif f.default_factory is not dataclasses.MISSING:
            namespace[f"__factory_{f.name}"] = f.default_factory
            params.append(f"{f.name}=__FACTORY")
            body.append(f"    if {f.name} is __FACTORY: {f.name} = __factory_{f.name}()")
        else:
            params.append(f.name)
        body.append(f"    __set(__record_self__, {f.name!r}, {f.name})" if frozen
                    else f"    __record_self__.{f.name} = {f.name}")
    if hasattr(cls, "__post_init__"):
        body.append("    __record_self__.__post_init__()")
    source = f"def __init__({', '.join(params)}):\n" + ("\n".join(body) or "    pass") + "\n"
    exec(compile(source, f"{INIT_FILE_PREFIX}{cls.__module__}.{cls.__qualname__}>", "exec"), namespace)
    init: Callable[..., None] = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    return init


def _getter(names: list[str]) -> Callable[[Any], tuple[Any, ...]]:
    """The fields' values as a tuple (``attrgetter`` of one name gives the bare value)."""
    if len(names) > 1:
        return operator.attrgetter(*names)
    if names:
        one = operator.attrgetter(names[0])
        return lambda self: (one(self),)
    return lambda self: ()


def _eq_of(compared: Callable[[Any], tuple[Any, ...]]) -> Callable[[Any, Any], Any]:
    def __eq__(self: Any, other: Any) -> Any:
        if self is other:
            return True
        if other.__class__ is self.__class__:
            return compared(self) == compared(other)
        return NotImplemented

    return __eq__


def _repr_of(names: list[str]) -> Callable[[Any], str]:
    def __repr__(self: Any) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in names)
        return f"{self.__class__.__qualname__}({shown})"

    return __repr__


def _refuse_assignment(self: Any, name: str, value: Any) -> None:
    raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")


def _refuse_deletion(self: Any, name: str) -> None:
    raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")


def _slotted_state(self: Any) -> list[Any]:
    return [getattr(self, f.name) for f in dataclasses.fields(self)]


def _restore_slotted_state(self: Any, state: list[Any]) -> None:
    for f, value in zip(dataclasses.fields(self), state, strict=True):
        object.__setattr__(self, f.name, value)
