"""Dataclasses whose methods are generated when the class is first instantiated, not at import.

``dataclasses.dataclass`` writes and compiles each class's ``__init__``, ``__repr__``, ``__eq__``,
``__hash__`` and frozen ``__setattr__`` when the class statement runs: about 0.7 ms per frozen class
here, which for the fifty-odd classes a ``strato run`` imports was a quarter of its start-up time
(``bench/README.md`` E). :func:`record` lets ``dataclasses`` process the fields at import (so
``fields()``, ``replace()``, ``asdict()`` and type checkers see an ordinary dataclass) and leaves the
methods to the first instantiation, where ``dataclasses`` itself generates them, from the same fields
and options, for a twin class; they are copied over and then run as fast as ever. A class only named
in an annotation, or imported and never used, costs its field processing only.

Frozen records share one ``__setattr__``/``__delattr__`` that always refuse (the same
``FrozenInstanceError``), and slotted frozen records restore their state through ``object``, so
``copy`` and ``pickle`` work as for a frozen dataclass.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar, dataclass_transform, overload

_T = TypeVar("_T", bound=type)

_GENERATED = ("__init__", "__repr__", "__eq__", "__hash__")


@overload
def record(cls: _T, /) -> _T: ...


@overload
def record(*, frozen: bool = True, eq: bool = True, repr: bool = True, slots: bool = False) -> Callable[[_T], _T]: ...


@dataclass_transform(frozen_default=True, field_specifiers=(dataclasses.field, dataclasses.Field))
def record(cls: Any = None, /, *, frozen: bool = True, eq: bool = True, repr: bool = True,
           slots: bool = False) -> Any:
    """A dataclass (frozen unless ``frozen=False``) whose methods are generated on first instantiation."""

    def wrap(cls: Any) -> Any:
        return _lazy_dataclass(cls, frozen=frozen, eq=eq, repr=repr, slots=slots)

    return wrap if cls is None else wrap(cls)


def _lazy_dataclass(cls: Any, frozen: bool, eq: bool, repr: bool, slots: bool) -> Any:
    for name in (*_GENERATED, "__setattr__", "__delattr__"):
        if name in cls.__dict__ and not (name == "__hash__" and cls.__dict__[name] is None):
            raise TypeError(f"{cls.__qualname__} defines {name}: make it a plain dataclass, not a record")
    cls = dataclasses.dataclass(cls, init=False, repr=False, eq=False, slots=slots)
    if any("InitVar" in str(f.type) for f in cls.__dataclass_fields__.values()):  # fields() leaves them out
        raise TypeError(f"{cls.__qualname__}: a record cannot have InitVar fields")
    options = {"frozen": frozen, "eq": eq, "repr": repr}
    # until the first instance, each method is a stand-in that generates them all, then calls the real one
    # (instances made without __init__, by copy or pickle, may reach the others first)
    cls.__init__ = _stand_in(cls, options, "__init__")
    if repr:
        cls.__repr__ = _stand_in(cls, options, "__repr__")
    if eq:
        cls.__eq__ = _stand_in(cls, options, "__eq__")
        # the hash dataclasses gives: by value when frozen, none for a mutable class that compares by value
        cls.__hash__ = _stand_in(cls, options, "__hash__") if frozen else None
    if frozen:
        cls.__setattr__ = _refuse_assignment
        cls.__delattr__ = _refuse_deletion
        if slots:
            cls.__getstate__ = _slotted_state
            cls.__setstate__ = _restore_slotted_state
    return cls


def _stand_in(cls: Any, options: dict[str, bool], name: str) -> Callable[..., Any]:
    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        _generate(cls, options)
        return getattr(cls, name)(self, *args, **kwargs)

    method.__name__ = name
    method.__qualname__ = f"{cls.__qualname__}.{name}"
    return method


def _generate(cls: Any, options: dict[str, bool]) -> None:
    """Have ``dataclasses`` generate the methods for a twin of ``cls``, with the same fields, and move them
    onto ``cls``; the generated code refers to no class, only to ``self`` and the fields' defaults."""
    if "__dataclass_generated__" in cls.__dict__:
        return
    annotations: dict[str, Any] = {}
    namespace: dict[str, Any] = {"__module__": cls.__module__, "__qualname__": cls.__qualname__,
                                 "__doc__": cls.__doc__, "__annotations__": annotations}
    for f in dataclasses.fields(cls):
        annotations[f.name] = f.type
        namespace[f.name] = dataclasses.field(default=f.default, default_factory=f.default_factory, init=f.init,
                                              repr=f.repr, hash=f.hash, compare=f.compare, kw_only=f.kw_only)
    if hasattr(cls, "__post_init__"):
        namespace["__post_init__"] = cls.__post_init__
    twin: Any = dataclasses.dataclass(type(cls.__name__, (), namespace), **options)
    for name in _GENERATED:
        if name in twin.__dict__:
            setattr(cls, name, twin.__dict__[name])
    cls.__dataclass_generated__ = True


def _refuse_assignment(self: Any, name: str, value: Any) -> None:
    raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")


def _refuse_deletion(self: Any, name: str) -> None:
    raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")


def _slotted_state(self: Any) -> list[Any]:
    return [getattr(self, f.name) for f in dataclasses.fields(self)]


def _restore_slotted_state(self: Any, state: list[Any]) -> None:
    for f, value in zip(dataclasses.fields(self), state, strict=True):
        object.__setattr__(self, f.name, value)
