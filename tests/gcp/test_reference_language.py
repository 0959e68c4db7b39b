"""Language rules checked against the Workflows syntax reference, one group per page (except scopes
and the call stack depth are in ``test_reference_scopes.py``).

Every expected value below comes from the page cited above its test:
- implicit conversions: https://cloud.google.com/workflows/docs/reference/syntax/datatypes#implicit-conversions
- if(): https://cloud.google.com/workflows/docs/reference/stdlib/expression-helpers#conditional_functions
"""

from __future__ import annotations

import pytest

from .helpers import ev, ev_error, tags

# --- implicit conversions: the "+ operator" table of the data types page.
#              INTEGER  DOUBLE  STRING  BOOL
#     INTEGER  INTEGER  DOUBLE  STRING  ERROR
#     DOUBLE   DOUBLE   DOUBLE  STRING  ERROR
#     STRING   STRING   STRING  STRING  STRING
#     BOOL     ERROR    ERROR   STRING  ERROR

OPERANDS = {"INTEGER": "2", "DOUBLE": "0.5", "STRING": '"s"', "BOOL": "true"}
PLUS_TABLE = {
    "INTEGER": {"INTEGER": 4, "DOUBLE": 2.5, "STRING": "2s", "BOOL": None},
    "DOUBLE": {"INTEGER": 2.5, "DOUBLE": 1.0, "STRING": "0.5s", "BOOL": None},
    "STRING": {"INTEGER": "s2", "DOUBLE": "s0.5", "STRING": "ss", "BOOL": "strue"},
    "BOOL": {"INTEGER": None, "DOUBLE": None, "STRING": "trues", "BOOL": None},
}


@pytest.mark.parametrize(("left", "right"), [(a, b) for a in OPERANDS for b in OPERANDS])
def test_plus_follows_the_conversion_table(left: str, right: str) -> None:
    expected = PLUS_TABLE[left][right]
    expression = f"{OPERANDS[left]} + {OPERANDS[right]}"
    if expected is None:
        assert tags(ev_error(expression)) == ["TypeError"]
    else:
        got = ev(expression)
        assert got == expected and type(got) is type(expected)


def test_hello_plus_42() -> None:
    assert ev('"hello" + 42') == "hello42"
    assert ev('42 + "hello"') == "42hello"


def test_plus_outside_the_table_is_a_type_error() -> None:
    # The tables cover integer, double, string and boolean only: null, lists and maps have no `+`.
    for expression in ('"a" + null', '"a" + [1]', '"a" + {"k": 1}', "null + null"):
        assert tags(ev_error(expression)) == ["TypeError"], expression


# --- if(): "If condition evaluates to false or null, ifFalse is returned."


def test_if_treats_null_as_false() -> None:
    assert ev("if(null, 1, 2)") == 2
    assert ev("if(true, 1, 2)") == 1
    assert tags(ev_error('if("yes", 1, 2)')) == ["TypeError"]
