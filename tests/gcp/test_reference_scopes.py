"""Conformance with the reference: the scope of ``except: as:`` and the call-stack depth limit.

Each expected value comes from the page cited in the test.
"""

from __future__ import annotations

import pytest

from strato.adapters.gcp.interpreter import WorkflowSyntaxError, load_workflow

from .helpers import failure, result

CATCHING_ERRORS = "https://cloud.google.com/workflows/docs/reference/syntax/catching-errors"
VARIABLES = "https://cloud.google.com/workflows/docs/reference/syntax/variables#variable-scope"
QUOTAS = "https://cloud.google.com/workflows/quotas#resource_limits"


def tags(err: object) -> list[str]:
    assert isinstance(err, dict), err
    return list(err["tags"])


# --- "A variable created inside an except block belongs to the local scope of that block, and is
# accessible only in that scope" (CATCHING_ERRORS, "Variable scope"; VARIABLES)


def test_except_as_variable_does_not_outlive_its_block() -> None:
    source = """
- t:
    try:
      raise: "boom"
    except:
      as: e
      steps:
        - inside:
            assign:
              - x: ${e}
- read_e:
    return: ${e}
"""
    err = failure(source)
    assert tags(err) == ["KeyError"] and "'e'" in err["message"]


def test_variable_created_in_except_block_is_gone_after_it() -> None:
    source = """
- t:
    try:
      raise: "boom"
    except:
      as: e
      steps:
        - inside:
            assign:
              - created_inside: ${e}
- read:
    return: ${created_inside}
"""
    assert tags(failure(source)) == ["KeyError"]


def test_variable_assigned_before_the_block_is_shared_with_it() -> None:
    # CATCHING_ERRORS: "assign the variable before the block to place it in the surrounding scope".
    source = """
- init:
    assign:
      - outcome: null
- t:
    try:
      raise: {"code": 7}
    except:
      as: e
      steps:
        - keep:
            assign:
              - outcome: ${e.code}
- done:
    return: ${outcome}
"""
    assert result(source) == 7


def test_except_as_shadows_an_outer_variable_of_the_same_name_for_the_block_only() -> None:
    source = """
- init:
    assign:
      - e: "outer"
      - seen: null
- t:
    try:
      raise: "inner"
    except:
      as: e
      steps:
        - keep:
            assign:
              - seen: ${e}
- done:
    return: ${[e, seen]}
"""
    assert result(source) == ["outer", "inner"]


def test_a_later_except_as_inside_a_parallel_for_is_its_own_variable() -> None:
    # The case: a first `as: e` at the top level, then another one in each iteration of a
    # parallel for. The second is the except block's own variable, not a write to the parent's `e`.
    source = """
main:
  steps:
    - first:
        try:
          raise: "top"
        except:
          as: e
          steps:
            - note:
                assign:
                  - top_seen: true
    - init:
        assign:
          - codes: []
    - fan:
        parallel:
          shared: [codes]
          for:
            value: n
            in: [1, 2, 3]
            steps:
              - each:
                  try:
                    raise: {"code": "${n}"}
                  except:
                    as: e
                    steps:
                      - keep:
                          assign:
                            - codes: ${list.concat(codes, e.code)}
    - done:
        return: ${codes}
"""
    load_workflow(source)  # no deployment error
    assert sorted(result(source)) == [1, 2, 3]


def test_several_catch_handlers_inside_a_parallel_branch() -> None:
    source = """
main:
  steps:
    - init:
        assign:
          - out: {}
    - fan:
        parallel:
          shared: [out]
          branches:
            - b1:
                steps:
                  - t1:
                      try:
                        raise: "x"
                      except:
                        as: err
                        steps:
                          - k1:
                              assign:
                                - out.b1: ${err}
                  - t2:
                      try:
                        raise: "y"
                      except:
                        as: err
                        steps:
                          - k2:
                              assign:
                                - out.b1b: ${err}
            - b2:
                steps:
                  - t3:
                      try:
                        raise: "z"
                      except:
                        as: err
                        steps:
                          - k3:
                              assign:
                                - out.b2: ${err}
    - done:
        return: ${out}
"""
    assert result(source) == {"b1": "x", "b1b": "y", "b2": "z"}


def test_writing_an_unshared_parent_variable_from_an_except_block_is_still_refused() -> None:
    # Syntax reference, "Parallel steps" (https://cloud.google.com/workflows/docs/reference/syntax/parallel-steps):
    # a parent variable assigned in a branch must be listed in `shared`.
    source = """
main:
  steps:
    - init:
        assign:
          - total: 0
    - fan:
        parallel:
          for:
            value: n
            in: [1, 2]
            steps:
              - each:
                  try:
                    raise: "x"
                  except:
                    as: e
                    steps:
                      - bad:
                          assign:
                            - total: 1
"""
    with pytest.raises(WorkflowSyntaxError, match="total"):
        load_workflow(source)


# --- Call stack depth: at most 20 frames (QUOTAS, "Resource limits"). main is a frame, so main plus
# 19 nested subworkflow calls run and the 20th nested call raises RecursionError.


def _nesting(levels: int) -> str:
    return f"""
main:
  steps:
    - go:
        return: ${{down({levels})}}
down:
  params: [n]
  steps:
    - check:
        switch:
          - condition: ${{n == 1}}
            return: 1
    - deeper:
        return: ${{1 + down(n - 1)}}
"""


def test_nineteen_nested_calls_fit_in_the_call_stack() -> None:
    assert result(_nesting(19)) == 19


def test_the_twentieth_nested_call_is_a_recursion_error() -> None:
    err = failure(_nesting(20))
    assert tags(err) == ["RecursionError"]
    assert "20" in err["message"]


def test_the_boundary_is_the_same_through_call_steps() -> None:
    def chain(levels: int) -> dict:
        doc: dict = {"main": {"steps": [{"c": {"call": "s1", "result": "r"}}, {"r": {"return": "${r}"}}]}}
        for i in range(1, levels + 1):
            steps = ([{"c": {"call": f"s{i + 1}", "result": "r"}}, {"r": {"return": "${r}"}}] if i < levels
                     else [{"r": {"return": i}}])
            doc[f"s{i}"] = {"steps": steps}
        return doc

    assert result(chain(19)) == 19
    assert tags(failure(chain(20))) == ["RecursionError"]


def test_recursion_error_is_catchable_by_the_caller() -> None:
    # Workflow errors reference (https://cloud.google.com/workflows/docs/reference/syntax/catching-errors):
    # RecursionError is an ordinary error tag, so a try/except around the call catches it.
    source = _nesting(25).replace("""    - go:
        return: ${down(25)}""", """    - go:
        try:
          return: ${down(25)}
        except:
          as: e
          steps:
            - r:
                return: ${e.tags}""")
    assert result(source) == ["RecursionError"]
