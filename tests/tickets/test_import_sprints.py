"""Sprints and ranks in the JSON import."""

from datetime import UTC, datetime
from decimal import Decimal

from django_tenants.utils import schema_context

from tickets.models import Sprint, SprintChange, SprintMembership, Ticket

SPRINTS = {
    "projects": [{"key": "WEB", "name": "Web shop"}],
    "sprints": [
        {
            "id": 101,
            "name": "Web 1",
            "state": "closed",
            "project": "WEB",
            "start": "2026-01-05T09:00:00Z",
            "end": "2026-01-19T09:00:00Z",
        },
        {
            "id": "102",
            "name": "Web 2",
            "state": "active",
            "project": "WEB",
            "start": "2026-01-19T09:00:00Z",
            "end": "2026-02-02T09:00:00Z",
        },
        {"id": "later", "name": "Web 3", "project": "WEB"},
    ],
    "tickets": [
        {"key": "WEB-3", "summary": "Carried", "story_points": 5, "sprints": [101, "102"]},
        {"key": "WEB-1", "summary": "Finished", "status": "Done", "sprints": ["101"]},
        {"key": "WEB-2", "summary": "Planned", "sprints": ["later"]},
        {"key": "WEB-4", "summary": "Backlog"},
    ],
}


def _at(text):
    return datetime.fromisoformat(text).astimezone(UTC)


def test_sprints_are_imported_with_memberships_scope_log_and_ranks(admin_a, world_a):
    # when
    response = admin_a.post("/api/v1/import", SPRINTS)
    # then
    assert response.status_code == 200, response.content
    counts = response.json()["counts"]
    assert (counts["sprints_created"], counts["sprint_memberships"], counts["tickets"]) == (3, 4, 4)
    with schema_context(world_a.schema):
        sprints = {
            s.name: (s.state, s.sequence, s.start_at, s.end_at, s.completed_at)
            for s in Sprint.objects.filter(project__key="WEB")
        }
        assert sprints == {
            "Web 1": (
                "closed",
                1,
                _at("2026-01-05T09:00:00Z"),
                _at("2026-01-19T09:00:00Z"),
                _at("2026-01-19T09:00:00Z"),
            ),
            "Web 2": (
                "active",
                2,
                _at("2026-01-19T09:00:00Z"),
                _at("2026-02-02T09:00:00Z"),
                None,
            ),
            "Web 3": ("future", 3, None, None, None),
        }
        open_sprint = dict(
            Ticket.objects.filter(project__key="WEB").values_list("key", "sprint__name")
        )
        assert open_sprint == {"WEB-1": None, "WEB-2": "Web 3", "WEB-3": "Web 2", "WEB-4": None}
        memberships = sorted(
            SprintMembership.objects.values_list("ticket__key", "sprint__name", "removed_at")
        )
        assert memberships == [
            ("WEB-1", "Web 1", None),
            ("WEB-2", "Web 3", None),
            ("WEB-3", "Web 1", None),
            ("WEB-3", "Web 2", None),
        ]
        log = list(
            SprintChange.objects.order_by("sprint__sequence", "ticket__number", "id").values_list(
                "sprint__name", "ticket__key", "kind", "points"
            )
        )
        assert log == [
            ("Web 1", "WEB-1", "committed", None),
            ("Web 1", "WEB-1", "completed", None),
            ("Web 1", "WEB-3", "committed", Decimal("5.00")),
            ("Web 1", "WEB-3", "not_completed", Decimal("5.00")),
            ("Web 2", "WEB-3", "committed", Decimal("5.00")),
        ]
        ranks = list(
            Ticket.objects.filter(project__key="WEB").order_by("rank").values_list("key", "rank")
        )
        assert ranks == [
            ("WEB-1", "i0000000"),
            ("WEB-2", "i0001000"),
            ("WEB-3", "i0002000"),
            ("WEB-4", "i0003000"),
        ]


def test_imported_tickets_are_ranked_after_the_existing_ones(
    admin_a, world_a, project_a, make_ticket
):
    make_ticket()
    response = admin_a.post(
        "/api/v1/import", {"tickets": [{"key": "CORE-7", "summary": "Imported"}]}
    )
    assert response.status_code == 200, response.content
    assert "sprints_created" not in response.json()["counts"]
    with schema_context(world_a.schema):
        ranks = list(Ticket.objects.order_by("rank").values_list("key", "rank"))
    assert ranks == [("CORE-1", "i0000000"), ("CORE-7", "i0001000")]


def test_bad_sprints_are_listed_exactly_and_nothing_is_imported(admin_a, world_a, project_a):
    with schema_context(world_a.schema):
        Sprint.objects.create(project=project_a, name="Running", state="active")
    doc = {
        "projects": [{"key": "WEB", "name": "Web shop"}],
        "sprints": [
            {"id": 1, "name": "A", "state": "active", "project": "WEB", "start": "2026-01-01"},
            {"id": 1, "name": "Dup", "project": "WEB"},
            {"id": 2, "name": "B", "state": "active", "project": "WEB", "start": "2026-01-01"},
            {"id": 3, "name": "C", "state": "running", "project": "NOPE"},
            {
                "id": 4,
                "name": "D",
                "state": "closed",
                "project": "WEB",
                "start": "2026-01-10T00:00:00Z",
                "end": "2026-01-01T00:00:00Z",
            },
            {"id": 5, "name": "E", "state": "active", "project": "CORE", "start": "2026-01-01"},
            {"name": "no id", "project": "WEB"},
            {"id": 6, "name": "F", "state": "closed", "project": "WEB"},
            "sprint",
            {"id": 7, "name": "G", "project": "CORE"},
        ],
        "tickets": [
            {"key": "WEB-1", "summary": "x", "sprints": [1, 99, 7]},
            {"key": "WEB-2", "summary": "y", "sprints": "1"},
        ],
    }
    response = admin_a.post("/api/v1/import", doc)
    assert response.status_code == 422
    details = response.json()["error"]["details"]
    assert [(d["index"], d["section"], d["field"], d["message"]) for d in details] == [
        (1, "sprints", "id", "Sprint id '1' appears more than once."),
        (2, "sprints", "state", "Project WEB has two active sprints in the file."),
        (3, "sprints", "state", "state must be future, active or closed."),
        (3, "sprints", "project", "Unknown project 'NOPE': not in `projects`."),
        (4, "sprints", "end", "end must be after start."),
        (5, "sprints", "state", "Project CORE already has an active sprint."),
        (6, "sprints", "id", "id is required (text or a number)."),
        (7, "sprints", "start", "A closed sprint needs a start."),
        (8, "sprints", None, "Each sprint must be an object."),
        (0, "tickets", "sprints.1", "Unknown sprint 99: not in `sprints`."),
        (0, "tickets", "sprints.2", "Sprint 7 is in project CORE, not WEB."),
        (1, "tickets", "sprints", "sprints must be a list of sprint ids."),
    ]
    with schema_context(world_a.schema):
        assert list(Sprint.objects.values_list("name", flat=True)) == ["Running"]
        assert not Ticket.objects.exists()


def test_a_ticket_in_two_open_sprints_is_refused(admin_a, world_a):
    doc = {
        "projects": [{"key": "WEB", "name": "Web shop"}],
        "sprints": [
            {"id": 1, "name": "A", "project": "WEB"},
            {"id": 2, "name": "B", "project": "WEB"},
        ],
        "tickets": [{"key": "WEB-1", "summary": "x", "sprints": [1, 2]}],
    }
    response = admin_a.post("/api/v1/import", doc)
    assert response.status_code == 422
    assert response.json()["error"]["details"] == [
        {
            "index": 0,
            "section": "tickets",
            "field": "sprints",
            "message": "A ticket can be in one open (future or active) sprint only.",
        }
    ]
