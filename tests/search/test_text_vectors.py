"""The stored text vector behind `text ~` (search/migrations/0004): triggers keep it in
step with summaries, descriptions and comments, and a ticket too big for one vector is
still searched exactly."""

import hashlib
from typing import Any

import pytest
from django.db import connection
from django_tenants.utils import schema_context

from accounts.members.models import Membership
from search.jql.compile_postgres import jql_compile_postgres
from search.jql.parser import jql_parse
from search.text_vectors import search_text_refresh
from tenants.models import Tenant
from tests.tickets.conftest import project_a  # noqa: F401 (fixture)
from tickets.content_services import comment_create, comment_delete, comment_update
from tickets.models import Comment, Ticket
from tickets.services import ticket_create, ticket_update


def _keys(world: Any, jql: str) -> list[str]:
    member = Membership.objects.select_related("user").get(user=world.user)
    tenant = Tenant.objects.get(schema_name=world.schema)
    tickets = jql_compile_postgres(jql_parse(jql), member=member, tenant=tenant)
    return list(tickets.order_by("id").values_list("key", flat=True))


def _stored(ticket: Ticket) -> str | None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT search_text::text FROM tickets_ticket WHERE id = %s", [ticket.pk])
        return cursor.fetchone()[0]


@pytest.fixture
def admin(world_a):
    with schema_context(world_a.schema):
        yield Membership.objects.select_related("user").get(user=world_a.admin)
    connection.set_schema_to_public()


def test_text_search_follows_comments_added_edited_and_deleted(world_a, project_a, admin):  # noqa: F811
    # given a ticket and another one
    ticket = ticket_create(
        project=project_a,
        actor=admin,
        data={"summary": "Login page", "description": "Blank screen after submit"},
    )
    other = ticket_create(project=project_a, actor=admin, data={"summary": "Unrelated"})
    assert _stored(ticket) == "'blank':3 'login':1 'page':2 'screen':4 'submit':6"
    assert _keys(world_a, "text ~ quokka") == []
    # when a comment names a word, then an edit replaces it
    comment = comment_create(ticket=ticket, actor=admin, body="A quokka chewed the cable")
    found_after_create = _keys(world_a, "text ~ quokka")
    comment_update(comment=comment, actor=admin, body="A wombat chewed the cable")
    # then the search follows each write
    assert found_after_create == [ticket.key]
    assert _keys(world_a, "text ~ quokka") == []
    assert _keys(world_a, "text ~ wombat") == [ticket.key]
    assert _keys(world_a, "text !~ wombat") == [other.key]
    # when the description changes, the comment's words stay
    ticket_update(ticket=ticket, actor=admin, data={"description": "Narwhal"})
    assert _keys(world_a, "text ~ narwhal") == [ticket.key]
    assert _keys(world_a, "text ~ wombat") == [ticket.key]
    assert _keys(world_a, "text ~ blank") == []
    # words from two different parts do not make a match of both (Jira searches each
    # text field on its own), although the stored vector holds them all
    assert _keys(world_a, 'text ~ "narwhal cable"') == []
    assert _keys(world_a, 'text ~ "wombat cable"') == [ticket.key]
    assert _keys(world_a, 'text ~ "\\"chewed the cable\\""') == [ticket.key]
    assert _keys(world_a, "description ~ wombat") == []
    assert _keys(world_a, "comment ~ narwhal") == []
    assert _keys(world_a, "comment ~ wombat") == [ticket.key]
    # when the comment is deleted, its words go with it
    comment_delete(comment=comment, actor=admin)
    assert _keys(world_a, "text ~ wombat") == []
    assert _keys(world_a, "text ~ login") == [ticket.key]


def _md5_words(first: int, count: int) -> str:
    return " ".join(
        "w" + hashlib.md5(str(i).encode()).hexdigest() for i in range(first, first + count)
    )


def test_a_ticket_too_big_for_one_vector_is_searched_the_exact_way(world_a, project_a, admin):  # noqa: F811
    # given a ticket whose comments hold 31,000 distinct words (more than one tsvector
    # can hold), written in one statement, and an ordinary ticket
    big = ticket_create(project=project_a, actor=admin, data={"summary": "Huge log dump"})
    small = ticket_create(project=project_a, actor=admin, data={"summary": "Small log"})
    Comment.objects.bulk_create(
        Comment(ticket=big, author=world_a.admin, body=_md5_words(n * 900, 900)) for n in range(35)
    )
    word = "w" + hashlib.md5(b"31000").hexdigest()
    # then its stored vector is empty, and searches still find it by every part
    assert _stored(big) is None
    assert _stored(small) == "'log':2 'small':1"
    assert _keys(world_a, "text ~ huge") == [big.key]
    assert _keys(world_a, f"text ~ {word}") == [big.key]
    assert _keys(world_a, f"comment ~ {word}") == [big.key]
    assert _keys(world_a, "text ~ log") == [big.key, small.key]
    assert _keys(world_a, '"text" ~ "huge dump"') == [big.key]
    assert _keys(world_a, "text !~ huge") == [small.key]
    assert _keys(world_a, f"text !~ {word}") == [small.key]


@pytest.mark.parametrize("every_ticket", [False, True], ids=["these", "all"])
def test_refresh_rebuilds_vectors_written_with_triggers_off(
    world_a,
    project_a,  # noqa: F811
    admin,
    every_ticket,
):
    # given a ticket and a comment written as COPY with triggers off would leave them,
    # and a ticket without comments also missing its vector
    ticket = ticket_create(project=project_a, actor=admin, data={"summary": "Checkout"})
    bare = ticket_create(project=project_a, actor=admin, data={"summary": "Quince jam"})
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(
            "INSERT INTO tickets_comment (ticket_id, body, mentions, created_at, updated_at)"
            " VALUES (%s, 'kumquat', '{}', now(), now())",
            [ticket.pk],
        )
        cursor.execute(
            "UPDATE tickets_ticket SET search_text = NULL WHERE id = ANY(%s)",
            [[ticket.pk, bare.pk]],
        )
        cursor.execute("SET LOCAL session_replication_role = origin")
    # when
    search_text_refresh(None if every_ticket else [ticket.pk, bare.pk])
    # then
    assert _stored(ticket) == "'checkout':1 'kumquat':2"
    assert _stored(bare) == "'jam':2 'quinc':1"
    assert _keys(world_a, "text ~ kumquat") == [ticket.key]


def test_the_beat_sweep_fills_vectors_whose_fill_task_was_lost(world_a, project_a, admin):  # noqa: F811
    from search.tasks import search_text_sweep_all

    # given two imported tickets whose fill task never ran, and an ordinary one
    lost = [
        ticket_create(project=project_a, actor=admin, data={"summary": summary})
        for summary in ("Lost quince order", "Lost kumquat order")
    ]
    kept = ticket_create(project=project_a, actor=admin, data={"summary": "Kept order"})
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE tickets_ticket SET search_text = NULL WHERE id = ANY(%s)",
            [[ticket.pk for ticket in lost]],
        )
    # when beat sweeps every tenant, twice
    first = search_text_sweep_all()
    second = search_text_sweep_all()
    # then the two were queued and filled once, the other left as it was
    assert (first, second) == (2, 0)
    assert [_stored(ticket) for ticket in lost] == [
        "'lost':1 'order':3 'quinc':2",
        "'kumquat':2 'lost':1 'order':3",
    ]
    assert _stored(kept) == "'kept':1 'order':2"
    assert _keys(world_a, "text ~ quince") == [lost[0].key]
