"""The JQL `sprint` field and the sprint functions, on the Postgres backend.

Jira's semantics:
- A ticket's sprints are those it is in now (`Ticket.sprint`, a future or active
  sprint) and the closed sprints it was carried over from: `SprintMembership` rows
  without `removed_at` (a ticket taken out of a sprint before it closed leaves it).
- `sprint = 12` is a sprint by id, `sprint = "WEB Sprint 1"` by name
  (case-insensitive; a name shared by sprints of several projects means all of them).
  A sprint of a project the caller may not see, like one that does not exist, is an
  error.
- `openSprints()` are started and not completed (active), `closedSprints()` completed,
  `futureSprints()` not started.
- `sprint is EMPTY` is the backlog: the ticket is in no open (future or active)
  sprint, whatever closed sprints it was once in; `!=`/`NOT IN` never match it.
- `ORDER BY sprint` sorts by the ticket's open sprint, in backlog order (the sprint's
  `sequence`, then its id); tickets in no open sprint come last.
"""

from functools import reduce
from operator import or_

from django.db.models import Exists, OuterRef, Q

from accounts.members.models import Membership
from search.jql import ast
from search.jql import fields as fs
from search.jql import functions as fn
from search.jql.ast import JqlError
from tickets.models import Sprint, SprintMembership

STATES = {
    "opensprints": Sprint.State.ACTIVE,
    "closedsprints": Sprint.State.CLOSED,
    "futuresprints": Sprint.State.FUTURE,
}


def sprints_visible_to(member: Membership):  # type: ignore[no-untyped-def]
    from tickets.access import projects_visible_to

    return Sprint.objects.filter(project__in=projects_visible_to(member).values("pk"))


def sprint_ids(
    literals: list[ast.Literal], calls: list[ast.FunctionCall], *, member: Membership
) -> list[tuple[int, str]]:
    """(id, state) of the sprints named or numbered by `literals` (each must exist and
    be visible) and of those the sprint functions stand for."""
    visible = sprints_visible_to(member)
    found_all: list[tuple[int, str]] = []
    for call in calls:
        fn.expect_args(call, fn.DISPLAY_NAMES[call.name], 0, 0)
        state = STATES[call.name]
        found_all.extend(
            (pk, state) for pk in visible.filter(state=state).values_list("pk", flat=True)
        )
    spec = fs.SYSTEM_FIELDS["sprint"]
    for lit in literals:
        text = lit.value.strip()
        cond = Q(name__iexact=text)
        if fs._as_id(text) is not None:
            cond |= Q(pk=fs._as_id(text))
        found = list(visible.filter(cond).values_list("pk", "state")) if "\x00" not in text else []
        if not found:
            raise fs.unknown_value(spec, lit.value, lit.pos)
        found_all.extend(found)
    return found_all


def sprint_any_of(found: list[tuple[int, str]]) -> Q:
    """In one of the sprints now, or was when it closed. A ticket is in an open (active
    or future) sprint when it is its sprint (`Ticket.sprint`, indexed, which the planner
    can combine with the other conditions' indexes); it was in a closed one when its
    membership was not removed before the sprint closed."""
    current = [pk for pk, state in found if state != Sprint.State.CLOSED]
    closed = [pk for pk, state in found if state == Sprint.State.CLOSED]
    parts = [Q(sprint_id__in=current)] if current else []
    if closed:
        rows = SprintMembership.objects.filter(
            ticket_id=OuterRef("pk"), sprint_id__in=closed, removed_at__isnull=True
        )
        parts.append(Q(Exists(rows)))
    return reduce(or_, parts) if parts else Q(pk__in=[])


def sprint_empty() -> Q:
    return Q(sprint__isnull=True)


def sprint_function_check(call: ast.FunctionCall, field_name: str) -> None:
    if call.name not in STATES:
        raise JqlError(
            f"The function '{fn.DISPLAY_NAMES.get(call.name, call.name)}()' is not supported "
            f"by the '{field_name}' field",
            call.pos,
        )
