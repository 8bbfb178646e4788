"""Importing users, projects, custom fields and tickets from a JSON file.

Validation first (`tickets.import_validate`): the whole file is checked before anything
is written, and an invalid file is refused as a whole (422, itemised errors). Then one
transaction writes everything (`tickets.import_write`): the import is all or nothing.

Small imports run in the request. Big ones (more than `SYNC_LIMIT` tickets, or when
asked) are validated in the request too, stored, and run by a Celery task as a `Job`.
The task writes in one transaction as well; it reports progress by updating the job
row from a second connection (a short-lived thread), so readers see the progress while
the import's own transaction is still open. A job that fails has written nothing; its
status is `failed` with the error and, for an invalid file, the itemised errors.
"""

import json
import logging
import re
import threading
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import DataError, IntegrityError, connection, connections, transaction
from django.utils import timezone
from django_tenants.utils import schema_context

from accounts.members.models import Membership, Role
from accounts.policy import ADMIN_TENANT, member_require
from eventlog.audit import audit_record
from eventlog.models import Job
from eventlog.outbox import outbox_emit
from saas.errors import ApiError, BadRequest, Conflict
from saas.tenancy import current_schema
from tickets.bulk import FINISHED, MAX_FAILURES
from tickets.import_validate import ImportInvalid, import_validate
from tickets.import_write import import_write
from tickets.models import Project

logger = logging.getLogger(__name__)

SYNC_LIMIT = 1000


# An escaped NUL (not an escaped backslash followed by "u0000"): PostgreSQL text refuses it.
NUL_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


def import_parse(raw: bytes) -> Any:
    """The JSON document in `raw`; 400 when it is not JSON, 422 when it holds NULs."""
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadRequest(f"The import is not valid JSON: {exc}", code="malformed_json") from exc
    if NUL_ESCAPE.search(raw):
        message = "Text must not contain NUL characters (\\u0000)."
        error = {"index": None, "section": None, "field": None, "message": message}
        raise ImportInvalid([error], 1)
    return data


def _ticket_count(data: Any) -> int:
    tickets = data.get("tickets") if isinstance(data, dict) else None
    return len(tickets) if isinstance(tickets, list) else 0


def _project_keys(data: Any) -> set[str]:
    tickets = data.get("tickets") if isinstance(data, dict) else None
    keys = set()
    for ticket in tickets if isinstance(tickets, list) else []:
        key = ticket.get("key") if isinstance(ticket, dict) else None
        if isinstance(key, str):
            keys.add(key.strip().upper().rsplit("-", 1)[0])
    return keys


def _import_lock(data: Any) -> None:
    """Serialize imports of a tenant, and hold the rows of the projects the file writes
    to: a ticket created meanwhile waits, then numbers itself after the imported ones."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtext(%s))",
            [f"{current_schema()}:import"],
        )
    list(Project.objects.select_for_update().filter(key__in=_project_keys(data)).values("pk"))


def import_run(
    *,
    data: Any,
    actor: Membership,
    strict: bool = False,
    progress: Callable[[int], None] | None = None,
    job: Job | None = None,
) -> dict[str, int]:
    """Validate and write a whole import in one transaction; returns the row counts.
    422 (`ImportInvalid`) lists every problem; nothing is written then."""
    member_require(actor, ADMIN_TENANT)
    try:
        with transaction.atomic():
            _import_lock(data)
            plan = import_validate(data=data, strict=strict)
            counts = import_write(plan=plan, actor=actor, progress=progress)
            target = str(job.pk) if job else "request"
            audit_record(
                actor=actor,
                action="import.completed",
                target_type="import",
                target_id=target,
                changes={key: [None, value] for key, value in sorted(counts.items())},
            )
            outbox_emit(
                "import.completed",
                aggregate_type="import",
                aggregate_id=target,
                actor=actor,
                payload={"counts": counts, "job_id": str(job.pk) if job else None},
            )
            if job is not None:
                _job_succeed(job, counts)
            return counts
    except IntegrityError as exc:  # a concurrent change took a key, an email, a name
        raise Conflict(
            "The workspace changed while importing; nothing was imported. Try again.",
            code="import_conflict",
        ) from exc
    except (DataError, psycopg.DataError, UnicodeEncodeError) as exc:
        # Text PostgreSQL cannot store (unpaired surrogates, NULs in data not parsed here).
        raise BadRequest(
            "The import contains values that cannot be stored; nothing was imported.",
            code="import_unstorable",
        ) from exc


def import_submit(
    *, actor: Membership, raw: bytes, strict: bool = False, force_job: bool = False
) -> dict[str, int] | Job:
    """Import now (returns the counts), or queue a job (returned) for a big file or
    when `force_job`. Either way an invalid file is refused here with 422."""
    member_require(actor, ADMIN_TENANT)
    data = import_parse(raw)
    if not force_job and _ticket_count(data) <= SYNC_LIMIT:
        return import_run(data=data, actor=actor, strict=strict)
    import_validate(data=data, strict=strict)
    return import_job_create(actor=actor, raw=raw, strict=strict, total=_ticket_count(data))


def _file_name(job_id: uuid.UUID) -> str:
    return f"imports/{current_schema()}/{job_id}.json"


def import_job_create(*, actor: Membership, raw: bytes, strict: bool, total: int) -> Job:
    """Store the file and queue the job; the task is sent after commit."""
    job_id = uuid.uuid4()
    stored = default_storage.save(_file_name(job_id), ContentFile(raw))
    try:
        with transaction.atomic():
            job = Job.objects.create(
                id=job_id,
                kind="import",
                created_by_id=actor.user_id,
                params={"file": stored, "strict": strict, "bytes": len(raw)},
                total=total,
            )
            audit_record(
                actor=actor,
                action="job.created",
                target_type="job",
                target_id=job.pk,
                changes={"kind": [None, "import"], "total": [None, total]},
            )
            schema_name = current_schema()

            def enqueue() -> None:
                from tickets.tasks import import_job_run

                import_job_run.delay(schema_name, str(job_id))

            transaction.on_commit(enqueue)
    except Exception:
        default_storage.delete(stored)
        raise
    return job


def import_job_process(*, job_id: str) -> Job | None:
    """Run an import job once; a second run of a finished job does nothing."""
    job = Job.objects.filter(pk=job_id, kind="import").first()
    if job is None or job.status in FINISHED:
        return job
    now = timezone.now()
    Job.objects.filter(pk=job.pk, status=Job.Status.QUEUED).update(
        status=Job.Status.RUNNING, started_at=now
    )
    job.refresh_from_db()
    actor = (
        Membership.objects.select_related("user")
        .filter(user_id=job.created_by_id or 0, is_active=True, role=Role.ADMIN)
        .first()
    )
    schema_name = current_schema()
    try:
        if actor is None:
            raise ApiError("The admin who started this import is no longer an admin.")
        with default_storage.open(job.params["file"], "rb") as stored:
            data = import_parse(stored.read())
        with transaction.atomic():
            if not _job_claim(job):  # another worker runs it right now
                return job
            job.refresh_from_db()
            if job.status in FINISHED:
                return job
            import_run(
                data=data,
                actor=actor,
                strict=bool(job.params.get("strict")),
                progress=lambda done: _job_progress(schema_name, job.pk, done),
                job=job,
            )
    except ImportInvalid as exc:
        failures = [
            {
                "item": e["index"],
                "code": "invalid",
                "message": e["message"],
                "details": {"section": e["section"], "field": e["field"]},
            }
            for e in exc.errors[:MAX_FAILURES]
        ]
        _job_fail(job, exc.message, failures=failures, failed=exc.total)
    except ApiError as exc:
        _job_fail(job, exc.message)
    except Exception:
        logger.exception("import job %s failed", job.pk)
        _job_fail(job, "The import failed with an internal error; nothing was imported.")
    if job.status in FINISHED:
        default_storage.delete(job.params["file"])
    return job


def _job_claim(job: Job) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(hashtext(%s))", [f"job:{job.pk}"])
        return bool(cursor.fetchone()[0])


def _job_progress(schema_name: str, job_id: uuid.UUID, done: int) -> None:
    """Publish progress from a connection of its own (committed at once, seen by
    readers), while the import's transaction stays open on the main connection."""

    def publish() -> None:
        try:
            with schema_context(schema_name):
                Job.objects.filter(pk=job_id, status=Job.Status.RUNNING).update(processed=done)
        except Exception:  # progress is best effort; the import goes on
            logger.warning("could not publish progress of job %s", job_id, exc_info=True)
        finally:
            connections.close_all()

    thread = threading.Thread(target=publish, name=f"job-progress-{job_id}")
    thread.start()
    thread.join()


def _job_succeed(job: Job, counts: dict[str, int]) -> None:
    job.status = Job.Status.SUCCEEDED
    job.processed = job.succeeded = counts.get("tickets", 0)
    job.result = {"counts": counts}
    job.finished_at = timezone.now()
    job.save(update_fields=["status", "processed", "succeeded", "result", "finished_at"])
    outbox_emit(
        "job.finished",
        aggregate_type="job",
        aggregate_id=job.pk,
        payload={"job_id": str(job.pk), "kind": job.kind, "status": job.status},
    )


@transaction.atomic
def _job_fail(
    job: Job, error: str, *, failures: list[dict[str, Any]] | None = None, failed: int = 0
) -> None:
    job.status, job.error = Job.Status.FAILED, error
    job.processed = job.succeeded = 0
    job.failures = failures or []
    job.result = {"failed": failed or len(job.failures)}
    job.finished_at = timezone.now()
    fields = ["status", "error", "processed", "succeeded", "failures", "result", "finished_at"]
    job.save(update_fields=fields)
    outbox_emit(
        "job.finished",
        aggregate_type="job",
        aggregate_id=job.pk,
        payload={"job_id": str(job.pk), "kind": job.kind, "status": job.status},
    )
