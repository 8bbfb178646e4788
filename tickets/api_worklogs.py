"""Worklogs and estimates of a ticket. Estimates themselves (`original_estimate`,
`remaining_estimate`) are ticket fields, set with `PUT /tickets/{ticketId}`."""

from ninja import Query, Router, Schema, Status
from ninja.pagination import paginate
from pydantic import Field

from accounts.authentication import AuthedRequest
from saas.idempotency import idempotent
from saas.pagination import Page
from tickets import worklog_services as ws
from tickets.access import ticket_get_for_user
from tickets.project_schemas import errors
from tickets.worklog_schemas import Adjust, WorklogIn, WorklogOut, WorklogPatch

router = Router(tags=["worklogs"])


class DeleteQuery(Schema):
    adjust_estimate: Adjust = "auto"
    new_estimate: str | None = Field(None, description="Seconds or a duration, with `new`.")


def _out(ticket, worklog):
    worklog.ticket = ticket
    return worklog


@router.get("/tickets/{ticketId}/worklogs", response=list[WorklogOut])
@paginate(Page)
def worklogs_list(request: AuthedRequest, ticketId: str):
    """The ticket's worklogs, oldest start first."""
    ticket = ticket_get_for_user(member=request.member, ref=ticketId)
    return ws.worklogs_of(ticket).select_related("ticket")


@router.post("/tickets/{ticketId}/worklogs", response={201: WorklogOut, **errors(403, 404, 422)})
def worklog_post(request: AuthedRequest, ticketId: str, body: WorklogIn):
    """Log time; the ticket's time spent grows and its remaining estimate follows
    `adjust_estimate`. Send `Idempotency-Key` to make retries safe."""
    ticket = ticket_get_for_user(member=request.member, ref=ticketId)

    def create():
        worklog = ws.worklog_create(ticket=ticket, actor=request.member, data=body.model_dump())
        out = _out(ticket, ws.worklog_get(ticket=ticket, worklog_id=worklog.pk))
        return 201, WorklogOut.from_orm(out).model_dump(mode="json"), {}

    return idempotent(request, create)


@router.get("/tickets/{ticketId}/worklogs/{worklogId}", response={200: WorklogOut, **errors(404)})
def worklog_get(request: AuthedRequest, ticketId: str, worklogId: str):
    ticket = ticket_get_for_user(member=request.member, ref=ticketId)
    return _out(ticket, ws.worklog_get(ticket=ticket, worklog_id=worklogId))


@router.put(
    "/tickets/{ticketId}/worklogs/{worklogId}", response={200: WorklogOut, **errors(403, 404, 422)}
)
def worklog_put(request: AuthedRequest, ticketId: str, worklogId: str, body: WorklogPatch):
    """Change the fields sent (the author or a project administrator)."""
    ticket = ticket_get_for_user(member=request.member, ref=ticketId)
    worklog = ws.worklog_get(ticket=ticket, worklog_id=worklogId)
    ws.worklog_update(worklog=worklog, actor=request.member, data=body.model_dump())
    return _out(ticket, ws.worklog_get(ticket=ticket, worklog_id=worklog.pk))


@router.delete(
    "/tickets/{ticketId}/worklogs/{worklogId}", response={204: None, **errors(403, 404, 422)}
)
def worklog_delete(
    request: AuthedRequest, ticketId: str, worklogId: str, query: Query[DeleteQuery]
):
    """Delete a worklog (the author or a project administrator)."""
    ticket = ticket_get_for_user(member=request.member, ref=ticketId)
    worklog = ws.worklog_get(ticket=ticket, worklog_id=worklogId)
    ws.worklog_delete(
        worklog=worklog,
        actor=request.member,
        adjust_estimate=query.adjust_estimate,
        new_estimate=query.new_estimate,
    )
    return Status(204, None)
