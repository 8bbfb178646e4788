"""Reading the first tickets of a large, sorted set without sorting all of it.

`RankWalk`: a ticket query sorted first by a catalogue's order (priority, status,
type, resolution, project), read one value of that order at a time. Used by JQL
(search.jql.compile_postgres) and by the ticket lists (tickets.api.TicketPage)."""

import itertools
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import F, OrderBy, Q, QuerySet

from tickets.models import Ticket

# A RankWalk reads at most this many values of the order one by one, then the rest of
# the matches in one sorted read.
WALK_VALUES = 2

# From this many matches (as the planner expects), a query sorted by a catalogue first
# is read a value at a time (RankWalk): sorting them costs 2-3 ms a thousand (87,000
# tickets of a component: 240 ms, walked 45), while below it one sort is cheaper than
# a read per value (13,000 tickets of a status in a project: 45 ms, walked 120). The
# planner may expect a third of the tickets of a component under a project filter.
WALK_MIN_MATCHES = 25_000


def catalogue_of(column: str) -> Any:
    """The model a ticket's reference (`priority`) points to."""
    return Ticket._meta.get_field(column).related_model


def query_plan(queryset: QuerySet[Any]) -> dict[str, Any] | None:
    """The planner's plan for `queryset` (EXPLAIN, about 1 ms; its top node), or None
    when Django knows it matches nothing."""
    try:
        sql, params = queryset.query.sql_with_params()
    except EmptyResultSet:
        return None
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        return cursor.fetchone()[0][0]["Plan"]  # psycopg loads the json


def estimated_rows(tickets: QuerySet[Ticket]) -> float:
    """How many tickets the planner expects `tickets` to hold."""
    plan = query_plan(tickets.order_by().values("pk"))
    return 0 if plan is None else float(plan["Plan Rows"])


@dataclass(frozen=True)
class RankWalk:
    """A query sorted first by a catalogue's order (`ORDER BY priority DESC, updated
    DESC`), read by value of that order: the matches of the first value (the most
    urgent priority) in the order of the other keys, then the rest in the whole order.

    No index holds a catalogue's order (it is a column of another table), so the plain
    query reads and sorts every match before its first row: 200-300 ms for 100,000 of
    them. Within one value the rest of the order can often be walked (by id, by a
    date), and the first page of a large result is all of the first value's. A result
    whose first value has fewer than asked for costs one more sorted read."""

    column: str  # the ticket's reference: "priority"
    fields: tuple[str, ...]  # the catalogue's order: ("rank",)
    descending: bool
    tickets: QuerySet[Ticket]  # the matches in the query's order
    rest: QuerySet[Ticket]  # the matches ordered by the keys after the first

    def values(self) -> list[tuple[int, ...]]:
        """The catalogue's ids by value of its order, in the query's direction (ids
        sharing a value together). Sorted by the database, so names compare in the
        column's collation as in the query."""
        rows = (
            catalogue_of(self.column)
            .objects.order_by(
                *(OrderBy(F(name), descending=self.descending) for name in self.fields)
            )
            .values_list(*self.fields, "pk")
        )
        return [
            tuple(row[-1] for row in group)
            for _, group in itertools.groupby(rows, key=lambda row: row[:-1])
        ]

    def first_ids(self, count: int) -> list[int]:
        """The ids of the first `count` matches in the query's order (all of them if
        fewer)."""
        found: list[int] = []
        walked = Q()
        for value in self.values()[:WALK_VALUES]:
            held = Q(**{f"{self.column}_id__in": value})
            found.extend(self.rest.filter(held).values_list("pk", flat=True)[: count - len(found)])
            if len(found) == count:
                return found
            walked |= held
        # (`~walked` also keeps the tickets without a value, which sort last.)
        others = self.tickets.filter(~walked).values_list("pk", flat=True)
        found.extend(others[: count - len(found)])
        return found

    def worth_walking(self) -> bool:
        """Whether the planner expects enough matches for a walk to beat one sort."""
        return estimated_rows(self.tickets) >= WALK_MIN_MATCHES


def rank_walk_of(tickets: QuerySet[Ticket]) -> RankWalk | None:
    """The RankWalk of tickets ordered first by a column of a catalogue they refer to
    (`-priority__rank`, `status__order`), or None."""
    order = list(tickets.query.order_by)
    if not order or not isinstance(order[0], str):
        return None
    name = order[0].lstrip("-")
    column, _, field = name.partition("__")
    if not field or "__" in field:
        return None
    try:
        reference: Any = Ticket._meta.get_field(column)
    except LookupError:
        return None
    if not reference.many_to_one or reference.null:
        return None
    if catalogue_of(column)._meta.get_field(field).null:
        return None
    return RankWalk(
        column=column,
        fields=(field,),
        descending=order[0].startswith("-"),
        tickets=tickets,
        rest=tickets.order_by(*order[1:]),
    )
