"""JQL errors as API errors, the same for every endpoint that takes a query."""

from collections.abc import Iterator
from contextlib import contextmanager

from saas.errors import ApiError, BadRequest
from search.jql import ast


@contextmanager
def jql_errors_as(error: type[ApiError] = BadRequest) -> Iterator[None]:
    """Raise a JQL error from inside as `error` (400 by default; 422 where a query is
    saved) with code `jql_invalid`, the message, line and column. Date arithmetic past
    year 9999 in a function argument is the same kind of error, without a position."""
    try:
        yield
    except ast.JqlError as exc:
        pos = exc.pos
        raise error(
            exc.message,
            code="jql_invalid",
            details={"line": pos.line if pos else None, "column": pos.column if pos else None},
        ) from exc
    except OverflowError as exc:
        raise error(
            "A date in the query is out of range.",
            code="jql_invalid",
            details={"line": None, "column": None},
        ) from exc
