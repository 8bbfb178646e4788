"""Rank strings, ticket ranks on create, rank moves (one row written), concurrency and
rebalancing."""

import random
import threading

import pytest
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import schema_context

from accounts.members.models import Membership
from accounts.models import User
from tenants.models import Tenant
from tenants.services import tenant_signup
from tests.conftest import PASSWORD
from tests.tickets.conftest import in_own_connection
from tickets.board_services import ticket_rank_move
from tickets.models import Board, BoardColumn, Project, Status, Ticket
from tickets.rank import (
    REBALANCE_LENGTH,
    RankError,
    project_ranks_rebalance,
    rank_after,
    rank_before,
    rank_between,
    ranks_after,
    ranks_spread,
)
from tickets.services import ticket_create

# -- the rank strings ------------------------------------------------------------------


def test_first_rank_is_the_middle_of_the_space_and_appends_step_the_fixed_part():
    assert rank_after(None) == "i0000000"
    assert rank_after("i0000000") == "i0001000"
    assert rank_after("i0001000") == "i0002000"
    assert ranks_after(None, 3) == ["i0000000", "i0001000", "i0002000"]
    assert rank_before("i0000000") == "hzzzz000"


def test_between_neighbours_is_strictly_between_and_short():
    assert rank_between("i0000000", "i0001000") == "i0000i"
    assert rank_between("a", "c") == "b"
    assert rank_between("a", "b") == "ai"
    assert rank_between(None, "i0000000") == "hzzzz000"
    assert rank_between("i0000000", None) == "i0001000"
    assert rank_between("", "i0000000") == "hzzzz000"


def test_equal_or_reversed_bounds_are_refused():
    with pytest.raises(RankError):
        rank_between("b", "b")
    with pytest.raises(RankError):
        rank_between("c", "b")
    with pytest.raises(RankError):
        rank_before("0")


def test_two_hundred_inserts_into_the_same_gap_stay_ordered_and_grow_slowly():
    low, high = "i0000000", "i0001000"
    ranks = []
    for _ in range(200):
        high = rank_between(low, high)  # always right after `low`: the worst case
        ranks.append(high)
    assert ranks == sorted(ranks, reverse=True)
    assert len(set(ranks)) == 200
    assert max(map(len, ranks)) <= 48


def test_random_inserts_keep_a_total_order():
    rng = random.Random(7)
    order = ranks_spread(3)
    for _ in range(2000):
        i = rng.randrange(len(order) + 1)
        new = rank_between(order[i - 1] if i else None, order[i] if i < len(order) else None)
        order.insert(i, new)
    assert order == sorted(order)
    assert len(set(order)) == len(order)
    assert all(not r.endswith("0") or len(r) == 8 for r in order)


def test_spread_ranks_are_fixed_width_ascending_and_distinct():
    ranks = ranks_spread(100_000)
    assert len(ranks) == 100_000
    assert {len(r) for r in ranks} == {8}
    assert ranks == sorted(ranks)
    assert len(set(ranks)) == 100_000
    assert ranks_spread(0) == []
    assert ranks_spread(1) == ["i0000000"]


# -- ranks in the database -------------------------------------------------------------


def _ranks(world, project):
    with schema_context(world.schema):
        return list(
            Ticket.objects.filter(project=project).order_by("rank", "id").values_list("key", "rank")
        )


def test_new_tickets_are_ranked_after_the_last_ticket_of_their_project(
    world_a, project_a, make_ticket
):
    for _ in range(3):
        make_ticket()
    assert _ranks(world_a, project_a) == [
        ("CORE-1", "i0000000"),
        ("CORE-2", "i0001000"),
        ("CORE-3", "i0002000"),
    ]


@pytest.fixture
def board_a(world_a, project_a):
    with schema_context(world_a.schema):
        board = Board.objects.create(name="Core board", kind="kanban", project=project_a)
        BoardColumn.objects.create(
            board=board,
            name="All",
            position=0,
            status_ids=list(Status.objects.values_list("pk", flat=True)),
        )
    connection.set_schema_to_public()
    return board


def test_ranking_a_card_before_another_writes_one_row(
    world_a, project_a, make_ticket, board_a, admin_a
):
    for _ in range(4):
        make_ticket()
    # when CORE-4 moves before CORE-2
    with CaptureQueriesContext(connection) as queries:
        response = admin_a.post(
            f"/api/v1/boards/{board_a.pk}/rank", {"ticket": "CORE-4", "before": "CORE-2"}
        )
    # then
    assert response.status_code == 200, response.content
    assert response.json()["key"] == "CORE-4"
    assert response.json()["rank"] == "i0000i"
    writes = [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].startswith(("UPDATE", "INSERT", "DELETE"))
    ]
    assert len(writes) == 1
    assert writes[0].startswith('UPDATE "tickets_ticket" SET "rank"')
    assert [k for k, _ in _ranks(world_a, project_a)] == ["CORE-1", "CORE-4", "CORE-2", "CORE-3"]


def test_ranking_after_the_last_card_and_before_the_first(
    world_a, project_a, make_ticket, board_a, admin_a
):
    for _ in range(3):
        make_ticket()
    assert (
        admin_a.post(
            f"/api/v1/boards/{board_a.pk}/rank", {"ticket": "CORE-1", "after": "CORE-3"}
        ).json()["rank"]
        == "i0003000"
    )
    assert (
        admin_a.post(
            f"/api/v1/boards/{board_a.pk}/rank", {"ticket": "CORE-3", "before": "CORE-2"}
        ).json()["rank"]
        == "i0000000"
    )
    assert [k for k, _ in _ranks(world_a, project_a)] == ["CORE-3", "CORE-2", "CORE-1"]


def test_rank_requests_that_make_no_sense_are_refused_and_change_nothing(
    world_a, project_a, make_ticket, board_a, admin_a, user_a, private_project_a
):
    for _ in range(2):
        make_ticket()
    secret = make_ticket(project=private_project_a, as_user=world_a.lead)
    before = _ranks(world_a, project_a)
    url = f"/api/v1/boards/{board_a.pk}/rank"
    both = admin_a.post(url, {"ticket": "CORE-1", "before": "CORE-2", "after": "CORE-2"})
    itself = admin_a.post(url, {"ticket": "CORE-1", "before": "CORE-1"})
    off_board = admin_a.post(url, {"ticket": secret.key, "before": "CORE-1"})
    hidden = user_a.post(url, {"ticket": "CORE-1", "before": secret.key})
    missing = admin_a.post(url, {"ticket": "CORE-99", "before": "CORE-1"})
    assert both.status_code == 422
    assert (itself.status_code, itself.json()["error"]["code"]) == (422, "rank_anchor")
    assert (off_board.status_code, off_board.json()["error"]["code"]) == (422, "not_on_board")
    assert (hidden.status_code, hidden.json()["error"]["code"]) == (404, "ticket_not_found")
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "ticket_not_found")
    assert _ranks(world_a, project_a) == before


def test_a_project_viewer_cannot_rank(world_a, project_a, make_ticket, board_a, user_a):
    from tickets.models import ProjectMember

    for _ in range(2):
        make_ticket()
    with schema_context(world_a.schema):
        ProjectMember.objects.create(project=project_a, user=world_a.user, role="VIEWER")
    before = _ranks(world_a, project_a)
    response = user_a.post(
        f"/api/v1/boards/{board_a.pk}/rank", {"ticket": "CORE-2", "before": "CORE-1"}
    )
    assert response.status_code == 403
    assert _ranks(world_a, project_a) == before


@pytest.fixture
def rank_tenant():
    """A throwaway tenant: the racing transactions commit."""

    def provision():
        result = tenant_signup(
            company_name="Rank race",
            subdomain="rank-race-test",
            admin_email="admin@rank-race.test",
            admin_password=PASSWORD,
            admin_name="Rank Admin",
        )
        with schema_context(result.tenant.schema_name):
            project = Project.objects.create(key="RACE", name="Race")
            admin = Membership.objects.select_related("user").get(user=result.admin)
            for i in range(4):
                ticket_create(project=project, actor=admin, data={"summary": f"t{i}"})
        return result.tenant.schema_name, result.admin.pk

    schema, admin_id = in_own_connection(provision)
    yield schema, admin_id

    def drop():
        Tenant.objects.get(schema_name=schema).delete(force_drop=True)
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {User._meta.db_table} WHERE id = %s", [admin_id])

    in_own_connection(drop)


def test_two_concurrent_moves_into_the_same_slot_get_different_ranks(rank_tenant):
    """Both read the same neighbours; the project lock makes the second wait and read
    again, so the ranks differ and the order stays total."""
    schema, admin_id = rank_tenant
    barrier = threading.Barrier(2)
    results: dict[str, str] = {}

    def move(key: str) -> None:
        try:
            with schema_context(schema):
                member = Membership.objects.select_related("user").get(user_id=admin_id)
                with transaction.atomic():
                    ticket = Ticket.objects.select_related("project").get(key=key)
                    anchor = Ticket.objects.get(key="RACE-2")
                    barrier.wait(timeout=10)
                    moved = ticket_rank_move(ticket=ticket, actor=member, before=anchor, after=None)
                results[key] = moved.rank
        finally:
            connections.close_all()

    threads = [threading.Thread(target=move, args=(k,)) for k in ("RACE-3", "RACE-4")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    def order():
        with schema_context(schema):
            return list(Ticket.objects.order_by("rank").values_list("key", "rank"))

    ranks = in_own_connection(order)
    assert results["RACE-3"] != results["RACE-4"]
    assert len({rank for _, rank in ranks}) == 4
    assert ranks[0][0] == "RACE-1"
    assert ranks[-1][0] == "RACE-2"
    assert {key for key, _ in ranks[1:3]} == {"RACE-3", "RACE-4"}


def test_rebalance_spreads_long_ranks_in_the_same_order_and_is_idempotent(
    world_a, project_a, make_ticket
):
    for _ in range(3):
        make_ticket()
    with schema_context(world_a.schema):
        Ticket.objects.filter(key="CORE-3").update(rank="i0000000" + "1" * (REBALANCE_LENGTH))
        Ticket.objects.filter(key="CORE-2").update(rank="i0000000")  # a tie with CORE-1
        assert project_ranks_rebalance(project_id=project_a.pk) == 3
        first = list(
            Ticket.objects.filter(project=project_a).order_by("rank").values_list("key", "rank")
        )
        project_ranks_rebalance(project_id=project_a.pk)
        second = list(
            Ticket.objects.filter(project=project_a).order_by("rank").values_list("key", "rank")
        )
    assert first == [("CORE-1", "hzzzz000"), ("CORE-2", "i0000000"), ("CORE-3", "i0001000")]
    assert second == first


def test_a_move_that_makes_a_long_rank_queues_a_rebalance_of_the_project(
    world_a, project_a, make_ticket, board_a, admin_a, django_capture_on_commit_callbacks
):
    for _ in range(3):
        make_ticket()
    long_rank = "i0000000" + "0" * 30 + "1"
    with schema_context(world_a.schema):
        Ticket.objects.filter(key="CORE-2").update(rank=long_rank)
        Ticket.objects.filter(key="CORE-3").update(rank=long_rank + "1")
    connection.set_schema_to_public()
    # when CORE-1 goes between them, its rank is longer than REBALANCE_LENGTH
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = admin_a.post(
            f"/api/v1/boards/{board_a.pk}/rank", {"ticket": "CORE-1", "after": "CORE-2"}
        )
    # then the job ran (eagerly here) and spread the ranks in the new order
    assert response.status_code == 200
    assert len(response.json()["rank"]) > REBALANCE_LENGTH
    assert len(callbacks) == 1
    assert _ranks(world_a, project_a) == [
        ("CORE-2", "hzzzz000"),
        ("CORE-1", "i0000000"),
        ("CORE-3", "i0001000"),
    ]


def test_the_data_migration_ranks_existing_tickets_in_number_order(world_a, project_a, make_ticket):
    import importlib

    from django.apps import apps

    migration = importlib.import_module("tickets.migrations.0006_rank_existing_tickets")
    for _ in range(3):
        make_ticket()
    with schema_context(world_a.schema):
        Ticket.objects.update(rank="")
        Ticket.objects.filter(key="CORE-3").update(number=0)  # order follows the number
        migration.rank_existing(apps, connection.schema_editor())
        ranks = list(Ticket.objects.order_by("rank").values_list("key", "rank"))
    assert ranks == [("CORE-3", "hzzzz000"), ("CORE-1", "i0000000"), ("CORE-2", "i0001000")]
