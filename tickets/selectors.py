"""Reads on tickets, always starting from what the member may see."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connection, transaction
from django.db.models import Prefetch, Q, QuerySet

from accounts.members.models import Membership
from saas.errors import Invalid, NotFound
from saas.refs import MAX_DB_ID, db_id_valid, is_digits
from tickets.access import tickets_visible_to
from tickets.models import Ticket, TicketHistory, TicketLink, Watcher

LIST_RELATED = (
    "project",
    "issue_type",
    "status",
    "priority",
    "resolution",
    "assignee",
    "reporter",
    "creator",
    "parent",
    "epic",
)
# As plain lists (`to_attr`, read by tickets.schemas): a prefetch into each ticket's
# related manager built a manager and a queryset per ticket and relation, 5-10 ms a page.
LIST_PREFETCH = (
    Prefetch("components", to_attr="components_listed"),
    Prefetch("fix_versions", to_attr="fix_versions_listed"),
    Prefetch("project__custom_fields", to_attr="custom_fields_listed"),
)
SORTS = {
    "key": ("project__key", "number"),
    "created": ("created_at", "id"),
    "updated": ("updated_at", "id"),
    "priority": ("priority__rank", "id"),
    "due": ("due_date", "id"),
    "status": ("status__order", "id"),
}


def tickets_for_list(qs: QuerySet[Ticket]) -> QuerySet[Ticket]:
    return qs.select_related(*LIST_RELATED).prefetch_related(*LIST_PREFETCH)


def tickets_by_ids(ids: list[int]) -> list[Ticket]:
    """The tickets of a page, in the order of `ids`, with what a list shows of them.
    Lists choose their page's ids first (the sort reads only the sort keys) and load
    the rows after, by primary key: sorting the wide rows joined with ten relations
    cost a second for a project of 520,000 tickets sorted by priority."""
    position = {pk: index for index, pk in enumerate(ids)}
    with joins_as_written():
        tickets = list(tickets_for_list(Ticket.objects.filter(pk__in=ids).order_by()))
    return sorted(tickets, key=lambda ticket: position[ticket.pk])


@contextmanager
def joins_as_written() -> Iterator[None]:
    """Inside, PostgreSQL joins tables in the order the query writes them. Tickets
    fetched by id with their ten to-one relations (LIST_RELATED, each a primary-key
    lookup) are best joined as written; choosing an order for eleven tables cost the
    planner 10-20 ms, ten times running the query (bench/search.py, rows95)."""
    nested = connection.in_atomic_block
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL join_collapse_limit = 1")
        yield
        if nested:
            # The outer transaction (a test's) goes on; on an error the savepoint's
            # rollback undoes the setting.
            cursor.execute("SET LOCAL join_collapse_limit = DEFAULT")


def _sort(sort: str) -> list[str]:
    descending = sort.startswith("-")
    name = sort.lstrip("-")
    if name not in SORTS:
        raise Invalid(f"Cannot sort by {name!r}.", details={"allowed": sorted(SORTS)})
    return [f"-{col}" if descending else col for col in SORTS[name]]


def _user_filter(value: str, *, member: Membership, field: str) -> Q:
    text = value.strip()
    if text.lower() in {"me", "currentuser()"}:
        return Q(**{f"{field}_id": member.user_id})
    if text.lower() in {"unassigned", "none", "empty"}:
        return Q(**{f"{field}__isnull": True})
    if is_digits(text) and int(text) <= MAX_DB_ID:
        return Q(**{f"{field}_id": int(text)})
    return Q(**{f"{field}__username__iexact": text}) | Q(**{f"{field}__email__iexact": text})


def _ref_filter(value: str, field: str) -> Q:
    text = value.strip()
    if is_digits(text) and int(text) <= MAX_DB_ID:
        return Q(**{f"{field}_id": int(text)})
    return Q(**{f"{field}__name__iexact": text})


def tickets_list(*, member: Membership, project: Any, filters: Any) -> QuerySet[Ticket]:
    qs = tickets_visible_to(member).filter(project=project)
    if filters.status:
        qs = qs.filter(_ref_filter(filters.status, "status"))
    if filters.type:
        qs = qs.filter(_ref_filter(filters.type, "issue_type"))
    if filters.priority:
        qs = qs.filter(_ref_filter(filters.priority, "priority"))
    if filters.assignee:
        qs = qs.filter(_user_filter(filters.assignee, member=member, field="assignee"))
    if filters.reporter:
        qs = qs.filter(_user_filter(filters.reporter, member=member, field="reporter"))
    if filters.label:
        qs = qs.filter(labels__contains=[filters.label])
    if filters.q:
        qs = qs.filter(summary__icontains=filters.q)
    if filters.created_after:
        qs = qs.filter(created_at__gte=filters.created_after)
    if filters.created_before:
        qs = qs.filter(created_at__lt=filters.created_before)
    if filters.updated_after:
        qs = qs.filter(updated_at__gte=filters.updated_after)
    # Within one project, key order is number order, which the (project, number) unique
    # index holds; through the project's key it was a sort of the whole project.
    order = [col.replace("project__key", "project_id") for col in _sort(filters.sort)]
    return qs.order_by(*order)


def ticket_links(*, member: Membership, ticket: Ticket) -> list[dict[str, Any]]:
    """Links in both directions, to tickets the member can see."""
    visible = tickets_visible_to(member).values("pk")
    links = []
    outgoing = TicketLink.objects.filter(source=ticket, target__in=visible).select_related("target")
    incoming = TicketLink.objects.filter(target=ticket, source__in=visible).select_related("source")
    for link in outgoing:
        links.append(
            {
                "id": link.pk,
                "type": link.type,
                "direction": "outward",
                "description": link.get_type_display(),
                "ticket": link.target,
            }
        )
    for link in incoming:
        links.append(
            {
                "id": link.pk,
                "type": link.type,
                "direction": "inward",
                "description": TicketLink.INVERSE[link.type],
                "ticket": link.source,
            }
        )
    return sorted(links, key=lambda item: item["id"])


def ticket_detail(*, member: Membership, ticket: Ticket) -> Ticket:
    """The ticket with sub-tasks, links and watcher facts attached for output."""
    (detailed,) = tickets_by_ids([ticket.pk])
    detailed.subtasks_visible = list(  # type: ignore[attr-defined]
        tickets_visible_to(member).filter(parent=ticket).order_by("number")
    )
    detailed.links_visible = ticket_links(member=member, ticket=ticket)  # type: ignore[attr-defined]
    watchers = Watcher.objects.filter(ticket=ticket)
    detailed.watcher_count = watchers.count()  # type: ignore[attr-defined]
    detailed.watching = watchers.filter(user_id=member.user_id).exists()  # type: ignore[attr-defined]
    return detailed


def ticket_history(*, ticket: Ticket) -> QuerySet[TicketHistory]:
    return (
        TicketHistory.objects.filter(ticket=ticket)
        .select_related("actor")
        .order_by("created_at", "id")
    )


USER_TICKET_KINDS = {
    "tickets": lambda uid: Q(assignee_id=uid) | Q(reporter_id=uid),
    "assigned-tickets": lambda uid: Q(assignee_id=uid),
    "reported-tickets": lambda uid: Q(reporter_id=uid),
    "watched-tickets": lambda uid: Q(
        pk__in=Watcher.objects.filter(user_id=uid).values("ticket_id")
    ),
}


def user_tickets(*, member: Membership, user_id: int, kind: str) -> QuerySet[Ticket]:
    """Tickets of a member of this tenant, among those the caller may see."""
    if not db_id_valid(user_id) or not Membership.objects.filter(user_id=user_id).exists():
        raise NotFound("No such member in this workspace.", code="user_not_found")
    qs = tickets_visible_to(member).filter(USER_TICKET_KINDS[kind](user_id))
    return qs.order_by("-updated_at", "-id")
