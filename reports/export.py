"""Reports as CSV: a header row and one row per line of the chart, streamed. Report rows
are aggregates (small); the per-ticket rows of time tracking are read with a
server-side cursor so memory stays flat."""

import csv
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime
from typing import Any

from django.db import connection
from django.utils import timezone
from django_tenants.utils import schema_context

from saas.tenancy import current_schema
from search.export import ExportResponse


class _Echo:
    def write(self, value: str) -> str:
        return value


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


def csv_response(*, name: str, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Any:
    """A streamed CSV download named `<name>-<yyyymmdd>.csv`."""

    def lines() -> Iterator[str]:
        writer = csv.writer(_Echo())
        yield writer.writerow(header)
        for row in rows:
            yield writer.writerow([_cell(value) for value in row])

    response = ExportResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}-{timezone.now():%Y%m%d}.csv"'
    return response


def sql_rows(sql: str, params: list[Any], *, chunk: int = 2000) -> Iterator[tuple]:
    """Rows of a query read through a server-side cursor in the current tenant schema
    (pinned, because the response is iterated after the view returned)."""
    return _rows_in(current_schema(), sql, params, chunk)


def _rows_in(schema: str, sql: str, params: list[Any], chunk: int) -> Iterator[tuple]:
    with schema_context(schema), connection.chunked_cursor() as cursor:
        cursor.execute(sql, params)
        while batch := cursor.fetchmany(chunk):
            yield from batch
