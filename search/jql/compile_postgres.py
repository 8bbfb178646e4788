"""Compile a JQL AST to one PostgreSQL query over tickets.

Everything becomes Q objects, EXISTS subqueries and expressions on the ticket query
that `tickets_visible_to_resolved(member)` starts, so permissions always apply and the result
is one SQL statement (value names are resolved to ids first, a few small lookups).

Jira semantics kept here:
- `!=` and `NOT IN` never match an empty field; `NOT (clause)` is the plain complement.
- `labels = x` / `component = x` / `watcher = x` mean "the set contains x".
- A date-only literal stands for the whole local day: `= d` is that day, `> d` after
  it ends, `<= d` includes it; instants (`now()`, `-1d`, `"2026-01-31 14:00"`) compare
  exactly.
- `~` is English full-text search (stemmed, every word must occur, `word*` for a
  prefix, a quoted phrase for words in a row) over indexed tsvector expressions
  (search/migrations/0001); `!~` is its complement.
- `WAS` asks whether the value was held at any time (in the period, by the actor who
  set it); `CHANGED` asks for a change (creation is not a change). Both read
  TicketHistory, where ticket creation records the initial status/type/priority/
  assignee.
- Without ORDER BY results come newest first (`created DESC`); every order ends with
  the ticket id (in the direction of the last key) so pages are stable.
"""

import heapq
import re
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.contrib.postgres.search import SearchVectorField
from django.core.exceptions import EmptyResultSet
from django.db import OperationalError, connection, transaction
from django.db.models import (
    BooleanField,
    Exists,
    F,
    FloatField,
    Func,
    Max,
    Min,
    OrderBy,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    TextField,
    Value,
)
from django.db.models.expressions import Col
from django.db.models.functions import Cast
from psycopg.errors import QueryCanceled

from accounts.members.models import Membership
from search.jql import ast, sprints, views
from search.jql import fields as fs
from search.jql import functions as fn
from search.jql.ast import JqlError, ResolvedDate
from search.jql.history_sets import held_after, set_history
from search.link_keys import LINK_KEYS
from tickets.access import tickets_visible_to_resolved
from tickets.models import Comment, Priority, Status, Ticket, TicketHistory, Watcher
from tickets.walks import RankWalk, catalogue_of, estimated_rows

# -- SQL building blocks ---------------------------------------------------------------------


class EnglishVector(Func):
    """`to_tsvector('english', a || ' ' || b)`: written exactly as the expression
    indexes of search/migrations/0001 so the planner can use them."""

    arg_joiner = " || ' ' || "
    template = "to_tsvector('english'::regconfig, (%(expressions)s))"
    output_field = SearchVectorField()


class EnglishQuery(Func):
    template = "to_tsquery('english'::regconfig, %(expressions)s)"
    output_field = SearchVectorField()


class Matches(Func):
    arg_joiner = " @@ "
    template = "(%(expressions)s)"
    output_field = BooleanField()


class KeyPrefix(Func):
    """`split_part(key, '-', 1)`: the project key a ticket key starts with (a project's
    key never changes and tickets do not move between projects), written exactly as
    the expression index of search/migrations/0003, so ORDER BY key walks that index."""

    template = "split_part(%(expressions)s, '-', 1)"
    output_field = TextField()


class SearchTextColumn(Col):
    """`tickets_ticket.search_text`: the stored vector of a ticket's summary,
    description and comments, maintained by triggers (search/migrations/0004). Not a
    model field, so tickets never load it; a Col, so the alias follows the query when
    it becomes a subquery."""

    def __init__(self) -> None:
        target = SearchVectorField(null=True)
        target.set_attributes_from_name("search_text")
        target.model = Ticket
        super().__init__(Ticket._meta.db_table, target, SearchVectorField(null=True))


class IdIn(Func):
    """`id = ANY(%s::bigint[])`: a list of ids as one array parameter, written as the
    text of an array (`{1,2,3}`) once. Django's `__in` writes one parameter per id,
    slow to build for 100,000 of them; psycopg turning a list of 82,000 ints into an
    array literal took 130 ms, for every statement that carries it (a page's plan, ids
    and count), where joining their digits takes 10."""

    template = "%(expressions)s = ANY(%%s::bigint[])"
    output_field = BooleanField()

    def __init__(self, expression: Any, ids: list[int]) -> None:
        super().__init__(expression)
        self.ids = ids
        self.literal = "{" + ",".join(map(str, ids)) + "}"

    def as_sql(self, compiler: Any, connection: Any, **extra: Any) -> Any:  # type: ignore[override]
        sql, params = super().as_sql(compiler, connection, **extra)
        return sql, (*params, self.literal)


class JsonText(Func):
    """`custom_fields ->> '<id>'` (jsonb_extract_path_text keeps digit keys as keys)."""

    function = "jsonb_extract_path_text"
    output_field = TextField()


def _nothing() -> Q:
    return Q(pk__in=[])


_WORD_RE = re.compile(r"\w+\*?", re.UNICODE)


def _tsquery(text: str, *, spec: fs.FieldSpec, pos: ast.Position | None) -> str:
    """A to_tsquery() string from what the user typed, built from word characters only
    (so it cannot be malformed): words AND-ed, `word*` a prefix, "a b" a phrase."""
    stripped = text.strip()
    phrase = len(stripped) > 1 and stripped[0] == stripped[-1] == '"'
    terms = []
    for word in _WORD_RE.findall(stripped):
        base = word.rstrip("*").replace("_", " ").split()
        for part in base:
            terms.append(f"{part}:*" if word.endswith("*") and part == base[-1] else part)
    if not terms:
        raise JqlError(f"The text query '{text}' for the field '{spec.name}' is not valid", pos)
    return (" <-> " if phrase else " & ").join(terms)


# -- the compiler ----------------------------------------------------------------------------


# What reading those ids may cost before the condition is left to the planner as is.
INLINE_BUDGET_MS = 200

# Up to this many tickets, a component or fix version condition is written as their ids
# (reading 100,000 ids costs ~30-100 ms; a wrong plan for the semi-join, seconds).
M2M_INLINE_MAX = 200_000

# From this many tickets of the components or versions asked for, a query read a page
# at a time (RankWalk, LinkWalk) tests them with a semi-join rather than carrying their
# ids.
SEMI_JOIN_MIN = 20_000

# Walking creation order through tickets given by id is left to the planner when a
# first page of them (WALK_PAGE) is within this many tickets of the newest (oldest):
# the walk tests each entry of the creation index for its id (0.2-0.5 us), where a sort
# looks each ticket up by id (3-4 us).
CREATION_WALK_MAX = 200_000
WALK_PAGE = 1_001

# A last sort key that never decides (the ticket id before it is unique), after a date of
# tickets given by id sorted apart: it is not in the creation index, so the planner
# cannot read that whole index hashing every id (`ticket_created_walk` holds the id and
# the project), slower than looking the tickets up by id below ~75,000 of them.
_AWAY_FROM_CREATED_WALK = (F("number").asc(),)

# A LinkWalk merges the links of at most this many components or versions, and is
# taken when the rest of the query keeps at least this share of the tickets (as the
# planner expects): past it a page tests a few thousand links at most. A rarer rest
# (`fixVersion in (...) AND priority = Highest`, 4% of 113,000) is cheaper on the
# versions' ids, sorted: 80 ms against 170 along the links.
LINK_WALK_MAX_VALUES = 64
LINK_WALK_MIN_SHARE = 0.25

# Comparisons whose matches, at the top of a query, are all its results can be.
BOUNDING_OPS = frozenset({"=", "in", "was", "was in", "changed"})

# Up to this many history rows, a WAS / CHANGED condition is written as their tickets' ids.
HISTORY_INLINE_MAX = 100_000

_UNKNOWN = object()  # not looked up yet

# Saved filters nest (`filter = A` where A says `filter = B`); past this depth a query
# is refused rather than compiled without end.
MAX_FILTER_DEPTH = 10


class _Compiler:
    def __init__(self, ctx: fn.JqlContext, within: tuple[tuple[int, str], ...] = ()) -> None:
        self.ctx = ctx
        # The query's WHERE (None inside a saved filter compiled in place); whether one
        # of its top-level comparisons was written as a list of ids that bound the
        # result; the comparison being compiled.
        self.where: ast.Clause | None = None
        self.bounded_by_ids = False
        # The lists of ids bounding the result (a list: those ids were looked up), and
        # whether a walk of creation order through them is long, by direction (asked
        # when needed).
        self.id_sets: list[list[int]] = []
        self._creation_walk_long: dict[bool, bool] = {}
        # Whether an index could give the rows in the query's order, and whether that is
        # the creation index, walked a short way through tickets given by id (set by
        # `order`).
        self.index_ordered = True
        self.creation_walk = False
        # Whether the query sorts first by a catalogue's order (priority, status...),
        # which a page can read value by value (RankWalk).
        self.rank_first = False
        # The links' copy of the date the query sorts by alone, and whether descending,
        # when a page could walk a component's or version's links in that order; the
        # comparison whose links it would walk; those links (through model, catalogue
        # column, ids, rows) when they are many (LinkWalk).
        self.link_order: tuple[str, bool] | None = None
        self.link_candidate: ast.Comparison | None = None
        self.link_source: tuple[Any, str, tuple[int, ...], QuerySet[Any]] | None = None
        self._comparing: ast.Comparison | None = None
        self._top_projects: set[int] | object | None = _UNKNOWN
        # (id, name) of the saved filters being compiled, outermost first: a reference
        # to one of them is a cycle.
        self.within = within

    # clauses

    def clause(self, node: ast.Clause) -> Q:
        if isinstance(node, ast.And):
            result = Q()
            for child in node.clauses:
                result &= self.clause(child)
            return result
        if isinstance(node, ast.Or):
            result = _nothing()
            first = True
            for child in node.clauses:
                result = self.clause(child) if first else result | self.clause(child)
                first = False
            return result
        if isinstance(node, ast.Not):
            return ~self.clause(node.clause)
        return self.comparison(node)

    def comparison(self, node: ast.Comparison) -> Q:
        self._comparing = node
        spec = fs.field_spec(node.field)
        pos = node.pos or node.field.pos
        op = node.op
        fs.operator_check(spec, op, pos)
        if op in fs.HISTORY:
            return self.history(spec, node, pos)
        operand = node.operand
        if op in ("is", "is not"):
            if not isinstance(operand, ast.Empty):
                raise JqlError(
                    f"The operator '{op.upper()}' only supports the use of EMPTY or NULL", pos
                )
            return self.empty(spec) if op == "is" else ~self.empty(spec)
        if operand is None:
            raise JqlError(f"Expecting a value after '{op.upper()}'", pos)
        if op in ("~", "!~"):
            if not isinstance(operand, ast.Literal):
                raise JqlError(
                    f"The operator '{op}' for the field '{spec.name}' needs a text value", pos
                )
            matched = self.text(spec, operand)
            return matched if op == "~" else ~matched
        if op in ("in", "not in"):
            if not isinstance(operand, ast.ListValue | ast.FunctionCall):
                raise JqlError(
                    f"The operator '{op.upper()}' for the field '{spec.name}' needs a list of "
                    "values, e.g. (a, b)",
                    pos,
                )
        elif isinstance(operand, ast.ListValue):
            raise JqlError(
                f"The operator '{op}' for the field '{spec.name}' does not take a list", pos
            )
        items = ast.operand_items(operand)
        if op in fs.RANGE:
            return self.range(spec, op, items[0])
        if spec.kind == fs.FILTER:
            matched = self.saved_filters(spec, items)
            return matched if op in ("=", "in") else ~matched
        has_empty = any(isinstance(item, ast.Empty) for item in items)
        values = [item for item in items if not isinstance(item, ast.Empty)]
        if any(isinstance(item, ast.ListValue) for item in values):
            raise JqlError("Lists cannot be nested", pos)
        if spec.kind == fs.CATEGORY and values and op in ("!=", "not in"):
            # Never empty: the other categories' statuses, a list the (assignee,
            # status) and (project, status) indexes can use, as NOT IN is not.
            return self.category_statuses(spec, values, within=False)
        matched = self.any_of(spec, values, pos) if values else _nothing()
        if op in ("=", "in"):
            return matched | self.empty(spec) if has_empty else matched
        # != and NOT IN never match empty fields (Jira).
        return ~self.empty(spec) & ~matched

    # values -------------------------------------------------------------------------------

    def _functions(self, spec: fs.FieldSpec, values: list[Any], accepts: set[str]) -> list[Any]:
        calls = [v for v in values if isinstance(v, ast.FunctionCall)]
        for call in calls:
            kind = fn.function_kind(call)
            if kind not in accepts:
                raise JqlError(
                    f"The function '{fn.DISPLAY_NAMES[call.name]}()' is not supported by the "
                    f"'{spec.name}' field",
                    call.pos,
                )
        return calls

    def ids(self, spec: fs.FieldSpec, values: list[Any]) -> list[int]:
        """Ids of catalogue rows or users for REF / USER / WATCHER / M2M values."""
        accepts = {
            "issuetype": {fn.ISSUE_TYPE},
            "project": {fn.PROJECT},
        }.get(spec.name, {fn.USER} if spec.kind in (fs.USER, fs.WATCHER) else set())
        if spec.kind == fs.CUSTOM and spec.custom.type == "user":
            accepts = {fn.USER}
        calls = self._functions(spec, values, accepts)
        literals = [v for v in values if isinstance(v, ast.Literal)]
        result: list[int] = []
        for call in calls:
            result.extend(fn.function_ids(call, self.ctx))
        if literals:
            if spec.kind in (fs.REF, fs.M2M):
                result.extend(fs.catalogue_resolve(spec, literals, member=self.ctx.member))
            else:
                for lit in literals:
                    result.extend(fs.users_resolve([lit.value], pos=lit.pos, field_name=spec.name))
        return result

    def date(self, spec: fs.FieldSpec, value: Any) -> ResolvedDate:
        try:
            if isinstance(value, ast.FunctionCall):
                self._functions(spec, [value], {fn.DATE})
                return fn.function_dates(value, self.ctx)
            if isinstance(value, ast.Literal):
                return fn.date_literal(value.value, ctx=self.ctx, pos=value.pos)
        except OverflowError:
            raise JqlError(f"The date '{_show(value)}' is out of range", value.pos) from None
        raise JqlError(f"The field '{spec.name}' needs a date", getattr(value, "pos", None))

    def number(self, spec: fs.FieldSpec, value: Any) -> Decimal:
        if isinstance(value, ast.Literal):
            try:
                number = Decimal(value.value.strip())
            except InvalidOperation:
                number = Decimal("NaN")
            if number.is_finite() and abs(number) < Decimal("1e15"):
                return number
            raise JqlError(
                f"The value '{value.value}' is not a valid number for the field '{spec.name}'",
                value.pos,
            )
        if isinstance(value, ast.FunctionCall):
            self._functions(spec, [value], set())
        raise JqlError(f"The field '{spec.name}' needs a number", getattr(value, "pos", None))

    # per-kind matching ------------------------------------------------------------------

    def any_of(self, spec: fs.FieldSpec, values: list[Any], pos: ast.Position | None) -> Q:
        kind = spec.kind
        if kind == fs.REF:
            if spec.name == "resolution":
                unresolved = [
                    v
                    for v in values
                    if isinstance(v, ast.Literal) and v.value.strip().lower() == "unresolved"
                ]
                rest = [v for v in values if v not in unresolved]
                matched = Q(resolution_id__in=self.ids(spec, rest)) if rest else _nothing()
                return matched | Q(resolution__isnull=True) if unresolved else matched
            return Q(**{f"{spec.column}_id__in": self.ids(spec, values)})
        if kind == fs.USER:
            return Q(**{f"{spec.column}_id__in": self.ids(spec, values)})
        if kind == fs.CATEGORY:
            return self.category_statuses(spec, values, within=True)
        if kind == fs.M2M:
            relation = getattr(Ticket, spec.column or "")
            target = "component_id" if spec.column == "components" else "version_id"
            catalogue_ids = self.ids(spec, values)
            projects = self.top_projects()
            if projects is not None:
                # Components and versions belong to one project, as do their tickets:
                # under `project in (...)` only those projects' can match.
                catalogue = relation.field.related_model.objects
                catalogue_ids = list(
                    catalogue.filter(pk__in=catalogue_ids, project_id__in=projects).values_list(
                        "pk", flat=True
                    )
                )
            rows = relation.through.objects.filter(**{f"{target}__in": catalogue_ids})
            linked = rows.values("ticket_id")[:SEMI_JOIN_MIN]
            if (
                self._comparing is self.link_candidate
                and len(catalogue_ids) <= LINK_WALK_MAX_VALUES
                and linked.count() == SEMI_JOIN_MIN
            ):
                # Many tickets, which a page may read along their links in date order
                # (LinkWalk): decided once the rest of the query is compiled.
                self.link_source = (relation.through, target, tuple(catalogue_ids), rows)
                return Q()
            if self.rank_first and linked.count() == SEMI_JOIN_MIN:
                # Many tickets, read a catalogue value at a time (RankWalk): each
                # value's first matches are near, so a semi-join probing the links of
                # the tickets read costs less than carrying all their ids.
                return Q(Exists(rows.filter(ticket_id=OuterRef("pk"))))
            # The tickets of a few components or versions, looked up first (an
            # index-only scan) and written in as ids: the planner then knows how many
            # there are. As a semi-join it guesses, and may walk a sort index through
            # most tickets looking for rare matches (a version's tickets are old).
            return self.rows_match(rows, cap=M2M_INLINE_MAX)
        if kind == fs.WATCHER:
            rows = Watcher.objects.filter(
                ticket_id=OuterRef("pk"), user_id__in=self.ids(spec, values)
            )
            return Q(Exists(rows))
        if kind == fs.LABELS:
            self._functions(spec, values, set())
            return Q(labels__overlap=[v.value for v in values])
        if kind == fs.KEY:
            return self.keys(spec, values)
        if kind == fs.SPRINT:
            calls = self._functions(spec, values, {fn.SPRINT})
            literals = [v for v in values if isinstance(v, ast.Literal)]
            return sprints.sprint_any_of(
                sprints.sprint_ids(literals, calls, member=self.ctx.member)
            )
        if kind == fs.TICKET:
            self._functions(spec, values, set())
            keys = [v.value.strip().upper() for v in values]
            ids = [int(k) for k in keys if fs._as_id(k) is not None]
            return Q(**{f"{spec.column}__key__in": keys}) | Q(**{f"{spec.column}_id__in": ids})
        if kind in (fs.DATETIME, fs.DATE):
            result = _nothing()
            for value in values:
                result |= self.date_compare(spec, "=", self.date(spec, value))
            return result
        if kind == fs.NUMBER:
            return Q(**{f"{spec.column}__in": [self.number(spec, v) for v in values]})
        if kind == fs.CUSTOM:
            return self.custom_any_of(spec, values)
        raise JqlError(f"The field '{spec.name}' cannot be compared with '='", pos)

    def category_statuses(self, spec: fs.FieldSpec, values: list[Any], *, within: bool) -> Q:
        """Tickets whose status is in (`within`) or outside these categories, as status
        ids (a handful): the filter then applies in the ticket scan, before any sort,
        instead of after a join with the statuses."""
        self._functions(spec, values, set())
        categories = fs.category_resolve(spec, values)
        statuses = Status.objects.filter if within else Status.objects.exclude
        return Q(status_id__in=list(statuses(category__in=categories).values_list("pk", flat=True)))

    def saved_filters(self, spec: fs.FieldSpec, values: list[Any]) -> Q:
        """The WHERE clauses of the saved filters named, compiled in place (their
        ORDER BY is ignored); errors inside one are reported at its name here."""
        from search.jql.parser import jql_parse

        self._functions(spec, values, set())
        for value in values:
            if not isinstance(value, ast.Literal):
                raise JqlError(f"The field '{spec.name}' needs a filter name or id", value.pos)
        result = _nothing()
        for lit in values:
            for saved in fs.saved_filters_resolve(spec, [lit], member=self.ctx.member):
                ids = [pk for pk, _ in self.within]
                if saved.pk in ids:
                    names = [name for _, name in self.within[ids.index(saved.pk) :]]
                    chain = " -> ".join([*names, saved.name])
                    raise _FilterCycle(
                        f"The filter '{saved.name}' refers to itself ({chain})", lit.pos
                    )
                if len(self.within) >= MAX_FILTER_DEPTH:
                    raise JqlError(
                        f"Saved filters are nested more than {MAX_FILTER_DEPTH} deep", lit.pos
                    )
                inner = _Compiler(self.ctx, (*self.within, (saved.pk, saved.name)))
                try:
                    where = jql_parse(saved.jql).where
                    matched = inner.clause(where) if where is not None else Q(pk__isnull=False)
                except _FilterCycle as exc:
                    raise _FilterCycle(exc.reason, lit.pos) from None
                except JqlError as exc:
                    raise JqlError(
                        f"The filter '{saved.name}' is not valid ({exc.message})", lit.pos
                    ) from None
                result |= matched
        return result

    def keys(self, spec: fs.FieldSpec, values: list[Any]) -> Q:
        calls = self._functions(spec, values, {fn.TICKET})
        result = _nothing()
        for call in calls:
            result |= fn.function_tickets(call, self.ctx)
        keys = [v.value.strip().upper() for v in values if isinstance(v, ast.Literal)]
        ids = [fs._as_id(k) for k in keys if fs._as_id(k) is not None]
        if keys:
            result |= Q(key__in=keys)
        if ids:
            result |= Q(pk__in=ids)
        return result

    def empty(self, spec: fs.FieldSpec) -> Q:
        kind = spec.kind
        if kind in (fs.REF, fs.USER, fs.TICKET):
            return Q(**{f"{spec.column}__isnull": True})
        if kind in (fs.DATETIME, fs.DATE, fs.NUMBER):
            return Q(**{f"{spec.column}__isnull": True})
        if kind == fs.TEXT_FIELD:
            return Q(**{spec.column or "": ""})
        if kind == fs.LABELS:
            return Q(labels=[]) | Q(labels__isnull=True)
        if kind == fs.M2M:
            through = getattr(Ticket, spec.column or "").through
            return ~Q(Exists(through.objects.filter(ticket_id=OuterRef("pk"))))
        if kind == fs.WATCHER:
            return ~Q(Exists(Watcher.objects.filter(ticket_id=OuterRef("pk"))))
        if kind == fs.SPRINT:
            return sprints.sprint_empty()
        if kind == fs.VIEWED:
            return ~Q(pk__in=list(self.ctx.viewed()))
        if kind == fs.CUSTOM:
            # Missing key, JSON null, "" or []: jsonb_extract_path_text gives NULL/""/"[]".
            text = self.custom_text(spec)
            return Q(_isnull(text)) | Q(_in(text, ["", "[]"]))
        return _nothing()  # key, statusCategory: never empty

    def range(self, spec: fs.FieldSpec, op: str, value: Any) -> Q:
        if isinstance(value, ast.Empty):
            raise JqlError(
                f"The operator '{op}' does not support the use of EMPTY for the field "
                f"'{spec.name}'",
                value.pos,
            )
        lookup = {">": "gt", ">=": "gte", "<": "lt", "<=": "lte"}[op]
        if spec.kind == fs.REF:  # priority: by rank, not by name
            (priority_id,) = self.ids(spec, [value])[:1] or [0]
            rank = Subquery(Priority.objects.filter(pk=priority_id).values("rank")[:1])
            return Q(**{f"priority__rank__{lookup}": rank})
        if spec.kind in (fs.DATETIME, fs.DATE):
            return self.date_compare(spec, op, self.date(spec, value))
        if spec.kind == fs.NUMBER:
            return Q(**{f"{spec.column}__{lookup}": self.number(spec, value)})
        if spec.kind == fs.VIEWED:
            return views.viewed_compare(self.ctx.viewed(), op, self.date(spec, value))
        if spec.kind == fs.KEY:
            if not isinstance(value, ast.Literal):
                raise JqlError(f"The field '{spec.name}' needs an issue key", value.pos)
            match = re.fullmatch(r"([A-Za-z][A-Za-z0-9_]*)-(\d{1,9})", value.value.strip())
            if not match:
                raise JqlError(
                    f"The issue key '{value.value}' for the field 'key' is invalid", value.pos
                )
            return Q(
                project__key=match.group(1).upper(), **{f"number__{lookup}": int(match.group(2))}
            )
        if spec.kind == fs.CUSTOM:
            return self.custom_range(spec, lookup, value)
        raise JqlError(
            f"The operator '{op}' is not supported by the '{spec.name}' field", value.pos
        )

    def date_compare(self, spec: fs.FieldSpec, op: str, when: ResolvedDate) -> Q:
        col = spec.column or ""
        if spec.kind == fs.DATE:
            day = when.start.astimezone(self.ctx.tz).date()
            lookup = {"=": "exact", ">": "gt", ">=": "gte", "<": "lt", "<=": "lte"}[op]
            return Q(**{f"{col}__{lookup}": day})
        if when.date_only:
            bounds = {
                "=": Q(**{f"{col}__gte": when.start, f"{col}__lt": when.end}),
                ">": Q(**{f"{col}__gte": when.end}),
                ">=": Q(**{f"{col}__gte": when.start}),
                "<": Q(**{f"{col}__lt": when.start}),
                "<=": Q(**{f"{col}__lt": when.end}),
            }
            return bounds[op]
        lookup = {"=": "exact", ">": "gt", ">=": "gte", "<": "lt", "<=": "lte"}[op]
        return Q(**{f"{col}__{lookup}": when.start})

    # text ---------------------------------------------------------------------------------

    def text(self, spec: fs.FieldSpec, value: ast.Literal) -> Q:
        terms = _tsquery(value.value, spec=spec, pos=value.pos)
        query = EnglishQuery(Value(terms))
        if spec.kind == fs.CUSTOM:
            return Q(Matches(EnglishVector(self.custom_text(spec)), query))
        if spec.kind == fs.TEXT_FIELD and spec.column == "summary":
            return Q(Matches(EnglishVector(F("summary")), query))  # its own GIN index
        comments = Q(
            Exists(
                Comment.objects.filter(ticket_id=OuterRef("pk")).filter(
                    Matches(EnglishVector(F("body")), query)
                )
            )
        )
        exact = {
            fs.COMMENT: comments,
            fs.TEXT_ALL: Q(Matches(EnglishVector(F("summary"), F("description")), query))
            | comments,
        }.get(spec.kind, Q(Matches(EnglishVector(F(spec.column or "")), query)))
        # The ticket's stored vector of all its text (search/migrations/0004) matches
        # whenever one part does: an indexed pre-filter. For `text ~ word` (one term,
        # no phrase) it is the answer itself; NULL marks a ticket too big for one
        # vector, searched the exact way.
        stored = SearchTextColumn()
        built = Q(Matches(stored, query)) & ~Q(_isnull(stored))
        unbuilt = Q(_isnull(stored))
        if spec.kind == fs.TEXT_ALL and " " not in terms:
            return built | (unbuilt & exact)
        return (built | unbuilt) & exact

    # custom fields -----------------------------------------------------------------------

    def custom_text(self, spec: fs.FieldSpec) -> JsonText:
        return JsonText(F("custom_fields"), Value(str(spec.custom.pk)))

    def custom_any_of(self, spec: fs.FieldSpec, values: list[Any]) -> Q:
        cf = spec.custom
        key = str(cf.pk)
        if cf.type == "select":
            self._functions(spec, values, set())
            options = [fs.custom_option_resolve(spec, v) for v in values]
            return Q(_in(self.custom_text(spec), options))
        if cf.type == "multiselect":
            self._functions(spec, values, set())
            result = _nothing()
            for v in values:
                result |= Q(custom_fields__contains={key: [fs.custom_option_resolve(spec, v)]})
            return result
        if cf.type == "user":
            return Q(_in(self.custom_text(spec), [str(i) for i in self.ids(spec, values)]))
        if cf.type == "number":
            numbers = [float(self.number(spec, v)) for v in values]
            return Q(_in(Cast(self.custom_text(spec), FloatField()), numbers))
        if cf.type == "date":
            result = _nothing()
            for v in values:
                result |= self.custom_range(spec, "exact", v)
            return result
        raise JqlError(f"The operator '=' is not supported by the '{spec.name}' field", None)

    def custom_range(self, spec: fs.FieldSpec, lookup: str, value: Any) -> Q:
        cf = spec.custom
        if cf.type == "number":
            number = float(self.number(spec, value))
            expr = Cast(self.custom_text(spec), FloatField())
            return Q(_compare(expr, lookup, number))
        when = self.date(spec, value)
        day = when.start.astimezone(self.ctx.tz).date().isoformat()
        return Q(_compare(self.custom_text(spec), lookup, day))

    # history ------------------------------------------------------------------------------

    def history(self, spec: fs.FieldSpec, node: ast.Comparison, pos: ast.Position | None) -> Q:
        allowed = {"by", "after", "before", "on", "during"}
        if node.op == "changed":
            allowed |= {"from", "to"}
        for predicate in node.predicates:
            if predicate.kind not in allowed:
                raise JqlError(
                    f"The predicate '{predicate.kind.upper()}' is not supported by the "
                    f"'{node.op.upper()}' operator",
                    predicate.pos,
                )
        if spec.kind in (fs.LABELS, fs.M2M):
            return set_history(self, spec, node, pos)
        # The matching history rows, read on their own first: when they are few their
        # tickets are written in as ids, so the planner knows how few.
        matched = self.rows_match(self.history_rows(spec, node, pos))
        if node.op == "changed":
            return matched
        operand = node.operand
        items = ast.operand_items(operand)
        has_empty = any(isinstance(item, ast.Empty) for item in items)
        if has_empty and not node.predicates and spec.column:
            field_name = spec.history or ""
            never_set = ~Q(
                Exists(TicketHistory.objects.filter(ticket_id=OuterRef("pk"), field=field_name))
            )
            matched |= never_set & Q(**{f"{spec.column}__isnull": True})
        return ~matched if node.op in ("was not", "was not in") else matched

    def rows_match(
        self, rows: QuerySet[Any], *, cap: int = HISTORY_INLINE_MAX, whole: bool = True
    ) -> Q:
        """Tickets having one of these rows (history, component or version links, which
        do not refer to the outer ticket): their ids when at most `cap`, else an EXISTS
        per ticket. `whole`: they are all the comparison matches."""
        few = _ticket_ids_if_few(rows, cap)
        if few is not None:
            return self.ids_in(few, whole=whole)
        return Q(Exists(rows.filter(ticket_id=OuterRef("pk"))))

    def ids_in(self, ids: list[int], *, whole: bool = True) -> Q:
        """`id = ANY(ids)`, noting when these ids bound the whole result: they are all
        the comparison matches (`whole`), which is a top-level `=`, `in`, `was`, `was in`
        or `changed` without EMPTY."""
        if whole and self.bounding():
            self.bounded_by_ids = True
            if ids:
                self.id_sets.append(ids)
        return Q(IdIn(F("pk"), ids))

    def bounding(self) -> bool:
        """Whether the matches of the comparison being compiled bound the whole result:
        a top-level `=`, `in`, `was`, `was in` or `changed` without EMPTY."""
        node = self._comparing
        if node is None or not any(node is c for c in self.conjuncts()):
            return False
        return node.op in BOUNDING_OPS and not _has_empty(node)

    def history_rows(
        self, spec: fs.FieldSpec, node: ast.Comparison, pos: ast.Position | None
    ) -> QuerySet[TicketHistory]:
        """The history rows that make a ticket match WAS / CHANGED (on their own: they
        compare their time with their ticket's creation through their ticket_id)."""
        field_name = spec.history or ""
        rows = TicketHistory.objects.filter(field=field_name)
        if node.op == "changed":
            # The rows written when the ticket was created are not changes.
            rows = rows.exclude(_written_at_creation())
            for predicate in node.predicates:
                rows = self._changed_predicate(spec, rows, predicate)
            return rows
        operand = node.operand
        if operand is None:
            raise JqlError(f"Expecting a value after '{node.op.upper()}'", pos)
        items = ast.operand_items(operand)
        if node.op in ("was", "was not") and isinstance(operand, ast.ListValue):
            raise JqlError(
                f"The operator '{node.op.upper()}' for the field '{spec.name}' does not take a "
                "list; use WAS IN",
                pos,
            )
        values = [v for v in items if not isinstance(v, ast.Empty)]
        held = Q(to_ref__in=self.ids(spec, values)) if values else _nothing()
        if len(values) < len(items):
            # Empty: explicitly cleared, or empty until a later first value.
            held |= Q(to_ref__isnull=True) | (Q(from_ref__isnull=True) & _after_creation())
        rows = rows.filter(held)
        start, end = None, None
        for predicate in node.predicates:
            if predicate.kind == "by":
                rows = rows.filter(actor_id__in=self._users_of(spec, predicate))
            else:
                p_start, p_end = self._period(spec, predicate)
                start = p_start if start is None or (p_start and p_start > start) else start
                end = p_end if end is None or (p_end and p_end < end) else end
        # Held during [start, end): set before the end, not replaced before the start
        # (`until`, the time of the next change of the field, kept by the database).
        if end is not None:
            rows = rows.filter(created_at__lt=end)
        if start is not None:
            rows = rows.filter(held_after(start))
        return rows

    def conjuncts(self) -> tuple[ast.Clause, ...]:
        """The clauses ANDed at the top of the query: each one's matches bound it."""
        where = self.where
        if where is None:
            return ()
        return where.clauses if isinstance(where, ast.And) else (where,)

    def top_projects(self) -> set[int] | None:
        """The projects the query is confined to by `project = X` / `project in (...)`
        at its top level, or None (looked up once). An invalid clause is left for the
        compiler to report in its place."""
        if self._top_projects is _UNKNOWN:
            found: set[int] | None = None
            for clause in self.conjuncts():
                if not isinstance(clause, ast.Comparison) or clause.op not in ("=", "in"):
                    continue
                items = ast.operand_items(clause.operand)
                if not all(isinstance(i, ast.Literal) for i in items):
                    continue
                try:
                    spec = fs.field_spec(clause.field)
                    ids = set(self.ids(spec, items)) if spec.name == "project" else None
                except JqlError:
                    continue
                if ids is not None:
                    found = ids if found is None else found & ids
            self._top_projects = found
        return self._top_projects  # type: ignore[return-value]

    def _users_of(self, spec: fs.FieldSpec, predicate: ast.HistoryPredicate) -> list[int]:
        operand = predicate.operand
        items = ast.operand_items(operand)
        user_spec = fs.SYSTEM_FIELDS["assignee"]
        return self.ids(fs.FieldSpec("by", fs.USER, user_spec.operators), items)

    def _period(self, spec: fs.FieldSpec, predicate: ast.HistoryPredicate) -> tuple[Any, Any]:
        """[start, end) of AFTER / BEFORE / ON / DURING."""
        date_spec = fs.FieldSpec(predicate.kind.upper(), fs.DATETIME, frozenset())
        operand = predicate.operand
        if predicate.kind == "during":
            if not isinstance(operand, ast.ListValue) or len(operand.items) != 2:
                raise JqlError(
                    'DURING needs two dates, e.g. DURING ("2026/01/01", now())', predicate.pos
                )
            first = self.date(date_spec, operand.items[0])
            last = self.date(date_spec, operand.items[1])
            return first.start, last.end if last.date_only else last.start
        when = self.date(date_spec, operand)
        if predicate.kind == "after":
            return (when.end if when.date_only else when.start), None
        if predicate.kind == "before":
            return None, when.start
        day = when.start.astimezone(self.ctx.tz).date()
        on = fn.date_literal(day.isoformat(), ctx=self.ctx, pos=predicate.pos)
        return on.start, on.end

    def _changed_predicate(
        self, spec: fs.FieldSpec, rows: QuerySet[TicketHistory], predicate: ast.HistoryPredicate
    ) -> QuerySet[TicketHistory]:
        kind = predicate.kind
        if kind == "by":
            return rows.filter(actor_id__in=self._users_of(spec, predicate))
        if kind in ("from", "to"):
            column = f"{kind}_ref"
            operand = predicate.operand
            items = ast.operand_items(operand)
            values = [v for v in items if not isinstance(v, ast.Empty)]
            cond = Q(**{f"{column}__in": self.ids(spec, values)}) if values else _nothing()
            if len(values) < len(items):
                cond |= Q(**{f"{column}__isnull": True})
            return rows.filter(cond)
        start, end = self._period(spec, predicate)
        if start is not None:
            rows = rows.filter(created_at__gte=start)
        if end is not None:
            rows = rows.filter(created_at__lt=end)
        return rows

    # ordering -----------------------------------------------------------------------------

    def order(self, order_by: tuple[ast.OrderBy, ...]) -> list[Any]:
        if not order_by:
            self.creation_walk = self.bounded_by_ids
            if self.sorted_apart(fs.SYSTEM_FIELDS["created"], descending=True):
                self.creation_walk = False
                # Newest first, of old tickets given by id: sorted, off the date's index
                # (as `ORDER BY created DESC` below).
                self.index_ordered = False
                newest = OrderBy(F("created_at") + Value(timedelta(0)), descending=True)
                return [newest, F("id").desc(), *_AWAY_FROM_CREATED_WALK]
            return [F("created_at").desc(), F("id").desc()]
        result: list[Any] = []
        for item in order_by:
            spec = fs.field_spec(item.field)
            exprs: list[Any]
            if spec.kind == fs.CUSTOM:
                text = self.custom_text(spec)
                exprs = [Cast(text, FloatField()) if spec.custom.type == "number" else text]
            elif spec.kind == fs.VIEWED:
                exprs = [views.viewed_order(self.ctx.viewed())]
            elif spec.kind == fs.KEY:
                # Within one project ORDER BY key is ORDER BY number, which the
                # (project, number) index serves.
                projects = self.top_projects()
                one_project = projects is not None and len(projects) == 1
                exprs = [F("number")] if one_project else [KeyPrefix(F("key")), F("number")]
            elif spec.order and self.sorted_apart(spec, descending=item.descending):
                # At most M2M_INLINE_MAX matches, given by id: sorting them is bounded,
                # while walking the date's index (what the planner picks, assuming
                # matches are spread evenly) read a million rows for a release's old
                # tickets. `+ 0 s` keeps the planner off that index.
                exprs = [F(name) + Value(timedelta(0)) for name in spec.order]
            elif spec.order:
                exprs = [F(name) for name in spec.order]
            else:
                raise JqlError(f"Field '{spec.name}' does not support sorting", item.field.pos)
            for expr in exprs:
                # NULLS LAST only where there can be nulls: on a NOT NULL column it would
                # keep a DESC sort from reading its index backwards.
                never_null = isinstance(expr, KeyPrefix) or (
                    isinstance(expr, F) and _never_null(expr.name)
                )
                nulls_last = None if never_null else True
                result.append(OrderBy(expr, descending=item.descending, nulls_last=nulls_last))
        last_descending = order_by[-1].descending
        result.append(F("id").desc() if last_descending else F("id").asc())
        first = fs.field_spec(order_by[0].field)
        apart = self.sorted_apart(first, descending=order_by[0].descending)
        if apart:
            result.extend(_AWAY_FROM_CREATED_WALK)
        # The first sort key decides whether an index walk can give the order: a key,
        # or a column of the ticket (a date, unless sorted apart above). Priority and
        # status sort by their catalogue's rank (a join), custom fields and `lastViewed`
        # by expressions: no index holds those orders.
        self.index_ordered = first.kind == fs.KEY or (
            first.kind not in (fs.CUSTOM, fs.VIEWED)
            and bool(first.order)
            and "__" not in first.order[0]
            and not apart
        )
        self.creation_walk = self.bounded_by_ids and first.order == ("created_at",) and not apart
        return result

    def sorted_apart(self, spec: fs.FieldSpec, *, descending: bool) -> bool:
        """Whether ORDER BY this date, of tickets given by id, is sorted off the date's
        index. By creation it is walked when a page of them is among the newest
        (oldest) tickets: ids follow creation, so the walk passes about as many
        tickets as there are ids beyond the page's last (`status CHANGED TO Done
        AFTER -30d` finds its page within the last few thousand tickets; a release
        of last January is a million tickets back)."""
        if not (self.bounded_by_ids and spec.kind == fs.DATETIME):
            return False
        if spec.order != ("created_at",) or not self.id_sets:
            return True
        if descending not in self._creation_walk_long:
            self._creation_walk_long[descending] = self._creation_walk_passes_many(descending)
        return self._creation_walk_long[descending]

    def _creation_walk_passes_many(self, descending: bool) -> bool:
        """Whether walking creation order from the newest (oldest) ticket passes more
        than CREATION_WALK_MAX tickets before a first page of some list of ids (5-10 ms
        for 100,000 ids: asked once per direction)."""
        found = Ticket.objects.aggregate(low=Min("id"), high=Max("id"))
        low, high = found["low"] or 0, found["high"] or 0
        for ids in self.id_sets:
            if descending:
                passed = high - heapq.nlargest(WALK_PAGE, ids)[-1]
            else:
                passed = heapq.nsmallest(WALK_PAGE, ids)[-1] - low
            if passed > CREATION_WALK_MAX:
                return True
        return False


def _ticket_ids_if_few(rows: QuerySet[Any], cap: int) -> list[int] | None:
    """The `ticket_id`s of `rows` (repeats possible) when there are at most `cap` and
    reading them takes at most INLINE_BUDGET_MS; None otherwise. The result of the
    search is the same either way: only its plan differs."""
    try:
        query = rows.order_by().values_list("ticket_id", flat=True)[: cap + 1].query
        sql, params = query.sql_with_params()
    except EmptyResultSet:
        return []
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL statement_timeout = {INLINE_BUDGET_MS}")
            cursor.execute(sql, params)
            ids = [row[0] for row in cursor.fetchall()]
            cursor.execute("SET LOCAL statement_timeout = DEFAULT")
    except OperationalError as exc:
        if isinstance(exc.__cause__, QueryCanceled):
            return None
        raise
    return ids if len(ids) <= cap else None


def _written_at_creation() -> Q:
    """History rows written when their ticket was created: no previous value, at the
    ticket's creation time. Only `from_ref` is read from the row itself, which the
    history's (field, to_ref | from_ref, created_at) indexes include with `ticket_id`
    and `id`, so CHANGED reads them from the index alone; `from_value` and the ticket
    are looked up for the few rows without a previous reference (the planner
    evaluates the cheap condition first)."""
    ticket = Ticket.objects.filter(pk=OuterRef("ticket_id"), created_at=OuterRef("created_at"))
    valueless = TicketHistory.objects.filter(pk=OuterRef("pk"), from_value__isnull=True)
    return Q(from_ref__isnull=True) & Q(Exists(ticket)) & Q(Exists(valueless))


def _after_creation() -> Q:
    """History rows written after their ticket was created."""
    ticket = Ticket.objects.filter(pk=OuterRef("ticket_id"), created_at__lt=OuterRef("created_at"))
    return Q(Exists(ticket))


def _never_null(lookup: str) -> bool:
    """Whether a Ticket lookup (`created_at`, `priority__rank`) is NOT NULL all along."""
    model: Any = Ticket
    for name in lookup.split("__"):
        field = model._meta.get_field(name)
        if field.null:
            return False
        model = field.related_model
    return True


class _FilterCycle(JqlError):
    """A saved filter that refers to itself: reported as is at the outermost name."""


def _show(value: Any) -> str:
    if isinstance(value, ast.Literal):
        return value.value
    if isinstance(value, ast.FunctionCall):
        return f"{fn.DISPLAY_NAMES.get(value.name, value.name)}()"
    return "EMPTY"


def _in(expr: Any, values: list[Any]) -> Any:
    from django.db.models.lookups import In

    return In(expr, values)


def _isnull(expr: Any) -> Any:
    from django.db.models.lookups import IsNull

    return IsNull(expr, True)


def _compare(expr: Any, lookup: str, value: Any) -> Any:
    from django.db.models import lookups

    classes = {
        "exact": lookups.Exact,
        "gt": lookups.GreaterThan,
        "gte": lookups.GreaterThanOrEqual,
        "lt": lookups.LessThan,
        "lte": lookups.LessThanOrEqual,
    }
    return classes[lookup](expr, value)


def _rank_walkable(spec: fs.FieldSpec) -> bool:
    """Whether ORDER BY `spec` is the order of a small catalogue the ticket refers to
    (project, type, status, status category, priority, resolution): columns of the
    catalogue's table, none of them nullable."""
    if spec.kind not in (fs.REF, fs.CATEGORY) or not spec.order or not spec.column:
        return False
    catalogue = catalogue_of(spec.column)
    prefix = f"{spec.column}__"
    return all(
        name.startswith(prefix)
        and "__" not in name[len(prefix) :]
        and not catalogue._meta.get_field(name[len(prefix) :]).null
        for name in spec.order
    )


@dataclass(frozen=True)
class LinkWalk:
    """A query bounded by components or versions (`fixVersion in (...) AND ...`) and
    sorted by `created` or `updated` alone, read along their links, which carry their
    ticket's dates and are indexed by them (search/migrations/0006): the links of each
    component or version newest first, merged, each ticket tested against the query,
    stopping at the end of the page.

    Sorting the matches reads all of them (113,000 tickets of two releases: 400 ms), and
    walking the tickets' own date index passes every newer ticket first (a release's
    tickets are old)."""

    table: str  # the link table
    column: str  # its catalogue column: "version_id"
    values: tuple[int, ...]  # the components or versions
    key: str  # the date: "ticket_updated_at"
    descending: bool
    tickets: QuerySet[Ticket]  # the matches (their order does not matter)

    def first_ids(self, count: int) -> list[int]:
        """The ids of the first `count` matches in the query's order (all of them if
        fewer). A ticket with two of the components or versions is on two links, next
        to each other in the merged order: read again further while repeats fall short."""
        direction = "DESC" if self.descending else "ASC"
        # (Names from LINK_TABLES and LINK_KEYS, not from the query's text.)
        branch = (
            f"(SELECT ticket_id, {self.key} AS sort_key FROM {self.table}"  # noqa: S608
            f" WHERE {self.column} = %s ORDER BY {self.key} {direction}, ticket_id {direction})"
        )
        try:
            matches, params = self.tickets.order_by().values("pk").query.sql_with_params()
        except EmptyResultSet:
            return []
        # Each branch walks its index in order; PostgreSQL merges them (Merge Append)
        # and tests each link's ticket against the query until the LIMIT.
        sql = (
            f"SELECT ticket_id FROM ({' UNION ALL '.join([branch] * len(self.values))})"  # noqa: S608
            f" AS links WHERE ticket_id IN ({matches})"
            f" ORDER BY sort_key {direction}, ticket_id {direction} LIMIT %s"
        )
        limit = count
        with connection.cursor() as cursor:
            while True:
                cursor.execute(sql, [*self.values, *params, limit])
                rows = [row[0] for row in cursor.fetchall()]
                found = [pk for i, pk in enumerate(rows) if i == 0 or rows[i - 1] != pk]
                if len(found) >= count or len(rows) < limit:
                    return found[:count]
                limit *= 2


@dataclass(frozen=True)
class CreationWalk:
    """Tickets given by id (`status CHANGED TO Done AFTER -30d`) in creation order,
    a page of which is among the newest (or oldest) tickets: the plan walks the
    creation index a short way, so the first window comes in one read, with its count,
    without asking the planner first (each statement carrying 80,000 ids costs 30-40 ms
    to plan)."""

    tickets: QuerySet[Ticket]  # in the query's order

    def first_ids(self, count: int) -> list[int]:
        return list(self.tickets.values_list("pk", flat=True)[:count])


@dataclass(frozen=True)
class CompiledJql:
    """A compiled query: its tickets in order, whether PostgreSQL must sort all the
    matches for that order (no index holds it), so a plan need not be asked for, and
    a way to read a page's window without sorting every match, when there is one (by
    catalogue value, RankWalk; along component or version links, LinkWalk; a short walk
    of creation order through tickets given by id, CreationWalk)."""

    tickets: QuerySet[Ticket]
    sorts_every_match: bool
    walk: "RankWalk | LinkWalk | CreationWalk | None" = None


def jql_compile(
    query: ast.Query,
    *,
    member: Membership,
    tenant: Any,
    within_filter: tuple[int, str] | None = None,
) -> CompiledJql:
    """The tickets `member` may see that match `query`, in its order: one SQL query.
    Raises JqlError for an invalid query (unknown field/value/function, operator not
    supported by the field, a saved filter referring to itself, ...). `within_filter`
    (id, name) is the saved filter whose query this is, when checking it."""
    ctx = fn.JqlContext.for_tenant(member=member, tenant=tenant)
    compiler = _Compiler(ctx, (within_filter,) if within_filter else ())
    first = _first_sort_spec(query)
    compiler.rank_first = first is not None and _rank_walkable(first)
    compiler.link_order = _link_order(query, first)
    visible = tickets_visible_to_resolved(member)
    tickets = visible
    if query.where is not None:
        compiler.where = query.where
        compiler.link_candidate = _link_candidate(compiler)
        tickets = tickets.filter(compiler.clause(query.where))
    walk: RankWalk | LinkWalk | CreationWalk | None = None
    if compiler.link_source is not None and compiler.link_order is not None:
        # The query without the component or version condition: dense enough that its
        # matches come often along the links, the page walks them; otherwise the
        # condition is compiled as usual (ids when few) and the matches sorted.
        through, column, values, rows = compiler.link_source
        if estimated_rows(tickets) >= LINK_WALK_MIN_SHARE * estimated_rows(visible):
            key, descending = compiler.link_order
            walk = LinkWalk(through._meta.db_table, column, values, key, descending, tickets)
            tickets = tickets.filter(Exists(rows.filter(ticket_id=OuterRef("pk"))))
            # (A sorted read of them all keeps off the date's index, as for ids.)
            compiler.bounded_by_ids = True
        else:
            compiler._comparing = compiler.link_candidate
            tickets = tickets.filter(compiler.rows_match(rows, cap=M2M_INLINE_MAX))
    ordering = compiler.order(query.order_by)
    if compiler.creation_walk:
        walk = CreationWalk(tickets.order_by(*ordering))
    if walk is None and first is not None and compiler.rank_first and not compiler.bounded_by_ids:
        # (Matches given as ids are few: sorting them is cheaper than a query per value.)
        assert first.column is not None
        walk = RankWalk(
            column=first.column,
            fields=tuple(name.split("__", 1)[1] for name in first.order),
            descending=query.order_by[0].descending,
            tickets=tickets.order_by(*ordering),
            rest=tickets.order_by(*ordering[len(first.order) :]),
        )
    return CompiledJql(
        tickets.order_by(*ordering), sorts_every_match=not compiler.index_ordered, walk=walk
    )


def _link_candidate(compiler: _Compiler) -> ast.Comparison | None:
    """The first top-level `component` / `fixVersion` `=` or `IN` without EMPTY, when
    the query is sorted by a date its links carry."""
    if compiler.link_order is None:
        return None
    for clause in compiler.conjuncts():
        if not isinstance(clause, ast.Comparison) or clause.op not in ("=", "in"):
            continue
        try:
            spec = fs.field_spec(clause.field)
        except JqlError:
            continue
        if spec.kind == fs.M2M and not _has_empty(clause):
            return clause
    return None


def _has_empty(node: ast.Comparison) -> bool:
    """Whether the comparison's values include EMPTY (`component in (api, EMPTY)`)."""
    return any(isinstance(i, ast.Empty) for i in ast.operand_items(node.operand))


def _link_order(query: ast.Query, first: fs.FieldSpec | None) -> tuple[str, bool] | None:
    """The links' copy of the date the query sorts by, and whether descending, when it
    sorts by `created` or `updated` alone (or by default, created descending)."""
    if not query.order_by:
        return LINK_KEYS["created_at"], True
    if len(query.order_by) > 1 or first is None or first.kind != fs.DATETIME:
        return None
    key = LINK_KEYS.get(first.order[0]) if first.order else None
    return (key, query.order_by[0].descending) if key else None


def _first_sort_spec(query: ast.Query) -> fs.FieldSpec | None:
    """The field the query sorts by first, if any and known (an unknown one is
    reported where the ORDER BY is compiled, after the WHERE's errors)."""
    if not query.order_by:
        return None
    try:
        return fs.field_spec(query.order_by[0].field)
    except JqlError:
        return None


def jql_compile_postgres(
    query: ast.Query,
    *,
    member: Membership,
    tenant: Any,
    within_filter: tuple[int, str] | None = None,
) -> QuerySet[Ticket]:
    """`jql_compile`'s tickets."""
    return jql_compile(query, member=member, tenant=tenant, within_filter=within_filter).tickets
