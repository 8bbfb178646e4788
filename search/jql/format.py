"""`ast.Query` → canonical JQL text that parses back to the same tree.

Canonical means: keywords upper case, single spaces, `"double quotes"` with escapes
where a string needs quoting (or was quoted), parentheses only where precedence
requires them, `DESC` written and `ASC` left implicit.
"""

import unicodedata

from search.jql import ast
from search.jql.lexer import is_plain_word

_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def jql_format(query: ast.Query) -> str:
    """Canonical JQL for a query tree; `jql_parse(jql_format(q)) == q` for parsed trees."""
    parts = []
    if query.where is not None:
        parts.append(_clause(query.where))
    if query.order_by:
        items = ", ".join(
            _field(o.field) + (" DESC" if o.descending else "") for o in query.order_by
        )
        parts.append(f"ORDER BY {items}")
    return " ".join(parts)


def jql_quote(value: str) -> str:
    """A double-quoted JQL string literal for value."""
    return '"' + "".join(_ESCAPES.get(c) or _control_escape(c) for c in value) + '"'


def _control_escape(char: str) -> str:
    return f"\\u{ord(char):04x}" if unicodedata.category(char) == "Cc" else char


def _word_or_quoted(value: str) -> str:
    return value if is_plain_word(value) else jql_quote(value)


def _clause(clause: ast.Clause) -> str:
    if isinstance(clause, ast.Comparison):
        return _comparison(clause)
    if isinstance(clause, ast.Not):
        inner = _clause(clause.clause)
        return f"NOT ({inner})" if isinstance(clause.clause, ast.And | ast.Or) else f"NOT {inner}"
    if isinstance(clause, ast.And):
        return " AND ".join(
            f"({_clause(c)})" if isinstance(c, ast.And | ast.Or) else _clause(c)
            for c in clause.clauses
        )
    return " OR ".join(
        f"({_clause(c)})" if isinstance(c, ast.Or) else _clause(c) for c in clause.clauses
    )


def _comparison(comparison: ast.Comparison) -> str:
    text = f"{_field(comparison.field)} {comparison.op.upper()}"
    if comparison.operand is not None:
        text += f" {_operand(comparison.operand)}"
    for predicate in comparison.predicates:
        text += f" {predicate.kind.upper()} {_operand(predicate.operand)}"
    return text


def _field(field: ast.Field) -> str:
    if field.custom_id is not None:
        return f"cf[{field.custom_id}]"
    return _word_or_quoted(field.name)


def _operand(operand: ast.Operand) -> str:
    if isinstance(operand, ast.Literal):
        return jql_quote(operand.value) if operand.quoted else _word_or_quoted(operand.value)
    if isinstance(operand, ast.Empty):
        return "EMPTY"
    if isinstance(operand, ast.FunctionCall):
        return f"{operand.name}({', '.join(_word_or_quoted(a) for a in operand.args)})"
    return f"({', '.join(_operand(item) for item in operand.items)})"
