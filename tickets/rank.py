"""LexoRank-style rank strings: the board and backlog order of a project's tickets.

A rank is a base-36 string (`0-9a-z`, compared bytewise: the column has collation
"C") read as a fraction: `WIDTH` fixed digits, then optional extra digits that a move
between two neighbours adds. Appending steps the fixed part by `STEP`, so creating
tickets keeps ranks short; moving a card writes one row (the card) with a rank between
its new neighbours. Repeated moves into the same gap lengthen ranks by about one
character per five moves; past `REBALANCE_LENGTH` a job spreads the project's ranks
evenly again (`rank_rebalance`).

Ranks are unique per project: every writer of a rank holds the project row lock
(`project_rank_lock`), the lock ticket creation already takes to number tickets.
"""

from collections.abc import Sequence

from celery import shared_task
from django.db import connection, transaction
from django_tenants.utils import schema_context

DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"
BASE = len(DIGITS)
WIDTH = 8
SPACE = BASE**WIDTH
STEP = BASE**3
START = SPACE // 2  # "i0000000": room before the first ticket as well as after
MAX_LENGTH = 64  # the column's length
REBALANCE_LENGTH = 40
REBALANCE_BATCH = 5_000


class RankError(ValueError):
    """Bounds that admit no rank between them (equal, or out of order)."""


def _fixed(value: int) -> str:
    digits = []
    for _ in range(WIDTH):
        value, digit = divmod(value, BASE)
        digits.append(DIGITS[digit])
    return "".join(reversed(digits))


def _midpoint(low: str, high: str | None) -> str:
    """A digit string strictly between the fractions `0.low` and `0.high` (`high=None`
    is 1), without trailing zeros. Both bounds come without trailing zeros."""
    if high is not None:
        n = 0
        while n < len(high) and (low[n] if n < len(low) else "0") == high[n]:
            n += 1
        if n:
            return high[:n] + _midpoint(low[n:], high[n:])
    digit_low = DIGITS.index(low[0]) if low else 0
    digit_high = DIGITS.index(high[0]) if high else BASE
    if digit_high - digit_low > 1:
        return DIGITS[(digit_low + digit_high + 1) // 2]
    if high is not None and len(high) > 1:
        return high[:1]
    return DIGITS[digit_low] + _midpoint(low[1:], None)


def rank_between(before: str | None, after: str | None) -> str:
    """A rank sorting after `before` and before `after` (either may be None: no
    neighbour on that side; an empty string sorts first, as unranked tickets do)."""
    if before == "":
        before = None
    if before is not None and after is not None and before >= after:
        raise RankError(f"No rank between {before!r} and {after!r}.")
    if after is None:
        return rank_after(before)
    if before is None:
        return rank_before(after)
    return _midpoint(before.rstrip("0"), after.rstrip("0"))


def rank_after(last: str | None) -> str:
    """The rank of a ticket appended after `last` (the project's last rank)."""
    if not last:
        return _fixed(START)
    head = _value(last[:WIDTH])
    if head is not None and len(last) >= WIDTH and head + STEP < SPACE:
        return _fixed(head + STEP)
    return _midpoint(last.rstrip("0"), None)


def rank_before(first: str) -> str:
    """The rank of a ticket put before `first` (the project's first rank)."""
    if not first.rstrip("0"):
        raise RankError("Nothing sorts before the lowest rank.")
    head = _value(first[:WIDTH])
    if head is not None and len(first) >= WIDTH and head >= STEP * 2:
        return _fixed(head - STEP)
    return _midpoint("", first.rstrip("0"))


def _value(text: str) -> int | None:
    try:
        return int(text, BASE)
    except ValueError:
        return None


def ranks_spread(count: int) -> list[str]:
    """`count` ascending fixed-width ranks spread evenly over the whole space."""
    if count <= 0:
        return []
    step = max(1, min(STEP, SPACE // (count + 1)))
    first = max(step, START - step * (count // 2))
    if first + step * count >= SPACE:
        first = step
    return [_fixed(first + step * i) for i in range(count)]


def ranks_after(last: str | None, count: int) -> list[str]:
    """`count` ascending ranks after `last`, for tickets appended together (imports)."""
    ranks: list[str] = []
    for _ in range(count):
        last = rank_after(last)
        ranks.append(last)
    return ranks


def rank_needs_rebalance(rank: str) -> bool:
    return len(rank) > REBALANCE_LENGTH


# -- locking and rebalancing -------------------------------------------------------------


def project_rank_lock(project_ids: Sequence[int]) -> None:
    """Serialize rank writers of these projects until commit (ticket creation takes the
    same row lock when it numbers a ticket). NO KEY UPDATE does not block transitions,
    which take KEY SHARE on the project row."""
    from tickets.models import Project

    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id FROM {Project._meta.db_table} WHERE id = ANY(%s)"  # noqa: S608
            " ORDER BY id FOR NO KEY UPDATE",
            [sorted(set(project_ids))],
        )


def project_last_rank(project_id: int) -> str | None:
    from tickets.models import Ticket

    return (
        Ticket.objects.filter(project_id=project_id)
        .order_by("-rank")
        .values_list("rank", flat=True)
        .first()
    )


@transaction.atomic
def project_ranks_rebalance(*, project_id: int) -> int:
    """Give the project's tickets evenly spread ranks in their current order (ties by
    id); returns how many tickets were ranked. Running it twice changes nothing more."""
    from tickets.models import Ticket

    project_rank_lock([project_id])
    ids = list(
        Ticket.objects.filter(project_id=project_id)
        .order_by("rank", "id")
        .values_list("id", flat=True)
    )
    ranks = ranks_spread(len(ids))
    table = Ticket._meta.db_table
    with connection.cursor() as cursor:
        for start in range(0, len(ids), REBALANCE_BATCH):
            cursor.execute(
                f"UPDATE {table} t SET rank = v.rank FROM"  # noqa: S608
                " (SELECT unnest(%s::bigint[]) AS id, unnest(%s::text[]) AS rank) v"
                " WHERE t.id = v.id AND t.rank IS DISTINCT FROM v.rank",
                [ids[start : start + REBALANCE_BATCH], ranks[start : start + REBALANCE_BATCH]],
            )
    return len(ids)


@shared_task(acks_late=True, autoretry_for=(ConnectionError,), retry_backoff=True, max_retries=5)
def rank_rebalance_job(schema_name: str, project_id: int) -> int:
    """Rebalance one project's ranks in its tenant; idempotent."""
    with schema_context(schema_name):
        return project_ranks_rebalance(project_id=project_id)


def rank_rebalance_schedule(*, project_id: int) -> None:
    """Queue a rebalance of the project after the current transaction commits."""
    from saas.tenancy import current_schema

    schema = current_schema()
    transaction.on_commit(lambda: rank_rebalance_job.delay(schema, project_id))
