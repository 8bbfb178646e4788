"""Boards: configuration and permissions, columns and cards, WIP, swimlanes, the query
count of a board, saved-filter boards, moving cards through the workflow, backlog."""

import pytest
from django.db import connection
from django_tenants.utils import schema_context

from eventlog.models import AuditEntry, OutboxEvent
from search.models import SavedFilter
from tickets.models import (
    Board,
    BoardColumn,
    ProjectMember,
    Sprint,
    Status,
    Ticket,
    TicketHistory,
    WorkflowSchemeEntry,
)
from tickets.workflow_engine import workflow_create


def _status_ids(world, *names):
    with schema_context(world.schema):
        return [Status.objects.get(name=n).pk for n in names]


def _status_names(world, ids):
    with schema_context(world.schema):
        names = dict(Status.objects.values_list("pk", "name"))
    return [names[i] for i in ids]


def _board(api, project="CORE", **extra):
    body = {"name": "Core board", "kind": "kanban", "project": project, **extra}
    response = api.post("/api/v1/boards", body)
    assert response.status_code == 201, response.content
    return response.json()


def _columns(api, project="CORE", **extra):
    return _board(
        api,
        project,
        columns=[
            {"name": "To Do", "statuses": ["To Do"]},
            {"name": "Doing", "statuses": ["In Progress", "In Review"], "wip_max": 2},
            {"name": "Done", "statuses": ["Done"], "wip_min": 1},
        ],
        **extra,
    )


def _set_status(world, key, name):
    with schema_context(world.schema):
        Ticket.objects.filter(key=key).update(status=Status.objects.get(name=name))


# -- configuration ---------------------------------------------------------------------


def test_a_new_board_gets_one_column_per_status_category_of_the_workflow(
    world_a, project_a, lead_a
):
    board = _board(lead_a)
    assert board["kind"] == "kanban"
    assert board["project"]["key"] == "CORE"
    assert board["swimlanes"] == "none"
    assert [c["name"] for c in board["columns"]] == ["To Do", "In Progress", "Done"]
    assert [_status_names(world_a, c["statuses"]) for c in board["columns"]] == [
        ["To Do"],
        ["In Progress", "In Review"],
        ["Done"],
    ]
    with schema_context(world_a.schema):
        assert AuditEntry.objects.filter(action="board.created").count() == 1


def test_columns_mapping_a_status_twice_or_bad_wip_limits_are_refused(world_a, project_a, admin_a):
    response = admin_a.post(
        "/api/v1/boards",
        {
            "name": "Bad",
            "kind": "kanban",
            "project": "CORE",
            "columns": [
                {"name": "A", "statuses": ["To Do", "Nope"], "wip_min": 3, "wip_max": 2},
                {"name": "B", "statuses": ["to do"]},
            ],
        },
    )
    assert response.status_code == 422
    assert response.json()["error"]["details"] == [
        {"field": "columns.0.statuses", "message": "Unknown status 'Nope'."},
        {"field": "columns.0.wip_min", "message": "wip_min cannot exceed wip_max."},
        {"field": "columns.1.statuses", "message": "Status To Do is already in column 'A'."},
    ]
    with schema_context(world_a.schema):
        assert not Board.objects.exists()


def test_only_admins_of_the_project_configure_its_boards(world_a, project_a, admin_a, user_a):
    refused = user_a.post("/api/v1/boards", {"name": "Mine", "kind": "kanban", "project": "CORE"})
    board = _board(admin_a)
    put = user_a.put(f"/api/v1/boards/{board['id']}", {"name": "Renamed"})
    delete = user_a.delete(f"/api/v1/boards/{board['id']}")
    assert refused.status_code == 403
    assert put.status_code == 403
    assert delete.status_code == 403
    with schema_context(world_a.schema):
        assert list(Board.objects.values_list("name", "version")) == [("Core board", 1)]
    # a project administrator may
    with schema_context(world_a.schema):
        ProjectMember.objects.create(project=project_a, user=world_a.user, role="ADMIN")
    assert user_a.put(f"/api/v1/boards/{board['id']}", {"name": "Renamed"}).json()["name"] == (
        "Renamed"
    )


def test_boards_of_a_private_project_are_invisible_to_others(
    world_a, private_project_a, lead_a, user_a
):
    board = _board(lead_a, project="SECRET")
    assert user_a.get(f"/api/v1/boards/{board['id']}").status_code == 404
    assert user_a.get("/api/v1/boards").json()["total"] == 0
    assert lead_a.get("/api/v1/boards").json()["items"][0]["name"] == "Core board"


def test_put_replaces_columns_keeping_the_ids_sent_and_delete_removes_the_board(
    world_a, project_a, admin_a
):
    board = _columns(admin_a)
    first, _, last = board["columns"]
    response = admin_a.put(
        f"/api/v1/boards/{board['id']}",
        {
            "swimlanes": "priority",
            "columns": [
                {"id": last["id"], "name": "Finished", "statuses": ["Done"]},
                {"id": first["id"], "name": "Open", "statuses": ["To Do", "In Progress"]},
            ],
        },
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["version"] == 2
    assert body["swimlanes"] == "priority"
    assert [(c["id"], c["name"], c["position"]) for c in body["columns"]] == [
        (last["id"], "Finished", 0),
        (first["id"], "Open", 1),
    ]
    assert admin_a.delete(f"/api/v1/boards/{board['id']}").status_code == 204
    with schema_context(world_a.schema):
        assert not Board.objects.exists()
        assert not BoardColumn.objects.exists()


def test_an_invalid_sub_jql_is_refused_with_400(world_a, project_a, admin_a):
    response = admin_a.post(
        "/api/v1/boards",
        {"name": "B", "kind": "kanban", "project": "CORE", "sub_jql": "nonsense ==="},
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "board_jql_invalid"
    with schema_context(world_a.schema):
        assert not Board.objects.exists()


# -- viewing -------------------------------------------------------------------------


def test_board_shows_cards_per_column_in_rank_order_with_counts_and_wip(
    world_a, project_a, admin_a, make_ticket
):
    for _ in range(5):
        make_ticket()
    for key in ("CORE-2", "CORE-3", "CORE-5"):
        _set_status(world_a, key, "In Progress")
    with schema_context(world_a.schema):  # CORE-5 first in rank
        Ticket.objects.filter(key="CORE-5").update(rank="0")
    board = _columns(admin_a)
    # when
    response = admin_a.get(f"/api/v1/boards/{board['id']}", column_limit=2)
    # then
    assert response.status_code == 200
    body = response.json()
    assert body["sprint"] is None
    assert body["unmapped"] == 0
    columns = [
        (c["name"], c["total"], c["wip"], [card["key"] for card in c["cards"]["items"]])
        for c in body["columns"]
    ]
    assert columns == [
        ("To Do", 2, None, ["CORE-1", "CORE-4"]),
        ("Doing", 3, "over", ["CORE-5", "CORE-2"]),
        ("Done", 0, "under", []),
    ]
    card = body["columns"][0]["cards"]["items"][0]
    assert card["summary"] == "Something is broken"
    assert card["type"]["name"] == "Task"
    assert card["status"]["name"] == "To Do"
    # the next page of a column
    doing = body["columns"][1]["id"]
    page = admin_a.get(
        f"/api/v1/boards/{board['id']}/columns/{doing}/cards", offset=2, limit=2
    ).json()
    assert (page["total"], page["offset"], page["wip"], page["next"]) == (3, 2, "over", None)
    assert [c["key"] for c in page["items"]] == ["CORE-3"]
    # or by cursor: after the last card of the first page
    assert body["columns"][1]["cards"]["next"] == "CORE-2"
    by_cursor = admin_a.get(
        f"/api/v1/boards/{board['id']}/columns/{doing}/cards", after="CORE-5", limit=1
    ).json()
    assert ([c["key"] for c in by_cursor["items"]], by_cursor["next"]) == (["CORE-2"], "CORE-2")
    unknown = admin_a.get(f"/api/v1/boards/{board['id']}/columns/{doing}/cards", after="NOPE-1")
    assert unknown.status_code == 404


def test_swimlanes_by_assignee_count_cards_per_lane_and_column(
    world_a, project_a, admin_a, make_ticket
):
    make_ticket(assignee=world_a.user.pk)
    make_ticket(assignee=world_a.user.pk)
    make_ticket(assignee=world_a.lead.pk)
    make_ticket()
    _set_status(world_a, "CORE-2", "Done")
    board = _columns(admin_a, swimlanes="assignee")
    body = admin_a.get(f"/api/v1/boards/{board['id']}").json()
    ids = [str(c["id"]) for c in body["columns"]]
    assert body["lanes"] == [
        {
            "key": world_a.lead.pk,
            "name": "Lead Alpha",
            "total": 1,
            "counts": {ids[0]: 1, ids[1]: 0, ids[2]: 0},
        },
        {
            "key": world_a.user.pk,
            "name": "User Alpha",
            "total": 2,
            "counts": {ids[0]: 1, ids[1]: 0, ids[2]: 1},
        },
        {
            "key": None,
            "name": "Unassigned",
            "total": 1,
            "counts": {ids[0]: 1, ids[1]: 0, ids[2]: 0},
        },
    ]
    first_card = body["columns"][0]["cards"]["items"][0]
    assert (first_card["assignee"]["username"], first_card["lane"]) == (
        "user_alpha",
        world_a.user.pk,
    )


def test_loading_a_board_costs_the_same_queries_for_3_or_40_cards(
    world_a, project_a, admin_a, make_ticket, django_assert_num_queries
):
    board = _columns(admin_a, swimlanes="assignee")
    for _ in range(3):
        make_ticket(assignee=world_a.user.pk)
    _set_status(world_a, "CORE-1", "In Progress")
    # tenant, search path and member 4 + board 1 + columns 1 + counts 1
    # + one per non-empty column 2 + lane names 1; a Kanban board reads no sprint
    with django_assert_num_queries(10):
        small = admin_a.get(f"/api/v1/boards/{board['id']}")
    for _ in range(37):
        make_ticket(assignee=world_a.lead.pk)
    with django_assert_num_queries(10):
        large = admin_a.get(f"/api/v1/boards/{board['id']}")
    assert [c["total"] for c in small.json()["columns"]] == [2, 1, 0]
    assert [c["total"] for c in large.json()["columns"]] == [39, 1, 0]
    assert len(large.json()["columns"][0]["cards"]["items"]) == 39


def test_a_saved_filter_board_shows_the_filter_tickets_narrowed_by_sub_jql(
    world_a, project_a, admin_a, make_ticket
):
    make_ticket(summary="login broken", labels=["web"])
    make_ticket(summary="login slow", labels=["api"])
    make_ticket(summary="other thing", labels=["web"])
    with schema_context(world_a.schema):
        saved = SavedFilter.objects.create(
            name="Logins", jql='summary ~ "login"', owner=world_a.admin, is_public=True
        )
    board = _board(admin_a, project=None, filter=saved.pk, sub_jql="labels = web")
    assert board["filter"] == saved.pk
    assert [c["name"] for c in board["columns"]] == ["To Do", "In Progress", "Done"]
    body = admin_a.get(f"/api/v1/boards/{board['id']}").json()
    assert [c["key"] for c in body["columns"][0]["cards"]["items"]] == ["CORE-1"]


def test_column_pages_at_an_offset_or_after_a_card_keep_rank_then_id_order(
    world_a, project_a, admin_a, make_ticket
):
    # given six To Do cards: CORE-2, CORE-4 and CORE-5 share the first rank
    for _ in range(6):
        make_ticket()
    with schema_context(world_a.schema):
        Ticket.objects.filter(key__in=["CORE-2", "CORE-4", "CORE-5"]).update(rank="0")
    board = _columns(admin_a)
    to_do = board["columns"][0]["id"]
    url = f"/api/v1/boards/{board['id']}/columns/{to_do}/cards"
    # when pages are read by offset and by cursor
    pages = [admin_a.get(url, offset=offset, limit=2).json() for offset in (0, 2, 4)]
    tie = admin_a.get(url, after="CORE-4", limit=2).json()
    # then
    assert [([c["key"] for c in p["items"]], p["next"]) for p in pages] == [
        (["CORE-2", "CORE-4"], "CORE-4"),
        (["CORE-5", "CORE-1"], "CORE-1"),
        (["CORE-3", "CORE-6"], None),
    ]
    assert ([c["key"] for c in tie["items"]], tie["total"]) == (["CORE-5", "CORE-1"], 6)


def test_a_scrum_board_shows_the_active_sprint_only(world_a, project_a, admin_a, make_ticket):
    for _ in range(3):
        make_ticket()
    board = _board(admin_a, kind="scrum")
    empty = admin_a.get(f"/api/v1/boards/{board['id']}").json()
    with schema_context(world_a.schema):
        sprint = Sprint.objects.create(project=project_a, name="Sprint 1", state="active")
        Ticket.objects.filter(key__in=["CORE-1", "CORE-3"]).update(sprint=sprint)
    body = admin_a.get(f"/api/v1/boards/{board['id']}").json()
    assert empty["sprint"] is None
    assert [c["total"] for c in empty["columns"]] == [0, 0, 0]
    assert body["sprint"]["name"] == "Sprint 1"
    assert [c["key"] for c in body["columns"][0]["cards"]["items"]] == ["CORE-1", "CORE-3"]


def test_the_backlog_lists_open_sprints_then_unplanned_not_done_tickets_by_rank(
    world_a, project_a, admin_a, make_ticket
):
    for _ in range(5):
        make_ticket()
    _set_status(world_a, "CORE-5", "Done")
    with schema_context(world_a.schema):
        active = Sprint.objects.create(project=project_a, name="S1", state="active", sequence=1)
        future = Sprint.objects.create(project=project_a, name="S2", sequence=2)
        Sprint.objects.create(project=project_a, name="S0", state="closed", sequence=0)
        Ticket.objects.filter(key="CORE-1").update(sprint=active)
        Ticket.objects.filter(key="CORE-2").update(sprint=future)
        Ticket.objects.filter(key="CORE-4").update(rank="0")
    board = _board(admin_a, kind="scrum")
    body = admin_a.get(f"/api/v1/boards/{board['id']}/backlog").json()
    assert [
        (s["sprint"]["name"], s["total"], [c["key"] for c in s["items"]]) for s in body["sprints"]
    ] == [("S1", 1, ["CORE-1"]), ("S2", 1, ["CORE-2"])]
    assert body["total"] == 2
    assert [c["key"] for c in body["items"]] == ["CORE-4", "CORE-3"]


# -- moving cards ----------------------------------------------------------------------


def test_moving_a_card_to_another_column_takes_the_transition_and_ranks_it(
    world_a, project_a, admin_a, make_ticket
):
    for _ in range(3):
        make_ticket()
    _set_status(world_a, "CORE-2", "Done")
    _set_status(world_a, "CORE-3", "Done")
    board = _columns(admin_a)
    done = board["columns"][2]["id"]
    # when
    response = admin_a.post(
        f"/api/v1/boards/{board['id']}/move",
        {"ticket": "CORE-1", "column": done, "before": "CORE-3"},
    )
    # then
    assert response.status_code == 200, response.content
    assert response.json()["status"]["name"] == "Done"
    with schema_context(world_a.schema):
        ticket = Ticket.objects.select_related("resolution").get(key="CORE-1")
        assert ticket.resolution.name == "Done"
        assert list(
            Ticket.objects.filter(status__name="Done")
            .order_by("rank")
            .values_list("key", flat=True)
        ) == ["CORE-2", "CORE-1", "CORE-3"]
        assert TicketHistory.objects.filter(
            ticket=ticket, field="status", from_value="To Do", to_value="Done"
        ).exists()
        event = OutboxEvent.objects.get(kind="ticket.transitioned")
        assert (event.payload["from"], event.payload["to"]) == ("To Do", "Done")


def test_moving_into_a_column_with_two_reachable_statuses_needs_a_choice(
    world_a, project_a, admin_a, make_ticket
):
    make_ticket()
    board = _columns(admin_a)
    doing = board["columns"][1]["id"]
    url = f"/api/v1/boards/{board['id']}/move"
    ambiguous = admin_a.post(url, {"ticket": "CORE-1", "column": doing})
    assert ambiguous.status_code == 422
    assert ambiguous.json()["error"]["code"] == "column_not_reachable"
    assert [t["to"] for t in ambiguous.json()["error"]["details"]["allowed"]] == [
        "In Progress",
        "In Review",
        "Done",
    ]
    _state = admin_a.get("/api/v1/tickets/CORE-1").json()["status"]["name"]
    assert _state == "To Do"
    chosen = admin_a.post(url, {"ticket": "CORE-1", "column": doing, "status": "In Review"})
    assert chosen.json()["status"]["name"] == "In Review"


def test_a_move_refused_by_the_workflow_changes_nothing(world_a, project_a, admin_a, make_ticket):
    make_ticket()
    with schema_context(world_a.schema):
        workflow = workflow_create(
            project=project_a,
            name="Strict",
            definition={
                "statuses": [
                    {"name": "To Do", "category": "TO_DO"},
                    {"name": "In Progress", "category": "IN_PROGRESS"},
                    {"name": "Done", "category": "DONE"},
                ],
                "initial": "To Do",
                "transitions": [
                    {"name": "Start", "from": ["To Do"], "to": "In Progress"},
                    {
                        "name": "Finish",
                        "from": ["In Progress"],
                        "to": "Done",
                        "validators": [{"type": "required_fields", "fields": ["assignee"]}],
                    },
                ],
            },
        )
        WorkflowSchemeEntry.objects.update_or_create(
            project=project_a, issue_type=None, defaults={"workflow": workflow}
        )
    connection.set_schema_to_public()
    board = _columns(admin_a)
    url = f"/api/v1/boards/{board['id']}/move"
    doing, done = board["columns"][1]["id"], board["columns"][2]["id"]
    # no transition from To Do to Done
    skipped = admin_a.post(url, {"ticket": "CORE-1", "column": done})
    assert skipped.status_code == 422
    assert skipped.json()["error"]["details"]["allowed"] == [
        {"id": 11, "name": "Start", "to": "In Progress"}
    ]
    assert admin_a.post(url, {"ticket": "CORE-1", "column": doing}).status_code == 200
    # the validator refuses Finish without an assignee
    refused = admin_a.post(url, {"ticket": "CORE-1", "column": done})
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "transition_invalid"
    assert refused.json()["error"]["details"] == [
        {"field": "assignee", "message": "assignee is required."}
    ]
    with schema_context(world_a.schema):
        assert Ticket.objects.get(key="CORE-1").status.name == "In Progress"
        assert OutboxEvent.objects.filter(kind="ticket.transitioned").count() == 1


def test_a_user_who_cannot_edit_cannot_move_cards(world_a, project_a, admin_a, user_a, make_ticket):
    make_ticket()
    with schema_context(world_a.schema):
        ProjectMember.objects.create(project=project_a, user=world_a.user, role="VIEWER")
    board = _columns(admin_a)
    response = user_a.post(
        f"/api/v1/boards/{board['id']}/move",
        {"ticket": "CORE-1", "column": board["columns"][2]["id"]},
    )
    assert response.status_code == 403
    with schema_context(world_a.schema):
        assert Ticket.objects.get(key="CORE-1").status.name == "To Do"
        assert not TicketHistory.objects.filter(field="status", from_value="To Do").exists()


def test_an_unknown_column_answers_404_or_422(world_a, project_a, admin_a, make_ticket):
    make_ticket()
    board = _columns(admin_a)
    cards = admin_a.get(f"/api/v1/boards/{board['id']}/columns/999999/cards")
    move = admin_a.post(
        f"/api/v1/boards/{board['id']}/move", {"ticket": "CORE-1", "column": 999999}
    )
    assert cards.status_code == 404
    assert (move.status_code, move.json()["error"]["code"]) == (422, "column_not_found")


@pytest.mark.parametrize("limit", [0, 101])
def test_column_limit_out_of_range_is_refused(world_a, project_a, admin_a, limit):
    board = _board(admin_a)
    response = admin_a.get(f"/api/v1/boards/{board['id']}/columns/1/cards", limit=limit)
    assert response.status_code in (400, 422)
