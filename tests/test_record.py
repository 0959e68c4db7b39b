"""Records behave as the dataclasses they stand for; only when their methods are generated differs."""

from __future__ import annotations

import copy
import dataclasses
import pickle
import subprocess
import sys
from dataclasses import field

import pytest

from strato import ir
from strato._record import record
from strato.errors import Location


@record(slots=True)
class Point:
    """A frozen, slotted record."""

    x: int
    y: int = 0
    label: str | None = field(default=None, compare=False)


@dataclasses.dataclass(frozen=True, slots=True)
class PointDataclass:
    x: int
    y: int = 0
    label: str | None = field(default=None, compare=False)


@record
class Bag:
    """A frozen record with a default factory and a __post_init__."""

    items: tuple[int, ...]
    extra: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "extra", {**self.extra, "count": len(self.items)})


@record(frozen=False)
class Counter:
    """A mutable record."""

    n: int = 0


def test_a_record_equals_hashes_and_prints_as_the_dataclass_would() -> None:
    a, b = Point(1, 2, label="a"), Point(1, 2, label="b")
    da, db = PointDataclass(1, 2, label="a"), PointDataclass(1, 2, label="b")
    assert (a == b) == (da == db) is True
    assert (hash(a) == hash(b)) == (hash(da) == hash(db)) is True
    assert repr(a) == repr(da).replace("PointDataclass", "Point")
    assert a != Point(2, 2) and a != (1, 2) and Point(1) == Point(1, 0)
    assert [f.name for f in dataclasses.fields(Point)] == ["x", "y", "label"] and Point.__match_args__ == ("x", "y",
                                                                                                          "label")


def test_a_record_keeps_its_defaults_factories_and_post_init() -> None:
    first, second = Bag((1, 2)), Bag((3,))
    assert first.extra == {"count": 2} and second.extra == {"count": 1}
    assert first.extra is not second.extra
    with pytest.raises(TypeError):
        hash(first)  # a dict field: unhashable, as a frozen dataclass holding a dict


def test_a_frozen_record_refuses_assignment_and_a_mutable_one_does_not_hash() -> None:
    point = Point(1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        point.x = 2  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del point.x  # type: ignore[misc]
    counter = Counter()
    counter.n += 1
    assert counter == Counter(1) and Counter.__hash__ is None


def test_records_copy_pickle_and_replace() -> None:
    point, bag = Point(1, 2, label="p"), Bag((1,))
    assert copy.deepcopy(point) == point and copy.copy(point).label == "p"
    assert pickle.loads(pickle.dumps(point)) == point and pickle.loads(pickle.dumps(bag)) == bag
    assert dataclasses.replace(point, y=5) == Point(1, 5) and dataclasses.asdict(point) == {"x": 1, "y": 2,
                                                                                             "label": "p"}


def test_a_record_made_without_init_still_compares() -> None:
    """``copy`` and ``pickle`` make instances without ``__init__``: the other methods generate too."""

    @record(slots=True)
    class Fresh:
        """Never instantiated before the copy below."""

        value: int

    made = object.__new__(Fresh)
    object.__setattr__(made, "value", 3)
    assert made == copy.copy(made) and repr(made).endswith("Fresh(value=3)") and hash(made) == hash((3,))


def test_a_record_that_writes_its_own_methods_is_refused() -> None:
    with pytest.raises(TypeError, match="defines __eq__"):

        @record
        class Custom:
            """Equality of its own."""

            x: int

            def __eq__(self, other: object) -> bool:
                return True


def test_ir_values_round_trip_through_json() -> None:
    node = ir.TaskNode(id="t", task="mod:fn", args={"x": ir.Literal(1), "y": ir.Ref("u", ("a", 0))},
                       location=Location("p.py", 3))
    assert node == dataclasses.replace(node, location=None)  # the location is not compared, as before
    assert ir.Ref("u", ("a", 0)) in {ir.Ref("u", ("a", 0))}


def test_importing_the_ir_compiles_no_code() -> None:
    """The point of records: ``__init__`` is compiled on first use, so importing the IR compiles none."""
    code = ("import strato.ir as ir\n"
            "built = [c.__name__ for c in vars(ir).values() if isinstance(c, type) and "
            "getattr(c.__init__, '__code__', ir.Ref.__init__.__code__).co_filename.startswith('<record')]\n"
            "print(built, sum(1 for c in vars(ir).values() if hasattr(c, '__dataclass_fields__')))\n"
            "ir.Ref('a')\n"
            "print(ir.Ref.__init__.__code__.co_filename)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/")
    listed, compiled = out.stdout.splitlines()
    assert listed.startswith("[] ") and int(listed.split()[-1]) > 20, out.stdout
    assert compiled == "<record strato.ir.Ref>"
