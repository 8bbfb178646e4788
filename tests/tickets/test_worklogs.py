"""Worklogs: durations, the ticket's time spent and remaining estimate, permissions."""

import pytest
from django_tenants.utils import schema_context

from eventlog.models import AuditEntry, OutboxEvent
from tickets.models import ProjectMember, Ticket, TicketHistory, Worklog


def _times(world, key="CORE-1"):
    with schema_context(world.schema):
        return Ticket.objects.filter(key=key).values_list("time_spent", "remaining_estimate").get()


def _history(world, field):
    with schema_context(world.schema):
        return list(
            TicketHistory.objects.filter(ticket__key="CORE-1", field=field)
            .order_by("id")
            .values_list("from_value", "to_value")
        )


@pytest.fixture
def estimated(make_ticket):
    return make_ticket(original_estimate="1d", remaining_estimate="1d")


def test_logging_work_adds_time_spent_and_lowers_the_remaining_estimate(
    world_a, project_a, user_a, estimated
):
    # when
    response = user_a.post(
        "/api/v1/tickets/CORE-1/worklogs",
        {"time_spent": "1h 30m", "started_at": "2026-03-02T09:00:00Z", "comment": "Debugging"},
    )
    # then
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["time_spent"], body["time_spent_text"], body["comment"], body["ticket"]) == (
        5400,
        "1h 30m",
        "Debugging",
        "CORE-1",
    )
    assert body["author"]["username"] == "user_alpha"
    assert body["started_at"] == "2026-03-02T09:00:00Z"
    assert _times(world_a) == (5400, 8 * 3600 - 5400)
    assert _history(world_a, "time_spent") == [("0m", "1h 30m")]
    assert _history(world_a, "remaining_estimate")[-1] == ("1d", "6h 30m")
    with schema_context(world_a.schema):
        assert AuditEntry.objects.filter(action="worklog.created").count() == 1
        event = OutboxEvent.objects.filter(kind="ticket.updated").last()
        assert event.payload["fields"] == ["time_spent", "remaining_estimate"]


@pytest.mark.parametrize(
    ("given", "seconds"),
    [(3600, 3600), ("2d", 57600), ("1w", 144000), ("45m", 2700), ("1w 2d 3h 4m", 212640)],
)
def test_durations_in_seconds_or_jira_notation(
    world_a, project_a, admin_a, make_ticket, given, seconds
):
    make_ticket()
    response = admin_a.post("/api/v1/tickets/CORE-1/worklogs", {"time_spent": given})
    assert response.status_code == 201
    assert response.json()["time_spent"] == seconds
    assert _times(world_a) == (seconds, None)  # no estimate: stays unset


@pytest.mark.parametrize("given", [0, -5, "", "soon", "1x", "1h 1h"])
def test_bad_durations_are_refused_and_nothing_is_logged(
    world_a, project_a, admin_a, make_ticket, given
):
    make_ticket()
    response = admin_a.post("/api/v1/tickets/CORE-1/worklogs", {"time_spent": given})
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["field"] == "time_spent"
    with schema_context(world_a.schema):
        assert not Worklog.objects.exists()
    assert _times(world_a) == (0, None)


def test_the_remaining_estimate_never_goes_below_zero_and_comes_back_on_delete(
    world_a, project_a, admin_a, estimated
):
    big = admin_a.post("/api/v1/tickets/CORE-1/worklogs", {"time_spent": "10h"}).json()
    assert _times(world_a) == (36000, 0)
    small = admin_a.post("/api/v1/tickets/CORE-1/worklogs", {"time_spent": "1h"}).json()
    assert _times(world_a) == (39600, 0)
    assert admin_a.delete(f"/api/v1/tickets/CORE-1/worklogs/{small['id']}").status_code == 204
    assert _times(world_a) == (36000, 3600)
    # "leave" keeps the estimate as it is
    response = admin_a.delete(
        f"/api/v1/tickets/CORE-1/worklogs/{big['id']}", adjust_estimate="leave"
    )
    assert response.status_code == 204
    assert _times(world_a) == (0, 3600)


def test_editing_a_worklog_moves_the_totals_by_the_difference(
    world_a, project_a, admin_a, estimated
):
    worklog = admin_a.post("/api/v1/tickets/CORE-1/worklogs", {"time_spent": "2h"}).json()
    url = f"/api/v1/tickets/CORE-1/worklogs/{worklog['id']}"
    response = admin_a.put(url, {"time_spent": "3h", "comment": "More"})
    assert response.status_code == 200
    assert (response.json()["time_spent"], response.json()["comment"]) == (10800, "More")
    assert _times(world_a) == (10800, 5 * 3600)
    # a new remaining estimate, given explicitly
    admin_a.put(url, {"adjust_estimate": "new", "new_estimate": "4h"})
    assert _times(world_a) == (10800, 4 * 3600)
    assert admin_a.get("/api/v1/tickets/CORE-1/worklogs").json()["total"] == 1


def test_only_the_author_or_a_project_admin_changes_a_worklog(
    world_a, project_a, admin_a, user_a, lead_a, estimated
):
    worklog = admin_a.post("/api/v1/tickets/CORE-1/worklogs", {"time_spent": "2h"}).json()
    url = f"/api/v1/tickets/CORE-1/worklogs/{worklog['id']}"
    put = user_a.put(url, {"time_spent": "1m"})
    delete = user_a.delete(url)
    assert put.status_code == 403
    assert delete.status_code == 403
    assert _times(world_a) == (7200, 6 * 3600)
    with schema_context(world_a.schema):
        assert Worklog.objects.get().time_spent == 7200
    # the project's lead administers it
    assert lead_a.put(url, {"time_spent": "1h"}).status_code == 200
    assert _times(world_a) == (3600, 7 * 3600)


def test_viewers_cannot_log_and_hidden_tickets_answer_404(
    world_a, project_a, private_project_a, user_a, make_ticket, estimated
):
    secret = make_ticket(project=private_project_a, as_user=world_a.lead)
    with schema_context(world_a.schema):
        ProjectMember.objects.create(project=project_a, user=world_a.user, role="VIEWER")
    viewer = user_a.post("/api/v1/tickets/CORE-1/worklogs", {"time_spent": "1h"})
    hidden = user_a.post(f"/api/v1/tickets/{secret.key}/worklogs", {"time_spent": "1h"})
    assert viewer.status_code == 403
    assert hidden.status_code == 404
    assert user_a.get(f"/api/v1/tickets/{secret.key}/worklogs").status_code == 404
    with schema_context(world_a.schema):
        assert not Worklog.objects.exists()


def test_a_worklog_of_another_ticket_answers_404(world_a, project_a, admin_a, make_ticket):
    make_ticket()
    make_ticket()
    worklog = admin_a.post("/api/v1/tickets/CORE-1/worklogs", {"time_spent": "1h"}).json()
    assert admin_a.get(f"/api/v1/tickets/CORE-2/worklogs/{worklog['id']}").status_code == 404
    assert admin_a.delete(f"/api/v1/tickets/CORE-2/worklogs/{worklog['id']}").status_code == 404
    assert _times(world_a) == (3600, None)


def test_estimates_are_set_through_the_ticket(world_a, project_a, admin_a, make_ticket):
    make_ticket()
    response = admin_a.put(
        "/api/v1/tickets/CORE-1", {"original_estimate": "3d", "remaining_estimate": "2d 4h"}
    )
    assert response.status_code == 200
    assert (response.json()["original_estimate"], response.json()["remaining_estimate"]) == (
        86400,
        72000,
    )


def test_a_new_estimate_must_be_given_with_adjust_new(world_a, project_a, admin_a, estimated):
    response = admin_a.post(
        "/api/v1/tickets/CORE-1/worklogs", {"time_spent": "1h", "adjust_estimate": "new"}
    )
    assert response.status_code == 422
    assert response.json()["error"]["details"] == [
        {"field": "new_estimate", "message": "new_estimate is required."}
    ]
    with schema_context(world_a.schema):
        assert not Worklog.objects.exists()
    assert _times(world_a) == (0, 8 * 3600)


def test_a_retried_post_with_the_same_idempotency_key_logs_once(
    world_a, project_a, admin_a, estimated
):
    headers = {"Idempotency-Key": "log-1"}
    first = admin_a.post("/api/v1/tickets/CORE-1/worklogs", {"time_spent": "1h"}, headers=headers)
    again = admin_a.post("/api/v1/tickets/CORE-1/worklogs", {"time_spent": "1h"}, headers=headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    with schema_context(world_a.schema):
        assert Worklog.objects.count() == 1
    assert _times(world_a) == (3600, 7 * 3600)
