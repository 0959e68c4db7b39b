"""The standard library, function by function, against its reference pages.

The module list is the standard library overview (https://cloud.google.com/workflows/docs/reference/stdlib/overview)
and the expression helpers page (https://cloud.google.com/workflows/docs/reference/stdlib/expression-helpers).
Each case names the page its expected value or error comes from, as
``https://cloud.google.com/workflows/docs/reference/stdlib/<module>/<function>``. Every documented function is
either implemented or refused before the workflow runs, with a message naming it.
"""

from __future__ import annotations

from typing import Any

import pytest

from strato.adapters.gcp.interpreter import VirtualClock, WorkflowSyntaxError, load_workflow, run_workflow
from strato.adapters.gcp.interpreter.stdlib import CONSTANTS, FUNCTIONS, REFUSED, REFUSED_PREFIXES

from .helpers import ev, ev_error, result, tags

PAGE = "https://cloud.google.com/workflows/docs/reference/stdlib/"

# Every function and constant the overview lists, module by module, and the expression helpers.
REFERENCE = {
    "base64": ["decode", "encode"],
    "events": ["await_callback", "create_callback_endpoint"],
    "experimental.executions": ["map", "run"],
    "hash": ["compute_checksum", "compute_hmac"],
    "http": ["delete", "get", "patch", "post", "put", "request", "default_retry", "default_retry_non_idempotent",
             "default_retry_predicate", "default_retry_predicate_non_idempotent"],
    "json": ["decode", "encode", "encode_to_string"],
    "list": ["concat", "prepend"],
    "map": ["delete", "get", "merge", "merge_nested"],
    "math": ["abs", "floor", "max", "min"],
    "retry": ["always", "never", "default_backoff"],
    "sys": ["get_env", "log", "now", "sleep", "sleep_until"],
    "text": ["decode", "encode", "find_all", "find_all_regex", "match_regex", "replace_all", "replace_all_regex",
             "split", "substring", "to_lower", "to_upper", "url_decode", "url_encode"],
    "time": ["format", "parse"],
    "uuid": ["generate"],
}
HELPERS = ["default", "keys", "len", "int", "double", "string"]  # `in` and `if` are operators/special forms
REFUSED_HELPERS = ["bool"]  # get_type: see test_reference_stdlib.py


def _all_reference_names() -> list[str]:
    return [f"{module}.{name}" for module, names in REFERENCE.items() for name in names] + HELPERS


@pytest.mark.parametrize("name", _all_reference_names())
def test_every_documented_function_is_implemented_or_refused(name: str) -> None:
    # overview page: the modules and their functions
    assert name in FUNCTIONS or name in CONSTANTS or (name in REFUSED or name.startswith(tuple(REFUSED_PREFIXES))), name


@pytest.mark.parametrize("name", ["events.await_callback", "events.create_callback_endpoint",
                                  "experimental.executions.map", "experimental.executions.run"])
def test_refused_functions_fail_at_load_time_naming_the_function(name: str) -> None:
    # events/* and experimental.executions/* pages: they need the Workflows service itself.
    message = f"{name} is not supported by this emulator"
    with pytest.raises(WorkflowSyntaxError, match=message.replace(".", r"\.")):
        load_workflow([{"c": {"call": name, "args": {}, "result": "r"}}])
    with pytest.raises(WorkflowSyntaxError, match=message.replace(".", r"\.")):
        load_workflow([{"c": {"return": "${" + name + "(1)}"}}])


@pytest.mark.parametrize("name", REFUSED_HELPERS)
def test_refused_helpers_fail_at_load_time(name: str) -> None:
    # expression-helpers page: conversions are double(), int(), string(); get_type is not emulated.
    with pytest.raises(WorkflowSyntaxError, match=f"{name} is not supported by this emulator"):
        load_workflow([{"c": {"return": "${" + name + "(1)}"}}])


def test_connectors_are_refused_at_load_time() -> None:
    # https://cloud.google.com/workflows/docs/reference/googleapis: connectors call Google Cloud APIs.
    with pytest.raises(WorkflowSyntaxError, match=r"googleapis\.pubsub\.v1\.projects\.topics\.publish is not"):
        load_workflow([{"c": {"call": "googleapis.pubsub.v1.projects.topics.publish", "args": {}}}])


# --- values, each from the page named in the third column --------------------------------------------------

CASES: list[tuple[str, Any, str]] = [
    # expression helpers
    ('default(null, "x")', "x", "expression-helpers"),
    ('default("v", "x")', "v", "expression-helpers"),
    ('keys({"a": 1, "b": 2})', ["a", "b"], "expression-helpers"),
    ("len([1, 2, 3])", 3, "expression-helpers"),
    ('len({"a": 1})', 1, "expression-helpers"),
    ('len("héllo")', 5, "expression-helpers"),  # "the number of characters in the string"
    ('int("42")', 42, "expression-helpers"),
    ("int(2.7)", 2, "expression-helpers"),
    ('double("2.5")', 2.5, "expression-helpers"),
    ("double(2)", 2.0, "expression-helpers"),
    ("string(2)", "2", "expression-helpers"),
    ("string(true)", "true", "expression-helpers"),
    # base64
    ('base64.encode(text.encode("Hello World"))', "SGVsbG8gV29ybGQ=", "base64/encode"),
    ('base64.encode(text.encode("Hello World"), false)', "SGVsbG8gV29ybGQ", "base64/encode"),
    ('text.decode(base64.decode("SGVsbG8gV29ybGQ="))', "Hello World", "base64/decode"),
    ('text.decode(base64.decode("SGVsbG8gV29ybGQ", false))', "Hello World", "base64/decode"),
    # hash: the pages' own examples
    ('base64.encode(hash.compute_checksum(text.encode("Hello World", "UTF-8"), "SHA256"))',
     "pZGm1Av0IEBKARczz7exkNYsZb8LzaMrV7J32a2fFG4=", "hash/compute_checksum"),
    ('base64.encode(hash.compute_hmac(text.encode("key", "UTF-8"), text.encode("Hello World", "UTF-8"), "SHA256"))',
     "QidPcoCDkuWLV9co1+PA5RY+rwfRZdwDEF9iq74afRE=", "hash/compute_hmac"),
    # json
    ('json.decode(\'{"a": [1, 2.5, "x", null, true]}\')', {"a": [1, 2.5, "x", None, True]}, "json/decode"),
    ('json.encode_to_string({"a": 1})', '{"a":1}', "json/encode_to_string"),
    ('text.decode(json.encode([1, "x"]))', '[1,"x"]', "json/encode"),
    # list: the prepend page's example
    ('list.prepend(["zero", "one", "two"], "three")', ["three", "zero", "one", "two"], "list/prepend"),
    ("list.concat([1, 2], 3)", [1, 2, 3], "list/concat"),
    # map
    ('map.get({"key1": "hello", "key2": "world"}, "key2")', "world", "map/get"),  # the page's example
    ('map.get({"a": {"b": 2}}, ["a", "b"])', 2, "map/get"),
    ('map.delete({"a": 1, "b": 2}, "a")', {"b": 2}, "map/delete"),
    ('map.merge({"a": 1, "b": 1}, {"b": 2})', {"a": 1, "b": 2}, "map/merge"),
    ('map.merge_nested({"a": {"x": 1}}, {"a": {"y": 2}})', {"a": {"x": 1, "y": 2}}, "map/merge_nested"),
    # math
    ("math.abs(-3)", 3, "math/abs"),
    ("math.abs(-2.5)", 2.5, "math/abs"),
    ("math.max(2, 7)", 7, "math/max"),
    ("math.min(2, 7)", 2, "math/min"),
    ("math.floor(9.99)", 9, "math/floor"),
    ("math.floor(-1.5)", -2, "math/floor"),
    ("math.floor(4)", 4, "math/floor"),
    # retry predicates
    ('retry.always({"tags": ["ValueError"]})', True, "retry/always"),
    ('retry.never({"tags": ["ValueError"]})', False, "retry/never"),
    ('http.default_retry_predicate({"code": 503, "tags": ["HttpError"]})', True, "http/default_retry_predicate"),
    ('http.default_retry_predicate({"code": 404, "tags": ["HttpError"]})', False, "http/default_retry_predicate"),
    ('http.default_retry_predicate_non_idempotent({"code": 502, "tags": ["HttpError"]})', False,
     "http/default_retry_predicate_non_idempotent"),
    ('http.default_retry_predicate_non_idempotent({"code": 429, "tags": ["HttpError"]})', True,
     "http/default_retry_predicate_non_idempotent"),
    # text
    ('text.split("a,b,c", ",")', ["a", "b", "c"], "text/split"),
    ('text.replace_all("a-b-c", "-", "+")', "a+b+c", "text/replace_all"),
    ('text.find_all("abab", "b")', [{"index": 1, "match": "b"}, {"index": 3, "match": "b"}], "text/find_all"),
    ('text.find_all_regex("a1b22", "[0-9]+")', [{"index": 1, "match": "1"}, {"index": 3, "match": "22"}],
     "text/find_all_regex"),
    ('text.match_regex("hello", "^h.*o$")', True, "text/match_regex"),
    ('text.replace_all_regex("a1b22", "[0-9]+", "#")', "a#b#", "text/replace_all_regex"),
    ('text.substring("Hello World", 0, 5)', "Hello", "text/substring"),
    ('text.to_lower("ABC")', "abc", "text/to_lower"),
    ('text.to_upper("abc")', "ABC", "text/to_upper"),
    ('text.url_encode("a b&c")', "a%20b%26c", "text/url_encode"),
    ('text.url_decode("a%20b%26c")', "a b&c", "text/url_decode"),
    ('text.decode(text.encode("café", "UTF-8"), "UTF-8")', "café", "text/encode"),
    # time
    ('time.parse("2009-02-13T23:31:30Z")', 1234567890.0, "time/parse"),
    ("time.parse(time.format(1234567890))", 1234567890.0, "time/format"),
]


@pytest.mark.parametrize(("expression", "expected", "page"), CASES, ids=[c[0][:60] for c in CASES])
def test_function_values(expression: str, expected: Any, page: str) -> None:
    got = ev(expression)
    assert got == expected, PAGE + page
    assert type(got) is type(expected), PAGE + page


# --- documented errors ("Raised exceptions" of each page) ----------------------------------------------------

ERRORS: list[tuple[str, str, str]] = [
    ('list.prepend("x", 1)', "TypeError", "list/prepend"),  # "If objs is not a list"
    ('list.concat("x", 1)', "TypeError", "list/concat"),
    ('map.get({"a": 1}, 1)', "TypeError", "map/get"),  # "If the key is not a string or a list of strings"
    ('map.get({"a": 1}, ["a", 1])', "TypeError", "map/get"),
    ('hash.compute_checksum("text", "SHA256")', "TypeError", "hash/compute_checksum"),  # data not bytes
    ('hash.compute_checksum(text.encode("x"), 256)', "TypeError", "hash/compute_checksum"),
    ('hash.compute_checksum(text.encode("x"), "CRC32")', "ValueError", "hash/compute_checksum"),
    ('hash.compute_hmac("k", text.encode("x"), "SHA256")', "TypeError", "hash/compute_hmac"),
    ('hash.compute_hmac(text.encode("k"), text.encode("x"), "SHA3")', "ValueError", "hash/compute_hmac"),
    ('math.floor("1.5")', "TypeError", "math/floor"),
    ('math.abs("1")', "TypeError", "math/abs"),
    ('base64.encode("not bytes")', "TypeError", "base64/encode"),
    ('base64.decode("***")', "ValueError", "base64/decode"),
    ('json.decode("{bad")', "ValueError", "json/decode"),
    ('keys([1])', "TypeError", "expression-helpers"),
    ("len(1)", "TypeError", "expression-helpers"),
    ('int("x")', "ValueError", "expression-helpers"),
]


@pytest.mark.parametrize(("expression", "tag", "page"), ERRORS, ids=[e[0][:60] for e in ERRORS])
def test_documented_errors(expression: str, tag: str, page: str) -> None:
    assert tags(ev_error(expression)) == [tag], PAGE + page


# --- map.get on values that are not maps: "If the input is not a map ... returns null" (map/get page).


@pytest.mark.parametrize("value", ['"text"', "[1, 2]", "3", "null", "true"])
def test_map_get_on_a_non_map_is_null(value: str) -> None:
    assert ev(f'map.get({value}, "k")') is None
    assert ev(f'map.get({value}, ["k", "j"])') is None


def test_map_get_through_a_nested_non_map_is_null() -> None:
    # "If any of the nested objects are not maps or if the key does not exist in the map then null is returned."
    assert ev('map.get({"a": [1]}, ["a", "b"])') is None
    assert ev('map.get({"a": "s"}, ["a", "b"])') is None
    assert ev('map.get({"a": {"b": null}}, ["a", "b", "c"])') is None


# --- functions that read the execution's context: sys/now, sys/get_env, sys/sleep, uuid/generate, retry constants


def test_sys_now_and_sleep_use_the_virtual_clock() -> None:
    # sys/now: seconds since the epoch as a double; sys/sleep: waits the given seconds.
    source = [{"a": {"assign": [{"t0": "${sys.now()}"}]}},
              {"s": {"call": "sys.sleep", "args": {"seconds": 30}}},
              {"r": {"return": "${sys.now() - t0}"}}]
    execution = run_workflow(source, clock=VirtualClock(start=1_000.0))
    assert execution.result == 30.0 and isinstance(execution.result, float)
    assert execution.sleeps == [30]


def test_sys_sleep_until() -> None:
    # sys/sleep_until: waits until the given RFC 3339 time.
    source = [{"s": {"call": "sys.sleep_until", "args": {"time": "2009-02-13T23:31:40Z"}}},
              {"r": {"return": "${sys.now()}"}}]
    execution = run_workflow(source, clock=VirtualClock(start=1234567890.0))
    assert execution.result == 1234567900.0


def test_sys_get_env() -> None:
    # sys/get_env: a built-in environment variable, or the default for an unknown name.
    assert result([{"r": {"return": '${sys.get_env("STAGE")}'}}], env={"STAGE": "test"}) == "test"
    assert result([{"r": {"return": '${sys.get_env("NOPE", "fallback")}'}}]) == "fallback"
    assert isinstance(result([{"r": {"return": '${sys.get_env("GOOGLE_CLOUD_WORKFLOW_EXECUTION_ID")}'}}]), str)


def test_sys_log_records_and_returns_null() -> None:
    # sys/log: a blocking call that writes a log entry.
    execution = run_workflow([{"l": {"call": "sys.log", "args": {"text": "hi", "severity": "INFO"}}}])
    assert execution.succeeded and execution.logs[0]["text"] == "hi" and execution.logs[0]["severity"] == "INFO"


def test_blocking_calls_are_refused_in_expressions() -> None:
    # overview: "HTTP calls, sys.sleep, and sys.log cannot be used inside an expression".
    for expression in ("sys.sleep(1)", 'sys.log("x")', 'http.get("https://x")'):
        with pytest.raises(WorkflowSyntaxError, match="blocking call"):
            load_workflow([{"r": {"return": "${" + expression + "}"}}])


def test_uuid_generate() -> None:
    # uuid/generate: a random 128-bit UUID in string form (RFC 4122 version 4 layout).
    first, second = ev("uuid.generate()"), ev("uuid.generate()")
    assert isinstance(first, str) and len(first) == 36 and first[14] == "4" and first != second


def test_retry_and_http_default_policies() -> None:
    # retry/default_backoff: initial_delay 1, max_delay 60, multiplier 1.25.
    assert ev("retry.default_backoff") == {"initial_delay": 1, "max_delay": 60, "multiplier": 1.25}
    # http/default_retry and default_retry_non_idempotent are policies usable as `retry: ${...}`.
    for policy in ("http.default_retry", "http.default_retry_non_idempotent"):
        source = [{"t": {"try": {"call": "http.get", "args": {"url": "https://unreachable.invalid/"}},
                         "retry": "${" + policy + "}"}}]
        assert run_workflow(source).state == "FAILED"
