"""Tickets: create, read, edit, move, link and watch. Projects are addressed by id or
key, tickets by id or key (`PROJ-123`). Ticket responses carry an ETag (the version);
`If-Match` on writes answers 412 when stale."""

import re
from typing import Any

from django.http import HttpResponse
from ninja import Query, Router, Status
from ninja.pagination import paginate

from accounts.authentication import AuthedRequest
from saas.errors import BadRequest
from saas.idempotency import idempotent
from saas.pagination import Page
from tickets import selectors, services
from tickets.access import project_get_for_user, ticket_get_for_user
from tickets.schemas import (
    AssigneeIn,
    HistoryOut,
    LinkIn,
    LinkOut,
    PriorityIn,
    StatusIn,
    TicketDetailOut,
    TicketFilters,
    TicketIn,
    TicketOut,
    TransitionIn,
    TransitionOut,
    WatcherIn,
)
from tickets.walks import rank_walk_of
from tickets.workflow_engine import ticket_transition, transitions_available

router = Router(tags=["tickets"])
_IF_MATCH = re.compile(r'^(?:W/)?"?(\d{1,9})"?$')


def etag(version: int) -> str:
    return f'"{version}"'


def if_match(request: AuthedRequest) -> int | None:
    """The version the client last saw, from `If-Match` (None when absent or `*`)."""
    raw = request.headers.get("If-Match", "").strip()
    if not raw or raw == "*":
        return None
    match = _IF_MATCH.match(raw)
    if not match:
        raise BadRequest('If-Match must be the ticket\'s ETag, e.g. "3".')
    return int(match.group(1))


def _detail_response(request: AuthedRequest, ticket, status: int = 200) -> HttpResponse:
    detail = selectors.ticket_detail(member=request.member, ticket=ticket)
    body = TicketDetailOut.from_orm(detail).model_dump(mode="json")
    return idempotent_free_response(status, body, ticket.version)


def idempotent_free_response(status: int, body: dict, version: int) -> HttpResponse:
    from django.http import JsonResponse

    response = JsonResponse(body, status=status)
    response["ETag"] = etag(version)
    return response


class TicketPage(Page):
    """`Page` for ticket lists: the page's ids in order (the sort reads only its keys),
    then those tickets with what a list shows (`selectors.tickets_by_ids`). A large list
    sorted by priority or status is read a value of that order at a time (RankWalk)."""

    def page_items(self, queryset: Any, offset: int, limit: int) -> list[Any]:
        walk = rank_walk_of(queryset)
        if walk is not None and walk.worth_walking():
            ids = walk.first_ids(offset + limit)[offset:]
        else:
            ids = list(queryset.values_list("pk", flat=True)[offset : offset + limit])
        return selectors.tickets_by_ids(ids)


@router.get("/projects/{projectId}/tickets", response=list[TicketOut])
@paginate(TicketPage)
def tickets_of_project(request: AuthedRequest, projectId: str, filters: Query[TicketFilters]):
    """Tickets of a project, filtered and sorted."""
    project = project_get_for_user(member=request.member, ref=projectId)
    return selectors.tickets_list(member=request.member, project=project, filters=filters)


@router.post("/projects/{projectId}/tickets", response={201: TicketDetailOut})
def ticket_post(request: AuthedRequest, projectId: str, body: TicketIn):
    """Create a ticket. Send `Idempotency-Key` to make retries safe."""
    project = project_get_for_user(member=request.member, ref=projectId)

    def create():
        ticket = services.ticket_create(project=project, actor=request.member, data=body.changes())
        detail = selectors.ticket_detail(member=request.member, ticket=ticket)
        payload = TicketDetailOut.from_orm(detail).model_dump(mode="json")
        return (
            201,
            payload,
            {"ETag": etag(ticket.version), "Location": f"/api/v1/tickets/{ticket.key}"},
        )

    return idempotent(request, create)


@router.get("/tickets/{ticketId}", response=TicketDetailOut)
def ticket_get(request: AuthedRequest, ticketId: str):
    """A ticket with its sub-tasks, links and watchers. Opening it adds it to the
    caller's recently viewed tickets (JQL `issueHistory()`)."""
    from saas.tenancy import current_schema
    from search.jql.views import ticket_view_record

    ticket = ticket_get_for_user(member=request.member, ref=ticketId)
    ticket_view_record(schema=current_schema(), user_id=request.member.user_id, ticket_id=ticket.pk)
    return _detail_response(request, ticket)


@router.put("/tickets/{ticketId}", response=TicketDetailOut)
def ticket_put(request: AuthedRequest, ticketId: str, body: TicketIn):
    """Edit the fields sent. `If-Match: "<version>"` refuses stale edits with 412."""
    ticket = ticket_get_for_user(member=request.member, ref=ticketId)
    ticket = services.ticket_update(
        ticket=ticket, actor=request.member, data=body.changes(), expected_version=if_match(request)
    )
    return _detail_response(request, ticket)


@router.patch("/tickets/{ticketId}/status", response=TicketDetailOut)
def ticket_patch_status(request: AuthedRequest, ticketId: str, body: StatusIn):
    """Move the ticket to a status (by name or id) when exactly one transition you may
    take leads there; otherwise 422 listing the allowed transitions."""
    ticket = ticket_get_for_user(member=request.member, ref=ticketId)
    ticket = services.ticket_set_status(
        ticket=ticket,
        actor=request.member,
        status_ref=body.status,
        expected_version=if_match(request),
    )
    return _detail_response(request, ticket)


@router.get("/tickets/{ticketId}/transitions", response=list[TransitionOut])
def ticket_transitions(request: AuthedRequest, ticketId: str):
    """The workflow transitions you may take now, with the fields each needs."""
    ticket = ticket_get_for_user(member=request.member, ref=ticketId)
    return transitions_available(ticket=ticket, member=request.member)


@router.post("/tickets/{ticketId}/transitions", response=TicketDetailOut)
def ticket_transition_post(request: AuthedRequest, ticketId: str, body: TransitionIn):
    """Take a transition: conditions, the fields sent, validators and post-functions run
    in one transaction. `If-Match` refuses stale tickets with 412."""
    ticket = ticket_get_for_user(member=request.member, ref=ticketId)
    ticket = ticket_transition(
        ticket=ticket,
        actor=request.member,
        transition_id=body.id,
        fields=body.fields,
        comment=body.comment,
        expected_version=if_match(request),
    )
    return _detail_response(request, ticket)


@router.patch("/tickets/{ticketId}/assignee", response=TicketDetailOut)
def ticket_patch_assignee(request: AuthedRequest, ticketId: str, body: AssigneeIn):
    """Assign the ticket (null unassigns)."""
    ticket = ticket_get_for_user(member=request.member, ref=ticketId)
    ticket = services.ticket_update(
        ticket=ticket,
        actor=request.member,
        data={"assignee": body.assignee},
        expected_version=if_match(request),
    )
    return _detail_response(request, ticket)


@router.patch("/tickets/{ticketId}/priority", response=TicketDetailOut)
def ticket_patch_priority(request: AuthedRequest, ticketId: str, body: PriorityIn):
    """Change the ticket's priority."""
    ticket = ticket_get_for_user(member=request.member, ref=ticketId)
    ticket = services.ticket_update(
        ticket=ticket,
        actor=request.member,
        data={"priority": body.priority},
        expected_version=if_match(request),
    )
    return _detail_response(request, ticket)


@router.delete("/tickets/{ticketId}", response={204: None})
def ticket_del(request: AuthedRequest, ticketId: str):
    """Delete a ticket and its sub-tasks (project administrators)."""
    ticket = ticket_get_for_user(member=request.member, ref=ticketId)
    services.ticket_delete(ticket=ticket, actor=request.member)
    return Status(204, None)


@router.get("/tickets/{ticketId}/history", response=list[HistoryOut])
@paginate(Page)
def ticket_history(request: AuthedRequest, ticketId: str):
    """Every recorded field change, oldest first."""
    ticket = ticket_get_for_user(member=request.member, ref=ticketId)
    return selectors.ticket_history(ticket=ticket)


@router.get("/tickets/{ticketId}/links", response=list[LinkOut])
def ticket_links(request: AuthedRequest, ticketId: str):
    """Links in both directions, to tickets you can see."""
    ticket = ticket_get_for_user(member=request.member, ref=ticketId)
    return selectors.ticket_links(member=request.member, ticket=ticket)


@router.post("/tickets/{ticketId}/links", response={201: LinkOut})
def ticket_link_post(request: AuthedRequest, ticketId: str, body: LinkIn):
    """Link this ticket to another (blocks, relates, duplicates, clones)."""
    ticket = ticket_get_for_user(member=request.member, ref=ticketId)
    outward = body.direction == "outward"
    link = services.ticket_link_add(
        ticket=ticket,
        actor=request.member,
        link_type=body.type,
        target_ref=body.ticket,
        outward=outward,
    )
    other = link.target if outward else link.source
    description = link.get_type_display() if outward else link.INVERSE[link.type]
    return Status(
        201,
        {
            "id": link.pk,
            "type": link.type,
            "direction": body.direction,
            "description": description,
            "ticket": other,
        },
    )


@router.delete("/tickets/{ticketId}/links/{linkId}", response={204: None})
def ticket_link_delete(request: AuthedRequest, ticketId: str, linkId: int):
    """Remove a link of this ticket."""
    ticket = ticket_get_for_user(member=request.member, ref=ticketId)
    services.ticket_link_remove(ticket=ticket, actor=request.member, link_id=linkId)
    return Status(204, None)


@router.get("/tickets/{ticketId}/watchers", response=list[dict])
def ticket_watchers(request: AuthedRequest, ticketId: str):
    """Who watches this ticket."""
    ticket = ticket_get_for_user(member=request.member, ref=ticketId)
    watchers = ticket.watchers.select_related("user").order_by("user__username")
    return [
        {"id": w.user_id, "username": w.user.username, "display_name": w.user.name}
        for w in watchers
    ]


@router.post("/tickets/{ticketId}/watchers", response={201: dict})
def ticket_watcher_post(request: AuthedRequest, ticketId: str, body: WatcherIn):
    """Watch the ticket (yourself, or another member if you administer the project)."""
    ticket = ticket_get_for_user(member=request.member, ref=ticketId)
    watcher = services.watcher_add(ticket=ticket, actor=request.member, user_ref=body.user)
    return Status(201, {"ticket": ticket.key, "user_id": watcher.user_id})


@router.delete("/tickets/{ticketId}/watchers/{userId}", response={204: None})
def ticket_watcher_delete(request: AuthedRequest, ticketId: str, userId: int):
    """Stop watching (yourself, or another member if you administer the project)."""
    ticket = ticket_get_for_user(member=request.member, ref=ticketId)
    services.watcher_remove(ticket=ticket, actor=request.member, user_id=userId)
    return Status(204, None)


def _user_tickets_endpoint(kind: str, summary: str):
    @router.get(
        f"/users/{{userId}}/{kind}",
        response=list[TicketOut],
        summary=summary,
        operation_id=f"user_{kind.replace('-', '_')}",
    )
    @paginate(TicketPage)
    def endpoint(request: AuthedRequest, userId: int):
        return selectors.user_tickets(member=request.member, user_id=userId, kind=kind)

    endpoint.__doc__ = f"{summary}, among the tickets you can see."
    return endpoint


for _kind, _summary in (
    ("tickets", "Tickets assigned to or reported by a member"),
    ("assigned-tickets", "Tickets assigned to a member"),
    ("reported-tickets", "Tickets reported by a member"),
    ("watched-tickets", "Tickets a member watches"),
):
    _user_tickets_endpoint(_kind, _summary)
