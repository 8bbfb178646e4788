from django.db import connection
from django_tenants.utils import schema_context

from accounts.members.models import Membership
from eventlog.models import AuditEntry, IdempotencyRecord, OutboxEvent
from tickets.content_services import comment_create
from tickets.models import Comment, ProjectMember, TicketHistory, Watcher


def _comments(world):
    with schema_context(world.schema):
        rows = list(Comment.objects.order_by("id").values_list("author_id", "body", "mentions"))
    connection.set_schema_to_public()
    return rows


def _comment_history(world, ticket):
    with schema_context(world.schema):
        rows = list(
            TicketHistory.objects.filter(ticket=ticket, field="comment")
            .order_by("id")
            .values_list("actor_id", "from_value", "to_value", "from_ref", "to_ref")
        )
    connection.set_schema_to_public()
    return rows


def _add_comment(world, ticket, user, body):
    with schema_context(world.schema):
        actor = Membership.objects.select_related("user").get(user=user)
        ticket.refresh_from_db()
        comment = comment_create(ticket=ticket, actor=actor, body=body)
    connection.set_schema_to_public()
    return comment


def test_comment_resolves_mentions_renders_safe_html_and_records_everything(
    user_a, make_ticket, world_a
):
    # given a ticket created by the admin
    ticket = make_ticket(summary="Checkout fails")
    body = (
        "Thanks @LEAD_ALPHA. cc @User_Alpha, @nobody and @user_bravo; mail ops@lead_alpha\n"
        "**again** @lead_alpha <script>alert(1)</script>"
    )
    # when user_a comments
    response = user_a.post(f"/api/v1/tickets/{ticket.key}/comments", {"body": body})
    # then
    assert response.status_code == 201, response.content
    out = response.json()
    comment_id = out["id"]
    assert out["author"] == {
        "id": world_a.user.pk,
        "username": "user_alpha",
        "display_name": "User Alpha",
    }
    assert out["body"] == body
    assert out["body_html"] == (
        "<p>Thanks @LEAD_ALPHA. cc @User_Alpha, @nobody and @user_bravo; mail ops@lead_alpha<br>\n"
        "<strong>again</strong> @lead_alpha </p>"
    )
    assert out["mentions"] == [
        {"id": world_a.lead.pk, "username": "lead_alpha", "display_name": "Lead Alpha"},
        {"id": world_a.user.pk, "username": "user_alpha", "display_name": "User Alpha"},
    ]
    assert out["edited_at"] is None
    assert out["created_at"] == out["updated_at"]
    assert _comments(world_a) == [(world_a.user.pk, body, [world_a.lead.pk, world_a.user.pk])]
    assert _comment_history(world_a, ticket) == [
        (world_a.user.pk, None, str(comment_id), None, comment_id)
    ]
    with schema_context(world_a.schema):
        assert Watcher.objects.filter(ticket=ticket, user=world_a.user).exists()
        event = OutboxEvent.objects.get(kind="comment.created")
        assert event.payload == {
            "key": ticket.key,
            "comment_id": comment_id,
            "mentions": [world_a.lead.pk, world_a.user.pk],
        }
        assert event.actor_id == world_a.user.pk
        entry = AuditEntry.objects.get(action="comment.created")
        assert entry.target_id == str(comment_id)
        assert entry.changes == {
            "ticket": [None, ticket.key],
            "mentions": [None, [world_a.lead.pk, world_a.user.pk]],
        }


def test_mentions_skip_inactive_members_and_members_who_cannot_see_the_ticket(
    admin_a, make_ticket, private_project_a, world_a
):
    # given a private ticket only the lead (a member) and admins can see
    secret = make_ticket(project=private_project_a, summary="Acquisition")
    public = make_ticket(summary="Open")
    with schema_context(world_a.schema):
        Membership.objects.filter(user=world_a.lead).update(is_active=False)
    connection.set_schema_to_public()
    # when
    on_secret = admin_a.post(
        f"/api/v1/tickets/{secret.key}/comments", {"body": "@user_alpha @lead_alpha look"}
    )
    on_public = admin_a.post(
        f"/api/v1/tickets/{public.key}/comments", {"body": "@user_alpha @lead_alpha look"}
    )
    # then
    assert on_secret.status_code == on_public.status_code == 201
    assert on_secret.json()["mentions"] == []
    assert [m["id"] for m in on_public.json()["mentions"]] == [world_a.user.pk]


def test_edit_keeps_the_previous_text_in_history_and_reresolves_mentions(
    user_a, make_ticket, world_a
):
    # given
    ticket = make_ticket()
    created = user_a.post(f"/api/v1/tickets/{ticket.key}/comments", {"body": "first draft"})
    comment_id = created.json()["id"]
    # when
    response = user_a.put(
        f"/api/v1/tickets/{ticket.key}/comments/{comment_id}", {"body": "final, @lead_alpha"}
    )
    unchanged = user_a.put(
        f"/api/v1/tickets/{ticket.key}/comments/{comment_id}", {"body": "final, @lead_alpha"}
    )
    # then
    assert response.status_code == 200, response.content
    out = response.json()
    assert out["body"] == "final, @lead_alpha"
    assert [m["id"] for m in out["mentions"]] == [world_a.lead.pk]
    assert out["edited_at"] is not None
    assert out["edited_at"] == out["updated_at"]
    assert unchanged.json()["edited_at"] == out["edited_at"]
    assert _comment_history(world_a, ticket) == [
        (world_a.user.pk, None, str(comment_id), None, comment_id),
        (world_a.user.pk, "first draft", "final, @lead_alpha", comment_id, comment_id),
    ]
    with schema_context(world_a.schema):
        event = OutboxEvent.objects.get(kind="comment.updated")
        assert event.payload == {
            "key": ticket.key,
            "comment_id": comment_id,
            "mentions": [world_a.lead.pk],
            "new_mentions": [world_a.lead.pk],
        }


def test_only_the_author_or_an_administrator_edits_and_deletes(
    user_a, lead_a, admin_a, make_ticket, world_a
):
    # given a comment of the lead (who leads the project) and one of the user
    ticket = make_ticket()
    leads = _add_comment(world_a, ticket, world_a.lead, "lead's words")
    users = _add_comment(world_a, ticket, world_a.user, "user's words")
    path = f"/api/v1/tickets/{ticket.key}/comments"
    # when the user touches the lead's comment
    edit = user_a.put(f"{path}/{leads.pk}", {"body": "hijacked"})
    delete = user_a.delete(f"{path}/{leads.pk}")
    # then nothing changed
    assert edit.status_code == 403
    assert delete.status_code == 403
    assert _comments(world_a) == [
        (world_a.lead.pk, "lead's words", []),
        (world_a.user.pk, "user's words", []),
    ]
    assert len(_comment_history(world_a, ticket)) == 2
    with schema_context(world_a.schema):
        assert not OutboxEvent.objects.filter(
            kind__in=["comment.updated", "comment.deleted"]
        ).exists()
    connection.set_schema_to_public()
    # when the project lead deletes the user's comment and the author their own
    by_lead = lead_a.delete(f"{path}/{users.pk}")
    by_author = lead_a.delete(f"{path}/{leads.pk}")
    # then the history keeps the deleted texts
    assert by_lead.status_code == by_author.status_code == 204
    assert _comments(world_a) == []
    assert _comment_history(world_a, ticket)[2:] == [
        (world_a.lead.pk, "user's words", None, users.pk, None),
        (world_a.lead.pk, "lead's words", None, leads.pk, None),
    ]
    gone = admin_a.delete(f"{path}/{users.pk}")
    assert gone.status_code == 404


def test_viewers_cannot_comment_and_invisible_tickets_answer_404(
    user_a, make_ticket, project_a, private_project_a, world_a
):
    # given the user views CORE only, and cannot see the private project
    with schema_context(world_a.schema):
        ProjectMember.objects.create(project=project_a, user=world_a.user, role="VIEWER")
    connection.set_schema_to_public()
    ticket = make_ticket()
    secret = make_ticket(project=private_project_a)
    hidden = _add_comment(world_a, secret, world_a.lead, "top secret")
    # when
    as_viewer = user_a.post(f"/api/v1/tickets/{ticket.key}/comments", {"body": "hello"})
    read = user_a.get(f"/api/v1/tickets/{ticket.key}/comments")
    on_secret = user_a.post(f"/api/v1/tickets/{secret.key}/comments", {"body": "hello"})
    list_secret = user_a.get(f"/api/v1/tickets/{secret.key}/comments")
    edit_secret = user_a.put(
        f"/api/v1/tickets/{secret.key}/comments/{hidden.pk}", {"body": "changed"}
    )
    # then
    assert as_viewer.status_code == 403
    assert read.status_code == 200
    assert on_secret.status_code == 404
    assert list_secret.status_code == 404
    assert edit_secret.status_code == 404
    assert "top secret" not in list_secret.content.decode()
    assert _comments(world_a) == [(world_a.lead.pk, "top secret", [])]


def test_invalid_bodies_and_unknown_ids(admin_a, make_ticket, world_a):
    # given
    ticket = make_ticket()
    other = make_ticket()
    on_other = _add_comment(world_a, other, world_a.admin, "elsewhere")
    path = f"/api/v1/tickets/{ticket.key}/comments"
    # when
    empty = admin_a.post(path, {"body": ""})
    blank = admin_a.post(path, {"body": "  \n "})
    too_long = admin_a.post(path, {"body": "x" * 32769})
    nul = admin_a.post(path, {"body": "a\x00b"})
    extra = admin_a.post(path, {"body": "ok", "author": 1})
    longest = admin_a.post(path, {"body": "y" * 32768})
    wrong_ticket = admin_a.put(f"{path}/{on_other.pk}", {"body": "moved?"})
    huge_id = admin_a.delete(f"{path}/{2**70}")
    # then
    assert [r.status_code for r in (empty, blank, too_long, nul, extra)] == [422] * 5
    assert longest.status_code == 201
    assert wrong_ticket.status_code == 404
    assert huge_id.status_code == 404
    assert [body[:1] for _, body, _ in _comments(world_a)] == ["e", "y"]


def test_list_is_oldest_first_paginated_and_free_of_n_plus_one(
    admin_a, make_ticket, world_a, django_assert_num_queries
):
    # given five comments by different authors, with mentions
    ticket = make_ticket()
    authors = [world_a.admin, world_a.lead, world_a.user, world_a.lead, world_a.admin]
    created = [
        _add_comment(world_a, ticket, author, f"c{n} @user_alpha @lead_alpha")
        for n, author in enumerate(authors)
    ]
    path = f"/api/v1/tickets/{ticket.key}/comments"
    # when
    with django_assert_num_queries(7):  # tenant, auth, ticket, count, page
        first = admin_a.get(path, limit=3)
    second = admin_a.get(path, limit=3, offset=3)
    # then
    assert first.status_code == 200
    assert first.json()["total"] == 5
    assert [c["id"] for c in first.json()["items"]] == [c.pk for c in created[:3]]
    assert [c["id"] for c in second.json()["items"]] == [c.pk for c in created[3:]]
    assert [c["author"]["username"] for c in first.json()["items"]] == [
        "admin",
        "lead_alpha",
        "user_alpha",
    ]
    assert [[m["username"] for m in c["mentions"]] for c in second.json()["items"]] == [
        ["user_alpha", "lead_alpha"],
        ["user_alpha", "lead_alpha"],
    ]


def test_idempotent_post_creates_one_comment(admin_a, make_ticket, world_a):
    # given
    ticket = make_ticket()
    path = f"/api/v1/tickets/{ticket.key}/comments"
    headers = {"Idempotency-Key": "comment-1"}
    # when
    first = admin_a.post(path, {"body": "once"}, headers=headers)
    retry = admin_a.post(path, {"body": "once"}, headers=headers)
    misuse = admin_a.post(path, {"body": "twice"}, headers=headers)
    # then
    assert first.status_code == retry.status_code == 201
    assert retry.json() == first.json()
    assert retry["Idempotent-Replayed"] == "true"
    assert misuse.status_code == 422
    assert misuse.json()["error"]["code"] == "idempotency_key_reused"
    assert _comments(world_a) == [(world_a.admin.pk, "once", [])]
    with schema_context(world_a.schema):
        assert IdempotencyRecord.objects.count() == 1
        assert OutboxEvent.objects.filter(kind="comment.created").count() == 1
