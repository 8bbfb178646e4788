"""Celery task of workflow configuration: moving many tickets off statuses their
workflow no longer has, as a job. Takes the tenant's schema and the job id; safe to
run twice (only tickets still in such a status are touched)."""

from celery import shared_task
from django_tenants.utils import schema_context


@shared_task(acks_late=True, autoretry_for=(ConnectionError,), retry_backoff=True, max_retries=5)
def workflow_migration_job_run(schema_name: str, job_id: str) -> str | None:
    """Run a workflow migration job to the end, chunk by chunk."""
    from tickets.workflow_services import workflow_migration_job_process

    with schema_context(schema_name):
        job = workflow_migration_job_process(job_id=job_id)
        return job.status if job else None
