"""The ``${...}`` expression language: a tokenizer, a Pratt parser to a small AST, and an evaluator.

Nothing here calls Python's ``eval``: Workflows' typing rules (int vs double, ``null``, ``and``/``or``/
``not`` on booleans only, ``//`` and ``%``) differ from Python's, and an expression must never reach
the host. Operator precedence follows the syntax reference's table ("Data types" > "Order of
operations"), highest first::

    ()  .  []  not  unary-  (* / // %)  (+ -)  (< <= >= > == != in)  and  or

Note that ``not`` binds tighter than comparisons there (``not a == b`` is ``(not a) == b``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from .values import (
    WorkflowError,
    check_double,
    check_int,
    equals,
    error,
    is_int,
    is_number,
    to_string,
    type_name,
)

# ---------------------------------------------------------------------------------------------- tokens


class ExpressionSyntaxError(ValueError):
    """An expression that does not parse; ``pos`` is the character offset inside the ``${}``."""

    def __init__(self, message: str, text: str, pos: int):
        super().__init__(f"{message} at position {pos} in expression {text!r}")
        self.text = text
        self.pos = pos


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # "num", "str", "name", "op", "end"
    value: Any
    pos: int


OPERATORS = ("//", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "<", ">", "(", ")", "[", "]", "{", "}",
             ",", ":", ".")
ESCAPES = {'"': '"', "'": "'", "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in " \t\r\n":
            i += 1
            continue
        start = i
        if c.isdigit() or (c == "." and i + 1 < n and text[i + 1].isdigit()):
            while i < n and text[i].isdigit():
                i += 1
            is_double = False
            if i < n and text[i] == "." and i + 1 < n and text[i + 1].isdigit():
                is_double = True
                i += 1
                while i < n and text[i].isdigit():
                    i += 1
            if i < n and text[i] in "eE":
                j = i + 1
                if j < n and text[j] in "+-":
                    j += 1
                if j < n and text[j].isdigit():
                    is_double = True
                    i = j
                    while i < n and text[i].isdigit():
                        i += 1
            literal = text[start:i]
            tokens.append(Token("num", float(literal) if is_double else int(literal), start))
            continue
        if c in "\"'":
            quote, i, chars = c, i + 1, []
            while True:
                if i >= n:
                    raise ExpressionSyntaxError("unterminated string", text, start)
                ch = text[i]
                if ch == quote:
                    i += 1
                    break
                if ch == "\\":
                    if i + 1 >= n:
                        raise ExpressionSyntaxError("unterminated string", text, start)
                    esc = text[i + 1]
                    if esc == "u":
                        digits = text[i + 2:i + 6]
                        if len(digits) != 4 or any(d not in "0123456789abcdefABCDEF" for d in digits):
                            raise ExpressionSyntaxError("bad \\u escape", text, i)
                        chars.append(chr(int(digits, 16)))
                        i += 6
                        continue
                    if esc not in ESCAPES:
                        raise ExpressionSyntaxError(f"unknown escape \\{esc}", text, i)
                    chars.append(ESCAPES[esc])
                    i += 2
                    continue
                chars.append(ch)
                i += 1
            tokens.append(Token("str", "".join(chars), start))
            continue
        if c.isalpha() or c == "_":
            while i < n and (text[i].isalnum() or text[i] == "_"):
                i += 1
            tokens.append(Token("name", text[start:i], start))
            continue
        for op in OPERATORS:
            if text.startswith(op, i):
                tokens.append(Token("op", op, start))
                i += len(op)
                break
        else:
            raise ExpressionSyntaxError(f"unexpected character {c!r}", text, i)
    tokens.append(Token("end", None, n))
    return tokens


# ------------------------------------------------------------------------------------------------- AST


class Node:
    """An expression AST node."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Literal(Node):
    value: Any


@dataclass(frozen=True, slots=True)
class Name(Node):
    name: str


@dataclass(frozen=True, slots=True)
class Attr(Node):
    obj: Node
    name: str


@dataclass(frozen=True, slots=True)
class Index(Node):
    obj: Node
    index: Node


@dataclass(frozen=True, slots=True)
class Call(Node):
    func: str  # dotted name: "len", "map.get", or a subworkflow name
    args: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Unary(Node):
    op: str  # "not" or "-"
    operand: Node


@dataclass(frozen=True, slots=True)
class Binary(Node):
    op: str
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class ListLit(Node):
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class MapLit(Node):
    items: tuple[tuple[Node, Node], ...]


# ---------------------------------------------------------------------------------------------- parser

KEYWORDS = {
    "true": True, "True": True, "TRUE": True,
    "false": False, "False": False, "FALSE": False,
}
LOGICAL = {"and": "and", "AND": "and", "or": "or", "OR": "or", "not": "not", "NOT": "not"}
RESERVED = {*KEYWORDS, *LOGICAL, "null", "in"}

# Binding powers, from the reference's order-of-operations table.
BP_OR, BP_AND, BP_CMP, BP_ADD, BP_MUL, BP_NEG, BP_NOT, BP_POSTFIX = 10, 20, 30, 40, 50, 60, 70, 80
BINARY_BP = {"or": BP_OR, "and": BP_AND, "==": BP_CMP, "!=": BP_CMP, "<": BP_CMP, "<=": BP_CMP, ">": BP_CMP,
             ">=": BP_CMP, "in": BP_CMP, "+": BP_ADD, "-": BP_ADD, "*": BP_MUL, "/": BP_MUL, "//": BP_MUL,
             "%": BP_MUL}


class Parser:
    def __init__(self, text: str):
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0

    def peek(self) -> Token:
        return self.tokens[self.i]

    def advance(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def fail(self, message: str, tok: Token | None = None) -> ExpressionSyntaxError:
        return ExpressionSyntaxError(message, self.text, (tok or self.peek()).pos)

    def expect(self, op: str) -> Token:
        tok = self.advance()
        if tok.kind != "op" or tok.value != op:
            raise self.fail(f"expected {op!r}", tok)
        return tok

    def binary_op(self, tok: Token) -> str | None:
        if tok.kind == "op" and tok.value in BINARY_BP:
            return tok.value
        if tok.kind == "name":
            if tok.value in ("and", "AND", "or", "OR"):
                return LOGICAL[tok.value]
            if tok.value == "in":
                return "in"
        return None

    def parse(self) -> Node:
        if self.peek().kind == "end":
            raise self.fail("empty expression")
        node = self.expression(0)
        if self.peek().kind != "end":
            raise self.fail(f"unexpected {self.peek().value!r}")
        return node

    def expression(self, rbp: int) -> Node:
        left = self.prefix()
        while True:
            tok = self.peek()
            if tok.kind == "op" and tok.value in (".", "[", "("):
                left = self.postfix(left)
                continue
            op = self.binary_op(tok)
            if op is None or BINARY_BP[op] <= rbp:
                return left
            self.advance()
            left = Binary(op, left, self.expression(BINARY_BP[op]))  # left-associative

    def postfix(self, left: Node) -> Node:
        tok = self.advance()
        if tok.value == ".":
            name = self.advance()
            if name.kind != "name":
                raise self.fail("expected a field name after '.'", name)
            return Attr(left, name.value)
        if tok.value == "[":
            index = self.expression(0)
            self.expect("]")
            return Index(left, index)
        func = dotted_name(left)
        if func is None:
            raise self.fail("only named functions can be called", tok)
        args: list[Node] = []
        if not (self.peek().kind == "op" and self.peek().value == ")"):
            while True:
                args.append(self.expression(0))
                if self.peek().kind == "op" and self.peek().value == ",":
                    self.advance()
                    continue
                break
        self.expect(")")
        return Call(func, tuple(args))

    def prefix(self) -> Node:
        tok = self.advance()
        if tok.kind in ("num", "str"):
            return Literal(tok.value)
        if tok.kind == "name":
            if tok.value in KEYWORDS:
                return Literal(KEYWORDS[tok.value])
            if tok.value == "null":
                return Literal(None)
            if LOGICAL.get(tok.value) == "not":
                return Unary("not", self.expression(BP_NOT))
            if tok.value in RESERVED:
                raise self.fail(f"unexpected {tok.value!r}", tok)
            return Name(tok.value)
        if tok.kind == "op":
            if tok.value == "-":
                return Unary("-", self.expression(BP_NEG))
            if tok.value == "(":
                node = self.expression(0)
                self.expect(")")
                return node
            if tok.value == "[":
                items: list[Node] = []
                if not (self.peek().kind == "op" and self.peek().value == "]"):
                    while True:
                        items.append(self.expression(0))
                        if self.peek().kind == "op" and self.peek().value == ",":
                            self.advance()
                            continue
                        break
                self.expect("]")
                return ListLit(tuple(items))
            if tok.value == "{":
                pairs: list[tuple[Node, Node]] = []
                if not (self.peek().kind == "op" and self.peek().value == "}"):
                    while True:
                        key = self.expression(0)
                        self.expect(":")
                        pairs.append((key, self.expression(0)))
                        if self.peek().kind == "op" and self.peek().value == ",":
                            self.advance()
                            continue
                        break
                self.expect("}")
                return MapLit(tuple(pairs))
        if tok.kind == "end":
            raise self.fail("unexpected end of expression", tok)
        raise self.fail(f"unexpected {tok.value!r}", tok)


def dotted_name(node: Node) -> str | None:
    if isinstance(node, Name):
        return node.name
    if isinstance(node, Attr):
        base = dotted_name(node.obj)
        return None if base is None else f"{base}.{node.name}"
    return None


def parse_expression(text: str) -> Node:
    """Parse the inside of ``${...}``."""
    return Parser(text).parse()


@dataclass(frozen=True, slots=True)
class Target:
    """An assignment target: ``name``, ``name.field``, ``name["key"]``, ``name[i + 1]``..."""

    name: str
    path: tuple[Node, ...]  # Literal(str) for ``.field``, any Node for ``[expr]``
    text: str


def parse_target(text: str) -> Target:
    """Parse the left-hand side of an ``assign`` entry (no ``${}``; subscripts may hold expressions)."""
    node = Parser(text).parse()
    path: list[Node] = []
    while not isinstance(node, Name):
        if isinstance(node, Attr):
            path.append(Literal(node.name))
            node = node.obj
        elif isinstance(node, Index):
            path.append(node.index)
            node = node.obj
        else:
            raise ExpressionSyntaxError("not an assignable name, field or subscript", text, 0)
    return Target(node.name, tuple(reversed(path)), text)


def walk(node: Node) -> list[Node]:
    """Every node of an expression, for static checks (called functions, referenced names)."""
    out: list[Node] = []
    stack = [node]
    while stack:
        cur = stack.pop()
        out.append(cur)
        if isinstance(cur, Attr):
            stack.append(cur.obj)
        elif isinstance(cur, Index):
            stack.extend((cur.obj, cur.index))
        elif isinstance(cur, Call):
            stack.extend(cur.args)
        elif isinstance(cur, Unary):
            stack.append(cur.operand)
        elif isinstance(cur, Binary):
            stack.extend((cur.left, cur.right))
        elif isinstance(cur, ListLit):
            stack.extend(cur.items)
        elif isinstance(cur, MapLit):
            for k, v in cur.items:
                stack.extend((k, v))
    return out


# ------------------------------------------------------------------------------------------- evaluator


class EvalContext(Protocol):
    """What an expression can see: variables and functions (the standard library and subworkflows)."""

    def lookup(self, name: str) -> Any: ...

    def call(self, func: str, args: list[Any]) -> Any: ...


def evaluate(node: Node, ctx: EvalContext) -> Any:
    if isinstance(node, Literal):
        return node.value
    if isinstance(node, Name):
        return ctx.lookup(node.name)
    if isinstance(node, Attr):
        return get_field(evaluate(node.obj, ctx), node.name)
    if isinstance(node, Index):
        return get_item(evaluate(node.obj, ctx), evaluate(node.index, ctx))
    if isinstance(node, Binary):
        if node.op in ("and", "or"):
            return logical(node.op, node.left, node.right, ctx)
        return BINARY[node.op](evaluate(node.left, ctx), evaluate(node.right, ctx))
    if isinstance(node, Unary):
        value = evaluate(node.operand, ctx)
        if node.op == "not":
            if not isinstance(value, bool):
                raise error("TypeError", f"'not' needs a boolean, got {type_name(value)}")
            return not value
        if not is_number(value):
            raise error("TypeError", f"unary '-' needs a number, got {type_name(value)}")
        return check_int(-value) if is_int(value) else -value
    if isinstance(node, Call):
        if node.func == "if":  # the conditional helper evaluates only the branch it takes
            if len(node.args) != 3:
                raise error("TypeError", "if() takes 3 arguments (condition, if_true, if_false)")
            cond = evaluate(node.args[0], ctx)
            # Expression helpers (https://cloud.google.com/workflows/docs/reference/stdlib/expression-helpers):
            # "If condition evaluates to false or null, ifFalse is returned."
            if cond is not None and not isinstance(cond, bool):
                raise error("TypeError", f"if() needs a boolean (or null) condition, got {type_name(cond)}")
            return evaluate(node.args[1] if cond else node.args[2], ctx)
        return ctx.call(node.func, [evaluate(a, ctx) for a in node.args])
    if isinstance(node, ListLit):
        return [evaluate(item, ctx) for item in node.items]
    if isinstance(node, MapLit):
        result: dict[str, Any] = {}
        for key_node, value_node in node.items:
            key = key_node.name if isinstance(key_node, Name) else evaluate(key_node, ctx)
            if not isinstance(key, str):
                raise error("TypeError", f"map keys must be strings, got {type_name(key)}")
            result[key] = evaluate(value_node, ctx)
        return result
    raise TypeError(f"unknown expression node {node!r}")  # pragma: no cover


class FieldAccess(Protocol):
    """Engine objects (module and function references) answer ``.name`` themselves."""

    def get_field(self, name: str) -> Any: ...


def get_field(obj: Any, name: str) -> Any:
    if isinstance(obj, dict):
        if name not in obj:
            raise error("KeyError", f"key not found: {name}")
        return obj[name]
    getter: Callable[[str], Any] | None = getattr(obj, "get_field", None)
    if getter is not None:
        return getter(name)
    raise error("TypeError", f"cannot read field {name!r} of a {type_name(obj)}")


def get_item(obj: Any, key: Any) -> Any:
    if isinstance(obj, list):
        if not is_int(key):
            raise error("TypeError", f"list index must be an integer, got {type_name(key)}")
        if key < 0 or key >= len(obj):
            raise error("IndexError", f"list index {key} out of range (length {len(obj)})")
        return obj[key]
    if isinstance(obj, dict):
        if not isinstance(key, str):
            raise error("TypeError", f"map key must be a string, got {type_name(key)}")
        if key not in obj:
            raise error("KeyError", f"key not found: {key}")
        return obj[key]
    raise error("TypeError", f"cannot subscript a {type_name(obj)}")


def logical(op: str, left_node: Node, right_node: Node, ctx: EvalContext) -> bool:
    left = evaluate(left_node, ctx)
    if not isinstance(left, bool):
        raise error("TypeError", f"'{op}' needs booleans, got {type_name(left)}")
    if (op == "and" and not left) or (op == "or" and left):
        return left
    right = evaluate(right_node, ctx)
    if not isinstance(right, bool):
        raise error("TypeError", f"'{op}' needs booleans, got {type_name(right)}")
    return right


def _operands(op: str, a: Any, b: Any) -> WorkflowError:
    return error("TypeError", f"unsupported operand types for {op}: {type_name(a)} and {type_name(b)}")


def _numeric(op: str, a: Any, b: Any) -> None:
    if not (is_number(a) and is_number(b)):
        raise _operands(op, a, b)


def _concat_operand(value: Any) -> str | None:
    """The text of an operand of a string ``+``: strings, integers, doubles and booleans only."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return to_string(value)
    return None


def add(a: Any, b: Any) -> Any:
    """``+`` as the data-types page's "Implicit data type conversions" table gives it.

    https://cloud.google.com/workflows/docs/reference/syntax/datatypes#implicit-conversions:
    integer + integer is an integer, a double on either side makes a double, and a string on either
    side makes a string from an integer, double, string or boolean (``"hello" + 42`` is
    ``"hello42"``). boolean + integer/double/boolean is an error; null, bytes, lists and maps are not
    in the table and are errors too (lists join with ``list.concat``).
    """
    if is_number(a) and is_number(b):
        return check_int(a + b) if is_int(a) and is_int(b) else check_double(a + b)
    if isinstance(a, str) or isinstance(b, str):
        left, right = _concat_operand(a), _concat_operand(b)
        if left is not None and right is not None:
            return left + right
    raise _operands("+", a, b)


def sub(a: Any, b: Any) -> Any:
    _numeric("-", a, b)
    return check_int(a - b) if is_int(a) and is_int(b) else check_double(a - b)


def mul(a: Any, b: Any) -> Any:
    _numeric("*", a, b)
    return check_int(a * b) if is_int(a) and is_int(b) else check_double(a * b)


def div(a: Any, b: Any) -> float:
    """``/`` is float division: the result is a double even for two integers."""
    _numeric("/", a, b)
    if b == 0:
        raise error("ZeroDivisionError", f"division by zero: {type_name(a)} / {type_name(b)}")
    return check_double(a / b)


def floordiv(a: Any, b: Any) -> Any:
    """``//`` floors (rounds towards negative infinity); integers stay integers."""
    _numeric("//", a, b)
    if b == 0:
        raise error("ZeroDivisionError", f"floor division by zero: {type_name(a)} // {type_name(b)}")
    if is_int(a) and is_int(b):
        return check_int(a // b)
    return check_double(float(a) // float(b))


def mod(a: Any, b: Any) -> Any:
    """``%`` is the remainder that pairs with ``//``: ``a == (a // b) * b + a % b``, so it takes b's sign."""
    _numeric("%", a, b)
    if b == 0:
        raise error("ZeroDivisionError", f"modulo by zero: {type_name(a)} % {type_name(b)}")
    if is_int(a) and is_int(b):
        return a % b
    return check_double(float(a) % float(b))


def compare(op: str) -> Callable[[Any, Any], bool]:
    def fn(a: Any, b: Any) -> bool:
        if not ((is_number(a) and is_number(b)) or (isinstance(a, str) and isinstance(b, str))):
            raise _operands(op, a, b)
        if op == "<":
            return bool(a < b)
        if op == "<=":
            return bool(a <= b)
        if op == ">":
            return bool(a > b)
        return bool(a >= b)

    return fn


def contains(item: Any, container: Any) -> bool:
    """``x in list`` looks for a value; ``"k" in map`` for a key."""
    if isinstance(container, list):
        return any(equals(item, v) for v in container)
    if isinstance(container, dict):
        if not isinstance(item, str):
            raise error("TypeError", f"map keys are strings; 'in' got a {type_name(item)}")
        return item in container
    raise error("TypeError", f"'in' needs a list or a map on its right, got {type_name(container)}")


BINARY: dict[str, Callable[[Any, Any], Any]] = {
    "+": add, "-": sub, "*": mul, "/": div, "//": floordiv, "%": mod,
    "==": equals, "!=": lambda a, b: not equals(a, b),
    "<": compare("<"), "<=": compare("<="), ">": compare(">"), ">=": compare(">="),
    "in": contains,
}


# ------------------------------------------------------------------------------------ values in source


def expression_text(value: Any) -> str | None:
    """The inside of a ``${...}`` string, or None when the string is a plain literal.

    Only a string that is wholly ``${...}`` is an expression (the reference's form ``${EXPRESSION}``);
    text around it, as in ``"id-${x}"``, is not interpolated.
    """
    if isinstance(value, str) and value.startswith("${") and value.endswith("}") and len(value) >= 3:
        return value[2:-1]
    return None
