"""Recently viewed tickets: JQL `issueHistory()` and the `lastViewed` field.

Opening a ticket (GET /api/v1/tickets/{ticketId}) records the view in Redis: one sorted
set per tenant schema and user (`jql:viewed:<schema>:<user id>`, ticket id -> epoch
seconds), capped at the last 50 tickets as Jira's issue history is, and expiring after
90 days without views. A view costs one pipelined round trip; if Redis is unreachable
the view is not recorded and the ticket is served all the same.

`key in issueHistory()` is the ids in that set (the ones the caller may still see,
as everything else); `lastViewed >= -1d` compares the view times; `ORDER BY lastViewed
DESC` puts the latest viewed first and tickets never viewed last.
"""

import logging
from datetime import UTC, datetime

import redis
from django.db.models import Case, DateTimeField, Q, Value, When
from django.db.models.functions import Cast

from saas.redis import redis_client
from search.jql.ast import ResolvedDate

HISTORY_SIZE = 50
TTL_SECONDS = 90 * 86_400
logger = logging.getLogger(__name__)


def _key(schema: str, user_id: int) -> str:
    return f"jql:viewed:{schema}:{user_id}"


def ticket_view_record(
    *, schema: str, user_id: int, ticket_id: int, at: float | None = None
) -> None:
    """Remember that `user_id` opened `ticket_id` now (or at epoch `at`)."""
    key = _key(schema, user_id)
    when = datetime.now(UTC).timestamp() if at is None else at
    try:
        pipe = redis_client().pipeline(transaction=True)
        pipe.zadd(key, {str(ticket_id): when})
        pipe.zremrangebyrank(key, 0, -HISTORY_SIZE - 1)
        pipe.expire(key, TTL_SECONDS)
        pipe.execute()
    except redis.RedisError:
        logger.warning("could not record a ticket view in Redis", exc_info=True)


def tickets_viewed(*, schema: str, user_id: int) -> dict[int, datetime]:
    """The caller's recently viewed ticket ids and when, latest first."""
    try:
        rows = redis_client().zrevrange(_key(schema, user_id), 0, HISTORY_SIZE - 1, withscores=True)
    except redis.RedisError:
        logger.warning("could not read the ticket views from Redis", exc_info=True)
        return {}
    pairs: list[tuple[bytes, float]] = rows  # type: ignore[assignment]
    return {int(member): datetime.fromtimestamp(score, UTC) for member, score in pairs}


def viewed_order(viewed: dict[int, datetime]) -> Case:
    """The view time of each ticket as an expression (NULL when never viewed)."""
    whens = [When(pk=pk, then=Value(at)) for pk, at in viewed.items()]
    if not whens:
        # A bare NULL is a constant Postgres refuses in ORDER BY; a typed one is not.
        return Case(default=Cast(Value(None), DateTimeField()), output_field=DateTimeField())
    return Case(*whens, default=Value(None), output_field=DateTimeField())


def viewed_compare(viewed: dict[int, datetime], op: str, when: ResolvedDate) -> Q:
    """Tickets viewed before/after `when` (a date-only literal is its whole day)."""
    start, end = when.start, when.end if when.date_only else when.start
    tests = {
        ">": lambda at: at >= end if when.date_only else at > start,
        ">=": lambda at: at >= start,
        "<": lambda at: at < start,
        "<=": lambda at: at < end if when.date_only else at <= start,
    }
    return Q(pk__in=[pk for pk, at in viewed.items() if tests[op](at)])
