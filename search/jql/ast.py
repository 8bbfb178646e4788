"""The JQL abstract syntax tree: one tree, compiled by every search backend.

Parsing (search.jql.parser) produces these nodes with source positions; function
calls stay unevaluated (`FunctionCall`) until a backend resolves them against the
tenant's data and the caller (search.jql.functions). Field names are kept as the
user wrote them, normalised to lower case; the compiler resolves them (system field
or custom field) and reports unknown ones.
"""

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Position:
    """1-based line and character of a token, as Jira reports them.

    Nodes hold positions with `compare=False`: two trees are equal when they mean the
    same query, wherever its tokens stood."""

    line: int
    column: int
    offset: int  # 0-based offset into the query string


# -- values ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Literal:
    """A quoted or unquoted word or a number, as written (numbers stay strings; the
    compiler interprets them for the field's type)."""

    value: str
    quoted: bool
    pos: Position = field(compare=False)


@dataclass(frozen=True)
class Empty:
    """EMPTY or NULL."""

    pos: Position = field(compare=False)


@dataclass(frozen=True)
class FunctionCall:
    name: str  # lower-cased, e.g. "currentuser", "startofday"
    args: tuple[str, ...]
    pos: Position = field(compare=False)


@dataclass(frozen=True)
class ListValue:
    items: tuple["Operand", ...]
    pos: Position = field(compare=False)


Operand = Literal | Empty | FunctionCall | ListValue


def operand_items(operand: "Operand | None") -> list[Any]:
    """The values of an operand: a list's items, else the operand itself."""
    return list(operand.items) if isinstance(operand, ListValue) else [operand]


# -- clauses ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    """`name` lower-cased without quotes; `cf[10001]` becomes custom_id=10001."""

    name: str
    pos: Position = field(compare=False)
    custom_id: int | None = None


@dataclass(frozen=True)
class HistoryPredicate:
    """FROM / TO / BY / AFTER / BEFORE / ON / DURING after WAS or CHANGED."""

    kind: str  # "from" | "to" | "by" | "after" | "before" | "on" | "during"
    operand: Operand  # DURING: a ListValue of two operands
    pos: Position = field(compare=False)


@dataclass(frozen=True)
class Comparison:
    """`field op operand`. op is one of = != > >= < <= ~ !~ in "not in" "is" "is not"
    "was" "was in" "was not" "was not in" "changed" (lower case)."""

    field: Field
    op: str
    operand: Operand | None  # None only for CHANGED
    predicates: tuple[HistoryPredicate, ...] = ()
    # `field` is shadowed by the attribute above for type checkers: spell it out.
    pos: Position | None = dataclasses.field(default=None, compare=False)


@dataclass(frozen=True)
class And:
    clauses: tuple["Clause", ...]


@dataclass(frozen=True)
class Or:
    clauses: tuple["Clause", ...]


@dataclass(frozen=True)
class Not:
    clause: "Clause"


Clause = Comparison | And | Or | Not


@dataclass(frozen=True)
class OrderBy:
    field: Field
    descending: bool


@dataclass(frozen=True)
class Query:
    where: Clause | None
    order_by: tuple[OrderBy, ...] = field(default_factory=tuple)


class JqlError(Exception):
    """A malformed or invalid query: message in the spirit of Jira's, with position."""

    def __init__(self, message: str, pos: Position | None = None) -> None:
        where = f" at line {pos.line}, character {pos.column}" if pos else ""
        super().__init__(f"{message}{where}")
        self.message = f"{message}{where}"
        self.reason = message  # without the position, for APIs that report it apart
        self.pos = pos


@dataclass(frozen=True)
class ResolvedDate:
    """What date functions and literals evaluate to (in the tenant's time zone)."""

    start: datetime
    end: datetime  # exclusive; equal to start for instants
    date_only: bool
