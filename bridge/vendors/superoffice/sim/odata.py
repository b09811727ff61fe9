"""A small parser and evaluator for the SuperOffice archive query options.

SuperOffice archive providers take OData-flavoured `$filter`, `$select`, `$orderBy`, `$top`
and `$skip` parameters with their own operator set (`afterTime`, `oneOf`, `between`, ...).
The simulator needs them to answer the adapter's incremental and lookup queries faithfully
enough; this module is pure (no HTTP, no ticket knowledge): a provider describes its columns
with `Column` and gets back a row predicate and a sort key.

Grammar (keywords case-insensitive)::

    expr       := and_expr ("or" and_expr)*
    and_expr   := unary ("and" unary)*
    unary      := "not" unary | "(" expr ")" | comparison
    comparison := COLUMN OP operand
                | COLUMN ("in"|"oneOf"|"notOneOf") ( "(" operand ("," operand)* ")" | operand )
                | COLUMN "between" ( "(" operand "," operand ")" | operand ("and"|",") operand )
    operand    := 'quoted string' | number | bare word (true, false, null, dates)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar

__all__ = [
    "And",
    "Column",
    "ColumnKind",
    "Comparison",
    "Node",
    "Not",
    "ODataError",
    "Or",
    "compile_filter",
    "conjuncts",
    "parse_datetime",
    "parse_filter",
    "parse_int_option",
    "parse_order_by",
    "parse_select",
    "sort_rows",
]

R = TypeVar("R")
Literal = str | int | float | bool | None


class ODataError(ValueError):
    """A query option the simulator cannot accept; the caller answers 400 with the message."""


# --------------------------------------------------------------------------- AST


@dataclass(frozen=True, slots=True)
class Comparison:
    column: str
    op: str  # canonical operator name, see _OPERATORS
    values: tuple[Literal, ...]


@dataclass(frozen=True, slots=True)
class And:
    parts: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    parts: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    part: Node


Node = Comparison | And | Or | Not

# Spellings accepted in a filter → canonical operator. SuperOffice documents word operators
# (`eq`, `oneOf`, `afterTime`, ...) and a few symbols (`=`); all are matched case-insensitively.
_OPERATORS: dict[str, str] = {
    "eq": "eq",
    "=": "eq",
    "equals": "eq",
    "is": "is",
    "ne": "ne",
    "!=": "ne",
    "<>": "ne",
    "unequals": "ne",
    "isnot": "isnot",
    "lt": "lt",
    "<": "lt",
    "less": "lt",
    "gt": "gt",
    ">": "gt",
    "greater": "gt",
    "le": "le",
    "<=": "le",
    "ge": "ge",
    ">=": "ge",
    "in": "in",
    "oneof": "in",
    "notoneof": "notin",
    "between": "between",
    "datebetween": "between",
    "aftertime": "after",
    "after": "after",
    "beforetime": "before",
    "before": "before",
    "beforeorequal": "le",
    "contains": "contains",
    "notcontains": "notcontains",
    "begins": "begins",
    "startswith": "begins",
    "notbegins": "notbegins",
}
_SET_OPS = {"in", "notin"}
_TEXT_OPS = {"contains", "notcontains", "begins", "notbegins", "is", "isnot"}
_TIME_OPS = {"after", "before"}

# --------------------------------------------------------------------------- tokenizer

_TOKEN = re.compile(
    r"""
    \s*(?:
      (?P<string>'(?:[^']|'')*')
    | (?P<punct>[(),])
    | (?P<symbol><=|>=|!=|<>|=|<|>)
    | (?P<word>[A-Za-z_$][\w./:\-$]*)
    | (?P<bare>[+-]?\d[\w.:+\-]*)
    )""",
    re.VERBOSE,
)


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # string | punct | symbol | word | bare | end
    text: str
    pos: int


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise ODataError(f"unexpected character at position {pos} in $filter")
        kind = match.lastgroup or "bare"
        tokens.append(_Token(kind, match.group(kind), match.start(kind)))
        pos = match.end()
    tokens.append(_Token("end", "", len(text)))
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokenize(text)
        self.i = 0

    def peek(self) -> _Token:
        return self.tokens[self.i]

    def next(self) -> _Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def is_word(self, *words: str) -> bool:
        tok = self.peek()
        return tok.kind == "word" and tok.text.lower() in words

    def expect_punct(self, text: str) -> None:
        tok = self.next()
        if tok.kind != "punct" or tok.text != text:
            raise ODataError(f"expected {text!r} at position {tok.pos} in $filter")

    def parse(self) -> Node:
        node = self.expr()
        tok = self.peek()
        if tok.kind != "end":
            raise ODataError(f"unexpected {tok.text!r} at position {tok.pos} in $filter")
        return node

    def expr(self) -> Node:
        parts = [self.and_expr()]
        while self.is_word("or"):
            self.next()
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else Or(tuple(parts))

    def and_expr(self) -> Node:
        parts = [self.unary()]
        while self.is_word("and"):
            self.next()
            parts.append(self.unary())
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def unary(self) -> Node:
        if self.is_word("not"):
            self.next()
            return Not(self.unary())
        tok = self.peek()
        if tok.kind == "punct" and tok.text == "(":
            self.next()
            node = self.expr()
            self.expect_punct(")")
            return node
        return self.comparison()

    def comparison(self) -> Comparison:
        col = self.next()
        if col.kind != "word" or col.text.lower() in {"and", "or", "not"}:
            raise ODataError(f"expected a column name at position {col.pos} in $filter")
        op_tok = self.next()
        if op_tok.kind not in {"word", "symbol"}:
            raise ODataError(f"expected an operator after {col.text!r} in $filter")
        op = _OPERATORS.get(op_tok.text.lower())
        if op is None:
            raise ODataError(f"unsupported operator {op_tok.text!r} in $filter")
        if op in _SET_OPS:
            return Comparison(col.text, op, self.operand_list())
        if op == "between":
            return Comparison(col.text, op, self.between_operands())
        return Comparison(col.text, op, (self.operand(),))

    def operand_list(self) -> tuple[Literal, ...]:
        tok = self.peek()
        if not (tok.kind == "punct" and tok.text == "("):
            return (self.operand(),)
        self.next()
        values = [self.operand()]
        while self.peek().kind == "punct" and self.peek().text == ",":
            self.next()
            values.append(self.operand())
        self.expect_punct(")")
        return tuple(values)

    def between_operands(self) -> tuple[Literal, ...]:
        tok = self.peek()
        if tok.kind == "punct" and tok.text == "(":
            values = self.operand_list()
        else:
            first = self.operand()
            sep = self.next()
            if not ((sep.kind == "word" and sep.text.lower() == "and") or sep.text == ","):
                raise ODataError("between needs two values: between (a, b) or between a and b")
            values = (first, self.operand())
        if len(values) != 2:
            raise ODataError("between needs exactly two values")
        return values

    def operand(self) -> Literal:
        tok = self.next()
        if tok.kind == "string":
            return tok.text[1:-1].replace("''", "'")
        if tok.kind == "bare":
            return _number_or_text(tok.text)
        if tok.kind == "word":
            low = tok.text.lower()
            if low == "true":
                return True
            if low == "false":
                return False
            if low == "null":
                return None
            return tok.text
        raise ODataError(f"expected a value at position {tok.pos} in $filter")


def _number_or_text(text: str) -> Literal:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def parse_filter(text: str) -> Node:
    """Parse a `$filter` expression into a small AST; ODataError if it is malformed."""
    if not text.strip():
        raise ODataError("empty $filter")
    return _Parser(text).parse()


def conjuncts(node: Node) -> tuple[Node, ...]:
    """The top-level AND terms of a filter: what a planner may use to narrow candidates."""
    return node.parts if isinstance(node, And) else (node,)


# --------------------------------------------------------------------------- columns


class ColumnKind(StrEnum):
    INT = "int"
    STRING = "string"
    DATETIME = "datetime"
    LIST = "list"  # a list item (status...): needs its own `coerce`


@dataclass(frozen=True, slots=True)
class Column(Generic[R]):
    """One archive column: how to read its comparable value from a row and how to turn a
    filter literal into the same domain (`coerce`; defaults by kind)."""

    name: str
    kind: ColumnKind
    get: Callable[[R], Any]
    coerce: Callable[[Literal], Any] | None = None

    def literal(self, value: Literal) -> Any:
        if value is None:
            return None
        if self.coerce is not None:
            return self.coerce(value)
        if self.kind is ColumnKind.INT:
            return _coerce_int(self.name, value)
        if self.kind is ColumnKind.DATETIME:
            return parse_datetime(value)
        return str(value)


def _coerce_int(name: str, value: Literal) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("[I:") and text.endswith("]"):  # CultureDataFormatter encoding
            text = text[3:-1]
        try:
            return int(text)
        except ValueError:
            pass
    raise ODataError(f"{name} needs an integer, got {value!r}")


_DATE_ZULU_MIDDLE = re.compile(r"^(\d{4}-\d{2}-\d{2})Z(\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)$")


def parse_datetime(value: Literal) -> datetime:
    """Parse the date forms seen in SuperOffice filters; naive values are taken as UTC.

    Accepts ISO 8601 with or without offset or fraction, a bare date, dotted dates
    (`2024.05.01`) and SuperOffice's own sample spelling `2010-12-02Z12:00:00`.
    """
    if not isinstance(value, str):
        raise ODataError(f"expected a date/time string, got {value!r}")
    text = value.strip()
    match = _DATE_ZULU_MIDDLE.match(text)
    if match:
        text = f"{match.group(1)}T{match.group(2)}Z"
    if re.match(r"^\d{4}\.\d{2}\.\d{2}", text):
        text = text[:10].replace(".", "-") + text[10:]
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ODataError(f"not a date/time: {value!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def _lookup(columns: Mapping[str, Column[R]], name: str) -> Column[R]:
    col = columns.get(name) or columns.get(name.lower())
    if col is None:
        for key, candidate in columns.items():
            if key.lower() == name.lower():
                return candidate
        raise ODataError(f"unknown column {name!r}")
    return col


def compile_filter(node: Node, columns: Mapping[str, Column[R]]) -> Callable[[R], bool]:
    """Turn a parsed filter into a row predicate; unknown columns and type mismatches raise
    ODataError at compile time, so a bad query fails before any row is read."""
    if isinstance(node, And):
        preds = [compile_filter(p, columns) for p in node.parts]
        return lambda row: all(p(row) for p in preds)
    if isinstance(node, Or):
        preds = [compile_filter(p, columns) for p in node.parts]
        return lambda row: any(p(row) for p in preds)
    if isinstance(node, Not):
        inner = compile_filter(node.part, columns)
        return lambda row: not inner(row)
    return _compile_comparison(node, columns)


def _compile_comparison(cmp: Comparison, columns: Mapping[str, Column[R]]) -> Callable[[R], bool]:
    col = _lookup(columns, cmp.column)
    op = cmp.op
    if op in _TIME_OPS and col.kind is not ColumnKind.DATETIME:
        raise ODataError(f"operator {op!r} needs a date/time column, {col.name!r} is {col.kind}")
    if op in _TEXT_OPS - {"is", "isnot"} and col.kind is not ColumnKind.STRING:
        raise ODataError(f"operator {op!r} needs a text column, {col.name!r} is {col.kind}")
    get = col.get
    if op in _TEXT_OPS:
        needle = str(cmp.values[0] if cmp.values[0] is not None else "").lower()
        return _text_predicate(op, needle, get)
    values = [col.literal(v) for v in cmp.values]
    if op in _SET_OPS:
        wanted = frozenset(values)
        if op == "in":
            return lambda row: get(row) in wanted
        return lambda row: get(row) not in wanted
    if op == "between":
        low, high = values
        return lambda row: _ordered(get(row), low, "ge") and _ordered(get(row), high, "le")
    target = values[0]
    canonical = {"after": "gt", "before": "lt"}.get(op, op)
    return lambda row: _ordered(get(row), target, canonical)


def _text_predicate(op: str, needle: str, get: Callable[[R], Any]) -> Callable[[R], bool]:
    def text(row: R) -> str:
        value = get(row)
        return "" if value is None else str(value).lower()

    if op == "contains":
        return lambda row: needle in text(row)
    if op == "notcontains":
        return lambda row: needle not in text(row)
    if op == "begins":
        return lambda row: text(row).startswith(needle)
    if op == "notbegins":
        return lambda row: not text(row).startswith(needle)
    if op == "is":
        return lambda row: text(row) == needle
    return lambda row: text(row) != needle  # isnot


def _ordered(value: Any, target: Any, op: str) -> bool:
    if op == "eq":
        return bool(value == target)
    if op == "ne":
        return bool(value != target)
    if value is None or target is None:
        return False
    try:
        if op == "lt":
            return bool(value < target)
        if op == "gt":
            return bool(value > target)
        if op == "le":
            return bool(value <= target)
        return bool(value >= target)
    except TypeError:
        return False


# --------------------------------------------------------------------------- other options


def parse_select(text: str | None, columns: Mapping[str, Column[R]]) -> list[str] | None:
    """Canonical column names of `$select`, or None when absent (the provider's default)."""
    if text is None or not text.strip():
        return None
    return [_lookup(columns, part.strip()).name for part in text.split(",") if part.strip()]


def parse_order_by(text: str | None, columns: Mapping[str, Column[R]]) -> list[tuple[str, bool]]:
    """`col [asc|desc], ...` → [(canonical name, descending)]."""
    if text is None or not text.strip():
        return []
    order: list[tuple[str, bool]] = []
    for part in text.split(","):
        words = part.split()
        if not words:
            continue
        if len(words) > 2 or (len(words) == 2 and words[1].lower() not in {"asc", "desc"}):
            raise ODataError(f"bad $orderBy term {part.strip()!r}")
        descending = len(words) == 2 and words[1].lower() == "desc"
        order.append((_lookup(columns, words[0]).name, descending))
    return order


def parse_int_option(name: str, text: str | None, default: int, maximum: int | None = None) -> int:
    """`$top` / `$skip`: a non-negative integer, capped at `maximum` when given."""
    if text is None or text.strip() == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise ODataError(f"{name} must be an integer") from None
    if value < 0:
        raise ODataError(f"{name} must not be negative")
    return value if maximum is None else min(value, maximum)


def sort_rows(
    rows: Iterable[R], order: Sequence[tuple[str, bool]], columns: Mapping[str, Column[R]]
) -> list[R]:
    """Stable multi-key sort; None sorts first ascending (last descending)."""
    result = list(rows)
    for name, descending in reversed(order):
        get = columns[name].get
        result.sort(key=lambda row, g=get: _sort_key(g(row)), reverse=descending)  # type: ignore[misc]
    return result


def _sort_key(value: Any) -> tuple[bool, Any]:
    return (value is not None, value if value is not None else 0)
