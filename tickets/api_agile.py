"""Boards, ranking, backlog and sprints.

Anyone who can see a board's project (and its saved filter) views it; tenant admins
and project administrators configure it. Sprints are managed by the project's
administrators and planned (tickets added and removed) by anyone who edits its tickets.
"""

from typing import Any

from ninja import Query, Router, Schema, Status
from ninja.pagination import paginate
from pydantic import Field

from accounts.authentication import AuthedRequest
from saas.idempotency import idempotent
from saas.pagination import Page
from tickets import board_selectors as bs
from tickets import board_services, sprint_services
from tickets.access import project_get_for_user, ticket_get_for_user
from tickets.agile_schemas import (
    BacklogOut,
    BoardIn,
    BoardListOut,
    BoardOut,
    BoardPatch,
    BoardViewOut,
    CardOut,
    CardPage,
    MoveIn,
    RankIn,
    SprintCompleteIn,
    SprintIn,
    SprintOut,
    SprintPatch,
    SprintStartIn,
    SprintTicketsIn,
)
from tickets.project_schemas import errors
from tickets.sprint_selectors import sprint_get_for_user, sprints_of_project

router = Router(tags=["boards"])


class BoardQuery(Schema):
    column_limit: int = Field(50, ge=0, le=100, description="Cards per column.")


class CardsQuery(Schema):
    offset: int = Field(0, ge=0)
    limit: int = Field(50, ge=1, le=100)


class ColumnCardsQuery(CardsQuery):
    after: str | None = Field(
        None, max_length=40, description="Continue after this card (the page's `next`)."
    )


class BoardFilters(Schema):
    project: str | None = Field(None, description="Boards of a project (id or key).")


class SprintFilters(Schema):
    state: str | None = Field(None, description="future, active, closed (comma-separated).")


def _column_view(view: bs.ColumnView) -> dict[str, Any]:
    column = view.column
    return {
        "id": column.pk,
        "name": column.name,
        "position": column.position,
        "statuses": list(column.status_ids),
        "wip_min": column.wip_min,
        "wip_max": column.wip_max,
        "total": view.total,
        "wip": view.wip,
        "cards": _card_page(view),
    }


def _card_page(view: bs.ColumnView) -> dict[str, Any]:
    return {
        "column": view.column.pk,
        "total": view.total,
        "offset": view.offset,
        "limit": view.limit,
        "wip": view.wip,
        "next": view.next,
        "items": view.cards,
    }


# -- boards ------------------------------------------------------------------------------


@router.get("/boards", response=list[BoardListOut])
@paginate(Page)
def boards_list(request: AuthedRequest, filters: Query[BoardFilters]):
    """Boards you can see, by name."""
    boards = bs.boards_visible_to(request.member).select_related("project")
    if filters.project:
        project = project_get_for_user(member=request.member, ref=filters.project)
        boards = boards.filter(project=project)
    return boards.order_by("name", "id")


@router.post("/boards", response={201: BoardOut, **errors(400, 403, 404, 422)})
def board_post(request: AuthedRequest, body: BoardIn):
    """Create a Kanban or Scrum board (tenant admins, the project's administrators)."""
    data = body.model_dump()
    data["columns"] = None if body.columns is None else [c.model_dump() for c in body.columns]

    def create():
        board = board_services.board_create(actor=request.member, data=data)
        created = bs.board_get_for_user(member=request.member, board_id=board.pk)
        return 201, BoardOut.from_orm(created).model_dump(mode="json"), {}

    return idempotent(request, create)


@router.get("/boards/{boardId}", response={200: BoardViewOut, **errors(400, 404)})
def board_get(request: AuthedRequest, boardId: str, query: Query[BoardQuery]):
    """The board: columns with their first `column_limit` cards in rank order, counts
    and WIP state per column, swimlanes with their counts, and the active sprint of a
    Scrum board. Page a column with `/boards/{id}/columns/{columnId}/cards`."""
    board = bs.board_get_for_user(member=request.member, board_id=boardId)
    view = bs.board_view(board=board, member=request.member, column_limit=query.column_limit)
    return {
        "board": board,
        "sprint": view.sprint,
        "swimlanes": board.swimlanes,
        "columns": [_column_view(v) for v in view.columns],
        "lanes": view.lanes,
        "unmapped": view.unmapped,
    }


@router.get("/boards/{boardId}/config", response={200: BoardOut, **errors(404)})
def board_config(request: AuthedRequest, boardId: str):
    """The board's configuration: source, sub-JQL, swimlanes, columns and WIP limits."""
    return bs.board_get_for_user(member=request.member, board_id=boardId)


@router.put("/boards/{boardId}", response={200: BoardOut, **errors(400, 403, 404, 422)})
def board_put(request: AuthedRequest, boardId: str, body: BoardPatch):
    """Change the fields sent; `columns` replaces every column (send `id` to keep one)."""
    board = bs.board_get_for_user(member=request.member, board_id=boardId)
    data = body.model_dump()
    data["columns"] = None if body.columns is None else [c.model_dump() for c in body.columns]
    board_services.board_update(board=board, actor=request.member, data=data)
    return bs.board_get_for_user(member=request.member, board_id=board.pk)


@router.delete("/boards/{boardId}", response={204: None, **errors(403, 404)})
def board_delete(request: AuthedRequest, boardId: str):
    """Delete the board (its sprints stay with the project)."""
    board = bs.board_get_for_user(member=request.member, board_id=boardId)
    board_services.board_delete(board=board, actor=request.member)
    return Status(204, None)


@router.get(
    "/boards/{boardId}/columns/{columnId}/cards", response={200: CardPage, **errors(400, 404)}
)
def board_column_cards(
    request: AuthedRequest, boardId: str, columnId: str, query: Query[ColumnCardsQuery]
):
    """One column's cards in rank order, paged by `offset` or, cheaper for deep pages,
    by `after` (the previous page's `next`)."""
    board = bs.board_get_for_user(member=request.member, board_id=boardId)
    column = bs.board_column_get(board=board, column_id=columnId)
    view = bs.column_page(
        board=board,
        member=request.member,
        column=column,
        offset=query.offset,
        limit=query.limit,
        after=query.after,
    )
    return _card_page(view)


@router.get("/boards/{boardId}/backlog", response={200: BacklogOut, **errors(400, 404)})
def board_backlog(request: AuthedRequest, boardId: str, query: Query[CardsQuery]):
    """Planning view: the open sprints with their tickets, then the backlog (tickets in
    no open sprint and not done) in rank order, paged."""
    board = bs.board_get_for_user(member=request.member, board_id=boardId)
    backlog = bs.board_backlog(
        board=board, member=request.member, offset=query.offset, limit=query.limit
    )
    return {
        "sprints": [
            {"sprint": sprint, "total": total, "items": items}
            for sprint, items, total in backlog.sprints
        ],
        "total": backlog.total,
        "offset": backlog.offset,
        "limit": backlog.limit,
        "items": backlog.tickets,
    }


@router.post("/boards/{boardId}/rank", response={200: CardOut, **errors(403, 404, 422)})
def board_rank(request: AuthedRequest, boardId: str, body: RankIn):
    """Put a card right before or after another card (one row changes)."""
    board = bs.board_get_for_user(member=request.member, board_id=boardId)
    ticket = board_services.board_rank(
        board=board,
        actor=request.member,
        ticket_ref=body.ticket,
        before=body.before,
        after=body.after,
    )
    return ticket_get_for_user(member=request.member, ref=ticket.pk)


@router.post("/boards/{boardId}/move", response={200: CardOut, **errors(403, 404, 412, 422)})
def board_move(request: AuthedRequest, boardId: str, body: MoveIn):
    """Move a card to a column: runs the one transition you may take to the column's
    statuses (422 with the allowed transitions otherwise), then ranks it."""
    board = bs.board_get_for_user(member=request.member, board_id=boardId)
    column = board_services.board_column_for(board, body.column)
    ticket = board_services.board_move(
        board=board,
        actor=request.member,
        ticket_ref=body.ticket,
        column=column,
        status=body.status,
        before=body.before,
        after=body.after,
    )
    return ticket_get_for_user(member=request.member, ref=ticket.pk)


# -- sprints -----------------------------------------------------------------------------


@router.get("/projects/{projectId}/sprints", response=list[SprintOut])
@paginate(Page)
def sprints_list(request: AuthedRequest, projectId: str, filters: Query[SprintFilters]):
    """The project's sprints in plan order."""
    project = project_get_for_user(member=request.member, ref=projectId)
    return sprints_of_project(project=project, state=filters.state)


@router.post("/projects/{projectId}/sprints", response={201: SprintOut, **errors(403, 404, 422)})
def sprint_post(request: AuthedRequest, projectId: str, body: SprintIn):
    """Plan a future sprint (project administrators)."""
    project = project_get_for_user(member=request.member, ref=projectId)
    board = None
    if body.board is not None:
        board = bs.board_get_for_user(member=request.member, board_id=body.board)

    def create():
        sprint = sprint_services.sprint_create(
            project=project, actor=request.member, data=body.model_dump(), board=board
        )
        created = sprint_get_for_user(member=request.member, sprint_id=sprint.pk)
        return 201, SprintOut.from_orm(created).model_dump(mode="json"), {}

    return idempotent(request, create)


@router.get("/sprints/{sprintId}", response={200: SprintOut, **errors(404)})
def sprint_get(request: AuthedRequest, sprintId: str):
    return sprint_get_for_user(member=request.member, sprint_id=sprintId)


@router.put("/sprints/{sprintId}", response={200: SprintOut, **errors(403, 404, 409, 422)})
def sprint_put(request: AuthedRequest, sprintId: str, body: SprintPatch):
    """Rename the sprint, change its goal or dates."""
    sprint = sprint_get_for_user(member=request.member, sprint_id=sprintId)
    sprint_services.sprint_update(
        sprint=sprint, actor=request.member, data=body.model_dump(exclude_unset=True)
    )
    return sprint_get_for_user(member=request.member, sprint_id=sprint.pk)


@router.delete("/sprints/{sprintId}", response={204: None, **errors(403, 404, 409)})
def sprint_delete(request: AuthedRequest, sprintId: str):
    """Delete a future sprint; its tickets return to the backlog."""
    sprint = sprint_get_for_user(member=request.member, sprint_id=sprintId)
    sprint_services.sprint_delete(sprint=sprint, actor=request.member)
    return Status(204, None)


@router.post("/sprints/{sprintId}/start", response={200: SprintOut, **errors(403, 404, 409, 422)})
def sprint_start(request: AuthedRequest, sprintId: str, body: SprintStartIn):
    """Start the sprint (409 if the project has an active one)."""
    sprint = sprint_get_for_user(member=request.member, sprint_id=sprintId)
    sprint_services.sprint_start(
        sprint=sprint, actor=request.member, goal=body.goal, start=body.start, end=body.end
    )
    return sprint_get_for_user(member=request.member, sprint_id=sprint.pk)


@router.post(
    "/sprints/{sprintId}/complete", response={200: SprintOut, **errors(403, 404, 409, 422)}
)
def sprint_complete(request: AuthedRequest, sprintId: str, body: SprintCompleteIn):
    """Close the active sprint; unfinished tickets go to the backlog or a future sprint."""
    sprint = sprint_get_for_user(member=request.member, sprint_id=sprintId)
    sprint_services.sprint_complete(
        sprint=sprint, actor=request.member, move_open_to=body.move_open_to
    )
    return sprint_get_for_user(member=request.member, sprint_id=sprint.pk)


@router.post("/sprints/{sprintId}/tickets", response={200: SprintOut, **errors(403, 404, 409, 422)})
def sprint_tickets(request: AuthedRequest, sprintId: str, body: SprintTicketsIn):
    """Add tickets to the sprint (moving them out of another open sprint) and remove
    tickets from it (back to the backlog)."""
    sprint = sprint_get_for_user(member=request.member, sprint_id=sprintId)
    sprint_services.sprint_tickets_change(
        sprint=sprint, actor=request.member, add=body.add, remove=body.remove
    )
    return sprint_get_for_user(member=request.member, sprint_id=sprint.pk)
