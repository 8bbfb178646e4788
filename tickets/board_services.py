"""Writes on boards: configure (columns, WIP limits, swimlanes), rank and move cards.

Tenant admins and the project's administrators configure a project's board; a board
over a saved filter alone is configured by tenant admins and its creator. Ranking a
card rewrites that card's row only; moving it to another column runs the workflow
transition that leads there, with the same rules as the transitions API.
"""

from collections.abc import Mapping, Sequence
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.members.models import Membership, Role
from accounts.policy import ADMIN_PROJECT
from eventlog.record import change_record
from saas.errors import Forbidden, Invalid, NotFound
from saas.refs import db_id_or_none
from search.filter_selectors import filter_get_for_user
from tickets import fields as f
from tickets.access import (
    project_can_administer,
    project_get_for_user,
    project_require_write,
    tickets_visible_to,
)
from tickets.board_selectors import board_tickets
from tickets.models import Board, BoardColumn, Project, Status, Ticket, WorkflowSchemeEntry
from tickets.rank import (
    RankError,
    project_rank_lock,
    rank_between,
    rank_needs_rebalance,
    rank_rebalance_schedule,
)

CATEGORY_COLUMNS = (
    ("To Do", Status.Category.TO_DO),
    ("In Progress", Status.Category.IN_PROGRESS),
    ("Done", Status.Category.DONE),
)


def board_can_configure(*, member: Membership, board: Board) -> bool:
    if member.role == Role.ADMIN:
        return True
    if board.project is not None:
        return project_can_administer(member=member, project=board.project)
    return board.created_by_id == member.user_id


def _require_configure(member: Membership, board: Board) -> None:
    if not board_can_configure(member=member, board=board):
        raise Forbidden(
            f"You cannot configure board {board.name!r}.", details={"permission": ADMIN_PROJECT}
        )


def project_statuses(project: Project | None) -> list[Status]:
    """The statuses of the project's workflows (every status for a filter board), in
    the catalogue's order."""
    if project is None:
        return list(Status.objects.all())
    ids: set[int] = set()
    entries = WorkflowSchemeEntry.objects.filter(project=project).select_related(
        "workflow__current"
    )
    for entry in entries:
        if entry.workflow.current:
            ids.update(s["id"] for s in entry.workflow.current.definition["statuses"])
    if not ids:
        from tickets.workflow_engine import project_workflow_ensure

        current = project_workflow_ensure(project=project).current
        assert current is not None
        ids.update(s["id"] for s in current.definition["statuses"])
    return list(Status.objects.filter(pk__in=ids))


def _columns_clean(raw: Sequence[Mapping[str, Any]] | None, project: Project | None) -> list[dict]:
    """Columns as given (or the defaults: one per status category), checked: 422 lists
    every problem."""
    statuses = project_statuses(project)
    if raw is None:
        return [
            {"id": None, "name": name, "status_ids": ids, "wip_min": None, "wip_max": None}
            for name, category in CATEGORY_COLUMNS
            if (ids := [s.pk for s in statuses if s.category == category])
        ]
    errors = f.FieldErrorList()
    if not raw:
        errors.add("columns", "A board needs at least one column.")
    seen: dict[int, str] = {}
    cleaned = []
    for i, col in enumerate(raw):
        name = (col.get("name") or "").strip()
        if not name:
            errors.add(f"columns.{i}.name", "A column needs a name.")
        ids = []
        for ref in col.get("statuses") or []:
            try:
                status = f.status_resolve(ref)
            except f.FieldError:
                errors.add(f"columns.{i}.statuses", f"Unknown status {ref!r}.")
                continue
            if status.pk in seen:
                errors.add(
                    f"columns.{i}.statuses",
                    f"Status {status.name} is already in column {seen[status.pk]!r}.",
                )
                continue
            seen[status.pk] = name
            ids.append(status.pk)
        low, high = col.get("wip_min"), col.get("wip_max")
        if low is not None and high is not None and low > high:
            errors.add(f"columns.{i}.wip_min", "wip_min cannot exceed wip_max.")
        cleaned.append(
            {"id": col.get("id"), "name": name, "status_ids": ids, "wip_min": low, "wip_max": high}
        )
    errors.raise_if_any("The board's columns are invalid.")
    return cleaned


def _columns_write(board: Board, columns: list[dict]) -> None:
    existing = set(board.columns.values_list("pk", flat=True))
    unknown = [c["id"] for c in columns if c["id"] is not None and c["id"] not in existing]
    if unknown:
        raise Invalid(f"Columns {unknown} are not on this board.", code="column_not_found")
    board.columns.all().delete()
    BoardColumn.objects.bulk_create(
        BoardColumn(
            pk=c["id"],
            board=board,
            name=c["name"][:100],
            position=i,
            status_ids=c["status_ids"],
            wip_min=c["wip_min"],
            wip_max=c["wip_max"],
        )
        for i, c in enumerate(columns)
    )


def _source(
    member: Membership, project_ref: Any, filter_ref: Any
) -> tuple[Project | None, Any | None]:
    project = project_get_for_user(member=member, ref=project_ref) if project_ref else None
    saved = filter_get_for_user(member=member, filter_id=filter_ref) if filter_ref else None
    if project is None and saved is None:
        raise Invalid("A board needs a project or a saved filter.", code="board_source_missing")
    return project, saved


def _audit(action: str, board: Board, member: Membership, changes: dict | None = None) -> None:
    change_record(
        action,
        actor=member,
        target_type="board",
        target_id=board.pk,
        changes=changes,
        payload={"board_id": board.pk, "name": board.name},
    )


@transaction.atomic
def board_create(*, actor: Membership, data: Mapping[str, Any]) -> Board:
    """A board over a project or a saved filter; columns default to one per category."""
    project, saved = _source(actor, data.get("project"), data.get("filter"))
    board = Board(
        name=data["name"].strip(),
        kind=data["kind"],
        project=project,
        saved_filter=saved,
        sub_jql=(data.get("sub_jql") or "").strip(),
        swimlanes=data.get("swimlanes") or Board.Swimlanes.NONE,
        created_by_id=actor.user_id,
    )
    _require_configure(actor, board)
    columns = _columns_clean(data.get("columns"), project)
    board.save()
    _columns_write(board, columns)
    board_tickets(board=board, member=actor).exists()  # the sub-JQL must compile: 400
    _audit("board.created", board, actor)
    return board


@transaction.atomic
def board_update(*, board: Board, actor: Membership, data: Mapping[str, Any]) -> Board:
    """Change the fields sent; `columns` replaces the columns (send `id` to keep one)."""
    _require_configure(actor, board)
    board = (
        Board.objects.select_for_update(of=("self",))
        .select_related("project", "saved_filter")
        .get(pk=board.pk)
    )
    changes: dict[str, list[Any]] = {}
    for name in ("name", "sub_jql", "swimlanes"):
        if data.get(name) is not None and data[name] != getattr(board, name):
            value = data[name].strip() if name != "swimlanes" else data[name]
            changes[name] = [getattr(board, name), value]
            setattr(board, name, value)
    if data.get("columns") is not None:
        _columns_write(board, _columns_clean(data["columns"], board.project))
        changes["columns"] = [None, [c["name"] for c in data["columns"]]]
    if changes:
        board.version += 1
        board.updated_at = timezone.now()
        board.save()
        board_tickets(board=board, member=actor).exists()
        _audit("board.updated", board, actor, changes)
    return board


@transaction.atomic
def board_delete(*, board: Board, actor: Membership) -> None:
    _require_configure(actor, board)
    board.sprints.update(board=None)  # sprints belong to the project and outlive it
    _audit("board.deleted", board, actor)
    board.delete()


# -- ranking and moving cards -----------------------------------------------------------


def _ticket_on_board(board: Board, actor: Membership, ref: Any, *, field: str) -> Ticket:
    visible = tickets_visible_to(actor)
    try:
        ticket = f.ticket_ref_resolve(ref, field=field, visible=visible)
    except f.FieldError as exc:
        raise NotFound(exc.message, code="ticket_not_found") from exc
    if ticket is None or not board_tickets(board=board, member=actor).filter(pk=ticket.pk).exists():
        raise Invalid(f"{getattr(ticket, 'key', ref)} is not on this board.", code="not_on_board")
    return ticket


def _neighbour_rank(ticket: Ticket, anchor: Ticket, *, before: bool) -> tuple[str, str | None]:
    """The ranks bounding the slot next to `anchor` (the card itself excluded)."""
    others = Ticket.objects.filter(project_id=anchor.project_id).exclude(pk=ticket.pk)
    if before:
        prev = (
            others.filter(rank__lt=anchor.rank).order_by("-rank").values_list("rank", flat=True)
        ).first()
        return prev or "", anchor.rank
    nxt = (
        others.filter(rank__gt=anchor.rank).order_by("rank").values_list("rank", flat=True)
    ).first()
    return anchor.rank, nxt


def ticket_rank_move(
    *, ticket: Ticket, actor: Membership, before: Ticket | None, after: Ticket | None
) -> Ticket:
    """Put `ticket` right before `before` (or right after `after`) in its project's
    order, rewriting only the ticket's row. Must run inside a transaction."""
    anchor = before or after
    if anchor is None or (before is not None and after is not None):
        raise Invalid("Send exactly one of `before` and `after`.", code="rank_anchor")
    if anchor.pk == ticket.pk:
        raise Invalid("A card cannot be ranked next to itself.", code="rank_anchor")
    if anchor.project_id != ticket.project_id:
        raise Invalid(
            "Cards are ranked within their project: rank next to a card of the same project.",
            code="rank_other_project",
        )
    project_require_write(member=actor, project=ticket.project)
    project_rank_lock([ticket.project_id])
    # Read after the lock: a concurrent move into the same slot has committed by now.
    anchor_rank = Ticket.objects.filter(pk=anchor.pk).values_list("rank", flat=True).first()
    if anchor_rank is None:
        raise NotFound(f"{anchor.key} no longer exists.", code="ticket_not_found")
    anchor.rank = anchor_rank
    low, high = _neighbour_rank(ticket, anchor, before=before is not None)
    try:
        rank = rank_between(low or None, high)
    except RankError:  # equal ranks left by an older writer: spread them, then retry
        from tickets.rank import project_ranks_rebalance

        project_ranks_rebalance(project_id=ticket.project_id)
        anchor.rank = Ticket.objects.values_list("rank", flat=True).get(pk=anchor.pk)
        low, high = _neighbour_rank(ticket, anchor, before=before is not None)
        rank = rank_between(low or None, high)
    Ticket.objects.filter(pk=ticket.pk).update(rank=rank)
    ticket.rank = rank
    if rank_needs_rebalance(rank):
        rank_rebalance_schedule(project_id=ticket.project_id)
    return ticket


@transaction.atomic
def board_rank(
    *, board: Board, actor: Membership, ticket_ref: Any, before: Any = None, after: Any = None
) -> Ticket:
    """Rank one card of the board before or after another."""
    ticket = _ticket_on_board(board, actor, ticket_ref, field="ticket")
    anchor_before = _ticket_on_board(board, actor, before, field="before") if before else None
    anchor_after = _ticket_on_board(board, actor, after, field="after") if after else None
    return ticket_rank_move(ticket=ticket, actor=actor, before=anchor_before, after=anchor_after)


@transaction.atomic
def board_move(
    *,
    board: Board,
    actor: Membership,
    ticket_ref: Any,
    column: BoardColumn,
    status: Any = None,
    before: Any = None,
    after: Any = None,
) -> Ticket:
    """Move a card to `column`: take the one workflow transition you may take that leads
    to one of the column's statuses (422 listing the allowed transitions when none or
    several do), then rank it when `before`/`after` is given."""
    from tickets.workflow_engine import ticket_transition, transitions_available

    ticket = _ticket_on_board(board, actor, ticket_ref, field="ticket")
    project_require_write(member=actor, project=ticket.project)
    targets = list(column.status_ids)
    if status is not None:
        try:
            wanted = f.status_resolve(status)
        except f.FieldError as exc:
            raise Invalid(exc.message, details=[exc.as_detail()]) from exc
        if wanted.pk not in targets:
            raise Invalid(f"Column {column.name!r} does not show {wanted.name}.")
        targets = [wanted.pk]
    if ticket.status_id not in targets:
        available = transitions_available(ticket=ticket, member=actor)
        leading = [t for t in available if t.to.pk in targets]
        if len(leading) != 1:
            reason = (
                "No transition you may take leads" if not leading else "Several transitions lead"
            )
            raise Invalid(
                f"{reason} from {ticket.status.name} to column {column.name!r}.",
                code="column_not_reachable",
                details={
                    "allowed": [{"id": t.id, "name": t.name, "to": t.to.name} for t in available]
                },
            )
        ticket = ticket_transition(ticket=ticket, actor=actor, transition_id=leading[0].id)
    if before or after:
        anchor_before = _ticket_on_board(board, actor, before, field="before") if before else None
        anchor_after = _ticket_on_board(board, actor, after, field="after") if after else None
        ticket = ticket_rank_move(
            ticket=ticket, actor=actor, before=anchor_before, after=anchor_after
        )
    return ticket


def board_column_for(board: Board, column_ref: Any) -> BoardColumn:
    pk = db_id_or_none(str(column_ref))
    column = board.columns.filter(pk=pk).first() if pk is not None else None
    if column is None:
        raise Invalid(f"Column {column_ref} is not on this board.", code="column_not_found")
    return column
