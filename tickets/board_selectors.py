"""Reads of boards: which boards a member sees, a board's tickets, columns and cards.

A board's tickets are its project's (or its saved filter's JQL, evaluated for the
viewer), narrowed by its sub-JQL; a Scrum board shows its active sprint. Cards come
per column in rank order through the (project, status, rank, id) index of reports
migration 0003 (or the (sprint, rank) one), counts from one aggregate, so a column of
10,000 cards costs no more than a column of ten, and a page deep in it skips the cards
before it in the index only.
"""

from dataclasses import dataclass, field
from typing import Any

from django.db import connection
from django.db.models import Count, Q, QuerySet

from accounts.members.models import Membership
from saas.errors import BadRequest, NotFound
from saas.refs import db_id_or_none
from search.filter_selectors import filters_visible_to
from search.jql import ast
from search.jql.compile_postgres import jql_compile_postgres
from search.jql.parser import jql_parse
from tickets.access import projects_visible_to, tickets_visible_to
from tickets.models import Board, BoardColumn, Sprint, Status, Ticket

CARD_RELATED = ("issue_type", "status", "priority", "assignee", "epic")
# The ticket column each swimlane kind groups by.
LANE_COLUMN = {"assignee": "assignee_id", "epic": "epic_id", "priority": "priority_id"}


def boards_visible_to(member: Membership) -> QuerySet[Board]:
    """Boards whose project and saved filter the member can both see (when set)."""
    projects = projects_visible_to(member).values("pk")
    filters = filters_visible_to(member).values("pk")
    return Board.objects.filter(
        Q(project__isnull=True) | Q(project__in=projects),
        Q(saved_filter__isnull=True) | Q(saved_filter__in=filters),
    )


def board_get_for_user(*, member: Membership, board_id: Any) -> Board:
    pk = db_id_or_none(str(board_id))
    board = (
        boards_visible_to(member).select_related("project", "saved_filter").filter(pk=pk).first()
        if pk is not None
        else None
    )
    if board is None:
        raise NotFound(
            f"Board {board_id} does not exist or you cannot see it.", code="board_not_found"
        )
    return board


def board_column_get(*, board: Board, column_id: Any) -> BoardColumn:
    pk = db_id_or_none(str(column_id))
    column = board.columns.filter(pk=pk).first() if pk is not None else None
    if column is None:
        raise NotFound(f"Column {column_id} is not on this board.", code="column_not_found")
    return column


def _jql(text: str, member: Membership) -> QuerySet[Ticket]:
    try:
        return jql_compile_postgres(
            jql_parse(text), member=member, tenant=getattr(connection, "tenant", None)
        )
    except ast.JqlError as exc:
        raise BadRequest(
            f"The board's query is invalid: {exc.message}", code="board_jql_invalid"
        ) from exc


def board_active_sprint(board: Board) -> Sprint | None:
    if board.kind != Board.Kind.SCRUM:
        return None
    return (
        Sprint.objects.filter(_board_sprints(board), state=Sprint.State.ACTIVE)
        .order_by("start_at", "id")
        .first()
    )


def _board_sprints(board: Board) -> Q:
    return Q(board=board) | Q(project_id=board.project_id) if board.project_id else Q(board=board)


def board_sprints(board: Board) -> QuerySet[Sprint]:
    return Sprint.objects.filter(_board_sprints(board))


def board_tickets(*, board: Board, member: Membership) -> QuerySet[Ticket]:
    """Every ticket the board covers that the member may see (no sprint narrowing)."""
    tickets = tickets_visible_to(member)
    if board.project_id:
        tickets = tickets.filter(project_id=board.project_id)
    if board.saved_filter is not None:
        tickets = tickets.filter(pk__in=_jql(board.saved_filter.jql, member).values("pk"))
    if board.sub_jql.strip():
        tickets = tickets.filter(pk__in=_jql(board.sub_jql, member).values("pk"))
    return tickets.order_by()


def board_scope(*, board: Board, member: Membership, sprint: Sprint | None) -> QuerySet[Ticket]:
    """The tickets shown in the board's columns: a Scrum board shows its active sprint
    (nothing without one), a Kanban board everything."""
    tickets = board_tickets(board=board, member=member)
    if board.kind == Board.Kind.SCRUM:
        tickets = tickets.filter(sprint=sprint) if sprint else tickets.none()
    return tickets


def cards(
    tickets: QuerySet[Ticket],
    column: BoardColumn,
    offset: int,
    limit: int,
    after: tuple[str, int] | None = None,
) -> list[Ticket]:
    """A page of the column in rank order; `after` (rank, id) continues after a card
    (keyset paging: deep pages cost what the first does).

    One query either way. The first page reads its cards along the (project, status,
    rank, id) index of reports migration 0003. A page at an offset picks its ids in a
    subquery first (an index-only scan of that index past the skipped cards), so only
    the page's rows are read from the heap and joined, not the `offset` rows before."""
    in_column = tickets.filter(status_id__in=column.status_ids)
    if after is not None:
        rank, pk = after
        # `rank >= rank` is the index bound; the OR only decides ties of rank.
        in_column = in_column.filter(Q(rank__gte=rank), Q(rank__gt=rank) | Q(rank=rank, pk__gt=pk))
    ordered = in_column.order_by("rank", "id")
    if offset:
        page_ids = ordered.values("pk")[offset : offset + limit]
        page = Ticket.objects.filter(pk__in=page_ids).order_by("rank", "id")
        return list(page.select_related(*CARD_RELATED))
    return list(ordered.select_related(*CARD_RELATED)[:limit])


@dataclass
class ColumnView:
    column: BoardColumn
    total: int
    cards: list[Ticket]
    offset: int
    limit: int
    wip: str | None
    lane_counts: dict[Any, int] = field(default_factory=dict)
    next: str | None = None  # the last card's key, to continue with `after`


@dataclass
class BoardView:
    board: Board
    sprint: Sprint | None
    columns: list[ColumnView]
    lanes: list[dict[str, Any]]
    unmapped: int


def wip_state(column: BoardColumn, total: int) -> str | None:
    if column.wip_max is not None and total > column.wip_max:
        return "over"
    if column.wip_min is not None and total < column.wip_min:
        return "under"
    if column.wip_max is None and column.wip_min is None:
        return None
    return "ok"


def board_view(*, board: Board, member: Membership, column_limit: int) -> BoardView:
    """The board with its columns, the first `column_limit` cards of each, counts per
    column and per swimlane, and WIP states: one query per column plus a few."""
    sprint = board_active_sprint(board)
    tickets = board_scope(board=board, member=member, sprint=sprint)
    columns = list(board.columns.all())
    lane = LANE_COLUMN.get(board.swimlanes)
    group = ["status_id", lane] if lane else ["status_id"]
    counts: dict[int, int] = {}
    lane_by_status: dict[int, dict[Any, int]] = {}
    for row in tickets.values(*group).annotate(n=Count("id")).order_by():
        counts[row["status_id"]] = counts.get(row["status_id"], 0) + row["n"]
        if lane:
            per_lane = lane_by_status.setdefault(row["status_id"], {})
            per_lane[row[lane]] = per_lane.get(row[lane], 0) + row["n"]
    views, mapped = [], set()
    for column in columns:
        total = sum(counts.get(s, 0) for s in column.status_ids)
        mapped.update(column.status_ids)
        lane_counts: dict[Any, int] = {}
        for status_id in column.status_ids:
            for key, n in lane_by_status.get(status_id, {}).items():
                lane_counts[key] = lane_counts.get(key, 0) + n
        page = cards(tickets, column, 0, column_limit) if total and column_limit else []
        for card in page:
            card.lane = getattr(card, lane) if lane else None  # type: ignore[attr-defined]
        views.append(
            ColumnView(
                column=column,
                total=total,
                cards=page,
                next=page[-1].key if page and total > len(page) else None,
                offset=0,
                limit=column_limit,
                wip=wip_state(column, total),
                lane_counts=lane_counts,
            )
        )
    unmapped = sum(n for s, n in counts.items() if s not in mapped)
    return BoardView(
        board=board,
        sprint=sprint,
        columns=views,
        lanes=_lanes(board.swimlanes, views),
        unmapped=unmapped,
    )


def _lanes(kind: str, views: list[ColumnView]) -> list[dict[str, Any]]:
    """Swimlanes in display order with their totals and per-column counts; the
    "none" lane (unassigned, no epic) comes last, as in Jira."""
    if kind not in LANE_COLUMN:
        return []
    keys = {key for view in views for key in view.lane_counts}
    names = _lane_names(kind, {k for k in keys if k is not None})
    ordered = sorted((k for k in keys if k is not None), key=lambda k: names[k][1])
    if None in keys:
        ordered.append(None)
    empty = {"assignee": "Unassigned", "epic": "No epic", "priority": "No priority"}[kind]
    return [
        {
            "key": key,
            "name": names[key][0] if key is not None else empty,
            "total": sum(v.lane_counts.get(key, 0) for v in views),
            "counts": {str(v.column.pk): v.lane_counts.get(key, 0) for v in views},
        }
        for key in ordered
    ]


def _lane_names(kind: str, keys: set[Any]) -> dict[Any, tuple[str, Any]]:
    """Display name and sort key of each lane, in one query."""
    if not keys:
        return {}
    if kind == "priority":
        from tickets.models import Priority

        return {p.pk: (p.name, -p.rank) for p in Priority.objects.filter(pk__in=keys)}
    if kind == "epic":
        rows = Ticket.objects.filter(pk__in=keys).values_list("pk", "key", "summary", "rank")
        return {pk: (f"{key} {summary}", (rank, pk)) for pk, key, summary, rank in rows}
    from accounts.models import User

    users = User.objects.filter(pk__in=keys).only("pk", "username", "display_name")
    return {
        u.pk: (u.display_name or u.username, (u.display_name or u.username).lower()) for u in users
    }


def column_page(
    *,
    board: Board,
    member: Membership,
    column: BoardColumn,
    offset: int,
    limit: int,
    after: str | None = None,
) -> ColumnView:
    """More cards of one column: from `offset`, or after the card `after` (key or id)."""
    sprint = board_active_sprint(board)
    tickets = board_scope(board=board, member=member, sprint=sprint)
    total = tickets.filter(status_id__in=column.status_ids).count()
    cursor = None
    if after:
        ref = after.strip()
        pk = db_id_or_none(ref)
        found = tickets.filter(pk=pk) if pk is not None else tickets.filter(key=ref.upper())
        cursor = found.values_list("rank", "pk").first()
        if cursor is None:
            raise NotFound(f"Card {after} is not on this board.", code="ticket_not_found")
    page = cards(tickets, column, offset, limit + 1, after=cursor)
    return ColumnView(
        column=column,
        total=total,
        cards=page[:limit],
        offset=offset,
        limit=limit,
        wip=wip_state(column, total),
        next=page[limit - 1].key if len(page) > limit else None,
    )


@dataclass
class Backlog:
    board: Board
    sprints: list[tuple[Sprint, list[Ticket], int]]
    tickets: list[Ticket]
    total: int
    offset: int
    limit: int


def board_backlog(*, board: Board, member: Membership, offset: int, limit: int) -> Backlog:
    """A Scrum board's planning view: its active and future sprints with their tickets
    (up to `limit` each), then the backlog (no open sprint, not done) in rank order."""
    tickets = board_tickets(board=board, member=member)
    sprints = list(
        board_sprints(board)
        .filter(state__in=[Sprint.State.ACTIVE, Sprint.State.FUTURE])
        .order_by("state", "sequence", "id")  # "active" < "future": active first
    )
    planned = []
    for sprint in sprints:
        of_sprint = tickets.filter(sprint=sprint)
        planned.append(
            (
                sprint,
                list(of_sprint.select_related(*CARD_RELATED).order_by("rank", "id")[:limit]),
                of_sprint.count(),
            )
        )
    backlog = tickets.filter(sprint__isnull=True).exclude(status__category=Status.Category.DONE)
    return Backlog(
        board=board,
        sprints=planned,
        tickets=list(
            backlog.select_related(*CARD_RELATED).order_by("rank", "id")[offset : offset + limit]
        ),
        total=backlog.count(),
        offset=offset,
        limit=limit,
    )
