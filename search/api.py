"""Search: advanced (JQL) and simple ticket search.

Mounted by saas/api.py at `/search`. Both compile to the one JQL AST and run on the
tenant's search backend (search.engine.execute: Postgres, or OpenSearch/Elasticsearch);
an invalid query answers 400 `jql_invalid` with its position, whatever the backend.
"""

from typing import Any

from django.db import connection
from django.http import StreamingHttpResponse
from ninja import Query, Router

from accounts.authentication import AuthedRequest
from search.engine.execute import search_count, search_export_ids, search_page, search_plan
from search.export import EXPORT_MAX_ROWS, ExportIn, tickets_export_response
from search.jql import ast
from search.jql.errors import jql_errors_as
from search.jql.parser import jql_parse
from search.schemas import AdvancedSearchIn, CountIn, SearchCount, SearchPage, SimpleSearchIn
from search.suggest import SuggestionsIn, SuggestionsOut, jql_suggestions

router = Router(tags=["search"])


def _page(request: AuthedRequest, query: ast.Query, offset: int, limit: int) -> dict:
    tenant = getattr(request, "tenant", None) or getattr(connection, "tenant", None)
    with jql_errors_as():
        # The tenant's backend (Postgres or an engine) runs it; validation is shared.
        return search_page(
            query=query, member=request.member, tenant=tenant, offset=offset, limit=limit
        )


@router.get("/advanced", response=SearchPage)
def search_advanced(request: AuthedRequest, params: Query[AdvancedSearchIn]) -> dict:
    """Tickets matching a JQL query that the caller may see, in the query's order
    (default `created DESC`)."""
    with jql_errors_as():
        query = jql_parse(params.jql)
    return _page(request, query, params.offset, params.limit)


@router.get("/count", response=SearchCount)
def search_count_get(request: AuthedRequest, params: Query[CountIn]) -> dict:
    """How many tickets the caller may see match a JQL query, exactly up to 100,000: a
    page's total stops at 1,000, so a client asks for this when it shows more."""
    tenant = getattr(request, "tenant", None) or getattr(connection, "tenant", None)
    with jql_errors_as():
        query = jql_parse(params.jql)
        return search_count(query=query, member=request.member, tenant=tenant)


# Parameters have no position in a query text: errors name the value only.
_NOWHERE: Any = None


def _values(text: str) -> ast.Operand:
    items = tuple(
        ast.Literal(value=part.strip(), quoted=True, pos=_NOWHERE)
        for part in text.split(",")
        if part.strip()
    )
    return ast.ListValue(items=items, pos=_NOWHERE)


def _user(text: str) -> ast.Operand:
    value = text.strip()
    if value.lower() in ("me", "currentuser()"):
        return ast.FunctionCall(name="currentuser", args=(), pos=_NOWHERE)
    if value.lower() in ("unassigned", "none", "empty"):
        return ast.Empty(pos=_NOWHERE)
    return ast.Literal(value=value, quoted=True, pos=_NOWHERE)


def simple_search_query(params: SimpleSearchIn) -> ast.Query:
    """The JQL AST of the simple search's parameters."""

    def compare(name: str, op: str, operand: ast.Operand) -> ast.Comparison:
        return ast.Comparison(field=ast.Field(name=name, pos=_NOWHERE), op=op, operand=operand)

    clauses: list[ast.Clause] = []
    if params.q and params.q.strip():
        clauses.append(compare("text", "~", ast.Literal(params.q, quoted=True, pos=_NOWHERE)))
    for name in ("project", "status", "priority"):
        text = getattr(params, name)
        if text and text.strip():
            clauses.append(compare(name, "in", _values(text)))
    if params.assignee and params.assignee.strip():
        operand = _user(params.assignee)
        op = "is" if isinstance(operand, ast.Empty) else "="
        clauses.append(compare("assignee", op, operand))
    if params.created_after:
        day = ast.Literal(params.created_after.isoformat(), quoted=True, pos=_NOWHERE)
        clauses.append(compare("created", ">=", day))
    if params.created_before:
        day = ast.Literal(params.created_before.isoformat(), quoted=True, pos=_NOWHERE)
        clauses.append(compare("created", "<", day))
    where = ast.And(clauses=tuple(clauses)) if clauses else None
    return ast.Query(where=where)


@router.get("/tickets", response=SearchPage)
def search_tickets(request: AuthedRequest, params: Query[SimpleSearchIn]) -> dict:
    """Simple search by words and a few fields; the same engine as JQL
    (e.g. `status=To Do,In Progress&assignee=me`)."""
    return _page(request, simple_search_query(params), params.offset, params.limit)


@router.get("/export")
def search_export(request: AuthedRequest, params: Query[ExportIn]) -> StreamingHttpResponse:
    """The whole result of a JQL query that the caller may see, in the query's order,
    streamed as a CSV (with a header row) or JSON file; at most 100,000 tickets (more
    answers 422 `export_too_large`: narrow the query)."""
    tenant = getattr(request, "tenant", None) or getattr(connection, "tenant", None)
    with jql_errors_as():
        plan = search_plan(query=jql_parse(params.jql), member=request.member, tenant=tenant)
        ordered_ids = search_export_ids(plan, max_rows=EXPORT_MAX_ROWS + 1)
    return tickets_export_response(
        tickets=plan.tickets, tenant=tenant, fmt=params.format, ordered_ids=ordered_ids
    )


@router.get("/suggestions", response=SuggestionsOut)
def search_suggestions(request: AuthedRequest, params: Query[SuggestionsIn]) -> dict:
    """Autocomplete for a partial JQL query at `cursor`: field names, the operators of
    the field before it, values (catalogues, members, labels by use, functions) or
    keywords; a query that does not tokenise gets the best guess, never an error."""
    return jql_suggestions(text=params.q, cursor=params.cursor, member=request.member)
