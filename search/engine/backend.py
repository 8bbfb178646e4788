"""Which search backend a tenant uses, and the names of its index.

`SEARCH_BACKEND` (postgres | opensearch | elasticsearch) is the default;
`Tenant.search_backend` overrides it per tenant, `Tenant.search_shards` overrides
`SEARCH_SHARDS`. Reading these never queries the database when the caller passes the
tenant it already holds (the request's tenant).
"""

from typing import Any

from django.conf import settings
from django.db import connection

from saas.tenancy import current_schema
from search.engine.client import ENGINES, POSTGRES, SearchEngine, search_engine


def tenant_of_schema(schema_name: str) -> Any:
    from tenants.models import Tenant

    return Tenant.objects.filter(schema_name=schema_name).first()


def _tenant(tenant: Any) -> Any:
    """The Tenant row: the one given, else the connection's (django-tenants sets a
    FakeTenant without our fields under schema_context: load the real one)."""
    tenant = tenant if tenant is not None else getattr(connection, "tenant", None)
    if tenant is not None and not hasattr(tenant, "search_backend"):
        tenant = tenant_of_schema(tenant.schema_name)
    return tenant


def search_backend_name(tenant: Any = None) -> str:
    """postgres, opensearch or elasticsearch for `tenant` (default: the current one)."""
    tenant = _tenant(tenant)
    name = (getattr(tenant, "search_backend", None) or settings.SEARCH_BACKEND or POSTGRES).lower()
    return name if name in ENGINES else POSTGRES


def search_engine_for(tenant: Any = None) -> SearchEngine | None:
    """The engine client of `tenant`, or None when it searches on Postgres."""
    name = search_backend_name(tenant)
    if name == POSTGRES:
        return None
    return search_engine(name, settings.SEARCH_URL)


def search_shards_for(tenant: Any = None) -> int:
    tenant = _tenant(tenant)
    return int(getattr(tenant, "search_shards", None) or settings.SEARCH_SHARDS or 1)


def index_alias(schema_name: str | None = None) -> str:
    """`<prefix>-tickets-<schema>`: the alias every read and write goes through."""
    schema = schema_name or current_schema()
    return f"{settings.SEARCH_INDEX_PREFIX}-tickets-{schema}".lower()
