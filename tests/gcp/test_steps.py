"""Conformance of the step syntax with the Workflows syntax reference.

Groups cite the reference page: "Variables" (assign), "Conditions" (switch), "Jumps" (next),
"Iteration" (for), "Subworkflows", "Raise errors" / "Catch errors" (raise, try/except),
"Complete the execution of a workflow" (return, next: end), "Runtime arguments" (main params).
"""

from __future__ import annotations

import time

import pytest

from strato.adapters.gcp.interpreter import VirtualClock, WorkflowSyntaxError, load_workflow, run_workflow

from .helpers import failure, result, run, tags

# --- "Variables": assignments in one step run in order; subscripted targets; values are copied


def test_assign_runs_in_order() -> None:
    source = """
- init:
    assign:
      - a: 1
      - b: ${a + 1}
      - a: ${b * 10}
      - c: ${a + b}
- done:
    return: ${[a, b, c]}
"""
    assert result(source) == [20, 2, 22]


def test_subscripted_assignment() -> None:
    source = """
- init:
    assign:
      - m: {"a": {"b": 1}}
      - l: [0, 0, 0]
      - idx: 0
      - m.a.b: 2
      - m["a"]["c"]: 3
      - m.new: "created"
      - l[idx + 1]: 5
      - l[len(l) - 1]: ${l[1] * 2}
- done:
    return: {m: "${m}", l: "${l}"}
"""
    assert result(source) == {"m": {"a": {"b": 2, "c": 3}, "new": "created"}, "l": [0, 5, 10]}


def test_subscripted_assignment_errors() -> None:
    assert tags(failure([{"a": {"assign": [{"l": [1]}, {"l[3]": 0}]}}])) == ["IndexError"]
    assert tags(failure([{"a": {"assign": [{"m": {}}, {"m.x.y": 0}]}}])) == ["KeyError"]
    assert tags(failure([{"a": {"assign": [{"undefined[0]": 0}]}}])) == ["KeyError"]
    assert tags(failure([{"a": {"assign": [{"s": "text"}, {"s.x": 0}]}}])) == ["TypeError"]


def test_assignment_copies_values() -> None:
    source = """
- init:
    assign:
      - a: {"x": 1}
      - b: ${a}
      - b.x: 2
- done:
    return: ${[a.x, b.x]}
"""
    assert result(source) == [1, 2]


def test_too_many_assignments_in_one_step() -> None:
    with pytest.raises(WorkflowSyntaxError, match=r"limited to 50"):
        load_workflow([{"a": {"assign": [{f"v{i}": i} for i in range(51)]}}])


# --- "Conditions": conditions are checked in order and the first true one wins; with no match the
# step's own next (or the following step) runs; a condition may hold steps or an embedded step.


SWITCH = """
main:
  params: [args]
  steps:
    - init:
        assign:
          - label: "none"
    - choose:
        switch:
          - condition: ${args.n > 10}
            next: big
          - condition: ${args.n > 5}
            next: medium
          - condition: ${args.n > 5}
            next: unreachable
          - condition: ${args.n == 0}
            steps:
              - note:
                  assign:
                    - label: "zero"
              - also:
                  assign:
                    - label: ${label + "!"}
          - condition: ${args.n < 0}
            return: "negative"
        next: tail
    - wrong:
        return: "the switch step's next was ignored"
    - tail:
        return: ${label}
    - medium:
        return: "medium"
    - unreachable:
        return: "unreachable"
    - big:
        return: "big"
"""


@pytest.mark.parametrize(("n", "expected"), [(11, "big"), (6, "medium"), (3, "none"), (0, "zero!"),
                                             (-1, "negative")])
def test_switch_first_match_wins(n: int, expected: str) -> None:
    # A condition's own next wins; after a condition's steps, or with no match, the step's next applies.
    assert result(SWITCH, {"n": n}) == expected


def test_switch_without_match_falls_through() -> None:
    source = """
- s:
    switch:
      - condition: false
        next: never
- after:
    return: "fell through"
- never:
    return: "jumped"
"""
    assert result(source) == "fell through"


def test_switch_condition_must_be_boolean() -> None:
    source = [{"s": {"switch": [{"condition": "${1}", "next": "end"}]}}]
    assert tags(failure(source)) == ["TypeError"]


def test_switch_embedded_raise() -> None:
    source = [{"s": {"switch": [{"condition": True, "raise": {"code": 7, "message": "seven"}}]}}]
    assert failure(source) == {"code": 7, "message": "seven"}


# --- "Jumps": next to any step, backwards too; next: end stops the (sub)workflow


def test_jump_backwards_makes_a_loop() -> None:
    source = """
- init:
    assign:
      - i: 0
- inc:
    assign:
      - i: ${i + 1}
- check:
    switch:
      - condition: ${i < 5}
        next: inc
- done:
    return: ${i}
"""
    assert result(source) == 5


def test_next_end_stops_with_null_result() -> None:
    source = [{"a": {"assign": [{"x": 1}], "next": "end"}}, {"b": {"return": "not reached"}}]
    assert result(source) is None


def test_jump_from_nested_steps_to_an_outer_step() -> None:
    source = """
- outer:
    steps:
      - inner:
          assign:
            - x: 1
          next: target
      - skipped:
          return: "skipped"
- also_skipped:
    return: "also skipped"
- target:
    return: ${x}
"""
    assert result(source) == 1


def test_next_must_name_a_visible_step() -> None:
    with pytest.raises(WorkflowSyntaxError, match=r"step 'a' of 'main': 'next: nowhere'"):
        load_workflow([{"a": {"assign": [{"x": 1}], "next": "nowhere"}}])
    into_loop = [{"a": {"assign": [{"x": 1}], "next": "body"}},
                 {"l": {"for": {"value": "v", "in": [1], "steps": [{"body": {"assign": [{"y": 1}]}}]}}}]
    with pytest.raises(WorkflowSyntaxError, match=r"names no step"):
        load_workflow(into_loop)


# --- "Iteration": for over a list (value, index) or a range (both ends inclusive); break/continue;
# variables created in a loop do not exist outside it.


def test_for_in_list_with_index() -> None:
    source = """
- init:
    assign:
      - out: []
- loop:
    for:
      value: v
      index: i
      in: ["a", "b", "c"]
      steps:
        - add:
            assign:
              - out: ${list.concat(out, string(i) + v)}
- done:
    return: ${out}
"""
    assert result(source) == ["0a", "1b", "2c"]


def test_for_range_is_inclusive() -> None:
    source = """
- init:
    assign:
      - sum: 0
- loop:
    for:
      value: v
      range: [1, 9]
      steps:
        - add:
            assign:
              - sum: ${sum + v}
- done:
    return: ${sum}
"""
    assert result(source) == 45


@pytest.mark.parametrize(("bounds", "expected"), [("[3, 1]", []), ("[1.5, 3]", [1.5, 2.5]), ("[0, 0]", [0]),
                                                  ("${[a, a + 2]}", [2, 3, 4])])
def test_range_bounds(bounds: str, expected: list) -> None:
    source = f"""
- init:
    assign:
      - out: []
      - a: 2
- loop:
    for:
      value: v
      range: {bounds}
      steps:
        - add:
            assign:
              - out: ${{list.concat(out, v)}}
- done:
    return: ${{out}}
"""
    assert result(source) == expected


def test_break_and_continue() -> None:
    source = """
- init:
    assign:
      - out: []
- loop:
    for:
      value: v
      in: [1, 2, 3, 4, 5, 6]
      steps:
        - skip_even:
            switch:
              - condition: ${v % 2 == 0}
                next: continue
        - stop:
            switch:
              - condition: ${v > 4}
                next: break
        - add:
            assign:
              - out: ${list.concat(out, v)}
- done:
    return: ${out}
"""
    assert result(source) == [1, 3]


def test_loop_scoping() -> None:
    # Reference sample "local scope of variable created inside a for loop".
    source = """
- init:
    assign:
      - workflowScope: "foo"
- outerLoop:
    for:
      value: outerLoopValue
      in: [1, 2]
      steps:
        - outerLoopAssign:
            assign:
              - outerLoopScope: ${workflowScope}
              - workflowScope: ${outerLoopValue}
- final:
    return: ${workflowScope}
"""
    assert result(source) == 2
    leak = """
- loop:
    for:
      value: v
      in: [1]
      steps:
        - make:
            assign:
              - inside: ${v}
- final:
    return: ${LEAK}
"""
    assert tags(failure(leak.replace("LEAK", "inside"))) == ["KeyError"]
    assert tags(failure(leak.replace("LEAK", "v"))) == ["KeyError"]


def test_for_in_needs_a_list() -> None:
    source = [{"a": {"assign": [{"m": {"k": 1}}]}},
              {"l": {"for": {"value": "v", "in": "${m}", "steps": [{"s": {"assign": [{"x": 1}]}}]}}}]
    assert tags(failure(source)) == ["TypeError"]


def test_break_outside_a_loop_is_rejected() -> None:
    with pytest.raises(WorkflowSyntaxError, match=r"step 'a' of 'main'.*only valid inside"):
        load_workflow([{"a": {"assign": [{"x": 1}], "next": "break"}}])


# --- "Subworkflows": params with defaults, call with args and result, call in an expression; each
# subworkflow has its own variables; return gives the result (null without one).


SUBWORKFLOWS = """
main:
  params: [args]
  steps:
    - call_it:
        call: greet
        args:
          first: ${args.name}
        result: a
    - call_with_all:
        call: greet
        args:
          first: "Bo"
          greeting: "Bye"
        result: b
    - done:
        return: ${[a, b, greet("Cy", "Yo"), nothing()]}
greet:
  params: [first, greeting: "Hello"]
  steps:
    - r:
        return: ${greeting + ", " + first}
nothing:
  steps:
    - a:
        assign:
          - x: 1
"""


def test_subworkflow_params_defaults_and_results() -> None:
    assert result(SUBWORKFLOWS, {"name": "Al"}) == ["Hello, Al", "Bye, Bo", "Yo, Cy", None]


def test_subworkflow_cannot_see_caller_variables() -> None:
    source = """
main:
  steps:
    - a:
        assign:
          - secret: 1
    - b:
        call: peek
        result: r
peek:
  steps:
    - r:
        return: ${secret}
"""
    assert tags(failure(source)) == ["KeyError"]


def test_subworkflow_call_arguments_are_checked_before_running() -> None:
    base = {"main": {"steps": [{"c": {"call": "greet", "args": {}}}]},
            "greet": {"params": ["first"], "steps": [{"r": {"return": "${first}"}}]}}
    with pytest.raises(WorkflowSyntaxError, match=r"step 'c' of 'main': subworkflow 'greet' needs argument 'first'"):
        load_workflow(base)
    base["main"]["steps"][0]["c"]["args"] = {"first": 1, "other": 2}
    with pytest.raises(WorkflowSyntaxError, match=r"has no parameter 'other'"):
        load_workflow(base)


def test_next_end_in_a_subworkflow_returns_null_to_the_caller() -> None:
    source = """
main:
  steps:
    - c:
        call: stop
        result: r
    - done:
        return: ${r == null}
stop:
  steps:
    - s:
        next: end
    - never:
        return: 1
"""
    assert result(source) is True


def test_unbounded_recursion_is_a_recursion_error() -> None:
    source = """
main:
  steps:
    - c:
        return: ${down(0)}
down:
  params: [n]
  steps:
    - r:
        return: ${down(n + 1)}
"""
    assert tags(failure(source)) == ["RecursionError"]


# --- "Raise errors" and "Catch errors": raise a string or a map; except as e gets it unchanged


def test_raise_string_and_map_are_caught_as_raised() -> None:
    # Variables an except block should leave behind are created before it ("Catch errors" > "Variable
    # scope", https://cloud.google.com/workflows/docs/reference/syntax/catching-errors).
    source = """
main:
  steps:
    - init:
        assign:
          - first: null
          - second: null
    - s1:
        try:
          raise: "plain text"
        except:
          as: e
          steps:
            - keep1:
                assign:
                  - first: ${e}
    - s2:
        try:
          steps:
            - boom:
                raise:
                  code: 55
                  message: ${"built " + first}
        except:
          as: e
          steps:
            - keep2:
                assign:
                  - second: ${e}
    - done:
        return: ${[first, second]}
"""
    assert result(source) == ["plain text", {"code": 55, "message": "built plain text"}]


def test_uncaught_error_fails_the_execution_with_the_raised_value() -> None:
    assert failure([{"r": {"raise": {"code": 1, "tags": ["Custom"]}}}]) == {"code": 1, "tags": ["Custom"]}
    assert failure([{"r": {"raise": "just a string"}}]) == "just a string"


def test_runtime_errors_are_catchable_maps_with_tags() -> None:
    source = """
- t:
    try:
      assign:
        - x: ${1 / 0}
    except:
      as: e
      steps:
        - r:
            return: {tags: "${e.tags}", has_message: "${\\"message\\" in e}"}
"""
    assert result(source) == {"tags": ["ZeroDivisionError"], "has_message": True}


def test_except_can_rethrow() -> None:
    source = """
- t:
    try:
      raise: {"code": 1}
    except:
      as: e
      steps:
        - again:
            raise: '${map.merge(e, {"wrapped": true})}'
"""
    assert failure(source) == {"code": 1, "wrapped": True}


# --- "Runtime arguments": main takes one parameter, the execution argument; "Returning bytes": a
# workflow cannot return bytes


def test_main_arguments() -> None:
    source = {"main": {"params": ["input"], "steps": [{"r": {"return": "${input}"}}]}}
    assert result(source, {"k": [1]}) == {"k": [1]}
    assert result(source) is None
    assert result([{"r": {"return": 1}}], {"ignored": True}) == 1
    with pytest.raises(WorkflowSyntaxError, match=r"at most one parameter"):
        load_workflow({"main": {"params": ["a", "b"], "steps": [{"r": {"return": 1}}]}})


def test_returning_bytes_fails() -> None:
    assert tags(failure([{"r": {"return": '${text.encode("x")}'}}])) == ["TypeError"]


# --- sys.sleep, sys.log, step counting, resource limits


def test_sys_sleep_uses_the_virtual_clock() -> None:
    clock = VirtualClock(start=0)
    source = """
- a:
    call: sys.sleep
    args:
      seconds: 86400
- b:
    call: sys.sleep
    args:
      seconds: 0.5
- now:
    return: ${sys.now()}
"""
    began = time.monotonic()
    execution = run_workflow(source, clock=clock)
    assert time.monotonic() - began < 30  # the virtual delay is hours: nothing slept for real
    assert execution.result == 86400.5
    assert execution.sleeps == [86400, 0.5]
    assert [w.step for w in execution.waits] == ["main.a", "main.b"]
    assert execution.duration == 86400.5


def test_sys_sleep_rejects_bad_values() -> None:
    assert tags(failure([{"a": {"call": "sys.sleep", "args": {"seconds": -1}}}])) == ["ValueError"]
    assert tags(failure([{"a": {"call": "sys.sleep", "args": {"seconds": "1"}}}])) == ["TypeError"]


def test_sys_log_is_recorded() -> None:
    execution = run([{"l": {"call": "sys.log", "args": {"text": "hello", "severity": "INFO"}}},
                     {"d": {"call": "sys.log", "args": {"data": {"k": 1}}}}])
    assert [(e["severity"], e.get("text"), e.get("data")) for e in execution.logs] == [
        ("INFO", "hello", None), ("DEFAULT", None, {"k": 1})]


def test_steps_executed_and_the_step_limit() -> None:
    assert run([{"a": {"assign": [{"x": 1}]}}, {"b": {"return": 1}}]).steps_executed == 2
    forever = [{"loop": {"assign": [{"x": 1}], "next": "loop"}}]
    guarded = [{"t": {"try": {"steps": forever}, "except": {"as": "e", "steps": [{"r": {"return": "caught"}}]}}}]
    for source in (forever, guarded):  # ResourceLimitError cannot be caught
        execution = run(source, max_steps=50)
        assert execution.state == "FAILED"
        assert tags(execution.error) == ["ResourceLimitError"]


def test_call_standard_library_function_with_named_args() -> None:
    source = """
- split:
    call: text.split
    args:
      source: "a;b"
      separator: ";"
    result: parts
- env:
    call: sys.get_env
    args:
      name: STAGE
    result: stage
- done:
    return: ${[parts, stage]}
"""
    assert result(source, env={"STAGE": "prod"}) == [["a", "b"], "prod"]


def test_jump_from_except_back_to_the_try_makes_a_manual_retry_loop() -> None:
    # A common pattern in the reference's samples: count attempts, sleep, and `next` back to the try.
    source = """
- init:
    assign:
      - attempts: 0
- attempt:
    try:
      steps:
        - count:
            assign:
              - attempts: ${attempts + 1}
        - maybe_fail:
            switch:
              - condition: ${attempts < 3}
                raise: "not yet"
    except:
      as: e
      steps:
        - pause:
            call: sys.sleep
            args:
              seconds: ${attempts * 10}
        - again:
            next: attempt
- done:
    return: ${attempts}
"""
    execution = run(source)
    assert execution.result == 3
    assert execution.sleeps == [10, 20]


def test_loop_iterates_over_the_list_as_it_was_at_the_start() -> None:
    source = """
- init:
    assign:
      - items: [1, 2, 3]
      - seen: []
- loop:
    for:
      value: v
      in: ${items}
      steps:
        - change:
            assign:
              - items[2]: 99
              - seen: ${list.concat(seen, v)}
- done:
    return: ${[seen, items]}
"""
    assert result(source) == [[1, 2, 3], [1, 2, 99]]


def test_sys_sleep_until() -> None:
    source = [{"w": {"call": "sys.sleep_until", "args": {"time": "1970-01-01T00:10:00Z"}}},
              {"r": {"return": "${sys.now()}"}}]
    execution = run_workflow(source, clock=VirtualClock(start=60))
    assert execution.result == 600 and execution.sleeps == [540]
