"""Export of a JQL result as CSV or JSON, streamed row by row.

The query is compiled (and so validated) and its size checked before the response
starts: errors are ordinary 400/422 answers, never a half-written file. Rows are read
with one server-side cursor over only the exported columns (`values()` joins the
catalogue and user tables), so memory stays flat whatever the result size.

At most `EXPORT_MAX_ROWS` (100,000) tickets are exported; a larger result answers 422
asking the caller to narrow the query.
"""

import csv
import json
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Literal

from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from django.utils import timezone
from django_tenants.utils import schema_context
from ninja import Field, Schema

from saas.errors import Invalid
from saas.tenancy import current_schema
from search.engine.execute import capped_count
from tickets.models import Ticket

EXPORT_MAX_ROWS = 100_000
EXPORT_CHUNK = 1000

# (output name, values() lookup)
COLUMNS: tuple[tuple[str, str], ...] = (
    ("key", "key"),
    ("summary", "summary"),
    ("type", "issue_type__name"),
    ("status", "status__name"),
    ("priority", "priority__name"),
    ("assignee", "assignee__username"),
    ("reporter", "reporter__username"),
    ("labels", "labels"),
    ("created", "created_at"),
    ("updated", "updated_at"),
    ("resolved", "resolved_at"),
    ("due_date", "due_date"),
    ("story_points", "story_points"),
)
FORMATS = {"csv": "text/csv; charset=utf-8", "json": "application/json"}


class ExportIn(Schema):
    jql: str = Field("", max_length=10_000, description="A JQL query; empty exports everything.")
    format: Literal["csv", "json"] = Field(
        "csv", description="`csv` (with a header row) or `json`."
    )


class _Echo:
    """A write-only pseudo-buffer: `csv.writer` hands back each formatted line."""

    def write(self, value: str) -> str:
        return value


class ExportResponse(StreamingHttpResponse):
    """A streamed export. `content` joins the stream for callers that need the whole
    body at once (tests, the isolation sweep); servers iterate it chunk by chunk."""

    @property
    def content(self) -> bytes:  # type: ignore[override]
        return self.getvalue()


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, list):
        return " ".join(value)
    return value


def _rows(tickets: QuerySet[Ticket], schema: str) -> Iterator[dict[str, Any]]:
    lookups = [lookup for _, lookup in COLUMNS]
    # The response is iterated after the view returned (and after whatever reset the
    # connection's schema): pin the tenant for the whole stream.
    with schema_context(schema):
        for row in tickets.values(*lookups).iterator(chunk_size=EXPORT_CHUNK):
            yield {name: _plain(row[lookup]) for name, lookup in COLUMNS}


def _csv_lines(rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow([name for name, _ in COLUMNS])
    for row in rows:
        yield writer.writerow(["" if row[name] is None else row[name] for name, _ in COLUMNS])


def _json_chunks(rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    yield "["
    for index, row in enumerate(rows):
        yield ("," if index else "") + json.dumps(row, ensure_ascii=False)
    yield "]"


def export_filename(*, tenant: Any, fmt: str) -> str:
    name = getattr(tenant, "subdomain", None) or getattr(tenant, "schema_name", "tenant")
    return f"tickets-{name}-{timezone.now():%Y%m%d}.{fmt}"


def _rows_in_order(ids: list[int], schema: str) -> Iterator[dict[str, Any]]:
    """Rows of the tickets `ids` (a search engine's result), read a chunk at a time
    and yielded in that order; tickets deleted since they were indexed are skipped."""
    lookups = ["pk", *(lookup for _, lookup in COLUMNS)]
    with schema_context(schema):
        for start in range(0, len(ids), EXPORT_CHUNK):
            chunk = ids[start : start + EXPORT_CHUNK]
            found = {row["pk"]: row for row in Ticket.objects.filter(pk__in=chunk).values(*lookups)}
            for pk in chunk:
                if pk in found:
                    yield {name: _plain(found[pk][lookup]) for name, lookup in COLUMNS}


def tickets_export_response(
    *, tickets: QuerySet[Ticket], tenant: Any, fmt: str, ordered_ids: list[int] | None = None
) -> ExportResponse:
    """A streamed CSV or JSON file of `tickets` (already permission-filtered and
    ordered), or of the tickets `ordered_ids` in that order when a search engine ran
    the query; 422 when there are more than EXPORT_MAX_ROWS."""
    if ordered_ids is not None:
        size = len(ordered_ids)
    else:
        size = capped_count(tickets, EXPORT_MAX_ROWS + 1)
    if size > EXPORT_MAX_ROWS:
        raise Invalid(
            f"The query matches more than {EXPORT_MAX_ROWS} tickets; narrow it to export.",
            code="export_too_large",
            details={"max_rows": EXPORT_MAX_ROWS},
        )
    schema = current_schema()
    rows = _rows(tickets, schema) if ordered_ids is None else _rows_in_order(ordered_ids, schema)
    chunks = _csv_lines(rows) if fmt == "csv" else _json_chunks(rows)
    response = ExportResponse(chunks, content_type=FORMATS[fmt])
    filename = export_filename(tenant=tenant, fmt=fmt)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
