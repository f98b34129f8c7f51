"""``@record``: a frozen dataclass that costs less to create at import.

Python 3.11's ``dataclass`` writes every method it adds as source text and compiles it, one ``exec`` each:
six for a frozen class (``__init__``, ``__repr__``, ``__eq__``, ``__hash__``, ``__setattr__``,
``__delattr__``), about 0.3 ms of CPU a class, and a one-shot ``llmswitch chat`` creates some forty-five
such classes while it imports (see docs/benchmarks.md). ``record`` lets ``dataclass`` write only the methods
that must be the class's own to be right and fast per object (``__init__`` and the frozen ``__setattr__``
and ``__delattr__``) and gives the class a ``__repr__``, ``__eq__`` and ``__hash__`` written once, here, for every
record: the same text, the same comparison (the compared fields in order, as one tuple; ``NotImplemented``
for an object of another class) and the same hash as the ones ``dataclass`` writes. Everything else is the
dataclass's: ``fields``, ``replace``, ``asdict``, ``__match_args__``, ``__slots__``, frozenness. A method
the class writes itself (``Secret.__repr__``) is kept, as ``dataclass`` keeps it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from operator import attrgetter
from reprlib import recursive_repr
from typing import TYPE_CHECKING, Any, TypeVar, overload

if TYPE_CHECKING:
    from typing_extensions import dataclass_transform  # typing's own from Python 3.11
else:
    def dataclass_transform(**_: Any) -> Callable[[Any], Any]:
        """Only type checkers read it (they are told ``record`` makes frozen dataclasses)."""
        return lambda decorated: decorated

T = TypeVar("T", bound=type)


@overload
def record(cls: T, /) -> T: ...
@overload
def record(*, slots: bool = True) -> Callable[[T], T]: ...


@dataclass_transform(frozen_default=True)
def record(cls: T | None = None, /, *, slots: bool = True) -> T | Callable[[T], T]:
    """``@dataclass(frozen=True, slots=True)``, created with half the compiling (``slots=False`` for a record
    that needs a ``__dict__``, such as one ``functools.cached_property`` writes to)."""

    def make(cls: T) -> T:
        made: Any = dataclasses.dataclass(cls, frozen=True, slots=slots, repr=False, eq=False)
        fields = dataclasses.fields(made)
        own = made.__dict__
        if "__repr__" not in own:
            made.__record_repr__ = tuple(field.name for field in fields if field.repr)
            made.__repr__ = _repr
        if "__eq__" not in own:
            made.__record_compare__ = _getter(field.name for field in fields if field.compare)
            made.__eq__ = _eq
        if own.get("__hash__") is None:  # none written (a class that writes __eq__ alone gets None)
            hashed = (field.name for field in fields if (field.compare if field.hash is None else field.hash))
            made.__record_hash__ = _getter(hashed)
            made.__hash__ = _hash
        return made  # type: ignore[no-any-return]

    return make if cls is None else make(cls)


def _getter(names: Any) -> Callable[[Any], tuple[Any, ...]]:
    """The named attributes of an object as one tuple (``attrgetter`` of one name gives the bare value)."""
    names = tuple(names)
    if len(names) == 1:
        one = attrgetter(names[0])
        return lambda self: (one(self),)
    return attrgetter(*names) if names else lambda self: ()


@recursive_repr()
def _repr(self: Any) -> str:
    shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in type(self).__record_repr__)
    return f"{self.__class__.__qualname__}({shown})"


def _eq(self: Any, other: object) -> bool:
    if other.__class__ is self.__class__:
        compared = type(self).__record_compare__  # type: ignore[attr-defined]
        return bool(compared(self) == compared(other))
    return NotImplemented


def _hash(self: Any) -> int:
    return hash(type(self).__record_hash__(self))
