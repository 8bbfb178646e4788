"""Celery tasks of the tickets app: bulk changes and imports that run as jobs.

Both take the tenant's schema and the job id, and are safe to run twice: a bulk job
resumes from its stored cursor, an import that already finished is not run again.
"""

from celery import shared_task
from django_tenants.utils import schema_context

# Celery's autodiscovery imports `tasks` modules only: register the workflow job too.
from tickets.workflow_tasks import workflow_migration_job_run  # noqa: F401


@shared_task(acks_late=True, autoretry_for=(ConnectionError,), retry_backoff=True, max_retries=5)
def bulk_job_run(schema_name: str, job_id: str) -> str | None:
    """Process a bulk-change job to the end."""
    from tickets.bulk import bulk_job_process

    with schema_context(schema_name):
        job = bulk_job_process(job_id=job_id)
        return job.status if job else None


@shared_task(acks_late=True, autoretry_for=(ConnectionError,), retry_backoff=True, max_retries=5)
def import_job_run(schema_name: str, job_id: str) -> str | None:
    """Run an import job: validate again, then write everything in one transaction."""
    from tickets.importer import import_job_process

    with schema_context(schema_name):
        job = import_job_process(job_id=job_id)
        return job.status if job else None
