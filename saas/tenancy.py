"""The tenant of the current connection, typed (django-tenants adds it at run time)."""

from typing import Any

from django.db import connection


def current_schema() -> str:
    """The schema the default connection is set to (the current tenant's)."""
    return str(connection.schema_name)  # type: ignore[attr-defined]


def current_tenant() -> Any:
    return connection.tenant  # type: ignore[attr-defined]


def public_schema_set() -> None:
    """Point the default connection back at the public schema."""
    connection.set_schema_to_public()  # type: ignore[attr-defined]
