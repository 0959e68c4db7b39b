"""Conformance of ``parallel`` with the reference's "Parallel steps" page.

Rules checked: branches or a for loop; variables of the parent scope are readable, writable only
when listed in ``shared`` (otherwise a deployment error), and a branch's own variables stay in the
branch; ``concurrency_limit`` queues further branches and iterations; ``continueAll`` lets the
other branches run after an unhandled error, which then surfaces as ``UnhandledBranchError``.
Branches run one after another here, each started on the virtual clock when a concurrent
execution would start it, so timings are those of the concurrent run.
"""

from __future__ import annotations

import pytest

from strato.adapters.gcp.interpreter import VirtualClock, WorkflowSyntaxError, load_workflow

from .helpers import failure, result, run, tags

SHARED = """
- init:
    assign:
      - input: ["apples", "oranges"]
      - my_result: {}
      - untouched: "parent"
- parallelStep:
    parallel:
      shared: [my_result]
      branches:
        - getStock:
            steps:
              - assignResult1:
                  assign:
                    - my_result["getStock"]: ${"stock of " + input[0]}
                    - temp: 1
        - orderStock:
            steps:
              - assignResult2:
                  assign:
                    - my_result["orderStock"]: ${"order of " + input[1]}
                    - temp: 2
- done:
    return: ${my_result}
"""


def test_shared_variables_are_written_back() -> None:
    assert result(SHARED) == {"getStock": "stock of apples", "orderStock": "order of oranges"}


def test_branch_variables_stay_in_the_branch() -> None:
    source = SHARED.replace("return: ${my_result}", "return: ${temp}")
    assert tags(failure(source)) == ["KeyError"]


def test_assigning_a_parent_variable_that_is_not_shared_is_rejected() -> None:
    # Reference sample: "- input: 5  # deployment error, defined in the parent scope but not marked shared"
    source = SHARED.replace("- temp: 2", "- input: 5")
    with pytest.raises(WorkflowSyntaxError, match=r"step 'assignResult2' of 'main': variable 'input' .* 'shared'"):
        load_workflow(source)
    subscripted = SHARED.replace("- temp: 2", "- input[0]: 5")
    with pytest.raises(WorkflowSyntaxError, match=r"not listed in 'shared'"):
        load_workflow(subscripted)


def test_shared_variable_must_exist_before_the_parallel_step() -> None:
    source = SHARED.replace("shared: [my_result]", "shared: [my_result, later]")
    with pytest.raises(WorkflowSyntaxError, match=r"shared variable 'later' must be assigned before"):
        load_workflow(source)


def test_shared_counter_sees_other_branches_writes() -> None:
    source = """
- init:
    assign:
      - total: 0
- fan:
    parallel:
      shared: [total]
      for:
        value: n
        in: [1, 2, 3, 4]
        steps:
          - add:
              assign:
                - total: ${total + n}
- done:
    return: ${total}
"""
    assert result(source) == 10


def test_parallel_for_iteration_variables_are_per_iteration() -> None:
    source = """
- init:
    assign:
      - out: {}
- fan:
    parallel:
      shared: [out]
      for:
        value: item
        index: i
        in: ["a", "b", "c"]
        steps:
          - local:
              assign:
                - doubled: ${item + item}
          - skip_b:
              switch:
                - condition: ${item == "b"}
                  next: continue
          - store:
              assign:
                - out[doubled]: ${i}
- done:
    return: ${out}
"""
    assert result(source) == {"aa": 0, "cc": 2}


SLEEPERS = """
- init:
    assign:
      - started: []
- fan:
    parallel:
      shared: [started]
      LIMIT
      for:
        value: n
        range: [1, 5]
        steps:
          - mark:
              assign:
                - started: ${list.concat(started, sys.now())}
          - work:
              call: sys.sleep
              args:
                seconds: 10
- done:
    return: ${started}
"""


@pytest.mark.parametrize(("limit", "starts", "duration"), [
    ("", [0, 0, 0, 0, 0], 10),
    ("concurrency_limit: 2", [0, 0, 10, 10, 20], 30),
    ("concurrency_limit: ${1 + 2}", [0, 0, 0, 10, 10], 20),
    ("concurrency_limit: 1", [0, 10, 20, 30, 40], 50),
])
def test_concurrency_limit_queues_branches(limit: str, starts: list[int], duration: int) -> None:
    execution = run(SLEEPERS.replace("LIMIT", limit), clock=VirtualClock(start=0))
    assert execution.result == starts
    assert execution.duration == duration
    assert execution.sleeps == [10] * 5


def test_branches_of_different_lengths_end_with_the_slowest() -> None:
    source = """
- fan:
    parallel:
      branches:
        - quick:
            steps:
              - s:
                  call: sys.sleep
                  args:
                    seconds: 3
        - slow:
            steps:
              - s2:
                  call: sys.sleep
                  args:
                    seconds: 8
- after:
    return: ${sys.now()}
"""
    execution = run(source, clock=VirtualClock(start=100))
    assert execution.result == 108
    assert [(w.at, w.seconds) for w in execution.waits] == [(100, 3), (100, 8)]


UNHANDLED = """
- init:
    assign:
      - done: []
- fan:
    parallel:
      shared: [done]
      branches:
        - fails:
            steps:
              - boom:
                  raise:
                    code: 42
                    message: "branch failed"
        - succeeds:
            steps:
              - record:
                  assign:
                    - done: ${list.concat(done, "succeeds")}
        - fails_too:
            steps:
              - bad:
                  assign:
                    - x: ${1 / 0}
- after:
    return: "not reached"
"""


def test_unhandled_branch_error() -> None:
    execution = run(UNHANDLED)
    assert execution.state == "FAILED"
    err = execution.error
    assert tags(err) == ["UnhandledBranchError"]
    assert err["message"].startswith("UnhandledBranchError")
    assert [b["id"] for b in err["branches"]] == ["fails", "fails_too"]
    assert err["branches"][0]["error"] == {"code": 42, "message": "branch failed"}
    assert tags(err["branches"][1]["error"]) == ["ZeroDivisionError"]


def test_unhandled_branch_error_is_catchable_and_other_branches_completed() -> None:
    # Reference sample "Perform error handling in a parallel step", plus continueAll: the healthy
    # branch ran to completion and its shared write is kept.
    source = """
- init:
    assign:
      - done: []
- guarded:
    try:
      steps:
        - fan:
            parallel:
              shared: [done]
              branches:
                - fails:
                    steps:
                      - boom:
                          raise: "branch failed"
                - succeeds:
                    steps:
                      - record:
                          assign:
                            - done: ${list.concat(done, "succeeds")}
    except:
      as: e
      steps:
        - report:
            return: ${[done, e.tags, e.branches[0].error]}
"""
    assert result(source) == [["succeeds"], ["UnhandledBranchError"], "branch failed"]


def test_parallel_for_errors_are_reported_per_iteration() -> None:
    source = """
- fan:
    parallel:
      for:
        value: num
        range: [0, 5]
        steps:
          - checkEven:
              switch:
                - condition: ${num % 2 != 0}
                  raise: "how odd!"
"""
    err = failure(source)
    assert [b["id"] for b in err["branches"]] == ["1", "3", "5"]
    assert {b["error"] for b in err["branches"]} == {"how odd!"}


def test_nested_parallel_shares_through_both_levels() -> None:
    source = """
- init:
    assign:
      - log: []
- outer:
    parallel:
      shared: [log]
      branches:
        - a:
            steps:
              - inner:
                  parallel:
                    shared: [log]
                    branches:
                      - a1:
                          steps:
                            - w1:
                                assign:
                                  - log: ${list.concat(log, "a1")}
                      - a2:
                          steps:
                            - w2:
                                assign:
                                  - log: ${list.concat(log, "a2")}
        - b:
            steps:
              - w3:
                  assign:
                    - log: ${list.concat(log, "b")}
- done:
    return: ${log}
"""
    assert result(source) == ["a1", "a2", "b"]


@pytest.mark.parametrize(("patch", "message"), [
    ({"exception_policy": "stopAll"}, "only 'continueAll'"),
    ({"concurrency_limit": 0}, "positive integer"),
    ({"branches": [{"only": {"steps": [{"s": {"assign": [{"x": 1}]}}]}}]}, "at least two branches"),
])
def test_parallel_syntax_errors(patch: dict, message: str) -> None:
    parallel = {"branches": [{"a": {"steps": [{"s": {"assign": [{"x": 1}]}}]}},
                             {"b": {"steps": [{"t": {"assign": [{"y": 1}]}}]}}]}
    parallel.update(patch)
    with pytest.raises(WorkflowSyntaxError, match=f"step 'p' of 'main': .*{message}"):
        load_workflow([{"p": {"parallel": parallel}}])


def test_return_and_break_are_rejected_inside_parallel_bodies() -> None:
    with pytest.raises(WorkflowSyntaxError, match=r"'return' inside a parallel branch"):
        load_workflow([{"p": {"parallel": {"for": {"value": "v", "in": [1], "steps": [{"r": {"return": 1}}]}}}}])
    with pytest.raises(WorkflowSyntaxError, match=r"'next: break'"):
        load_workflow([{"p": {"parallel": {"for": {"value": "v", "in": [1],
                                                   "steps": [{"r": {"assign": [{"x": 1}], "next": "break"}}]}}}}])
