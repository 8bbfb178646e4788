"""JQL autocomplete: what may come at the cursor, and the candidates for it.

The text before the cursor is tokenised with the JQL lexer and walked by a small state
machine (field, operator, value, list, keyword, ORDER BY) that follows the parser's
grammar loosely: a partial query is by nature invalid, so nothing here raises. The
word being typed (unquoted, or a string still missing its closing quote) is the prefix;
candidates are prefix-matched case-insensitively and capped at `MAX_ITEMS`.
"""

from dataclasses import dataclass
from typing import Any, Literal

from django.db import connection
from django.db.models import Case, F, Q, Value, When
from ninja import Field, Schema

from accounts.members.models import Membership
from accounts.models import User
from search.jql import ast
from search.jql import fields as fs
from search.jql import functions as fn
from search.jql.lexer import Kind, Token, is_plain_word, jql_tokens
from tickets.access import projects_visible_to, tickets_visible_to
from tickets.models import Component, CustomField, IssueType, Priority, Resolution, Status, Version

MAX_ITEMS = 20

FIELD, OPERATOR, VALUE, KEYWORD = "field", "operator", "value", "keyword"

# Function names (as displayed) that can stand for a value of each kind of field.
_USER_FUNCTIONS = ("currentUser", "membersOf")
_DATE_FUNCTIONS = tuple(
    fn.DISPLAY_NAMES[name] for name, kind in fn.KINDS.items() if kind == fn.DATE
)
_FUNCTIONS_BY_KIND: dict[str, tuple[str, ...]] = {
    fs.USER: _USER_FUNCTIONS,
    fs.DATETIME: _DATE_FUNCTIONS,
    fs.DATE: _DATE_FUNCTIONS,
    fs.KEY: ("issueHistory", "linkedIssues", "updatedBy"),
    fs.TICKET: ("linkedIssues", "updatedBy"),
    fs.SPRINT: ("openSprints", "futureSprints", "closedSprints"),
    fs.VIEWED: _DATE_FUNCTIONS,
}
_FUNCTIONS_BY_FIELD: dict[str, tuple[str, ...]] = {
    "issuetype": ("standardIssueTypes", "subtaskIssueTypes"),
    "project": ("projectsLeadByUser",),
}
_CATALOGUES: dict[str, Any] = {
    "Status": Status,
    "Priority": Priority,
    "IssueType": IssueType,
    "Resolution": Resolution,
}
_CATALOGUE_ORDER = {
    "Status": ("order", "name"),
    "Priority": ("rank",),
    "IssueType": ("order", "name"),
    "Resolution": ("order", "name"),
}
_CATEGORIES = ("To Do", "In Progress", "Done")
_CLAUSE_KEYWORDS = ("AND", "OR", "ORDER BY")


@dataclass
class _Expected:
    kind: str  # FIELD | OPERATOR | VALUE | KEYWORD
    field: str | None = None  # the field the operator/value belongs to
    keywords: tuple[str, ...] = ()
    sortable_only: bool = False  # fields after ORDER BY


def quote_value(text: str) -> str:
    """A value as it must be written in JQL: quoted unless it is a plain word."""
    if is_plain_word(text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _split(text: str) -> tuple[list[Token], str]:
    """Complete tokens before the word being typed, and that word (unquoted)."""
    try:
        tokens = jql_tokens(text)[:-1]
    except ast.JqlError as exc:
        # An unterminated string is a value (or field) being typed; any other
        # lexical error leaves the tokens before it as the best guess.
        offset = exc.pos.offset if exc.pos else len(text)
        prefix = text[offset + 1 :] if exc.reason == "Unterminated string" else ""
        try:
            tokens = jql_tokens(text[:offset])[:-1]
        except ast.JqlError:
            return [], prefix
        return tokens, prefix
    if tokens and not text[-1:].isspace():
        last = tokens[-1]
        # a word touching the cursor is being typed; a closed string is finished
        if last.kind is Kind.WORD and last.pos.offset + len(last.text) == len(text):
            return tokens[:-1], last.value
    return tokens, ""


def _expected(tokens: list[Token]) -> _Expected:
    state, field = FIELD, None
    depth = 0  # parentheses of a value list
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        if state == FIELD:
            if tok.kind in (Kind.WORD, Kind.STRING, Kind.CUSTOM_FIELD) and not tok.is_word("not"):
                field, state = tok.value if tok.kind is not Kind.CUSTOM_FIELD else tok.text, "op"
        elif state == "op":
            if tok.kind is Kind.OP:
                state = VALUE
            elif tok.is_word("in"):
                state = "list"
            elif tok.is_word("not"):
                state = "not"
            elif tok.is_word("is"):
                state = "is"
            elif tok.is_word("was"):
                state = "was"
            elif tok.is_word("changed"):
                state = "after"
            else:
                return _Expected(KEYWORD)  # unknown operator: nothing sensible to offer
        elif state == "not":
            state = "list" if tok.is_word("in") else "after"
        elif state == "was":
            state = "list" if tok.is_word("in") else ("not" if tok.is_word("not") else "after")
        elif state == "is":
            state = "is not" if tok.is_word("not") else "after"
        elif state == "is not":
            state = "after"
        elif state in (VALUE, "list", "item"):
            if tok.kind is Kind.LPAREN:
                depth += 1
                state = "item"
            elif tok.kind is Kind.RPAREN:
                depth -= 1
                state = "item" if depth > 0 else "after"
            elif tok.kind is Kind.COMMA:
                state = "item"
            elif tok.kind in (Kind.WORD, Kind.STRING):
                if nxt is not None and nxt.kind is Kind.LPAREN:  # a function call
                    close = next(
                        (j for j in range(i + 1, len(tokens)) if tokens[j].kind is Kind.RPAREN),
                        None,
                    )
                    if close is None:
                        return _Expected(KEYWORD)  # inside a function's arguments
                    i = close
                state = "after" if depth == 0 else "sep"
        elif state == "sep":  # inside a list after an item
            if tok.kind is Kind.COMMA:
                state = "item"
            elif tok.kind is Kind.RPAREN:
                depth -= 1
                state = "after" if depth <= 0 else "sep"
        elif state == "after":
            if tok.kind in (Kind.AND, Kind.OR) or tok.is_word("and", "or"):
                state, field = FIELD, None
            elif tok.is_word("order"):
                state = "order"
            elif tok.kind is Kind.RPAREN:
                state = "after"
        elif state == "order":
            state = "order field" if tok.is_word("by") else "after"
        elif state == "order field":
            if tok.kind is not Kind.COMMA:
                state = "order dir"
        elif state == "order dir":
            if tok.kind is Kind.COMMA:
                state = "order field"
            elif tok.is_word("asc", "desc"):
                state = "order next"
        elif state == "order next" and tok.kind is Kind.COMMA:
            state = "order field"
        i += 1
    if state == FIELD:
        return _Expected(FIELD)
    if state == "op":
        return _Expected(OPERATOR, field=field)
    if state in (VALUE, "list", "item"):
        return _Expected(VALUE, field=field)
    if state == "not":
        return _Expected(KEYWORD, keywords=("IN",))
    if state == "was":
        return _Expected(VALUE, field=field)
    if state == "is":
        return _Expected(KEYWORD, keywords=("EMPTY", "NOT", "NULL"))
    if state == "is not":
        return _Expected(KEYWORD, keywords=("EMPTY", "NULL"))
    if state == "sep":
        return _Expected(KEYWORD, keywords=(",", ")"))
    if state == "order":
        return _Expected(KEYWORD, keywords=("BY",))
    if state == "order field":
        return _Expected(FIELD, sortable_only=True)
    if state == "order dir":
        return _Expected(KEYWORD, keywords=("ASC", "DESC", ","))
    if state == "order next":
        return _Expected(KEYWORD, keywords=(",",))
    return _Expected(KEYWORD, keywords=_CLAUSE_KEYWORDS)


def _item(value: str, display: str | None = None, type_: str | None = None) -> dict[str, Any]:
    return {"value": value, "display": display or value, "type": type_}


def _matches(prefix: str, *texts: str) -> bool:
    low = prefix.lower()
    return any(text.lower().startswith(low) for text in texts if text)


def _spec(name: str | None) -> fs.FieldSpec | None:
    if not name:
        return None
    if name.lower().startswith("cf["):
        digits = name[3:-1]
        node = ast.Field(name=name.lower(), pos=None, custom_id=int(digits))  # type: ignore[arg-type]
    else:
        node = ast.Field(name=name.lower(), pos=None)  # type: ignore[arg-type]
    try:
        return fs.field_spec(node)
    except (ast.JqlError, ValueError):
        return None


def _field_items(prefix: str, *, sortable_only: bool) -> list[dict[str, Any]]:
    items = [
        _item(quote_value(spec.name), spec.name, spec.kind)
        for spec in fs.SYSTEM_FIELDS.values()
        if (spec.order or not sortable_only) and _matches(prefix, spec.name)
    ]
    custom = CustomField.objects.order_by("name").values_list("name", "type")
    if prefix:
        custom = custom.filter(name__istartswith=prefix)
    items += [_item(quote_value(name), name, f"custom:{kind}") for name, kind in custom[:MAX_ITEMS]]
    return items


def _operator_items(spec: fs.FieldSpec | None, prefix: str) -> list[dict[str, Any]]:
    if spec is None:
        return []
    order = ["=", "!=", ">", ">=", "<", "<=", "~", "!~", "in", "not in", "is", "is not"]
    order += ["was", "was in", "was not", "was not in", "changed"]
    return [
        _item(op.upper(), op.upper(), OPERATOR)
        for op in order
        if op in spec.operators and _matches(prefix, op)
    ]


def _function_items(spec: fs.FieldSpec, prefix: str) -> list[dict[str, Any]]:
    names = _FUNCTIONS_BY_FIELD.get(spec.name.lower(), ()) + _FUNCTIONS_BY_KIND.get(spec.kind, ())
    return [_item(f"{name}()", f"{name}()", "function") for name in names if _matches(prefix, name)]


def _user_items(prefix: str) -> list[dict[str, Any]]:
    active = Membership.objects.filter(is_active=True).values("user_id")
    users = User.objects.filter(pk__in=active, is_active=True)
    if prefix:
        users = users.filter(Q(username__istartswith=prefix) | Q(display_name__istartswith=prefix))
    rows = users.order_by("username").values_list("username", "display_name")[:MAX_ITEMS]
    return [
        _item(quote_value(username), f"{display} ({username})" if display else username, "user")
        for username, display in rows
    ]


def _label_items(member: Membership, prefix: str) -> list[dict[str, Any]]:
    """The labels most used on tickets the member can see: one aggregate query."""
    visible_sql, params = tickets_visible_to(member).values("labels").query.sql_with_params()
    # The inner query is Django's own SQL with its parameters kept apart: no user text.
    sql = (
        f"SELECT label, count(*) AS uses FROM (SELECT unnest(labels) AS label FROM ({visible_sql})"  # noqa: S608
        " AS visible) AS used WHERE lower(label) LIKE %s GROUP BY label"
        " ORDER BY uses DESC, label LIMIT %s"
    )
    like = prefix.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, like, MAX_ITEMS])
        rows = cursor.fetchall()
    return [_item(quote_value(label), f"{label} ({uses})", "label") for label, uses in rows]


def _catalogue_items(spec: fs.FieldSpec, member: Membership, prefix: str) -> list[dict[str, Any]]:
    if spec.catalogue == "Project":
        projects = projects_visible_to(member).order_by("key")
        if prefix:
            projects = projects.filter(Q(key__istartswith=prefix) | Q(name__istartswith=prefix))
        return [
            _item(quote_value(key), f"{name} ({key})", "project")
            for key, name in projects.values_list("key", "name")[:MAX_ITEMS]
        ]
    if spec.catalogue in ("Component", "Version"):
        model = Component if spec.catalogue == "Component" else Version
        rows = model.objects.filter(project__in=projects_visible_to(member).values("pk"))
        if prefix:
            rows = rows.filter(name__istartswith=prefix)
        names = rows.order_by("name").values_list("name", flat=True).distinct()[:MAX_ITEMS]
        return [_item(quote_value(name), name, spec.catalogue.lower()) for name in names]
    model = _CATALOGUES[spec.catalogue or ""]
    rows = model.objects.order_by(*_CATALOGUE_ORDER[spec.catalogue or ""])
    if prefix:
        rows = rows.filter(name__istartswith=prefix)
    return [
        _item(quote_value(name), name, spec.name.lower())
        for name in rows.values_list("name", flat=True)[:MAX_ITEMS]
    ]


def _sprint_items(member: Membership, prefix: str) -> list[dict[str, Any]]:
    """Sprints of the projects the member may see: active, then future in backlog
    order, then the most recently closed."""
    from search.jql.sprints import sprints_visible_to

    rank = Case(
        When(state="active", then=Value(0)), When(state="future", then=Value(1)), default=Value(2)
    )
    rows = sprints_visible_to(member).select_related("project")
    if prefix:
        rows = rows.filter(name__istartswith=prefix)
    rows = rows.annotate(rank=rank).order_by(
        "rank", F("completed_at").desc(nulls_last=True), "sequence", "id"
    )
    return [
        _item(quote_value(s.name), f"{s.name} ({s.project.key}, {s.get_state_display()})", "sprint")
        for s in rows[:MAX_ITEMS]
    ]


def _value_items(spec: fs.FieldSpec | None, member: Membership, prefix: str) -> list[dict]:
    if spec is None:
        return []
    functions = _function_items(spec, prefix)
    if spec.kind == fs.USER:
        return functions + _user_items(prefix)
    if spec.kind == fs.LABELS:
        values = _label_items(member, prefix)
    elif spec.kind == fs.SPRINT:
        return functions + _sprint_items(member, prefix)
    elif spec.kind in (fs.REF, fs.M2M):
        values = _catalogue_items(spec, member, prefix)
    elif spec.kind == fs.CATEGORY:
        values = [_item(quote_value(c), c, "statuscategory") for c in _CATEGORIES]
        values = [item for item in values if _matches(prefix, item["display"])]
    elif spec.kind == fs.CUSTOM and spec.custom is not None and spec.custom.options:
        options = [str(option) for option in spec.custom.options]
        values = [_item(quote_value(o), o, "option") for o in options if _matches(prefix, o)]
    else:
        values = []
    return values + functions


def jql_suggestions(*, text: str, cursor: int | None, member: Membership) -> dict[str, Any]:
    """Autocomplete candidates for the JQL `text` at `cursor` (default: its end)."""
    position = len(text) if cursor is None else max(0, min(cursor, len(text)))
    tokens, prefix = _split(text[:position])
    expected = _expected(tokens)
    if expected.kind == FIELD:
        items = _field_items(prefix, sortable_only=expected.sortable_only)
    elif expected.kind == OPERATOR:
        items = _operator_items(_spec(expected.field), prefix)
    elif expected.kind == VALUE:
        items = _value_items(_spec(expected.field), member, prefix)
    else:
        items = [_item(word, word, KEYWORD) for word in expected.keywords if _matches(prefix, word)]
    return {"kind": expected.kind, "prefix": prefix, "items": items[:MAX_ITEMS]}


class SuggestionsIn(Schema):
    q: str = Field("", max_length=10_000, description="The partial JQL query.")
    cursor: int | None = Field(
        None, ge=0, le=10_000, description="Cursor offset in `q`; its end by default."
    )


class SuggestionOut(Schema):
    value: str = Field(description="What to insert (quoted when needed).")
    display: str
    type: str | None = None


class SuggestionsOut(Schema):
    kind: Literal["field", "operator", "value", "keyword"]
    prefix: str = Field(description="The text being typed at the cursor, which `value` replaces.")
    items: list[SuggestionOut]
