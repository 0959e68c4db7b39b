"""Language rules checked against the Workflows syntax reference, one group per page.

Every expected value below comes from the page cited above its test:
- variables and except scope: https://cloud.google.com/workflows/docs/reference/syntax/variables#variable-scope
  and https://cloud.google.com/workflows/docs/reference/syntax/catching-errors#variable-scope
- call stack depth: https://cloud.google.com/workflows/quotas#resource_limits ("Call stack depth", 20)
- implicit conversions: https://cloud.google.com/workflows/docs/reference/syntax/datatypes#implicit-conversions
- if(): https://cloud.google.com/workflows/docs/reference/stdlib/expression-helpers#conditional_functions
"""

from __future__ import annotations

from typing import Any

import pytest

from strato.adapters.gcp.interpreter import load_workflow

from .helpers import ev, ev_error, failure, result, tags

# --- except scope. catching-errors#variable-scope: "A variable created inside an except block belongs to the
# local scope of that block, and is accessible only in that scope ... assign the variable before the block to
# place it in the surrounding scope."


def test_the_as_variable_lives_only_inside_its_except_block() -> None:
    source = """
main:
  steps:
    - t:
        try:
          raise: "boom"
        except:
          as: e
          steps:
            - inside:
                assign:
                  - seen: ${e}
    - after:
        return: ${e}
"""
    err = failure(source)
    assert tags(err) == ["KeyError"]


def test_variables_created_in_an_except_block_vanish_while_earlier_ones_are_written_through() -> None:
    source = """
main:
  steps:
    - declare:
        assign:
          - kept: null
    - t:
        try:
          raise: "boom"
        except:
          as: e
          steps:
            - inside:
                assign:
                  - kept: ${e}
                  - local_only: 1
    - after:
        return: ${kept}
"""
    assert result(source) == "boom"
    leaked = source.replace("return: ${kept}", "return: ${local_only}")
    assert tags(failure(leaked)) == ["KeyError"]


def test_as_in_a_parallel_for_after_an_earlier_as_of_the_same_name() -> None:
    # The first `as: e` does not outlive its block, so the iterations' `as: e` creates a branch variable
    # rather than writing an unshared parent variable (parallel-steps: only `shared` parent variables
    # are writable; https://cloud.google.com/workflows/docs/reference/syntax/parallel-steps).
    source = """
main:
  steps:
    - init:
        assign:
          - failures: 0
    - first:
        try:
          raise: "once"
        except:
          as: e
          steps:
            - count:
                assign:
                  - failures: ${failures + 1}
    - fan:
        parallel:
          shared: [failures]
          for:
            value: item
            in: [1, 2, 3]
            steps:
              - each:
                  try:
                    raise: ${item}
                  except:
                    as: e
                    steps:
                      - tally:
                          assign:
                            - failures: ${failures + e}
    - done:
        return: ${failures}
"""
    load_workflow(source)
    assert result(source) == 7




# --- call stack depth: quotas page, resource limits, "Call stack depth: 20". The stack holds main's frame too,
# so main plus 19 nested subworkflow calls fit and the 20th nested call raises RecursionError.

DEPTH_SOURCE = """
main:
  params: [args]
  steps:
    - go:
        return: ${down(args.n)}
down:
  params: [n]
  steps:
    - bottom:
        switch:
          - condition: ${n == 0}
            return: "bottom"
    - deeper:
        return: ${down(n - 1)}
"""


def _nested_calls(k: int) -> dict[str, Any]:
    """Arguments making main nest exactly ``k`` subworkflow calls (down(k - 1) ... down(0))."""
    return {"n": k - 1}


def test_main_and_nineteen_nested_calls_fit_the_call_stack() -> None:
    assert result(DEPTH_SOURCE, _nested_calls(19)) == "bottom"


def test_the_twentieth_nested_call_is_a_recursion_error() -> None:
    assert tags(failure(DEPTH_SOURCE, _nested_calls(20))) == ["RecursionError"]


def test_call_steps_count_towards_the_same_depth() -> None:
    source = """
main:
  params: [args]
  steps:
    - go:
        call: down
        args:
          n: ${args.n}
        result: r
    - out:
        return: ${r}
down:
  params: [n]
  steps:
    - bottom:
        switch:
          - condition: ${n == 0}
            return: "bottom"
    - deeper:
        call: down
        args:
          n: ${n - 1}
        result: r
    - out:
        return: ${r}
"""
    assert result(source, _nested_calls(19)) == "bottom"
    assert tags(failure(source, _nested_calls(20))) == ["RecursionError"]


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
