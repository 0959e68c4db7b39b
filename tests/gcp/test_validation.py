"""Definitions are checked before running, as Workflows checks them at deployment.

Structural rules come from the syntax reference ("Syntax overview": one main workflow, optional
subworkflows, steps are single-key maps) and the public JSON schema vendored beside the
interpreter (SchemaStore's ``workflows.json``); unsupported features get a clear error naming the step.
"""

from __future__ import annotations

from typing import Any

import pytest

from strato.adapters.gcp.interpreter import (
    WorkflowSyntaxError,
    load_workflow,
    run_workflow,
    schema_errors,
    workflow_schema,
)

from .helpers import result
from .test_parallel import SHARED
from .test_retry import CUSTOM_BACKOFF, CUSTOM_PREDICATE
from .test_steps import SUBWORKFLOWS, SWITCH


@pytest.mark.parametrize(("source", "message"), [
    ({"steps": []}, "workflow: there is no 'main' workflow"),
    ("- a: [", "workflow: invalid YAML"),
    (42, "workflow: the definition must be"),
    ({"main": {"steps": [], "extra": 1}}, "subworkflow 'main': unsupported keyword 'extra'"),
    ({"main": {"steps": []}}, "subworkflow 'main': 'steps' must be a non-empty list"),
    ([{"a": {"assign": [{"x": 1}]}, "b": {"return": 1}}], "each step must be a map with exactly one key"),
    ([{"a": {"assign": [{"x": 1}]}}, {"a": {"return": 1}}], "step 'a' of 'main': duplicate step name"),
    ([{"end": {"return": 1}}], "'end' is reserved"),
    ([{"a": {"assign": [{"x": 1}], "return": 1}}], "step 'a' of 'main': a step can do only one thing"),
    ([{"a": {"retrun": 1}}], "step 'a' of 'main': unsupported keyword 'retrun'"),
    ([{"a": {"result": "x"}}], "step 'a' of 'main': the step does nothing"),
    ([{"a": {"assign": [{"x": 1}], "result": "r"}}], "'result' is only valid with 'call'"),
    ([{"a": {"call": "nowhere"}}], "step 'a' of 'main': call 'nowhere': unknown function 'nowhere'"),
    ([{"a": {"call": "events.await_callback", "args": {}}}], "events.await_callback is not supported by this emulator"),
    ([{"a": {"assign": [{"1x": 1}]}}], "invalid assignment target '1x'"),
    ([{"a": {"assign": [{"f(x)": 1}]}}], "not an assignable name"),
    ([{"a": {"call": "sys.sleep", "args": {"seconds": 1}, "result": "not a name"}}], "'result' must be a variable"),
    ([{"a": {"switch": [{"next": "end"}]}}], "each switch entry must be a map with a 'condition'"),
    ([{"a": {"switch": [{"condition": "x > 1", "next": "end"}]}}], "a condition must be an expression"),
    ([{"a": {"for": {"value": "v", "steps": [{"s": {"return": 1}}]}}}], "exactly one of 'in' and 'range'"),
    ([{"a": {"for": {"value": "v", "range": [1], "steps": [{"s": {"return": 1}}]}}}], "'range' must be a list of two"),
    ([{"a": {"try": {"return": 1}, "except": {"as": "e"}}}], "'except' must be a map with 'steps'"),
    ([{"a": {"try": {"return": 1}, "retry": {"predicate": "${retry.always}", "max_retries": 1,
                                             "backoff": {"initial_delay": 1}}}}], "'backoff' needs exactly"),
    ({"main": {"params": [{"x": 1}], "steps": [{"r": {"return": 1}}]}}, "main's parameter cannot have a default"),
    ({"main": {"steps": [{"r": {"return": 1}}]}, "sub": {"params": ["a", "a"], "steps": [{"r": {"return": 1}}]}},
     "subworkflow 'sub': duplicate parameter 'a'"),
])
def test_invalid_definitions_are_rejected_with_a_location(source: Any, message: str) -> None:
    with pytest.raises(WorkflowSyntaxError) as info:
        load_workflow(source)
    assert message in str(info.value)


def test_nested_step_errors_name_the_nested_step() -> None:
    source = """
main:
  steps:
    - outer:
        for:
          value: v
          in: [1]
          steps:
            - inner:
                assign:
                  - x: ${v +* 2}
"""
    with pytest.raises(WorkflowSyntaxError, match=r"^step 'inner' of 'main': unexpected '\*'"):
        load_workflow(source)
    sub = {"main": {"steps": [{"r": {"return": 1}}]}, "helper": {"steps": [{"h": {"call": "unknown.fn"}}]}}
    with pytest.raises(WorkflowSyntaxError, match=r"^step 'h' of 'helper':"):
        load_workflow(sub)


def test_errors_are_found_before_anything_runs() -> None:
    calls: list[str] = []
    source = [{"first": {"call": "sys.log", "args": {"text": "ran"}}},
              {"later": {"return": "${len()}"}}]
    with pytest.raises(WorkflowSyntaxError, match=r"step 'later'"):
        run_workflow(source)
    assert calls == []


def test_yaml_booleans_and_dates_follow_yaml_1_2() -> None:
    # Workflows' booleans are true/True/TRUE; "on", "yes" and dates stay strings.
    source = """
- a:
    assign:
      - values: [on, yes, off, 2024-03-01, True, FALSE]
- b:
    return: ${values}
"""
    assert result(source) == ["on", "yes", "off", "2024-03-01", True, False]


def test_json_source_is_accepted() -> None:
    assert result('{"main": {"steps": [{"r": {"return": "${1 + 1}"}}]}}') == 2


# --- Structural validation against the official JSON schema


def test_schema_is_vendored_with_its_notice() -> None:
    schema = workflow_schema()
    assert schema["$id"] == "https://json.schemastore.org/workflows.json"
    assert "step" in schema["definitions"]


@pytest.mark.parametrize("source", [SWITCH, SUBWORKFLOWS, CUSTOM_BACKOFF, SHARED,
                                    CUSTOM_PREDICATE.replace("${code}", "7").replace("${limit}", "5")])
def test_conformance_workflows_satisfy_the_json_schema(source: str) -> None:
    pytest.importorskip("jsonschema")
    assert schema_errors(source) == []
    load_workflow(source)  # and the interpreter accepts them too


def test_schema_reports_structural_errors() -> None:
    pytest.importorskip("jsonschema")
    bad = {"main": {"steps": [{"a": {"assign": [{"x": 1}], "retrun": 1}}]}}
    errors = schema_errors(bad)
    assert errors == ["main/steps/0/a: Additional properties are not allowed ('retrun' was unexpected)"]
    placeholders = schema_errors(CUSTOM_PREDICATE)  # "${limit}" where the schema wants an integer literal
    assert placeholders and all("is not of type 'integer'" in e for e in placeholders)
    with pytest.raises(WorkflowSyntaxError, match=r"unsupported keyword 'retrun'"):
        load_workflow(bad)
    # The schema misses semantic errors (an unknown jump target); the interpreter catches them.
    dangling = {"main": {"steps": [{"a": {"assign": [{"x": 1}], "next": "missing"}}]}}
    assert schema_errors(dangling) == []
    with pytest.raises(WorkflowSyntaxError, match=r"'next: missing'"):
        load_workflow(dangling)
