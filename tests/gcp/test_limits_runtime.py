"""Every limit of the Workflows quotas page (https://cloud.google.com/workflows/quotas), at the limit and
one past it: what the service accepts runs here, what it refuses fails with the service's error."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("yaml")

from strato.adapters.gcp.conformance import (
    MAX_ASSIGNMENTS,
    MAX_BRANCHES,
    MAX_CONDITIONS,
    MAX_EXPRESSION_CHARS,
    MAX_SOURCE_BYTES,
    check_workflow,
)
from strato.adapters.gcp.interpreter import FunctionTransport, WorkflowSyntaxError, load_workflow
from strato.adapters.gcp.interpreter.engine import (
    MAX_ARGUMENT_BYTES,
    MAX_RESULT_BYTES,
    MAX_STRING_BYTES,
    Engine,
)
from strato.adapters.gcp.interpreter.engine import (
    MAX_RESPONSE_BYTES as MAX_HTTP_RESPONSE_BYTES,
)
from strato.adapters.gcp.interpreter.syntax import Compiler

from .helpers import failure, result, run, tags


def _main(*steps: dict[str, Any], params: list[str] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"steps": list(steps)}
    if params:
        body["params"] = params
    return {"main": body}


def _refused(document: Any, limit: str) -> WorkflowSyntaxError:
    assert [v.limit for v in check_workflow(document)] == [limit]
    with pytest.raises(WorkflowSyntaxError) as info:
        load_workflow(document)
    return info.value


# ------------------------------------------------------------------------------------------ deploy time


def test_source_size() -> None:
    head = "main:\n  steps:\n  - done:\n      return: 1\n#"
    at_limit = head + "x" * (MAX_SOURCE_BYTES - len(head))
    assert len(at_limit.encode()) == MAX_SOURCE_BYTES and check_workflow(at_limit) == []
    assert result(at_limit) == 1
    err = _refused(at_limit + "x", "source_size")
    assert "131,073 bytes" in str(err) and str(err).startswith("workflow: ")


def test_expression_length_counts_the_whole_dollar_brace_string() -> None:
    def literal(n: int) -> str:
        return '${"' + "a" * n + '"}'

    assert len(literal(395)) == MAX_EXPRESSION_CHARS
    assert result(_main({"done": {"return": literal(395)}})) == "a" * 395
    err = _refused(_main({"done": {"return": literal(396)}}), "expression_length")
    assert "step 'done' of 'main'" in str(err) and "401 characters" in str(err)


def test_a_long_literal_string_is_not_an_expression() -> None:
    assert check_workflow(_main({"done": {"return": "a" * 1000}})) == []


def _branches(n: int, inner: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"parallel": {"branches": [{f"b{i}": {"steps": [inner or {f"s{i}": {"assign": [{"x": i}]}}]}}
                                      for i in range(n)]}}


def test_parallel_nesting_depth() -> None:
    two = _main({"outer": _branches(2, {"inner": _branches(2)})})
    assert check_workflow(two) == [] and run(two).succeeded
    three = _main({"outer": _branches(2, {"middle": _branches(2, {"inner": _branches(2)})})})
    err = _refused(three, "parallel_nesting")
    assert "nest 3 deep" in str(err)


def test_parallel_nesting_through_a_subworkflow_call() -> None:
    document = {**_main({"outer": _branches(2, {"middle": _branches(2, {"go": {"call": "sub"}})})}),
                "sub": {"steps": [{"inner": _branches(2)}]}}
    assert [v.limit for v in check_workflow(document)] == ["parallel_nesting"]
    # The service finds this one while running: ParallelNestingError, as the engine raises it too.
    program = Compiler(document).compile()
    err = Engine(program).run().error
    assert "ParallelNestingError" in err["branches"][0]["error"]["branches"][0]["error"]["tags"]


def test_branches_per_parallel_step() -> None:
    assert run(_main({"p": _branches(MAX_BRANCHES)})).succeeded
    assert check_workflow(_main({"p": _branches(MAX_BRANCHES + 1)}))[0].limit == "branches"
    with pytest.raises(WorkflowSyntaxError, match="at most 10 branches"):
        load_workflow(_main({"p": _branches(MAX_BRANCHES + 1)}))


def test_assignments_per_step() -> None:
    def assign(n: int) -> dict[str, Any]:
        return _main({"a": {"assign": [{f"v{i}": i} for i in range(n)]}}, {"done": {"return": "${v0}"}})

    assert result(assign(MAX_ASSIGNMENTS)) == 0
    assert check_workflow(assign(MAX_ASSIGNMENTS + 1))[0].limit == "assignments"
    with pytest.raises(WorkflowSyntaxError, match="limited to 50 assignments"):
        load_workflow(assign(MAX_ASSIGNMENTS + 1))


def test_conditions_per_switch() -> None:
    def switch(n: int) -> dict[str, Any]:
        return _main({"s": {"switch": [{"condition": f"${{{i} == 0}}", "return": i} for i in range(n)]}})

    assert result(switch(MAX_CONDITIONS)) == 0
    assert check_workflow(switch(MAX_CONDITIONS + 1))[0].limit == "conditions"
    with pytest.raises(WorkflowSyntaxError, match="limited to 50 conditions"):
        load_workflow(switch(MAX_CONDITIONS + 1))


def test_step_names() -> None:
    violations = check_workflow(_main({"1st": {"return": 1}}))
    assert [(v.limit, v.where) for v in violations] == [("step_name", "main.1st")]


# -------------------------------------------------------------------------------------------- run time


def _argument(size: int) -> dict[str, str]:
    value = {"a": "x" * (size - len('{"a":""}'))}
    return value


def test_execution_argument_size() -> None:
    echo = _main({"done": {"return": "${len(input.a)}"}}, params=["input"])
    assert result(echo, _argument(MAX_ARGUMENT_BYTES)) == MAX_ARGUMENT_BYTES - 8
    err = failure(echo, _argument(MAX_ARGUMENT_BYTES + 1))
    assert tags(err) == ["ResourceLimitError"] and "execution argument is 32,769 bytes" in err["message"]


def _string_of(size: int) -> dict[str, Any]:
    """A string of ``size`` bytes built by doubling 8 KB five times (256 KB) and trimming or padding."""
    pad = "y" * (size - MAX_STRING_BYTES)
    twice = {"twice": {"assign": [{"s": "${s + s}"}]}}
    return _main({"seed": {"assign": [{"s": "x" * 8192}]}},
                 {"grow": {"for": {"value": "i", "range": [1, 5], "steps": [twice]}}},
                 {"fit": {"assign": [{"s": '${s + "' + pad + '"}'}]}},
                 {"done": {"return": "${len(s)}"}})


def test_maximum_string_length() -> None:
    assert result(_string_of(MAX_STRING_BYTES)) == MAX_STRING_BYTES
    err = failure(_string_of(MAX_STRING_BYTES + 1))
    assert tags(err) == ["ResourceLimitError"] and "string of 262,145 bytes" in err["message"]


def test_http_response_size() -> None:
    def call(size: int) -> Any:
        transport = FunctionTransport(lambda request: (200, {"Content-Type": "application/octet-stream"},
                                                       b"x" * size))
        return run(_main({"get": {"call": "http.get", "args": {"url": "https://example.test/big"}}},
                         {"done": {"return": "ok"}}), transport=transport)

    assert call(MAX_HTTP_RESPONSE_BYTES).result == "ok"
    err = call(MAX_HTTP_RESPONSE_BYTES + 1).error
    assert tags(err) == ["ResourceLimitError"] and "2,097,153 bytes" in err["message"]


def test_result_size() -> None:
    def returning(size: int) -> dict[str, Any]:
        # ["<256 KB>","<rest>"]: 7 bytes of JSON around the two strings
        rest = size - MAX_STRING_BYTES - 7
        document = _string_of(MAX_STRING_BYTES)
        document["main"]["steps"][-1] = {"done": {"return": f"${{[s, text.substring(s, 0, {rest})]}}"}}
        return document

    assert len(result(returning(MAX_RESULT_BYTES))[1]) == MAX_RESULT_BYTES - MAX_STRING_BYTES - 7
    err = failure(returning(MAX_RESULT_BYTES + 1))
    assert tags(err) == ["ResourceLimitError"] and "result is 524,289 bytes" in err["message"]


def _sleepers(n: int) -> dict[str, Any]:
    return _main({"p": {"parallel": {"for": {"value": "i", "range": [1, n], "steps": [
        {"nap": {"call": "sys.sleep", "args": {"seconds": 10}}}]}}}})


def test_at_most_twenty_branches_run_at_once() -> None:
    assert run(_sleepers(20)).duration == 10
    assert run(_sleepers(21)).duration == 20  # the 21st waits for a free slot, as the service queues it


def test_unhandled_branch_errors_are_kept_up_to_a_hundred() -> None:
    def failing(n: int) -> dict[str, Any]:
        return _main({"p": {"parallel": {"for": {"value": "i", "range": [1, n], "steps": [
            {"boom": {"raise": "${\"bad \" + string(i)}"}}]}}}})

    err = failure(failing(100))
    assert len(err["branches"]) == 100 and err["truncated"] is False
    err = failure(failing(101))
    assert len(err["branches"]) == 100 and err["truncated"] is True
    assert err["branches"][0] == {"id": "0", "error": "bad 1"}


# ------------------------------------------------------------------------------------ compiled pipelines


def _pipeline_refs() -> list[str]:
    import importlib.util

    from strato.dsl import PipelineDefinition

    from ..conftest import ROOT

    refs = []
    for path in sorted([*ROOT.glob("examples/*.py"), *ROOT.glob("tests/pipelines/*.py")]):
        if path.name == "__init__.py":
            continue
        spec = importlib.util.spec_from_file_location(f"_limits_{path.stem}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        refs += [f"{path.relative_to(ROOT)}:{name}" for name, value in vars(module).items()
                 if isinstance(value, PipelineDefinition)]
    return refs


def test_every_example_and_test_pipeline_compiles_within_every_limit() -> None:
    from strato.adapters.gcp.compiler import compile_pipeline
    from strato.errors import DefinitionError
    from strato.loader import load

    from ..aws import pipelines

    checked = 0
    for ref in _pipeline_refs():
        try:
            ir = load(ref).definition.ir
        except DefinitionError:
            continue  # a pipeline that is wrong on purpose (tests/pipelines/broken.py, governed.py)
        compiled = compile_pipeline(ir)
        assert check_workflow(compiled.source) == [], ref
        checked += 1
    for feature in (pipelines.retrying, pipelines.catching, pipelines.timing_out, pipelines.mapping,
                    pipelines.nested, pipelines.large_payload, pipelines.exploding):
        assert check_workflow(compile_pipeline(feature.ir).source) == [], feature
    assert checked >= 30


def test_compiled_expressions_hold_no_map_literal() -> None:
    """The expressions reference (https://cloud.google.com/workflows/docs/reference/syntax/expressions)
    lists no map literal among an expression's elements; maps are built by assign steps (the maps page)."""
    from strato.adapters.gcp.compiler import compile_pipeline
    from strato.adapters.gcp.interpreter.expressions import MapLit, parse_expression, walk
    from strato.errors import DefinitionError
    from strato.loader import load

    def literals(value: Any) -> list[str]:
        if isinstance(value, str) and value.startswith("${") and value.endswith("}"):
            return [value] if any(isinstance(n, MapLit) for n in walk(parse_expression(value[2:-1]))) else []
        if isinstance(value, dict):
            return [found for item in value.values() for found in literals(item)]
        if isinstance(value, list):
            return [found for item in value for found in literals(item)]
        return []

    for ref in _pipeline_refs():
        try:
            ir = load(ref).definition.ir
        except DefinitionError:
            continue
        assert literals(compile_pipeline(ir).document) == [], ref


# ------------------------------------------------------------------------------------------- semantics


def test_retry_backoff_follows_the_retrying_pages_example() -> None:
    """Retry steps page (https://cloud.google.com/workflows/docs/reference/syntax/retrying): a custom
    predicate, at most eight retries, initial 1 s, multiplier 2, at most 60 s: waits 1, 2, 4, 8, 16, 32,
    60 and 60 seconds, then the error goes on."""
    document = {
        "main": {"steps": [{"attempt": {
            "try": {"raise": {"code": 503}},
            "retry": {"predicate": "${always}", "max_retries": 8,
                      "backoff": {"initial_delay": 1, "max_delay": 60, "multiplier": 2}}}}]},
        "always": {"params": ["e"], "steps": [{"yes": {"return": True}}]}}
    execution = run(document)
    assert execution.state == "FAILED" and execution.error == {"code": 503}
    assert execution.sleeps == [1, 2, 4, 8, 16, 32, 60, 60]


def test_a_predicate_answering_false_ends_the_retries_at_once() -> None:
    document = {
        "main": {"steps": [{"attempt": {
            "try": {"raise": "no"},
            "retry": {"predicate": "${never}", "max_retries": 3,
                      "backoff": {"initial_delay": 1, "max_delay": 10, "multiplier": 2}}}}]},
        "never": {"params": ["e"], "steps": [{"no": {"return": False}}]}}
    execution = run(document)
    assert execution.error == "no" and execution.sleeps == []
