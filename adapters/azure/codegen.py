"""A small structured builder for readable Python source: expressions that wrap, blocks that indent.

The compiler builds expressions as trees (:class:`Call`, :class:`Seq`, :class:`DictExpr`, ...) and
statements through :class:`Block`; rendering keeps lines within the repository's 120 columns by
breaking the outermost bracket first, one item per line, as a person (or a formatter) would.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

WIDTH = 120
INDENT = "    "


class Expr:
    def flat(self) -> str:
        raise NotImplementedError

    def broken(self, indent: str) -> str:
        """Rendered over several lines; the first line continues where the expression starts."""
        return self.flat()

    def render(self, column: int, indent: str, width: int = WIDTH) -> str:
        flat = self.flat()
        if column + len(flat) <= width:
            return flat
        return self.broken(indent)


@dataclass(frozen=True)
class Raw(Expr):
    text: str

    def flat(self) -> str:
        return self.text


@dataclass(frozen=True)
class Seq(Expr):
    """Items between brackets: ``(a, b)``, ``[a, b]``, call arguments."""

    open: str
    close: str
    items: Sequence[Expr]
    tuple_like: bool = False

    def flat(self) -> str:
        inner = ", ".join(item.flat() for item in self.items)
        if self.tuple_like and len(self.items) == 1:
            inner += ","
        return f"{self.open}{inner}{self.close}"

    def broken(self, indent: str) -> str:
        if not self.items:
            return self.flat()
        inner = indent + INDENT
        lines = [self.open]
        for item in self.items:
            lines.append(f"{inner}{item.render(len(inner), inner)},")
        lines.append(f"{indent}{self.close}")
        return "\n".join(lines)


@dataclass(frozen=True)
class Pair(Expr):
    """``key: value`` in a dict, or ``name=value`` in a call."""

    key: Expr
    value: Expr
    sep: str = ": "

    def flat(self) -> str:
        return f"{self.key.flat()}{self.sep}{self.value.flat()}"

    def render(self, column: int, indent: str, width: int = WIDTH) -> str:
        head = f"{self.key.flat()}{self.sep}"
        return head + self.value.render(column + len(head), indent, width)


@dataclass(frozen=True)
class Call(Expr):
    func: str
    args: Sequence[Expr] = ()
    kwargs: Sequence[tuple[str, Expr]] = ()

    def _seq(self) -> Seq:
        items = [*self.args, *(Pair(Raw(k), v, "=") for k, v in self.kwargs)]
        return Seq("(", ")", items)

    def flat(self) -> str:
        return self.func + self._seq().flat()

    def broken(self, indent: str) -> str:
        return self.func + self._seq().broken(indent)


@dataclass(frozen=True)
class Lambda(Expr):
    params: Sequence[str]
    body: Expr

    def flat(self) -> str:
        return f"lambda {', '.join(self.params)}: {self.body.flat()}"

    def render(self, column: int, indent: str, width: int = WIDTH) -> str:
        head = f"lambda {', '.join(self.params)}: "
        return head + self.body.render(column + len(head), indent, width)


class ImportList(Expr):
    """The names of a ``from module import ...``: parenthesised, one per line, when too long."""

    def __init__(self, names: Sequence[str]):
        self.names = list(names)

    def flat(self) -> str:
        return ", ".join(self.names)

    def broken(self, indent: str) -> str:
        inner = indent + INDENT
        return "(\n" + "".join(f"{inner}{name},\n" for name in self.names) + f"{indent})"


def dict_expr(pairs: Iterable[tuple[Expr, Expr]]) -> Seq:
    return Seq("{", "}", [Pair(k, v) for k, v in pairs])


def list_expr(items: Iterable[Expr]) -> Seq:
    return Seq("[", "]", list(items))


def tuple_expr(items: Iterable[Expr]) -> Seq:
    return Seq("(", ")", list(items), tuple_like=True)


def py_str(text: str) -> str:
    """A double-quoted, ASCII-only Python string literal (non-ASCII as escapes: no confusables)."""
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return f'"{text}"'  # the common case (identifiers, names): nothing to escape
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif 32 <= code < 127:
            out.append(ch)
        elif code < 0x100:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


def literal(value: Any) -> Expr:
    """A JSON value as a Python expression."""
    if value is None or isinstance(value, bool):
        return Raw(repr(value))
    if isinstance(value, int):
        return Raw(str(value))
    if isinstance(value, float):
        return Raw(repr(value))
    if isinstance(value, str):
        return Raw(py_str(value))
    if isinstance(value, (list, tuple)):
        return list_expr(literal(v) for v in value)
    if isinstance(value, dict):
        return dict_expr((Raw(py_str(str(k))), literal(v)) for k, v in value.items())
    raise TypeError(f"not a JSON value: {value!r}")


# ------------------------------------------------------------------------------------ statements
@dataclass
class Block:
    """Lines of code at one indentation; nested blocks indent by four spaces."""

    indent: str = ""
    lines: list[str] = field(default_factory=list)

    def line(self, text: str = "") -> Block:
        self.lines.append(f"{self.indent}{text}" if text else "")
        return self

    def stmt(self, head: str, expr: Expr, tail: str = "") -> Block:
        """``head + expr + tail`` with the expression wrapped when the line would be too long."""
        column = len(self.indent) + len(head)
        rendered = expr.render(column, self.indent, WIDTH - len(tail))
        self.lines.append(f"{self.indent}{head}{rendered}{tail}")
        return self

    def docstring(self, text: str) -> Block:
        """A docstring wrapped to the width (text is already sanitised)."""
        width = WIDTH - len(self.indent) - 6
        paragraphs = [p for p in text.split("\n\n") if p.strip()]
        wrapped: list[str] = []
        for i, paragraph in enumerate(paragraphs):
            if i:
                wrapped.append("")
            wrapped.extend(_wrap(" ".join(paragraph.split()), width) if not paragraph.startswith("  ")
                           else paragraph.split("\n"))
        if len(wrapped) == 1 and not wrapped[0].endswith('"'):
            return self.line(f'"""{wrapped[0]}"""')
        self.line(f'"""{wrapped[0]}')
        for text_line in wrapped[1:]:
            self.line(text_line)
        return self.line('"""')

    def nested(self) -> Block:
        return Block(self.indent + INDENT, self.lines)

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _wrap(text: str, width: int) -> list[str]:
    import textwrap

    return textwrap.wrap(text, width, break_long_words=False, break_on_hyphens=False) or [""]


_SAFE_DOC = re.compile(r"^[ -~\n]*$")


def doc_text(text: str | None) -> str | None:
    """The first paragraph of a user's docstring if it is safe to embed verbatim, else None."""
    if not text:
        return None
    first = text.strip().split("\n\n")[0]
    if not _SAFE_DOC.match(first) or '"""' in first or "\\" in first or first.endswith('"'):
        return None
    return " ".join(first.split())
