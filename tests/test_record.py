"""``@record`` (llmswitch.record) behaves as ``@dataclass(frozen=True, slots=True)`` does, method by method."""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import FrozenInstanceError, dataclass, field
from typing import Any

import pytest

from llmswitch.record import record
from llmswitch.secrets import Secret


def declare(decorate: Any) -> Any:
    @decorate
    class Sample:
        number: int
        text: str | None = None
        ratio: float = 0.0
        items: tuple[str, ...] = ()
        note: str = field(default="", compare=False)  # neither compared nor hashed
        hidden: str = field(default="", repr=False)
        extra: dict[str, int] = field(default_factory=dict, hash=False)  # compared, not hashed

    return Sample


Standard = declare(dataclass(frozen=True, slots=True))
Record = declare(record)
Unslotted = declare(record(slots=False))
NAN = float("nan")

CASES = [
    ((1,), (1,)),
    ((1, "a", 0.5, ("x",)), (1, "a", 0.5, ("x",))),
    ((1, "a"), (1, "b")),
    ((1, None, NAN), (1, None, NAN)),  # the same NaN object: equal, as inside a tuple
    ((1, None, float("nan")), (1, None, float("nan"))),  # two NaNs: not equal
]


@pytest.mark.parametrize("made", [Record, Unslotted])
@pytest.mark.parametrize(("left", "right"), CASES)
def test_equality_hash_and_repr_are_the_dataclass_ones(made: Any, left: tuple[Any, ...], right: tuple[Any, ...]) -> None:
    for extra in ({}, {"note": "n", "hidden": "h"}):
        a, b = made(*left, **extra), made(*right)
        sa, sb = Standard(*left, **extra), Standard(*right)
        assert (a == b) == (sa == sb)
        assert (a != b) == (sa != sb)
        assert hash(a) == hash(sa)
        assert repr(a).replace("Unslotted", "Standard") == repr(sa)


def test_field_options_hold() -> None:
    assert Record(1, note="x") == Record(1, note="y")  # compare=False
    assert Record(1, extra={"a": 1}) != Record(1, extra={"b": 2})  # compared
    assert hash(Record(1, extra={"a": 1})) == hash(Record(1))  # hash=False (a dict could not be hashed)
    assert "hidden" not in repr(Record(1, hidden="secret"))
    assert Record(1).__eq__(Standard(1)) is NotImplemented  # another class is not equal, as with dataclass
    assert Record(1) != (1,)


def test_everything_else_is_the_dataclass() -> None:
    made = Record(1, "a")
    with pytest.raises(FrozenInstanceError):
        made.number = 2  # type: ignore[misc]
    with pytest.raises(FrozenInstanceError):
        del made.number  # type: ignore[misc]
    assert dataclasses.replace(made, number=2) == Record(2, "a")
    assert dataclasses.asdict(made) == dataclasses.asdict(Standard(1, "a"))
    assert [f.name for f in dataclasses.fields(made)] == [f.name for f in dataclasses.fields(Standard)]
    assert Record.__match_args__ == Standard.__match_args__
    assert not hasattr(made, "__dict__") and hasattr(Unslotted(1), "__dict__")
    assert copy.deepcopy(made) == made and copy.copy(made) == made
    assert {made: 1}[Record(1, "a")] == 1


def test_a_method_the_class_writes_itself_is_kept() -> None:
    assert repr(Secret("sk-proj-abcdefghijklmnop", "test")) == "Secret('sk-…mnop', source='test')"  # masked


def test_recursion_in_repr_shows_dots() -> None:
    holders = Record(1, extra={}), Standard(1, extra={})
    for holder in holders:
        holder.extra["self"] = holder
    assert repr(holders[0]) == repr(holders[1])
    assert repr(holders[0]).endswith("extra={'self': ...})")
