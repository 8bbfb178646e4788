"""Beat fans the daily snapshot out per tenant; each task snapshots one tenant's
yesterday (idempotent: a day already taken is skipped, and retaking it is harmless)."""

from celery import shared_task
from django.db import connection
from django_tenants.utils import schema_context

from reports.models import SnapshotDay
from reports.scope import tenant_zone
from reports.snapshots import snapshot_take, snapshot_yesterday
from saas.tenancy import fan_out_per_tenant


@shared_task(acks_late=True, autoretry_for=(ConnectionError,), retry_backoff=True, max_retries=5)
def reports_snapshot(schema_name: str) -> int:
    """Snapshot yesterday (tenant time zone) of one tenant unless it is already taken."""
    with schema_context(schema_name):
        day = snapshot_yesterday(tz=tenant_zone(getattr(connection, "tenant", None)))
        if SnapshotDay.objects.filter(day=day).exists():
            return 0
        return snapshot_take(day=day)


@shared_task(acks_late=True)
def reports_snapshot_all() -> int:
    """Beat (hourly, so each tenant's day is taken soon after its local midnight)."""
    return fan_out_per_tenant(reports_snapshot)
