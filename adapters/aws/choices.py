"""Guards as ``Choice`` states, with ``strato.ir.compare``'s meaning.

Each comparison is wrapped in ``IsPresent`` and a type test, so a missing or differently typed value
is false rather than a ``States.Runtime`` error, as on the local runner
(https://docs.aws.amazon.com/step-functions/latest/dg/state-choice.html).
"""

from __future__ import annotations

import re
from typing import Any

from strato import ir
from strato.graph import guard_chain

from ..common.errors import CompileError

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Words the JSONPath parser of moto and LocalStack (jsonpath-ng) reads as operators after a dot, so that
# `$.results.where` fails there with a parse error; AWS reads them as keys. Written another way (a
# renamed result key, bracket notation), a path means the same on all three.
_RESERVED = frozenset({"where", "wherenot"})


def dotted(name: str) -> bool:
    """Whether ``name`` can follow a dot in a JSONPath every Step Functions engine parses alike."""
    return bool(_KEY.match(name)) and name not in _RESERVED

# Keys a JSONPath bracket can hold as written: no quote, bracket or backslash to escape, no control
# characters (https://docs.aws.amazon.com/step-functions/latest/dg/amazon-states-language-paths.html).
_BRACKETED = re.compile(r"^[^'\[\]\\\x00-\x1f]+$")


class Choices:
    """The part of the state machine builder that turns guards into Choice rules.

    An operand through a list index (the list may be offloaded to keep the state within its budget,
    and JSONPath has no negative index) or a key with a quote or bracket is resolved by the runtime
    function into ``$.scratch`` just before the Choice state, with the local runner's own code, and
    the Choice compares that value.
    """

    p: ir.PipelineIR
    keys: dict[str, str]
    operands: list[tuple[str, ir.Value]]  # (scratch key, value) to resolve before the Choice being built

    def _path_of(self, value: ir.Value) -> str | None:
        """A JSONPath for a value when it is a reference through object keys JSONPath can write."""
        if isinstance(value, ir.Ref):
            base, path = f"$.results.{self.keys[value.node]}", value.path
        elif isinstance(value, ir.Param) and dotted(value.name):
            base, path = f"$.params.{value.name}", value.path
        else:
            return None
        for part in path:
            if not isinstance(part, str):  # an index: the list may be offloaded, the runtime function reads it
                return None
            if dotted(part):
                base += f".{part}"
            elif _BRACKETED.match(part):  # any other key: bracket notation
                base += f"['{part}']"
            else:
                return None
        return base

    # ------------------------------------------------------------------------------- guards
    def _guard(self, guard: ir.Guard) -> dict[str, Any]:
        rules = []
        for g in reversed(list(guard_chain(self.p, guard))):
            rule = self._condition(self.p.branch_by_id[g.branch].condition)
            rules.append(rule if g.arm else {"Not": rule})
        return rules[0] if len(rules) == 1 else {"And": rules}

    def _condition(self, cond: ir.Condition) -> dict[str, Any]:
        if isinstance(cond, ir.AllOf):
            return {"And": [self._condition(c) for c in cond.items]}
        if isinstance(cond, ir.AnyOf):
            return {"Or": [self._condition(c) for c in cond.items]}
        if isinstance(cond, ir.Not):
            return {"Not": self._condition(cond.item)}
        return self._compare(cond)

    def _compare(self, cond: ir.Compare) -> dict[str, Any]:
        """A comparison with ``strato.ir.compare``'s meaning, guarded so a missing value is never an error."""
        variable = self._path_of(cond.left)
        if variable is None:
            key = f"operand{len(self.operands)}"
            self.operands.append((key, cond.left))
            variable = f"$.scratch.{key}"
        right, op = cond.right, cond.op
        if op in ("==", "!="):
            if right is None:
                rule: dict[str, Any] = {"Or": [{"Not": {"Variable": variable, "IsPresent": True}},
                                               {"Variable": variable, "IsNull": True}]}
            elif isinstance(right, bool):
                rule = _present(variable, "IsBoolean", {"Variable": variable, "BooleanEquals": right})
            elif isinstance(right, (int, float)):
                rule = _present(variable, "IsNumeric", {"Variable": variable, "NumericEquals": right})
            elif isinstance(right, str):
                rule = _present(variable, "IsString", {"Variable": variable, "StringEquals": right})
            else:
                raise CompileError("Step Functions Choice states cannot compare a list or an object; compare a "
                                   "field of it, or compute the comparison in a task")
            return rule if op == "==" else {"Not": rule}
        suffix = {"<": "LessThan", "<=": "LessThanEquals", ">": "GreaterThan", ">=": "GreaterThanEquals"}[op]
        if isinstance(right, bool) or not isinstance(right, (int, float, str)):
            return {"Variable": "$.params", "IsPresent": False}  # ordering only holds for numbers and strings
        if isinstance(right, str):
            return _present(variable, "IsString", {"Variable": variable, f"String{suffix}": right})
        return _present(variable, "IsNumeric", {"Variable": variable, f"Numeric{suffix}": right})


def _present(variable: str, type_test: str, comparison: dict[str, Any]) -> dict[str, Any]:
    return {"And": [{"Variable": variable, "IsPresent": True}, {"Variable": variable, type_test: True}, comparison]}
