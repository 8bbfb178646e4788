"""Shared fixtures: two tenants provisioned once per session, API clients per role.

Tenant `alpha` (A) and tenant `bravo` (B) exist for the whole session; each test runs
in a transaction that is rolled back, so tests see them fresh.
"""

import json
from dataclasses import dataclass
from typing import Any

import pytest
from celery._state import _set_task_join_will_block
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django_tenants.utils import schema_context

from accounts.auth_tokens import access_token_mint
from accounts.members.models import Membership, Role
from accounts.models import User
from accounts.services import identity_create, membership_create
from saas.redis import redis_client
from tenants.models import Tenant
from tenants.services import tenant_signup

PASSWORD = "Correct-Horse-Battery-9"
PUBLIC_HOST = "localhost"


@dataclass
class TenantWorld:
    """One provisioned tenant and its people (ids are stable for the session)."""

    tenant: Tenant
    host: str
    admin: User
    lead: User
    user: User

    @property
    def schema(self) -> str:
        return self.tenant.schema_name

    def member(self, user: User) -> Membership:
        with schema_context(self.schema):
            return Membership.objects.select_related("user").get(user=user)


def _world(subdomain: str) -> TenantWorld:
    tenant = Tenant.objects.filter(subdomain=subdomain).first()
    if tenant is None:
        tenant = tenant_signup(
            company_name=f"{subdomain.title()} Corp",
            subdomain=subdomain,
            admin_email=f"admin@{subdomain}.test",
            admin_password=PASSWORD,
            admin_name=f"{subdomain.title()} Admin",
        ).tenant
        with schema_context(tenant.schema_name):
            for role, name in ((Role.PROJECT_LEAD, "lead"), (Role.USER, "user")):
                user = identity_create(
                    email=f"{name}@{subdomain}.test",
                    password=PASSWORD,
                    username=f"{name}_{subdomain}",
                    display_name=f"{name.title()} {subdomain.title()}",
                )
                membership_create(user=user, role=role)
    connection.set_schema_to_public()
    tenant.refresh_from_db()
    return TenantWorld(
        tenant=tenant,
        host=f"{subdomain}.localhost",
        admin=User.objects.get(email=f"admin@{subdomain}.test"),
        lead=User.objects.get(email=f"lead@{subdomain}.test"),
        user=User.objects.get(email=f"user@{subdomain}.test"),
    )


def _sequences_restart(schema: str, *, at: int) -> None:
    """Give tenant B ids that never occur in tenant A, so an id leaking across tenants
    can never be mistaken for a local object in the isolation tests."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT sequencename FROM pg_sequences WHERE schemaname = %s"
            " AND coalesce(last_value, 0) < %s",
            [schema, at],
        )
        for (name,) in cursor.fetchall():
            cursor.execute(f'ALTER SEQUENCE "{schema}"."{name}" RESTART WITH {at}')


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        call_command("migrate_platform", verbosity=0)
        _world("alpha")
        _sequences_restart(_world("bravo").schema, at=1_000_000)


@pytest.fixture(autouse=True)
def _isolated(db):
    """Every test gets the database (rolled back after), public schema, empty Redis db."""
    redis_client().flushdb()
    connection.set_schema_to_public()
    yield
    connection.set_schema_to_public()
    # Eager Celery marks "inside a task" in one process-wide flag, saved and restored
    # around each task. Eager tasks running in two threads at once (the concurrency
    # tests) can restore it in the wrong order and leave it set, after which any
    # `result.get()` raises "Never call result.get() within a task". No task is
    # running between tests, so the flag is cleared here.
    _set_task_join_will_block(False)


@pytest.fixture
def world_a() -> TenantWorld:
    return _world("alpha")


@pytest.fixture
def world_b() -> TenantWorld:
    return _world("bravo")


class Api:
    """Django's test client speaking JSON to one host, optionally with a bearer token."""

    def __init__(self, host: str, token: str | None = None) -> None:
        self.host = host
        self.token = token
        self.client = Client(HTTP_HOST=host)

    def request(
        self,
        method: str,
        path: str,
        data: Any = None,
        *,
        raw: bytes | str | None = None,
        headers: dict[str, str] | None = None,
        **query: Any,
    ):
        all_headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        all_headers.update(headers or {})
        body: Any = raw if raw is not None else (json.dumps(data) if data is not None else "")
        if query:
            from urllib.parse import urlencode

            path = f"{path}?{urlencode(query, doseq=True)}"
        response = self.client.generic(
            method, path, body, content_type="application/json", headers=all_headers
        )
        connection.set_schema_to_public()
        return response

    def get(self, path: str, **query: Any):
        return self.request("GET", path, **query)

    def post(self, path: str, data: Any = None, **kw: Any):
        return self.request("POST", path, data, **kw)

    def put(self, path: str, data: Any = None, **kw: Any):
        return self.request("PUT", path, data, **kw)

    def patch(self, path: str, data: Any = None, **kw: Any):
        return self.request("PATCH", path, data, **kw)

    def delete(self, path: str, data: Any = None, **kw: Any):
        return self.request("DELETE", path, data, **kw)


def token_for(world: TenantWorld, user: User) -> str:
    with schema_context(world.schema):
        member = Membership.objects.get(user=user)
        return access_token_mint(member=member)


@pytest.fixture
def public_api() -> Api:
    return Api(PUBLIC_HOST)


@pytest.fixture
def anon_a(world_a) -> Api:
    return Api(world_a.host)


@pytest.fixture
def admin_a(world_a) -> Api:
    return Api(world_a.host, token_for(world_a, world_a.admin))


@pytest.fixture
def lead_a(world_a) -> Api:
    return Api(world_a.host, token_for(world_a, world_a.lead))


@pytest.fixture
def user_a(world_a) -> Api:
    return Api(world_a.host, token_for(world_a, world_a.user))


@pytest.fixture
def admin_b(world_b) -> Api:
    return Api(world_b.host, token_for(world_b, world_b.admin))
