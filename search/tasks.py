"""Celery tasks of search (the engine backend, the stored text vectors); each takes
the tenant's schema."""

from collections.abc import Sequence

from celery import shared_task
from django_tenants.utils import schema_context

from saas.tenancy import active_tenants
from search.engine.backend import search_backend_name
from search.engine.client import ENGINE_DOWN, POSTGRES, EngineError

# Engine unavailable or a write refused: retried with backoff; the reconciliation
# repairs whatever is still missing afterwards.
RETRY_ON = (EngineError, *ENGINE_DOWN)


@shared_task(acks_late=True, autoretry_for=RETRY_ON, retry_backoff=True, max_retries=8)
def search_index_tickets_task(
    schema_name: str,
    ticket_ids: Sequence[int] = (),
    deleted_keys: Sequence[str] = (),
    project_ids: Sequence[int] = (),
    project_keys: Sequence[str] = (),
    sprint_ids: Sequence[int] = (),
) -> int:
    """Write the current state of these tickets to the tenant's index (idempotent)."""
    from search.engine.indexing import search_index_tickets

    with schema_context(schema_name):
        return search_index_tickets(
            ticket_ids=ticket_ids,
            deleted_keys=deleted_keys,
            project_ids=project_ids,
            project_keys=project_keys,
            sprint_ids=sprint_ids,
        )


@shared_task(acks_late=True)
def search_text_fill_task(schema_name: str, ticket_ids: Sequence[int]) -> None:
    """Compute the stored text vectors of these tickets (idempotent)."""
    from search.text_vectors import search_text_refresh

    with schema_context(schema_name):
        search_text_refresh(ticket_ids)


@shared_task(acks_late=True)
def search_text_sweep_all() -> int:
    """Beat: queue the stored text vectors still missing in each active tenant (a fill
    task lost after an import leaves its tickets searchable, the slow exact way, until
    then). Returns how many tickets were queued."""
    from search.text_vectors import search_text_fill_later, search_text_unbuilt

    queued = 0
    for tenant in active_tenants():
        with schema_context(tenant.schema_name):
            ids = search_text_unbuilt()
        if ids:
            search_text_fill_later(tenant.schema_name, ids)
            queued += len(ids)
    return queued


@shared_task(acks_late=True, autoretry_for=RETRY_ON, retry_backoff=True, max_retries=5)
def search_reconcile_task(schema_name: str) -> dict[str, int]:
    """Find and repair drift between Postgres and one tenant's index."""
    from search.engine.maintenance import search_reconcile

    with schema_context(schema_name):
        if search_backend_name() == POSTGRES:
            return {}
        return search_reconcile().as_dict()


@shared_task(acks_late=True)
def search_reconcile_all() -> int:
    """Beat: one reconciliation per active tenant whose backend is an engine."""
    tenants = active_tenants()
    count = 0
    for tenant in tenants:
        if search_backend_name(tenant) != POSTGRES:
            search_reconcile_task.delay(tenant.schema_name)
            count += 1
    return count
