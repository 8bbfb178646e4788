"""The notifications API: the inbox, read state and notification settings."""

from datetime import timedelta

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tenants.utils import schema_context

from eventlog.models import AuditEntry
from notifications.models import EmailDigestSetting, Notification, NotificationSetting
from notifications.services import notification_send


def _send(world, user, n, *, read=False, minutes_ago=0):
    """`n` notifications for `user`, the newest last; returns their ids in order."""
    ids = []
    with schema_context(world.schema):
        for i in range(n):
            (created,) = notification_send(
                user_ids=[user.pk], kind="system", title=f"Notice {i}", body=f"Body {i}"
            )
            Notification.objects.filter(pk=created.pk).update(
                created_at=timezone.now() - timedelta(minutes=minutes_ago + n - i),
                read_at=timezone.now() if read else None,
            )
            ids.append(created.pk)
    connection.set_schema_to_public()
    return ids


def test_the_inbox_is_paged_newest_first_and_filters_unread(world_a, user_a):
    # given three unread and two read notifications of the user, and one of the admin
    unread = _send(world_a, world_a.user, 3)
    read = _send(world_a, world_a.user, 2, read=True, minutes_ago=10)
    _send(world_a, world_a.admin, 1)
    # when
    first_page = user_a.get("/api/v1/notifications", limit=2)
    second_page = user_a.get("/api/v1/notifications", limit=2, offset=2)
    only_unread = user_a.get("/api/v1/notifications", unread="true")
    only_read = user_a.get("/api/v1/notifications", unread="false")
    count = user_a.get("/api/v1/notifications/unread-count")
    # then
    assert first_page.status_code == 200
    assert first_page.json()["total"] == 5
    assert [n["id"] for n in first_page.json()["items"]] == [unread[2], unread[1]]
    assert [n["id"] for n in second_page.json()["items"]] == [unread[0], read[1]]
    assert [n["id"] for n in only_unread.json()["items"]] == list(reversed(unread))
    assert [n["id"] for n in only_read.json()["items"]] == list(reversed(read))
    assert count.json() == {"count": 3}
    item = first_page.json()["items"][0]
    assert {k: v for k, v in item.items() if k != "created_at"} == {
        "id": unread[2],
        "kind": "system",
        "title": "Notice 2",
        "body": "Body 2",
        "url": "",
        "ticket_key": None,
        "actor_id": None,
        "payload": {},
        "read_at": None,
        "read": False,
    }


def test_marking_one_read_keeps_the_first_read_time(world_a, user_a):
    (notification_id,) = _send(world_a, world_a.user, 1)
    # when
    first = user_a.put(f"/api/v1/notifications/{notification_id}/read")
    again = user_a.put(f"/api/v1/notifications/{notification_id}/read")
    # then
    assert first.status_code == 200
    assert first.json()["read"] is True
    assert first.json()["read_at"] is not None
    assert again.json()["read_at"] == first.json()["read_at"]
    assert user_a.get("/api/v1/notifications/unread-count").json() == {"count": 0}


def test_read_all_marks_only_your_own(world_a, user_a, admin_a):
    _send(world_a, world_a.user, 2)
    _send(world_a, world_a.admin, 1)
    # when
    response = user_a.put("/api/v1/notifications/read-all")
    again = user_a.put("/api/v1/notifications/read-all")
    # then
    assert response.json() == {"updated": 2}
    assert again.json() == {"updated": 0}
    assert user_a.get("/api/v1/notifications/unread-count").json() == {"count": 0}
    assert admin_a.get("/api/v1/notifications/unread-count").json() == {"count": 1}


def test_someone_elses_notification_answers_404_and_stays_unread(world_a, user_a):
    (admins,) = _send(world_a, world_a.admin, 1)
    # when
    response = user_a.put(f"/api/v1/notifications/{admins}/read")
    missing = user_a.put("/api/v1/notifications/99999999999999999999/read")
    # then
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "notification_not_found"
    assert missing.status_code == 404
    with schema_context(world_a.schema):
        assert Notification.objects.get(pk=admins).read_at is None


def test_notifications_about_tickets_you_can_no_longer_see_are_hidden(
    world_a, user_a, new_ticket, private_project_a
):
    # given a notification of the user about a ticket of a private project
    secret = new_ticket(project=private_project_a, as_user="lead", summary="Secret")
    with schema_context(world_a.schema):
        Notification.objects.create(
            recipient=world_a.user,
            kind="assigned",
            ticket_id=secret.pk,
            ticket_key=secret.key,
            title="secret",
            event_id="x",
        )
    connection.set_schema_to_public()
    # when
    listing = user_a.get("/api/v1/notifications")
    count = user_a.get("/api/v1/notifications/unread-count")
    # then
    assert listing.json()["total"] == 0
    assert count.json() == {"count": 0}


def test_the_inbox_needs_authentication(anon_a):
    assert anon_a.get("/api/v1/notifications").status_code == 401
    assert anon_a.put("/api/v1/notifications/read-all").status_code == 401


# Settings -----------------------------------------------------------------------------


def test_settings_default_to_everything_on_and_immediate(world_a, user_a):
    # when
    response = user_a.get(f"/api/v1/users/{world_a.user.pk}/notification-settings")
    # then
    assert response.status_code == 200
    body = response.json()
    assert body["user_id"] == world_a.user.pk
    assert body["digest"] == "immediate"
    assert [(e["event_type"], e["in_app"], e["email"]) for e in body["event_types"]] == [
        ("assigned", True, True),
        ("mentioned", True, True),
        ("commented", True, True),
        ("status_changed", True, True),
        ("sprint_started", True, True),
        ("sprint_completed", True, True),
        ("system", True, True),
    ]
    assert body["event_types"][0]["label"] == "A ticket is assigned to you"


def test_changing_your_settings_keeps_what_you_omit_and_is_audited(world_a, user_a):
    url = f"/api/v1/users/{world_a.user.pk}/notification-settings"
    # when
    response = user_a.put(
        url,
        {
            "digest": "hourly",
            "event_types": [
                {"event_type": "commented", "email": False},
                {"event_type": "status_changed", "in_app": False, "email": False},
            ],
        },
    )
    again = user_a.put(url, {"event_types": [{"event_type": "commented", "in_app": True}]})
    # then
    assert response.status_code == 200
    switches = {e["event_type"]: (e["in_app"], e["email"]) for e in again.json()["event_types"]}
    assert again.json()["digest"] == "hourly"
    assert switches["commented"] == (True, False)
    assert switches["status_changed"] == (False, False)
    assert switches["assigned"] == (True, True)
    assert user_a.get(url).json() == again.json()
    with schema_context(world_a.schema):
        assert EmailDigestSetting.objects.get(user=world_a.user).frequency == "hourly"
        assert NotificationSetting.objects.filter(user=world_a.user).count() == 3
        entry = AuditEntry.objects.get(action="notification_settings.updated")
        assert entry.actor_id == world_a.user.pk
        assert entry.target_id == str(world_a.user.pk)
        assert entry.changes == {
            "commented.email": [True, False],
            "status_changed.in_app": [True, False],
            "status_changed.email": [True, False],
            "digest": ["immediate", "hourly"],
        }


def test_others_settings_are_for_admins_only(world_a, user_a, admin_a):
    url = f"/api/v1/users/{world_a.lead.pk}/notification-settings"
    change = {"event_types": [{"event_type": "assigned", "email": False}]}
    # when
    read = user_a.get(url)
    write = user_a.put(url, change)
    by_admin = admin_a.put(url, change)
    # then
    assert read.status_code == 403
    assert write.status_code == 403
    assert by_admin.status_code == 200
    assert by_admin.json()["event_types"][0]["email"] is False
    with schema_context(world_a.schema):
        assert NotificationSetting.objects.filter(user=world_a.lead).count() == 1
        assert AuditEntry.objects.get(action="notification_settings.updated").actor_id == (
            world_a.admin.pk
        )


def test_bad_settings_answer_422_and_change_nothing(world_a, user_a, admin_a):
    url = f"/api/v1/users/{world_a.user.pk}/notification-settings"
    # when
    unknown_type = user_a.put(url, {"event_types": [{"event_type": "party", "email": False}]})
    bad_digest = user_a.put(url, {"digest": "weekly"})
    not_a_member = admin_a.get("/api/v1/users/999999999/notification-settings")
    # then
    assert unknown_type.status_code == 422
    assert bad_digest.status_code == 422
    assert not_a_member.status_code == 404
    with schema_context(world_a.schema):
        assert NotificationSetting.objects.count() == 0
        assert EmailDigestSetting.objects.count() == 0


def test_the_inbox_costs_the_same_queries_for_few_and_many(world_a, user_a):
    _send(world_a, world_a.user, 2)
    with CaptureQueriesContext(connection) as few:
        assert len(user_a.get("/api/v1/notifications").json()["items"]) == 2
    _send(world_a, world_a.user, 20)
    with CaptureQueriesContext(connection) as many:
        assert len(user_a.get("/api/v1/notifications").json()["items"]) == 22
    assert len(many.captured_queries) == len(few.captured_queries)
