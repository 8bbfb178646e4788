"""Tenant schemas are cloned from a pre-migrated template, not migrated one by one."""

from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django_tenants.clone import CloneSchema
from django_tenants.utils import schema_exists


def template_schema_name() -> str:
    return settings.TENANT_TEMPLATE_SCHEMA


def template_schema_sync(*, verbosity: int = 0) -> None:
    """Create the template schema if needed and bring it to the latest migrations."""
    name = template_schema_name()
    if not schema_exists(name):
        with connection.cursor() as cursor:
            cursor.execute(f'CREATE SCHEMA "{name}"')
    call_command(
        "migrate_schemas", schema_name=name, tenant=True, interactive=False, verbosity=verbosity
    )
    connection.set_schema_to_public()


def schema_clone_from_template(*, schema_name: str) -> None:
    """Copy the template's tables, sequences, constraints and seed rows (including its
    `django_migrations`) into a new schema, inside the caller's transaction."""
    CloneSchema().clone_schema(template_schema_name(), schema_name, set_connection=True)
