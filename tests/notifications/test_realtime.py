"""Live push over real connections: granian serves saas.asgi on a loopback port against
the test database, the `websockets` client connects to `/ws/live`, and the changes go
through the same server's HTTP API (Celery eager there), so an event travels the whole
way: API -> outbox -> consumer -> Redis channel layer -> socket.

The data must be committed for the server to see it, so this module provisions two
throwaway workspaces of its own ("live-one", "live-two") and drops them afterwards.
Nothing sleeps: every wait is a receive with a timeout, and "nothing arrived" is proven
by a later event that must arrive first.
"""

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from django.conf import settings
from django.db import connection
from django.test import Client
from django_tenants.utils import schema_context
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from accounts.auth_services import api_token_create
from accounts.auth_tokens import access_token_mint
from accounts.members.models import Membership, Role
from accounts.models import User
from accounts.services import identity_create, membership_create
from eventlog.models import OutboxEvent
from notifications.realtime import realtime_publish
from notifications.realtime.consumers import FRAME_WINDOW_SECONDS, FRAMES_PER_WINDOW
from saas.env import redis_url_with_db_offset, socket_database_url
from tenants.models import Tenant
from tenants.services import tenant_signup
from tests.conftest import PASSWORD
from tests.tickets.conftest import in_own_connection
from tickets.models import Project, ProjectMember

BASE_DIR = Path(__file__).resolve().parents[2]
TIMEOUT = 10.0
# Never the Redis db the tests flush: group memberships live in the channel layer's db.
CHANNEL_REDIS_URL = os.environ.get("CHANNEL_REDIS_URL") or redis_url_with_db_offset(
    settings.REDIS_URL, -8
)
_LAYER = settings.CHANNEL_LAYERS["default"]
CHANNEL_LAYERS = {
    "default": {
        **_LAYER,
        "CONFIG": {
            **_LAYER["CONFIG"],
            "hosts": [{**_LAYER["CONFIG"]["hosts"][0], "address": CHANNEL_REDIS_URL}],
            "prefix": "saas-rt-test",
        },
    }
}


@dataclass
class Workspace:
    schema: str
    host: str
    admin_id: int
    user_id: int
    lead_id: int | None
    core_id: int
    tokens: dict[str, str]


@dataclass
class World:
    one: Workspace
    two: Workspace
    secret_id: int  # private project of workspace one: only the lead
    team_id: int  # private project of workspace one: the lead and the user
    flip_id: int  # open project of workspace one that a test makes private, then deletes
    api_token: str  # the user's tkt_ token in workspace one


def _provision() -> World:
    def workspace(subdomain: str) -> tuple[Tenant, User]:
        result = tenant_signup(
            company_name=subdomain.title(),
            subdomain=subdomain,
            admin_email=f"admin@{subdomain}.test",
            admin_password=PASSWORD,
            admin_name=f"{subdomain} admin",
        )
        return result.tenant, result.admin

    tenant_one, admin_one = workspace("live-one")
    tenant_two, admin_two = workspace("live-two")
    people = {
        name: identity_create(email=f"{name}@live.test", password=PASSWORD, username=f"live_{name}")
        for name in ("lead", "user")
    }
    with schema_context(tenant_one.schema_name):
        membership_create(user=people["lead"], role=Role.PROJECT_LEAD)
        user_member = membership_create(user=people["user"], role=Role.USER)
        core = Project.objects.create(key="CORE", name="Core", lead=people["lead"])
        secret = Project.objects.create(key="SECRET", name="Secret", is_private=True)
        ProjectMember.objects.create(project=secret, user=people["lead"], role="ADMIN")
        team = Project.objects.create(key="TEAM", name="Team", is_private=True)
        ProjectMember.objects.create(project=team, user=people["user"], role="DEVELOPER")
        flip = Project.objects.create(key="FLIP", name="Flip")
        _row, api_token = api_token_create(member=user_member, name="live")
        tokens_one = {
            role: access_token_mint(member=Membership.objects.get(user=user))
            for role, user in (
                ("admin", admin_one),
                ("lead", people["lead"]),
                ("user", people["user"]),
            )
        }
    with schema_context(tenant_two.schema_name):
        # the same person belongs to both workspaces
        membership_create(user=people["user"], role=Role.USER)
        core_two = Project.objects.create(key="CORE", name="Core two")
        tokens_two = {
            role: access_token_mint(member=Membership.objects.get(user=user))
            for role, user in (("admin", admin_two), ("user", people["user"]))
        }
    return World(
        one=Workspace(
            schema=tenant_one.schema_name,
            host="live-one.localhost",
            admin_id=admin_one.pk,
            user_id=people["user"].pk,
            lead_id=people["lead"].pk,
            core_id=core.pk,
            tokens=tokens_one,
        ),
        two=Workspace(
            schema=tenant_two.schema_name,
            host="live-two.localhost",
            admin_id=admin_two.pk,
            user_id=people["user"].pk,
            lead_id=None,
            core_id=core_two.pk,
            tokens=tokens_two,
        ),
        secret_id=secret.pk,
        team_id=team.pk,
        flip_id=flip.pk,
        api_token=api_token,
    )


def _teardown() -> None:
    for subdomain in ("live-one", "live-two"):
        tenant = Tenant.objects.filter(subdomain=subdomain).first()
        if tenant is not None:
            tenant.delete(force_drop=True)
    emails = ["admin@live-one.test", "admin@live-two.test", "lead@live.test", "user@live.test"]
    with connection.cursor() as cursor:  # the ORM would look for memberships everywhere
        cursor.execute(f"DELETE FROM {User._meta.db_table} WHERE email = ANY(%s)", [emails])


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker) -> Iterator[World]:
    with django_db_blocker.unblock():
        in_own_connection(_teardown)  # a crashed earlier run's leftovers
        built = in_own_connection(_provision)
        try:
            yield built
        finally:
            in_own_connection(_teardown)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def server(world, django_db_setup, tmp_path_factory) -> Iterator[int]:
    """granian serving saas.asgi (HTTP and WebSockets) on a loopback port."""
    db = connection.settings_dict
    database_url = (
        socket_database_url(db["HOST"], db["NAME"])
        if str(db["HOST"]).startswith("/")
        else f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    )
    port = _free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": database_url,
        "REDIS_URL": settings.REDIS_URL,
        "CHANNEL_REDIS_URL": CHANNEL_REDIS_URL,
        "CHANNEL_LAYER_PREFIX": "saas-rt-test",
        "REALTIME_RECHECK_SECONDS": "0",  # re-check access before every delivery
    }
    # REDIS_URL above is already this xdist worker's db: the child must not offset it again.
    env.pop("PYTEST_XDIST_WORKER", None)
    log_path = tmp_path_factory.mktemp("realtime") / "server.log"
    with open(log_path, "wb") as log:
        yield from _serve(port, env, log_path, log)


def _serve(port: int, env: dict[str, str], log_path: Path, log: Any) -> Iterator[int]:
    process = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "granian"),
            "--interface", "asginl", "saas.asgi:application",
            "--host", "127.0.0.1", "--port", str(port),
            "--workers", "1", "--log-level", "warning",
        ],
        cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, "the ASGI server did not start"
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).ok:
                    break
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=0.1)  # a pause that ends early if the server dies
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(autouse=True)
def _channel_layer(settings) -> None:
    settings.CHANNEL_LAYERS = CHANNEL_LAYERS


# ---------------------------------------------------------------- helpers


class Http:
    """The server's HTTP API as one member of one workspace."""

    def __init__(self, port: int, ws: Workspace, role: str) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.headers = {"Host": ws.host, "Authorization": f"Bearer {ws.tokens[role]}"}

    async def call(self, method: str, path: str, body: Any = None, expect: int = 200) -> Any:
        response = await asyncio.to_thread(
            requests.request, method, self.base + path, json=body, headers=self.headers, timeout=30
        )
        assert response.status_code == expect, response.text
        return response.json() if response.content else None


@contextlib.asynccontextmanager
async def live(
    port: int,
    host: str,
    *,
    token: str | None = None,
    query: str = "",
    headers: dict[str, str] | None = None,
    origin: str | None = None,
    path: str = "/ws/live",
) -> AsyncIterator[ClientConnection]:
    async with connect(
        f"ws://{host}:{port}{path}{query}",
        host="127.0.0.1",
        port=port,
        proxy=None,
        subprotocols=["bearer", token] if token else None,  # type: ignore[list-item]
        additional_headers=headers,
        origin=origin,  # type: ignore[arg-type]
        open_timeout=TIMEOUT,
    ) as ws:
        yield ws


async def receive(ws: ClientConnection) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))  # type: ignore[no-any-return]


async def ask(ws: ClientConnection, frame: dict[str, Any]) -> dict[str, Any]:
    await ws.send(json.dumps(frame))
    return await receive(ws)


async def welcomed(ws: ClientConnection, user_id: int) -> None:
    assert await receive(ws) == {"type": "welcome", "user": {"id": user_id}}


async def refusal(port: int, host: str, **kw: Any) -> tuple[int | None, str | None]:
    async with live(port, host, **kw) as ws:
        with pytest.raises(ConnectionClosed):
            await receive(ws)
        return ws.close_code, ws.close_reason


def outbox_last(schema: str, kind: str) -> tuple[int, str]:
    def read() -> tuple[int, str]:
        with schema_context(schema):
            event = OutboxEvent.objects.filter(kind=kind).order_by("-id").first()
            assert event is not None
            return event.pk, event.created_at.isoformat()

    return in_own_connection(read)  # type: ignore[no-any-return]


def expected(schema: str, kind: str, ticket: dict[str, Any], version: int | None, **rest: Any):
    event_id, at = outbox_last(schema, kind)
    return {
        "type": kind,
        "id": event_id,
        "ticket": {"id": ticket["id"], "key": ticket["key"], "version": version},
        "at": at,
        **rest,
    }


def run(coro: Any) -> Any:
    return asyncio.run(coro)


# ---------------------------------------------------------------- tests


def test_project_follower_receives_ticket_changes_live(world, server):
    one = world.one
    admin = Http(server, one, "admin")

    async def scenario() -> None:
        async with live(server, one.host, token=one.tokens["user"]) as ws:
            await welcomed(ws, one.user_id)
            # when the user follows the project by key, in any case
            answer = await ask(ws, {"subscribe": {"project": "core"}, "ref": "s1"})
            assert answer == {
                "type": "subscribed",
                "project": {"id": one.core_id, "key": "CORE"},
                "ref": "s1",
            }
            ticket = await admin.call(
                "POST", "/api/v1/projects/CORE/tickets", {"summary": "Live"}, expect=201
            )
            # then
            assert await receive(ws) == expected(
                one.schema, "ticket.created", ticket, 1, fields=[], actor=one.admin_id
            )
            await admin.call("PUT", f"/api/v1/tickets/{ticket['key']}", {"summary": "Live 2"})
            assert await receive(ws) == expected(
                one.schema, "ticket.updated", ticket, 2, fields=["summary"], actor=one.admin_id
            )
            await admin.call(
                "PATCH", f"/api/v1/tickets/{ticket['key']}/status", {"status": "In Progress"}
            )
            assert await receive(ws) == expected(
                one.schema, "ticket.transitioned", ticket, 3, fields=["status"], actor=one.admin_id
            )
            await admin.call("DELETE", f"/api/v1/tickets/{ticket['key']}", expect=204)
            assert await receive(ws) == expected(
                one.schema, "ticket.deleted", ticket, None, fields=[], actor=one.admin_id
            )

    run(scenario())


def publish(schema: str, event: dict[str, Any], user_ids: list[int]) -> None:
    with schema_context(schema):
        realtime_publish(event=event, user_ids=user_ids)
    connection.set_schema_to_public()


def test_ticket_follower_receives_its_comments_and_nothing_else(world, server):
    # given two tickets, and the user following one of them with an API token in the query
    one = world.one
    admin = Http(server, one, "admin")

    async def scenario() -> None:
        followed = await admin.call(
            "POST", "/api/v1/projects/CORE/tickets", {"summary": "A"}, expect=201
        )
        other = await admin.call(
            "POST", "/api/v1/projects/CORE/tickets", {"summary": "B"}, expect=201
        )
        async with live(server, one.host, query=f"?token={world.api_token}") as ws:
            assert ws.subprotocol is None
            await welcomed(ws, one.user_id)
            answer = await ask(ws, {"subscribe": {"ticket": followed["key"].lower()}})
            assert answer == {
                "type": "subscribed",
                "ticket": {"id": followed["id"], "key": followed["key"]},
            }
            # when comments land on the other ticket, then on the followed one
            await admin.call(
                "POST", f"/api/v1/tickets/{other['key']}/comments", {"body": "x"}, expect=201
            )
            comment = await admin.call(
                "POST", f"/api/v1/tickets/{followed['key']}/comments", {"body": "first"}, expect=201
            )
            # then only the followed ticket's comment arrives
            assert await receive(ws) == expected(
                one.schema, "comment.created", followed, 1,
                fields=["comments"], actor=one.admin_id, comment={"id": comment["id"]},
            )  # fmt: skip
            path = f"/api/v1/tickets/{followed['key']}/comments/{comment['id']}"
            await admin.call("PUT", path, {"body": "edited"})
            assert await receive(ws) == expected(
                one.schema, "comment.updated", followed, 1,
                fields=["comments"], actor=one.admin_id, comment={"id": comment["id"]},
            )  # fmt: skip
            await admin.call("DELETE", path, expect=204)
            assert await receive(ws) == expected(
                one.schema, "comment.deleted", followed, 1,
                fields=["comments"], actor=one.admin_id, comment={"id": comment["id"]},
            )  # fmt: skip
            # and after unsubscribing, nothing more about it: the next frame is a later push
            answer = await ask(ws, {"unsubscribe": {"ticket": followed["key"]}, "ref": 7})
            assert answer == {
                "type": "unsubscribed",
                "ticket": {"id": followed["id"], "key": followed["key"]},
                "ref": 7,
            }
            await admin.call(
                "POST", f"/api/v1/tickets/{followed['key']}/comments", {"body": "y"}, expect=201
            )
            await asyncio.to_thread(publish, one.schema, {"type": "marker"}, [one.user_id])
            assert await receive(ws) == {"type": "marker"}

    run(scenario())


def test_a_notification_reaches_only_its_user_in_its_workspace(world, server):
    one, two = world.one, world.two
    notification = {"type": "notification.created", "notification": {"id": 41, "unread": 3}}

    async def scenario() -> None:
        async with (
            live(server, one.host, token=one.tokens["user"]) as user_ws,
            live(server, one.host, token=one.tokens["lead"]) as lead_ws,
            live(server, two.host, token=two.tokens["user"]) as user_two_ws,
        ):
            await welcomed(user_ws, one.user_id)
            await welcomed(lead_ws, one.lead_id)
            await welcomed(user_two_ws, two.user_id)
            # when a notification is published for the user in workspace one
            await asyncio.to_thread(publish, one.schema, notification, [one.user_id])
            # then the user's socket in workspace one receives it
            assert await receive(user_ws) == notification
            # and neither the lead nor the same person's socket in workspace two did:
            # what they receive first is what was published to them afterwards
            await asyncio.to_thread(publish, one.schema, {"type": "marker"}, [one.lead_id])
            await asyncio.to_thread(publish, two.schema, {"type": "marker"}, [two.user_id])
            assert await receive(lead_ws) == {"type": "marker"}
            assert await receive(user_two_ws) == {"type": "marker"}

    run(scenario())


def test_connections_without_valid_credentials_for_the_workspace_are_refused(world, server):
    one, two = world.one, world.two

    async def scenario() -> None:
        assert await refusal(server, one.host) == (4401, "not_authenticated")
        assert await refusal(server, one.host, token="not.a.jwt") == (4401, "token_invalid")
        assert await refusal(server, one.host, query="?token=tkt_abc_def") == (
            4401,
            "token_invalid",
        )
        # a valid token of the same person, issued by the other workspace
        assert await refusal(server, one.host, token=two.tokens["user"]) == (
            4401,
            "token_wrong_tenant",
        )
        assert await refusal(server, "nowhere.localhost", token=one.tokens["user"]) == (
            4404,
            "tenant_not_found",
        )
        assert await refusal(server, "localhost", token=one.tokens["user"]) == (
            4404,
            "tenant_not_found",
        )
        assert await refusal(server, one.host, token=one.tokens["user"], path="/ws/other") == (
            4404,
            "not_found",
        )

    run(scenario())


def test_a_suspended_workspace_refuses_connections(world, server):
    def status_set(status: str) -> None:
        Tenant.objects.filter(schema_name=world.two.schema).update(status=status)

    in_own_connection(lambda: status_set(Tenant.Status.SUSPENDED))
    try:
        result = run(refusal(server, world.two.host, token=world.two.tokens["user"]))
    finally:
        in_own_connection(lambda: status_set(Tenant.Status.ACTIVE))
    assert result == (4403, "tenant_suspended")


def test_private_project_is_refused_and_its_events_never_leak(world, server):
    one = world.one
    admin = Http(server, one, "admin")

    async def scenario() -> None:
        secret = await admin.call(
            "POST", "/api/v1/projects/SECRET/tickets", {"summary": "S"}, expect=201
        )
        async with (
            live(server, one.host, token=one.tokens["user"]) as user_ws,
            live(server, one.host, token=one.tokens["lead"]) as lead_ws,
        ):
            await welcomed(user_ws, one.user_id)
            await welcomed(lead_ws, one.lead_id)
            # when the user asks for the private project by key, by id, and its ticket
            refused = [
                await ask(user_ws, {"subscribe": {"project": "SECRET"}}),
                await ask(user_ws, {"subscribe": {"project": world.secret_id}}),
                await ask(user_ws, {"subscribe": {"ticket": secret["key"]}}),
            ]
            # then each is answered like a missing one
            assert refused == [
                error_frame(
                    "project_not_found", "Project SECRET does not exist or you cannot see it."
                ),
                error_frame(
                    "project_not_found",
                    f"Project {world.secret_id} does not exist or you cannot see it.",
                ),
                error_frame(
                    "ticket_not_found",
                    f"Ticket {secret['key']} does not exist or you cannot see it.",
                ),
            ]
            assert (await ask(user_ws, {"subscribe": {"project": "CORE"}}))["type"] == "subscribed"
            assert (await ask(lead_ws, {"subscribe": {"project": "SECRET"}}))[
                "type"
            ] == "subscribed"
            # when the private ticket changes, then a public one
            await admin.call("PUT", f"/api/v1/tickets/{secret['key']}", {"summary": "S2"})
            public = await admin.call(
                "POST", "/api/v1/projects/CORE/tickets", {"summary": "P"}, expect=201
            )
            # then the lead, a member, saw the private change; the user only the public one
            assert (await receive(lead_ws))["ticket"] == {
                "id": secret["id"],
                "key": secret["key"],
                "version": 2,
            }
            assert await receive(user_ws) == expected(
                one.schema, "ticket.created", public, 1, fields=[], actor=one.admin_id
            )

    run(scenario())


def error_frame(code: str, message: str, status_details: Any = None) -> dict[str, Any]:
    return {"type": "error", "error": {"code": code, "message": message, "details": status_details}}


def test_losing_access_ends_the_subscription_before_anything_is_delivered(world, server):
    one = world.one
    admin = Http(server, one, "admin")

    def membership_remove() -> None:
        with schema_context(one.schema):
            ProjectMember.objects.filter(project_id=world.team_id, user_id=one.user_id).delete()

    def membership_restore() -> None:
        with schema_context(one.schema):
            ProjectMember.objects.get_or_create(
                project_id=world.team_id, user_id=one.user_id, defaults={"role": "DEVELOPER"}
            )

    async def scenario() -> None:
        async with live(server, one.host, token=one.tokens["user"]) as ws:
            await welcomed(ws, one.user_id)
            answer = await ask(ws, {"subscribe": {"project": "TEAM"}})
            assert answer == {"type": "subscribed", "project": {"id": world.team_id, "key": "TEAM"}}
            # when the user is taken off the private project, and a ticket is then created
            await asyncio.to_thread(in_own_connection, membership_remove)
            await admin.call("POST", "/api/v1/projects/TEAM/tickets", {"summary": "T"}, expect=201)
            # then the user is told the subscription ended, and gets no event
            assert await receive(ws) == {
                "type": "subscription.revoked",
                "project": {"id": world.team_id, "key": "TEAM"},
                "error": {
                    "code": "not_visible",
                    "message": "You can no longer see this.",
                    "details": None,
                },
            }
            await admin.call("POST", "/api/v1/projects/TEAM/tickets", {"summary": "U"}, expect=201)
            await asyncio.to_thread(publish, one.schema, {"type": "marker"}, [one.user_id])
            assert await receive(ws) == {"type": "marker"}

    try:
        run(scenario())
    finally:
        in_own_connection(membership_restore)


def test_a_deactivated_member_is_cut_off_and_refused(world, server):
    one = world.one
    admin = Http(server, one, "admin")

    def active_set(active: bool) -> None:
        with schema_context(one.schema):
            Membership.objects.filter(user_id=one.lead_id).update(is_active=active)

    async def scenario() -> tuple[Any, ...]:
        async with live(server, one.host, token=one.tokens["lead"]) as ws:
            await welcomed(ws, one.lead_id)
            await ask(ws, {"subscribe": {"project": "CORE"}})
            # when the lead is deactivated while connected, and the project changes
            await asyncio.to_thread(in_own_connection, lambda: active_set(False))
            await admin.call("POST", "/api/v1/projects/CORE/tickets", {"summary": "D"}, expect=201)
            # then the socket is closed instead of delivering
            with pytest.raises(ConnectionClosed):
                await receive(ws)
            cut = (ws.close_code, ws.close_reason)
        again = await refusal(server, one.host, token=one.tokens["lead"])
        return cut, again

    try:
        cut, again = run(scenario())
    finally:
        in_own_connection(lambda: active_set(True))
    assert cut == (4401, "account_inactive")
    assert again == (4401, "account_inactive")


def test_another_workspace_events_never_arrive(world, server):
    one, two = world.one, world.two
    admin_one, admin_two = Http(server, one, "admin"), Http(server, two, "admin")

    async def scenario() -> None:
        async with live(server, two.host, token=two.tokens["user"]) as ws:
            await welcomed(ws, two.user_id)
            # the same person follows workspace two's CORE (the same id as one's CORE)
            assert two.core_id == one.core_id
            answer = await ask(ws, {"subscribe": {"project": "CORE"}})
            assert answer == {"type": "subscribed", "project": {"id": two.core_id, "key": "CORE"}}
            # when workspace one's CORE changes, then workspace two's
            await admin_one.call(
                "POST", "/api/v1/projects/CORE/tickets", {"summary": "1"}, expect=201
            )
            mine = await admin_two.call(
                "POST", "/api/v1/projects/CORE/tickets", {"summary": "2"}, expect=201
            )
            # then the first event on the socket is workspace two's
            assert await receive(ws) == expected(
                two.schema, "ticket.created", mine, 1, fields=[], actor=two.admin_id
            )

    run(scenario())


def test_a_browser_session_connects_from_its_own_pages_only(world, server):
    one = world.one

    def login() -> str:
        with schema_context(one.schema):
            client = Client(HTTP_HOST=one.host)
            client.force_login(User.objects.get(pk=one.user_id))
            return str(client.cookies[settings.SESSION_COOKIE_NAME].value)

    session_key = in_own_connection(login)
    cookie = {"Cookie": f"{settings.SESSION_COOKIE_NAME}={session_key}"}

    async def scenario() -> tuple[Any, ...]:
        async with live(
            server, one.host, headers=cookie, origin=f"http://{one.host}:{server}"
        ) as ws:
            await welcomed(ws, one.user_id)
        foreign = await refusal(server, one.host, headers=cookie, origin="http://evil.example")
        forged = await refusal(
            server, one.host, headers={"Cookie": f"{settings.SESSION_COOKIE_NAME}=forged"}
        )
        return foreign, forged

    assert run(scenario()) == ((4403, "forbidden"), (4401, "not_authenticated"))


def test_bad_frames_get_errors_and_the_connection_stays_usable(world, server):
    one = world.one

    async def scenario() -> None:
        async with live(server, one.host, token=one.tokens["user"]) as ws:
            await welcomed(ws, one.user_id)
            await ws.send("not json")
            assert await receive(ws) == error_frame("bad_request", "The frame is not valid JSON.")
            answer = await ask(ws, {"dance": True, "ref": "x"})
            assert answer == {
                **error_frame(
                    "bad_request",
                    "Send exactly one of: subscribe, unsubscribe, ping, authenticate.",
                    {"allowed": ["subscribe", "unsubscribe", "ping", "authenticate"]},
                ),
                "ref": "x",
            }
            answer = await ask(ws, {"subscribe": {"project": " "}})
            assert answer["error"]["code"] == "bad_request"
            assert await ask(ws, {"ping": 5}) == {"type": "pong", "ping": 5}
            # a fresh token of the same user is taken; someone else's closes the socket
            fresh = await ask(ws, {"authenticate": world.api_token})
            assert fresh == {"type": "authenticated", "user": {"id": one.user_id}}
            await ws.send(json.dumps({"authenticate": one.tokens["lead"]}))
            with pytest.raises(ConnectionClosed):
                await receive(ws)
            assert (ws.close_code, ws.close_reason) == (4401, "token_invalid")

    run(scenario())


def test_a_flood_of_frames_is_rate_limited_per_connection(world, server):
    one = world.one

    async def scenario() -> list[dict[str, Any]]:
        async with live(server, one.host, token=one.tokens["user"]) as ws:
            await welcomed(ws, one.user_id)
            for n in range(FRAMES_PER_WINDOW + 1):
                await ws.send(json.dumps({"ping": n}))
            return [await receive(ws) for _ in range(FRAMES_PER_WINDOW + 1)]

    answers = run(scenario())
    assert answers[:FRAMES_PER_WINDOW] == [
        {"type": "pong", "ping": n} for n in range(FRAMES_PER_WINDOW)
    ]
    assert answers[-1]["type"] == "error"
    assert answers[-1]["error"]["code"] == "rate_limited"
    retry_after = answers[-1]["error"]["details"]["retry_after"]
    assert FRAME_WINDOW_SECONDS + 1 >= retry_after >= 1


def test_a_project_turning_private_revokes_outsiders_and_followers_see_its_changes(world, server):
    one = world.one
    admin = Http(server, one, "admin")
    flip = {"id": world.flip_id, "key": "FLIP"}

    async def scenario() -> None:
        async with (
            live(server, one.host, token=one.tokens["user"]) as user_ws,
            live(server, one.host, token=one.tokens["admin"]) as admin_ws,
        ):
            await welcomed(user_ws, one.user_id)
            await welcomed(admin_ws, one.admin_id)
            for ws in (user_ws, admin_ws):
                answer = await ask(ws, {"subscribe": {"project": "FLIP"}})
                assert answer == {"type": "subscribed", "project": flip}
            # when the project becomes private (the user is no member)
            await admin.call("PUT", "/api/v1/projects/FLIP", {"is_private": True})
            # then the user's subscription ends, and the admin sees the change
            assert await receive(user_ws) == {
                "type": "subscription.revoked",
                "project": flip,
                "error": {
                    "code": "not_visible",
                    "message": "You can no longer see this.",
                    "details": None,
                },
            }
            event_id, at = outbox_last(one.schema, "project.updated")
            assert await receive(admin_ws) == {
                "type": "project.updated",
                "id": event_id,
                "project": flip,
                "fields": ["is_private"],
                "actor": one.admin_id,
                "at": at,
            }
            # when the project is deleted, its followers hear it
            await admin.call("DELETE", "/api/v1/projects/FLIP", expect=204)
            event_id, at = outbox_last(one.schema, "project.deleted")
            assert await receive(admin_ws) == {
                "type": "project.deleted",
                "id": event_id,
                "project": flip,
                "fields": [],
                "actor": one.admin_id,
                "at": at,
            }
            # and the user heard nothing more
            await asyncio.to_thread(publish, one.schema, {"type": "marker"}, [one.user_id])
            assert await receive(user_ws) == {"type": "marker"}

    run(scenario())
