"""The tenant of the current connection, typed (django-tenants adds it at run time)."""

from typing import Any

from django.db import connection
from django.db.models import QuerySet
from django_tenants.utils import get_tenant_model


def current_schema() -> str:
    """The schema the default connection is set to (the current tenant's)."""
    return str(connection.schema_name)  # type: ignore[attr-defined]


def current_tenant() -> Any:
    return connection.tenant  # type: ignore[attr-defined]


def public_schema_set() -> None:
    """Point the default connection back at the public schema."""
    connection.set_schema_to_public()  # type: ignore[attr-defined]


def active_tenants() -> QuerySet[Any]:
    """Every tenant whose workspace is active (the public schema excluded)."""
    return get_tenant_model().objects.exclude(schema_name="public").filter(status="active")


def fan_out_per_tenant(task: Any) -> int:
    """Beat fan-out: enqueue `task(schema_name)` once per active tenant; how many."""
    count = 0
    for schema_name in active_tenants().values_list("schema_name", flat=True):
        task.delay(schema_name)
        count += 1
    return count
