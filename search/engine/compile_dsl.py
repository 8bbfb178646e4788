"""Compile a JQL AST to an Elasticsearch / OpenSearch query (plain dicts).

The query has been validated by the Postgres compiler first (same parser, same value
resolution, so the same 400 messages); this compiler resolves values with the same
functions of search.jql.fields / functions and keeps the same semantics:

- `!=` and `NOT IN` never match an empty field; `NOT` is the plain complement.
- `labels = x`, `component = x`, `watcher = x`: the set contains x.
- Date-only literals are the whole local day (tenant's time zone); instants compare
  exactly, on microseconds (documents hold instants as integer microseconds).
- `~` is English (stemmed) full text, every word must occur, `word*` a prefix, a
  quoted phrase for words in a row; summary and description are searched as Postgres
  concatenates them, each comment on its own (nested documents).
- ORDER BY uses the indexed order numbers (status order, priority rank, ...), empty
  values last, and the ticket id in the direction of the last key breaks ties.

What the index does not hold — history (WAS, CHANGED), saved filters (`filter =`),
relations (`linkedIssues()`, `updatedBy()`) — is evaluated in Postgres by the
Postgres compiler for that one clause and joined as a `terms` filter on ticket ids.
When such a set is too large for a terms filter, or the query uses something this
compiler does not know, `EngineUnsupported` is raised and the whole query runs on
Postgres (same answer, by construction).
"""

import re
from decimal import Decimal
from typing import Any

from accounts.members.models import Membership, Role
from accounts.policy import READ_TICKETS, member_can
from search.engine.documents import micros
from search.jql import ast
from search.jql import fields as fs
from search.jql import functions as fn
from search.jql.ast import ResolvedDate
from search.jql.compile_postgres import jql_compile_postgres
from tickets.access import projects_visible_to
from tickets.models import Priority

# Engines refuse a terms filter longer than index.max_terms_count (65,536 by default).
MAX_TERMS = 65_536

Dsl = dict[str, Any]
NOTHING: Dsl = {"bool": {"must_not": [{"match_all": {}}]}}
EVERYTHING: Dsl = {"match_all": {}}


class EngineUnsupported(Exception):
    """This query (or one of its clauses) cannot run on the engine: use Postgres."""


def _or(queries: list[Dsl]) -> Dsl:
    if not queries:
        return NOTHING
    if len(queries) == 1:
        return queries[0]
    return {"bool": {"should": queries, "minimum_should_match": 1}}


def _and(queries: list[Dsl]) -> Dsl:
    if len(queries) == 1:
        return queries[0]
    return {"bool": {"filter": queries}}


def _not(query: Dsl) -> Dsl:
    return {"bool": {"must_not": [query]}}


Tri = tuple[Dsl, Dsl | None]  # (where true, where unknown)


def _negate(clause: Tri) -> Tri:
    true, unknown = clause
    if unknown is None:
        return _not(true), None
    return {"bool": {"must_not": [true, unknown]}}, unknown


def _missing(field: str) -> Dsl:
    return _not({"exists": {"field": field}})


def _terms(field: str, values: list[Any]) -> Dsl:
    return {"terms": {field: values}} if values else NOTHING


_RANGE = {">": "gt", ">=": "gte", "<": "lt", "<=": "lte"}
# Ticket columns (as the field registry names them) -> document fields.
_COLUMNS = {
    "project": "project_id",
    "issue_type": "issue_type_id",
    "status": "status_id",
    "priority": "priority_id",
    "resolution": "resolution_id",
    "assignee": "assignee_id",
    "reporter": "reporter_id",
    "creator": "creator_id",
    "parent": "parent_id",
    "epic": "epic_id",
    "components": "component_ids",
    "fix_versions": "fix_version_ids",
    "labels": "labels",
    "created_at": "created_us",
    "updated_at": "updated_us",
    "resolved_at": "resolved_us",
    "due_date": "due_date",
    "story_points": "story_points",
    "summary": "summary",
    "description": "description",
}
# ORDER BY lookups of the field registry -> sortable document fields.
_SORTS = {
    "project__key": "project_key",
    "number": "number",
    "issue_type__order": "issue_type_order",
    "issue_type__name": "issue_type_name",
    "status__order": "status_order",
    "status__name": "status_name",
    "status__category": "status_category",
    "priority__rank": "priority_rank",
    "resolution__order": "resolution_order",
    "summary": "summary.raw",
    "description": "description_sort",
    "created_at": "created_us",
    "updated_at": "updated_us",
    "resolved_at": "resolved_us",
    "due_date": "due_date",
    "story_points": "story_points",
    "sprint__start_at": "sprint_start_us",
    "sprint__sequence": "sprint_sequence",
    "sprint__id": "sprint_id",
    **{
        f"{who}__{attr}": f"{who}_{name}"
        for who in ("assignee", "reporter", "creator")
        for attr, name in (("display_name", "name"), ("username", "username"))
    },
    **{
        f"{ref}__{attr}": f"{ref}_{attr.replace('__', '_')}"
        for ref in ("parent", "epic")
        for attr in ("project__key", "number")
    },
}


# Field kinds the index holds; any other (saved filters, sprints, per-caller fields
# added later) is evaluated in Postgres clause by clause.
_ENGINE_KINDS = frozenset(
    {
        fs.REF,
        fs.USER,
        fs.TEXT_FIELD,
        fs.TEXT_ALL,
        fs.COMMENT,
        fs.DATETIME,
        fs.DATE,
        fs.NUMBER,
        fs.LABELS,
        fs.KEY,
        fs.M2M,
        fs.CATEGORY,
        fs.TICKET,
        fs.WATCHER,
        fs.CUSTOM,
    }
)


def _column(spec: fs.FieldSpec) -> str:
    field = _COLUMNS.get(spec.column or "")
    if field is None:
        raise EngineUnsupported(spec.name)
    return field


# -- text ------------------------------------------------------------------------------------

_WORD_RE = re.compile(r"\w+\*?", re.UNICODE)


def _text_terms(text: str) -> tuple[bool, list[tuple[str, bool]]]:
    """(is a phrase, [(word, is a prefix)]) exactly as the Postgres compiler reads a
    text query (word characters only; `_` separates words)."""
    stripped = text.strip()
    phrase = len(stripped) > 1 and stripped[0] == stripped[-1] == '"'
    terms = []
    for word in _WORD_RE.findall(stripped):
        base = word.rstrip("*").replace("_", " ").split()
        for part in base:
            terms.append((part, word.endswith("*") and part == base[-1]))
    return phrase, terms


def _text_query(field: str, text: str) -> Dsl:
    phrase, terms = _text_terms(text)
    if phrase:
        words = " ".join(word for word, _ in terms)
        kind = "match_phrase_prefix" if terms and terms[-1][1] else "match_phrase"
        return {kind: {field: words}}
    plain = [word for word, prefix in terms if not prefix]
    prefixes = [word for word, prefix in terms if prefix]
    queries: list[Dsl] = []
    if plain:
        # Stop words drop out of both sides; only stop words match nothing, as in Postgres.
        zero = "all" if prefixes else "none"
        queries.append(
            {
                "match": {
                    field: {"query": " ".join(plain), "operator": "and", "zero_terms_query": zero}
                }
            }
        )
    for word in prefixes:
        queries.append(
            {"query_string": {"query": f"{word}*", "fields": [field], "analyze_wildcard": True}}
        )
    return _and(queries) if queries else NOTHING


def _comments(text: str) -> Dsl:
    return {"nested": {"path": "comments", "query": _text_query("comments.body", text)}}


# -- the compiler ----------------------------------------------------------------------------


class _DslCompiler:
    def __init__(self, ctx: fn.JqlContext, tenant: Any) -> None:
        self.ctx = ctx
        self.tenant = tenant

    # Postgres evaluates clauses in three-valued logic: a comparison on a custom field
    # the ticket has no value for is NULL (unknown), and NOT keeps it unknown, so
    # `NOT Severity = S1` does not match tickets without a severity. Each clause
    # compiles to (true, unknown): `unknown` is None when it can never be NULL.

    def clause(self, node: ast.Clause) -> Tri:
        if isinstance(node, ast.And):
            parts = [self.clause(child) for child in node.clauses]
            true = _and([t for t, _ in parts])
            if all(u is None for _, u in parts):
                return true, None
            maybe = _and([t if u is None else _or([t, u]) for t, u in parts])
            return true, _and([maybe, _not(true)])
        if isinstance(node, ast.Or):
            parts = [self.clause(child) for child in node.clauses]
            true = _or([t for t, _ in parts])
            unknowns = [u for _, u in parts if u is not None]
            return true, (_and([_or(unknowns), _not(true)]) if unknowns else None)
        if isinstance(node, ast.Not):
            return _negate(self.clause(node.clause))
        return self.comparison(node)

    def comparison(self, node: ast.Comparison) -> Tri:
        spec = fs.field_spec(node.field)
        op, operand = node.op, node.operand
        items: list[Any] = ast.operand_items(operand)
        if op in fs.HISTORY or (
            spec.kind == fs.KEY and any(isinstance(i, ast.FunctionCall) for i in items)
        ):
            # WAS / CHANGED, linkedIssues(), updatedBy(): history and relations
            return self.postgres(node), None
        if spec.kind not in _ENGINE_KINDS:
            return self.postgres_three_valued(node)
        if op in ("is", "is not"):
            return (self.empty(spec) if op == "is" else _not(self.empty(spec))), None
        # Comparisons on a custom field's value are NULL where the ticket has none.
        unknown = self.null(spec)
        if op in ("~", "!~"):
            assert isinstance(operand, ast.Literal)
            found = self.text(spec, operand.value), unknown
            return found if op == "~" else _negate(found)
        if op in fs.RANGE:
            return self.range(spec, op, items[0]), unknown
        has_empty = any(isinstance(item, ast.Empty) for item in items)
        values = [item for item in items if not isinstance(item, ast.Empty)]
        if op in ("=", "in"):
            if has_empty:
                matched = self.any_of(spec, values) if values else NOTHING
                return _or([matched, self.empty(spec)]), None
            return self.any_of(spec, values), unknown
        matched = self.any_of(spec, values) if values else NOTHING
        # != and NOT IN never match empty fields (Jira).
        return {"bool": {"must_not": [self.empty(spec), matched]}}, None

    def null(self, spec: fs.FieldSpec) -> Dsl | None:
        """Where the Postgres comparison of this field is NULL (custom fields read as
        `custom_fields ->> 'id'`; a multi-select is compared with `@>`, never NULL)."""
        if spec.kind != fs.CUSTOM or spec.custom.type == "multiselect":
            return None
        return _not({"term": {"cf_nonnull": spec.custom.pk}})

    def postgres(self, node: ast.Clause) -> Dsl:
        """One clause evaluated by the Postgres compiler, as a set of ticket ids."""
        tickets = jql_compile_postgres(
            ast.Query(where=node), member=self.ctx.member, tenant=self.tenant
        )
        ids = list(tickets.order_by().values_list("pk", flat=True)[: MAX_TERMS + 1])
        if len(ids) > MAX_TERMS:
            raise EngineUnsupported("too many tickets match a clause evaluated in Postgres")
        return _terms("id", ids)

    def postgres_three_valued(self, node: ast.Comparison) -> Tri:
        """A clause the index cannot answer (saved filters, sprints, ...) that may be
        NULL: the tickets where it is true and those where its negation is true."""
        true = self.postgres(node)
        false = self.postgres(ast.Not(clause=node))
        return true, {"bool": {"must_not": [true, false]}}

    # values -------------------------------------------------------------------------------

    def ids(self, spec: fs.FieldSpec, values: list[Any]) -> list[int]:
        result: list[int] = []
        for value in values:
            if isinstance(value, ast.FunctionCall):
                result.extend(fn.function_ids(value, self.ctx))
        literals = [v for v in values if isinstance(v, ast.Literal)]
        if literals:
            if spec.kind in (fs.REF, fs.M2M):
                result.extend(fs.catalogue_resolve(spec, literals, member=self.ctx.member))
            else:
                for lit in literals:
                    result.extend(fs.users_resolve([lit.value], pos=lit.pos, field_name=spec.name))
        return result

    def date(self, value: Any) -> ResolvedDate:
        if isinstance(value, ast.FunctionCall):
            return fn.function_dates(value, self.ctx)
        return fn.date_literal(value.value, ctx=self.ctx, pos=value.pos)

    @staticmethod
    def number(value: Any) -> float:
        return float(Decimal(value.value.strip()))

    def day(self, when: ResolvedDate) -> str:
        return when.start.astimezone(self.ctx.tz).date().isoformat()

    # per kind -----------------------------------------------------------------------------

    def any_of(self, spec: fs.FieldSpec, values: list[Any]) -> Dsl:
        kind = spec.kind
        if kind == fs.REF and spec.name == "resolution":
            unresolved = [
                v
                for v in values
                if isinstance(v, ast.Literal) and v.value.strip().lower() == "unresolved"
            ]
            rest = [v for v in values if v not in unresolved]
            matched = _terms("resolution_id", self.ids(spec, rest)) if rest else NOTHING
            return _or([matched, _missing("resolution_id")]) if unresolved else matched
        if kind in (fs.REF, fs.USER, fs.M2M):
            return _terms(_column(spec), self.ids(spec, values))
        if kind == fs.WATCHER:
            return _terms("watcher_ids", self.ids(spec, values))
        if kind == fs.CATEGORY:
            return _terms("status_category", fs.category_resolve(spec, values))
        if kind == fs.LABELS:
            return _terms("labels", [v.value for v in values])
        if kind == fs.KEY:
            keys = [v.value.strip().upper() for v in values]
            ids = [fs._as_id(k) for k in keys]
            return _or([_terms("key", keys), _terms("id", [i for i in ids if i is not None])])
        if kind == fs.TICKET:
            keys = [v.value.strip().upper() for v in values]
            ids = [i for i in (fs._as_id(k) for k in keys) if i is not None]
            prefix = _column(spec).removesuffix("_id")
            return _or([_terms(f"{prefix}_key", keys), _terms(f"{prefix}_id", ids)])
        if kind in (fs.DATETIME, fs.DATE):
            return _or([self.date_compare(spec, "=", self.date(v)) for v in values])
        if kind == fs.NUMBER:
            return _terms(_column(spec), [self.number(v) for v in values])
        if kind == fs.CUSTOM:
            return self.custom_any_of(spec, values)
        raise EngineUnsupported(spec.name)

    def empty(self, spec: fs.FieldSpec) -> Dsl:
        kind = spec.kind
        if kind in (fs.REF, fs.USER, fs.TICKET, fs.DATETIME, fs.DATE, fs.NUMBER, fs.M2M):
            return _missing(_column(spec))
        if kind == fs.LABELS:
            return _missing("labels")
        if kind == fs.WATCHER:
            return _missing("watcher_ids")
        if kind == fs.TEXT_FIELD:
            return {"term": {"empty_text": spec.column}}
        if kind == fs.CUSTOM:
            return _not({"term": {"cf_set": spec.custom.pk}})
        if kind in (fs.KEY, fs.CATEGORY):
            return NOTHING  # never empty
        raise EngineUnsupported(spec.name)

    def range(self, spec: fs.FieldSpec, op: str, value: Any) -> Dsl:
        bound = _RANGE[op]
        if spec.kind == fs.REF:  # priority: by rank, not by name
            (priority_id,) = self.ids(spec, [value])[:1] or [0]
            rank = Priority.objects.filter(pk=priority_id).values_list("rank", flat=True).first()
            return {"range": {"priority_rank": {bound: rank}}} if rank is not None else NOTHING
        if spec.kind in (fs.DATETIME, fs.DATE):
            return self.date_compare(spec, op, self.date(value))
        if spec.kind == fs.NUMBER:
            return {"range": {_column(spec): {bound: self.number(value)}}}
        if spec.kind == fs.KEY:
            match = re.fullmatch(r"([A-Za-z][A-Za-z0-9_]*)-(\d{1,9})", value.value.strip())
            assert match is not None  # validated by the Postgres compiler
            return _and(
                [
                    {"term": {"project_key": match.group(1).upper()}},
                    {"range": {"number": {bound: int(match.group(2))}}},
                ]
            )
        if spec.kind == fs.CUSTOM:
            return self.custom_range(spec, op, value)
        raise EngineUnsupported(spec.name)

    def date_compare(self, spec: fs.FieldSpec, op: str, when: ResolvedDate) -> Dsl:
        field = _column(spec)
        if spec.kind == fs.DATE:
            day = self.day(when)
            return {"term": {field: day}} if op == "=" else {"range": {field: {_RANGE[op]: day}}}
        start, end = micros(when.start), micros(when.end)
        if when.date_only:
            bounds = {
                "=": {"gte": start, "lt": end},
                ">": {"gte": end},
                ">=": {"gte": start},
                "<": {"lt": start},
                "<=": {"lt": end},
            }
            return {"range": {field: bounds[op]}}
        return {"term": {field: start}} if op == "=" else {"range": {field: {_RANGE[op]: start}}}

    def text(self, spec: fs.FieldSpec, text: str) -> Dsl:
        if spec.kind == fs.CUSTOM:
            return _text_query(f"cf_text.{spec.custom.pk}", text)
        if spec.kind == fs.COMMENT:
            return _comments(text)
        if spec.kind == fs.TEXT_ALL:
            return _or([_text_query("summary_description", text), _comments(text)])
        if spec.kind == fs.TEXT_FIELD:
            return _text_query(_column(spec), text)
        raise EngineUnsupported(spec.name)

    # custom fields -----------------------------------------------------------------------

    def custom_any_of(self, spec: fs.FieldSpec, values: list[Any]) -> Dsl:
        cf = spec.custom
        if cf.type in ("select", "multiselect"):
            options = [fs.custom_option_resolve(spec, v) for v in values]
            return _terms(f"cf_kw.{cf.pk}", options)
        if cf.type == "user":
            return _terms(f"cf_kw.{cf.pk}", [str(i) for i in self.ids(spec, values)])
        if cf.type == "number":
            return _terms(f"cf_num.{cf.pk}", [self.number(v) for v in values])
        if cf.type == "date":
            return _or([self.custom_range(spec, "=", v) for v in values])
        raise EngineUnsupported(spec.name)

    def custom_range(self, spec: fs.FieldSpec, op: str, value: Any) -> Dsl:
        cf = spec.custom
        bound_value: float | str
        if cf.type == "number":
            field, bound_value = f"cf_num.{cf.pk}", self.number(value)
        else:
            field, bound_value = f"cf_date.{cf.pk}", self.day(self.date(value))
        if op == "=":
            return {"term": {field: bound_value}}
        return {"range": {field: {_RANGE[op]: bound_value}}}

    # ordering -----------------------------------------------------------------------------

    def order(self, order_by: tuple[ast.OrderBy, ...]) -> list[Dsl]:
        if not order_by:
            return [{"created_us": {"order": "desc"}}, {"id": {"order": "desc"}}]
        result: list[Dsl] = []
        for item in order_by:
            spec = fs.field_spec(item.field)
            direction = "desc" if item.descending else "asc"
            if spec.kind == fs.CUSTOM:
                number = spec.custom.type == "number"
                name = f"cf_num.{spec.custom.pk}" if number else f"cf_sort.{spec.custom.pk}"
                fields: list[tuple[str, str | None]] = [(name, "double" if number else "keyword")]
            else:
                if not spec.order or any(lookup not in _SORTS for lookup in spec.order):
                    raise EngineUnsupported(spec.name)
                fields = [(_SORTS[lookup], None) for lookup in spec.order]
            for sort_field, unmapped in fields:
                entry: Dsl = {"order": direction, "missing": "_last"}
                if unmapped:
                    entry["unmapped_type"] = unmapped
                result.append({sort_field: entry})
        result.append({"id": {"order": "desc" if order_by[-1].descending else "asc"}})
        return result


def visibility_filter(member: Membership) -> Dsl:
    """The projects the member may see (as tickets_visible_to decides), as a filter."""
    if member.role == Role.ADMIN and member_can(member, READ_TICKETS):
        return EVERYTHING
    return _terms("project_id", list(projects_visible_to(member).values_list("pk", flat=True)))


def jql_compile_dsl(query: ast.Query, *, member: Membership, tenant: Any) -> Dsl:
    """The search body (`query` and `sort`) of a validated JQL query for `member`:
    only the tickets they may see, in the query's order. Raises EngineUnsupported
    when the query must run on Postgres instead."""
    ctx = fn.JqlContext.for_tenant(member=member, tenant=tenant)
    compiler = _DslCompiler(ctx, tenant)
    filters = [visibility_filter(member)]
    if query.where is not None:
        filters.append(compiler.clause(query.where)[0])
    return {"query": {"bool": {"filter": filters}}, "sort": compiler.order(query.order_by)}
