"""Conformance of ``${}`` expressions with the Workflows syntax reference.

Each group cites the rule it checks: "Data types" (types, logical operators, order of operations),
"Expressions" (supported elements and operators), "Expression helpers" (default, keys, len, int,
double, string, if), the standard library pages (map, list, json, text, sys, time), and
"Error types" (tags raised by bad operations).
"""

from __future__ import annotations

from typing import Any

import pytest

from strato.adapters.gcp.interpreter import (
    VirtualClock,
    WorkflowSyntaxError,
    load_workflow,
    parse_expression,
    run_workflow,
)

from .helpers import ev, ev_error, result, tags

# --- "Data types > Order of operations": () . [] not unary- (* / // %) (+ -) (comparisons, in) and or


@pytest.mark.parametrize(("expression", "expected"), [
    ("1 + 2 * 3", 7),
    ("(1 + 2) * 3", 9),
    ("10 - 4 - 3", 3),  # left-associative
    ("2 * 3 % 4", 2),
    ("-2 * 3", -6),
    ("- 2 + 5", 3),
    ("1 + 2 == 3", True),
    ("1 < 2 and 2 < 3", True),
    ("true or false and false", True),  # and binds tighter than or
    ("(true or false) and false", False),
    ("not true == false", True),  # (not true) == false
    ("not (1 == 2)", True),
    ("1 + 1 in [2, 3]", True),
    ("[1, 2][1] * 10", 20),
])
def test_precedence(expression: str, expected: Any) -> None:
    assert ev(expression) == expected


def test_not_binds_tighter_than_comparison() -> None:
    # The reference's table puts `not` above the comparisons: `not 1 == 1` is `(not 1) == 1`.
    assert tags(ev_error("not 1 == 1")) == ["TypeError"]


def test_property_and_subscript_access() -> None:
    data = {"a": {"b": [{"c": "deep"}], "key with space": 1}}
    assert ev('d.a.b[0]["c"]', d=data) == "deep"
    assert ev('d["a"]["key with space"]', d=data) == 1
    assert ev("d.a.b[i - 1].c", d=data, i=1) == "deep"


# --- "Data types": 64-bit integers and doubles are distinct; "Expressions": `/` is float division,
# `//` floor division, `%` remainder division.


@pytest.mark.parametrize(("expression", "expected", "kind"), [
    ("1 + 1", 2, int),
    ("1 + 1.0", 2.0, float),
    ("3 * 2", 6, int),
    ("3 * 2.0", 6.0, float),
    ("4 / 2", 2.0, float),
    ("7 / 2", 3.5, float),
    ("7 // 2", 3, int),
    ("-7 // 2", -4, int),
    ("7 // -2", -4, int),
    ("7.5 // 2", 3.0, float),
    ("-7.5 // 2", -4.0, float),
    ("7 % 3", 1, int),
    ("-7 % 3", 2, int),  # the remainder pairing with floor division takes the divisor's sign
    ("7 % -3", -2, int),
    ("-7.5 % 2", 0.5, float),
    ("5.5 % 2", 1.5, float),
    ("1.5e3", 1500.0, float),
    ("int(2.7)", 2, int),
    ("int(-2.7)", -2, int),
    ('int("42")', 42, int),
    ("double(2)", 2.0, float),
    ('double("2.5")', 2.5, float),
])
def test_int_and_double_semantics(expression: str, expected: Any, kind: type) -> None:
    value = ev(expression)
    assert value == expected
    assert type(value) is kind


def test_floor_division_identity_holds_for_negatives() -> None:
    for a in (-7, 7, -8, 0):
        for b in (3, -3, 2):
            assert ev("(a // b) * b + a % b == a", a=a, b=b) is True


def test_numbers_compare_across_int_and_double() -> None:
    assert ev("1 == 1.0") is True
    assert ev("2 > 1.5") is True
    assert ev("1 != 1.0") is False


def test_integer_overflow_is_a_value_error() -> None:
    assert tags(ev_error("9223372036854775807 + 1")) == ["ValueError"]
    assert ev("9223372036854775807") == 2**63 - 1


@pytest.mark.parametrize("expression", ["1 / 0", "1 // 0", "1 % 0", "1.0 / 0.0", "5 % 0.0"])
def test_division_by_zero(expression: str) -> None:
    assert tags(ev_error(expression)) == ["ZeroDivisionError"]


# --- "Expression helpers > Conversion functions": int(), double(), string()


def test_conversions() -> None:
    assert ev("string(1.5)") == "1.5"
    assert ev("string(3)") == "3"
    assert ev("string(true)") == "true"
    assert ev('"n=" + string(42)') == "n=42"
    assert tags(ev_error('int("2.5x")')) == ["ValueError"]
    assert tags(ev_error('double("abc")')) == ["ValueError"]
    assert tags(ev_error("string([1])")) == ["TypeError"]
    assert tags(ev_error("int(null)")) == ["TypeError"]


def test_bool_conversion_is_not_in_the_reference() -> None:
    # The reference lists double(), int() and string() only.
    with pytest.raises(WorkflowSyntaxError, match=r"bool is not supported by this emulator"):
        load_workflow([{"x": {"return": "${bool(1)}"}}])


# --- "Data types": strings (UTF-8) and the `+` operator ("arithmetic addition and string concatenation")


def test_strings() -> None:
    assert ev('"Hello, " + name', name="Ada") == "Hello, Ada"
    assert ev(r'"a\"b\\c\n"') == 'a"b\\c\n'
    assert ev(r'"caf\u00e9"') == "café"
    assert ev("'single' + \"double\"") == "singledouble"  # the error-types page writes 'SystemError'
    assert ev('len("héllo")') == 5
    assert ev('"abc" < "abd"') is True
    assert ev('"a" + 1') == "a1"  # the data-types page's conversion table: STRING + INTEGER is a STRING
    assert tags(ev_error('"a" * 2')) == ["TypeError"]
    assert tags(ev_error('"a" < 1')) == ["TypeError"]


def test_partial_expression_text_is_a_literal() -> None:
    # Only a value that is wholly ${...} is an expression.
    assert result([{"a": {"assign": [{"x": 1}]}}, {"r": {"return": "id-${x}"}}]) == "id-${x}"


# --- Lists and maps: literals, len(), keys(), `in`, list.concat ("Expression helpers", "list", "map")


def test_lists() -> None:
    assert ev("len([1, 2, 3])") == 3
    assert ev("list.concat([1, 2], 3)") == [1, 2, 3]
    assert ev("list.concat(l, [4])", l=[1]) == [1, [4]]
    assert tags(ev_error("[1] + [2]")) == ["TypeError"]  # lists concatenate with list.concat, not +


def test_maps() -> None:
    m = {"a": 1, "b": {"c": 2}}
    assert ev("keys(m)", m=m) == ["a", "b"]
    assert ev("len(m)", m=m) == 2
    assert ev('{"x": 1, "y": [true, null]}') == {"x": 1, "y": [True, None]}
    assert ev("{k: 1}.k", k="ignored") == 1  # a bare name as a map-literal key is the key itself
    assert tags(ev_error("keys([1])")) == ["TypeError"]
    assert tags(ev_error("len(1)")) == ["TypeError"]


def test_in_operator() -> None:
    assert ev("2 in [1, 2]") is True
    assert ev("1.0 in [1]") is True
    assert ev('"a" in m', m={"a": None}) is True
    assert ev('"z" in m', m={"a": 1}) is False
    assert ev('"SystemError" in e.tags', e={"tags": ["SystemError"]}) is True
    assert ev("true in [1]") is False  # booleans are not numbers
    assert tags(ev_error('"x" in "xyz"')) == ["TypeError"]


# --- "Data types": null; "Expression helpers > Conditional functions": default(), map.get(), if()


def test_null_handling() -> None:
    assert ev("null == null") is True
    assert ev("1 == null") is False
    assert ev("n", n=None) is None
    assert tags(ev_error("null + 1")) == ["TypeError"]
    assert tags(ev_error("null < 1")) == ["TypeError"]
    assert tags(ev_error("n.x", n=None)) == ["TypeError"]


def test_default_and_map_get() -> None:
    m = {"a": {"b": 2}, "z": None}
    assert ev("default(null, 5)") == 5
    assert ev("default(0, 5)") == 0
    assert ev("default(m.z, 5)", m=m) == 5
    assert ev('default(map.get(m, "missing"), 1)', m=m) == 1
    assert ev('map.get(m, ["a", "b"])', m=m) == 2
    assert ev('map.get(m, ["a", "x", "y"])', m=m) is None
    # default() does not catch the KeyError of a missing key: that is what map.get is for.
    assert tags(ev_error("default(m.missing, 1)", m=m)) == ["KeyError"]


def test_if_helper_evaluates_only_the_branch_taken() -> None:
    assert ev("if(1 < 2, \"yes\", \"no\")") == "yes"
    assert ev("if(false, 1 / 0, 2)") == 2
    assert tags(ev_error("if(1, 2, 3)")) == ["TypeError"]


# --- "Data types > Logical operators": booleans only; lower or upper case; True/TRUE literals


def test_logical_operators() -> None:
    assert ev("True AND TRUE") is True
    assert ev("false OR NOT false") is True
    assert tags(ev_error("1 and true")) == ["TypeError"]
    assert tags(ev_error("true and 1")) == ["TypeError"]
    assert tags(ev_error('not "x"')) == ["TypeError"]
    assert ev("false and 1") is False  # the right side is not evaluated once the answer is known


# --- "Error types": KeyError, IndexError, TypeError from bad access


def test_access_errors() -> None:
    assert tags(ev_error("m.missing", m={"a": 1})) == ["KeyError"]
    assert tags(ev_error('m["missing"]', m={"a": 1})) == ["KeyError"]
    assert tags(ev_error("l[5]", l=[1])) == ["IndexError"]
    assert tags(ev_error("l[-1]", l=[1])) == ["IndexError"]
    assert tags(ev_error('l["a"]', l=[1])) == ["TypeError"]
    assert tags(ev_error("l[1.0]", l=[1, 2])) == ["TypeError"]
    assert tags(ev_error("s[0]", s="abc")) == ["TypeError"]
    assert tags(ev_error("undefined_variable")) == ["KeyError"]
    assert "message" in ev_error("m.missing", m={})


# --- Standard library: json, text, sys, time


def test_json_functions() -> None:
    assert ev('json.encode_to_string(m)', m={"a": [1, 2.5, None, True]}) == '{"a":[1,2.5,null,true]}'
    decoded = ev('json.decode("{\\"i\\": 1, \\"d\\": 1.0}")')
    assert decoded == {"i": 1, "d": 1.0} and type(decoded["i"]) is int and type(decoded["d"]) is float
    assert ev("json.decode(json.encode(m))", m={"x": [1, "é"]}) == {"x": [1, "é"]}
    assert ev("text.decode(json.encode(\"é\"))") == '"é"'
    assert tags(ev_error('json.decode("nope")')) == ["ValueError"]


def test_text_functions() -> None:
    assert ev('text.split("a,b,,c", ",")') == ["a", "b", "", "c"]
    assert ev('text.replace_all("a-b-c", "-", "+")') == "a+b+c"
    assert ev('text.to_lower("MiXeD")') == "mixed"
    assert ev('text.to_upper("MiXeD")') == "MIXED"
    assert ev('text.find_all("banana", "an")') == [{"index": 1, "match": "an"}, {"index": 3, "match": "an"}]
    assert ev('text.substring("abcdef", 1, 3)') == "bc"
    assert ev('text.match_regex("order-42", "\\\\d+")') is True
    assert ev('text.url_encode("a b/c")') == "a%20b%2Fc"
    assert ev('text.decode(text.encode("x"))') == "x"
    assert ev('text.decode(base64.decode(base64.encode(text.encode("hi"))))') == "hi"
    assert ev('base64.encode(text.encode("hi"))') == "aGk="


def test_sys_and_time_functions() -> None:
    clock = VirtualClock(start=1_000.5)
    source = [{"r": {"return": {"now": "${sys.now()}", "env": '${sys.get_env("STAGE")}',
                               "missing": '${sys.get_env("NOPE", "fallback")}',
                               "project": '${sys.get_env("GOOGLE_CLOUD_PROJECT_ID")}'}}}]
    out = run_workflow(source, clock=clock, env={"STAGE": "test"}).result
    assert out == {"now": 1000.5, "env": "test", "missing": "fallback", "project": "local-project"}
    assert ev("time.format(0)") == "1970-01-01T00:00:00.000000Z"  # always microseconds (time/format page)
    assert ev("time.format(1.5)") == "1970-01-01T00:00:01.500000Z"
    assert ev('time.parse("1970-01-01T00:01:00Z")') == 60.0
    assert ev('time.format(0, "Europe/Paris")') == "1970-01-01T01:00:00.000000+01:00"


# --- Parsing: errors are reported before running, naming the step


@pytest.mark.parametrize(("expression", "message"), [
    ("1 +", "unexpected end"),
    ('"unterminated', "unterminated string"),
    ("nope(1)", "unknown function 'nope'"),
    ('http.get("http://x")', "blocking call"),
    ("len(1, 2)", "takes 1 to 1 arguments"),
    ("a ? b", "unexpected character"),
    ("(1", "expected ')'"),
])
def test_parse_errors_name_the_step(expression: str, message: str) -> None:
    with pytest.raises(WorkflowSyntaxError) as info:
        load_workflow({"main": {"steps": [{"calc": {"return": "${" + expression + "}"}}]}})
    assert str(info.value).startswith("step 'calc' of 'main': ")
    assert message in str(info.value)


def test_parser_builds_an_ast_not_python() -> None:
    # Python-isms are syntax errors, not silently evaluated.
    for text in ("1 if True else 2", "[x for x in l]", "a == b == c or", "lambda: 1"):
        with pytest.raises(ValueError):
            parse_expression(text)
    with pytest.raises(WorkflowSyntaxError, match=r"unknown function '__import__'"):
        load_workflow([{"x": {"return": "${__import__('os')}"}}])
