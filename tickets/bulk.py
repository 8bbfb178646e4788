"""Bulk changes of tickets, and the jobs that run the big ones.

A bulk change applies one operation to many tickets through the per-ticket services
(`ticket_update`, `ticket_set_status`, `ticket_delete`), so each ticket gets exactly
the checks, history, audit entry and outbox event of a single edit. Every ticket runs
in a savepoint: one that fails is rolled back alone and reported, the others stand.

Up to `SYNC_LIMIT` tickets are changed in the request, in one transaction. More become
a `Job` processed by a Celery task in chunks, each chunk one transaction that also
advances the job's cursor (`result["cursor"]`), so a task that runs twice (redelivery
after a worker died) skips what was already done.
"""

import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.members.models import Membership, Role
from accounts.policy import WRITE_TICKETS, member_require
from eventlog.audit import audit_record
from eventlog.models import Job
from eventlog.outbox import outbox_emit
from saas.errors import ApiError, Forbidden, Invalid, NotFound
from saas.refs import db_id_or_none, has_nul
from saas.tenancy import current_schema
from tickets import fields as f
from tickets.access import tickets_visible_to
from tickets.models import Ticket
from tickets.services import EDITABLE_FIELDS, ticket_delete, ticket_set_status, ticket_update

logger = logging.getLogger(__name__)

SYNC_LIMIT = 100
CHUNK_SIZE = 100
MAX_FAILURES = 1000
FINISHED = (Job.Status.SUCCEEDED, Job.Status.FAILED, Job.Status.PARTIAL)
PROGRESS_FIELDS = ["status", "started_at", "processed", "succeeded", "failures", "result"]

# Fields whose value means the same for every ticket: checked once, up front.
_CONTEXT_FREE: dict[str, Callable[[Any], Any]] = {
    "priority": f.priority_resolve,
    "assignee": lambda v: f.member_user_resolve(v, field="assignee"),
    "reporter": lambda v: f.member_user_resolve(v, field="reporter"),
    "resolution": f.resolution_resolve,
    "labels": f.labels_clean,
    "due_date": lambda v: f.date_clean(v, field="due_date"),
    "story_points": f.story_points_clean,
    "original_estimate": lambda v: f.duration_clean(v, field="original_estimate"),
    "remaining_estimate": lambda v: f.duration_clean(v, field="remaining_estimate"),
}


@dataclass(frozen=True)
class ItemResult:
    ticket: str
    status: str  # ok | not_found | forbidden | invalid
    error: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"ticket": self.ticket, "status": self.status, "error": self.error}


@dataclass(frozen=True)
class BulkOutcome:
    results: list[ItemResult]

    @property
    def succeeded(self) -> int:
        return sum(1 for r in self.results if r.status == "ok")

    @property
    def failed(self) -> int:
        return len(self.results) - self.succeeded

    def as_dict(self) -> dict[str, Any]:
        return {
            "results": [r.as_dict() for r in self.results],
            "succeeded": self.succeeded,
            "failed": self.failed,
        }


def bulk_operation_clean(operation: Mapping[str, Any]) -> dict[str, Any]:
    """Check the operation itself (422 if it can succeed for no ticket) and return it in
    a stable form: users and statuses as ids, so a job means what the request meant."""
    kind = operation.get("type")

    def invalid(field: str, message: str) -> Invalid:
        return Invalid(
            "The bulk operation is invalid.",
            details=[{"field": f"operation.{field}", "message": message}],
        )

    try:
        if kind == "set_field":
            name, value = operation.get("field"), operation.get("value")
            if name not in EDITABLE_FIELDS:
                raise invalid(
                    "field", f"Unknown field {name!r}; one of: {', '.join(EDITABLE_FIELDS)}."
                )
            if not _storable(value):
                raise invalid("value", "Text must not contain NUL characters or lone surrogates.")
            if name in _CONTEXT_FREE and value is not None:
                _CONTEXT_FREE[name](value)
            return {"type": kind, "field": name, "value": value}
        if kind == "assign":
            user = f.member_user_resolve(operation.get("assignee"), field="assignee")
            return {"type": kind, "assignee": user.pk if user else None}
        if kind == "transition":
            return {"type": kind, "status": f.status_resolve(operation.get("status")).pk}
        if kind in ("add_label", "remove_label"):
            return {"type": kind, "label": f.labels_clean([operation.get("label")])[0]}
        if kind == "delete":
            return {"type": kind}
    except f.FieldError as exc:
        raise invalid(exc.field, exc.message) from exc
    raise invalid("type", f"Unknown operation {kind!r}.")


def _storable(value: Any) -> bool:
    """Whether PostgreSQL can store every string in `value`."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return not has_nul(value)
    if isinstance(value, list | tuple):
        return all(map(_storable, value))
    if isinstance(value, dict):
        return all(_storable(k) and _storable(v) for k, v in value.items())
    return True


def _refs_clean(refs: Sequence[str | int]) -> list[str]:
    """Refs as strings, upper-cased keys, duplicates dropped (first one kept)."""
    seen: dict[str, None] = {}
    for ref in refs:
        seen.setdefault(str(ref).strip().upper(), None)
    return list(seen)


def _tickets_by_ref(*, actor: Membership, refs: Sequence[str]) -> dict[str, Ticket]:
    """The visible tickets among `refs` (keys or ids), in one query."""
    refs = [r for r in refs if _storable(r)]  # no such key can exist
    pks = {r: db_id_or_none(r) for r in refs}
    found = list(
        tickets_visible_to(actor)
        .filter(
            Q(pk__in=[pk for pk in pks.values() if pk])
            | Q(key__in=[r for r in refs if pks[r] is None])
        )
        .select_related("project")
    )
    by_ref: dict[str | int, Ticket] = {t.key: t for t in found}
    by_ref.update((t.pk, t) for t in found)
    matches = {r: by_ref.get(r if pks[r] is None else pks[r] or 0) for r in refs}
    return {r: t for r, t in matches.items() if t is not None}


def _apply_one(*, ticket: Ticket, actor: Membership, operation: Mapping[str, Any]) -> None:
    kind = operation["type"]
    if kind == "set_field":
        ticket_update(ticket=ticket, actor=actor, data={operation["field"]: operation["value"]})
    elif kind == "assign":
        ticket_update(ticket=ticket, actor=actor, data={"assignee": operation["assignee"]})
    elif kind == "transition":
        ticket_set_status(ticket=ticket, actor=actor, status_ref=operation["status"])
    elif kind in ("add_label", "remove_label"):
        # Read the labels under the row lock: a concurrent edit is not lost.
        labels = list(
            Ticket.objects.select_for_update(of=("self",))
            .values_list("labels", flat=True)
            .get(pk=ticket.pk)
        )
        label = operation["label"]
        if kind == "add_label" and label not in labels:
            labels.append(label)
        elif kind == "remove_label":
            labels = [item for item in labels if item != label]
        ticket_update(ticket=ticket, actor=actor, data={"labels": labels})
    elif kind == "delete":
        ticket_delete(ticket=ticket, actor=actor)
    else:  # bulk_operation_clean let something through it should not have
        raise ValueError(f"unknown bulk operation {kind!r}")


def _item_error(ref: str, status: str, exc: ApiError | None, message: str = "") -> ItemResult:
    if exc is None:
        return ItemResult(ref, status, {"code": status, "message": message, "details": None})
    return ItemResult(
        ref, status, {"code": exc.code, "message": exc.message, "details": exc.details}
    )


def _apply_many(
    *, actor: Membership, refs: Sequence[str], operation: Mapping[str, Any]
) -> list[ItemResult]:
    """Apply to each ref in its own savepoint; the caller holds the transaction."""
    by_ref = _tickets_by_ref(actor=actor, refs=refs)
    results: list[ItemResult] = []
    for ref in refs:
        ticket = by_ref.get(ref)
        if ticket is None:
            message = f"Ticket {ref} does not exist or you cannot see it."
            results.append(_item_error(ref, "not_found", None, message))
            continue
        try:
            with transaction.atomic():
                _apply_one(ticket=ticket, actor=actor, operation=operation)
        except Ticket.DoesNotExist:  # deleted since we looked (e.g. with its parent)
            message = f"Ticket {ref} does not exist or you cannot see it."
            results.append(_item_error(ref, "not_found", None, message))
        except NotFound as exc:
            results.append(_item_error(ref, "not_found", exc))
        except Forbidden as exc:
            results.append(_item_error(ref, "forbidden", exc))
        except ApiError as exc:  # 422, and 409/412 conflicts of this one ticket
            results.append(_item_error(ref, "invalid", exc))
        else:
            results.append(ItemResult(ref, "ok"))
    return results


def tickets_bulk(
    *, actor: Membership, refs: Sequence[str | int], operation: Mapping[str, Any]
) -> BulkOutcome | Job:
    """Apply `operation` to the tickets `refs`: at once when there are up to
    `SYNC_LIMIT` of them (per-ticket results), else as a job (returned, queued)."""
    member_require(actor, WRITE_TICKETS)
    op = bulk_operation_clean(operation)
    cleaned = _refs_clean(refs)
    if len(cleaned) <= SYNC_LIMIT:
        return tickets_bulk_apply(actor=actor, refs=cleaned, operation=op)
    return bulk_job_create(actor=actor, refs=cleaned, operation=op)


@transaction.atomic
def tickets_bulk_apply(
    *, actor: Membership, refs: Sequence[str], operation: Mapping[str, Any]
) -> BulkOutcome:
    """The synchronous path: one transaction, a savepoint per ticket."""
    outcome = BulkOutcome(_apply_many(actor=actor, refs=refs, operation=operation))
    audit_record(
        actor=actor,
        action="ticket.bulk_changed",
        target_type="ticket",
        target_id="bulk",
        changes={
            "operation": [None, operation],
            "succeeded": [None, outcome.succeeded],
            "failed": [None, outcome.failed],
        },
    )
    return outcome


@transaction.atomic
def bulk_job_create(*, actor: Membership, refs: Sequence[str], operation: Mapping[str, Any]) -> Job:
    """Queue a bulk change; the task is sent after commit."""
    job = Job.objects.create(
        kind="bulk",
        created_by_id=actor.user_id,
        params={"tickets": list(refs), "operation": dict(operation)},
        total=len(refs),
        result={"cursor": 0, "failed": 0},
    )
    audit_record(
        actor=actor,
        action="job.created",
        target_type="job",
        target_id=job.pk,
        changes={"kind": [None, "bulk"], "total": [None, job.total]},
    )
    schema_name, job_id = current_schema(), str(job.pk)

    def enqueue() -> None:
        from tickets.tasks import bulk_job_run

        bulk_job_run.delay(schema_name, job_id)

    transaction.on_commit(enqueue)
    return job


def bulk_job_process(*, job_id: str, chunk_size: int = CHUNK_SIZE) -> Job | None:
    """Run (or resume) a bulk job chunk by chunk. Safe to call twice, even at once:
    each chunk locks the job row and continues from its stored cursor. An unexpected
    error fails the job (the chunks before it stay done)."""
    try:
        return _bulk_job_chunks(job_id=job_id, chunk_size=chunk_size)
    except Exception:
        logger.exception("bulk job %s failed", job_id)
        with transaction.atomic():
            job = Job.objects.select_for_update().filter(pk=job_id).first()
            if job is not None and job.status not in FINISHED:
                message = "An internal error stopped the job; the tickets before it were changed."
                _job_finish(job, now=timezone.now(), error=message)
        return job


def _bulk_job_chunks(*, job_id: str, chunk_size: int) -> Job | None:
    while True:
        with transaction.atomic():
            job = Job.objects.select_for_update().filter(pk=job_id, kind="bulk").first()
            if job is None or job.status in FINISHED:
                return job
            now = timezone.now()
            if job.status == Job.Status.QUEUED:
                job.status, job.started_at = Job.Status.RUNNING, now
            cursor = int(job.result.get("cursor", 0))
            refs: list[str] = job.params["tickets"]
            actor = (
                Membership.objects.select_related("user")
                .filter(user_id=job.created_by_id or 0, is_active=True)
                .first()
            )
            if actor is None:
                _job_finish(job, now=now, error="The member who started this job is inactive.")
                return job
            chunk = refs[cursor : cursor + chunk_size]
            if chunk:
                results = _apply_many(actor=actor, refs=chunk, operation=job.params["operation"])
                _job_advance(job, results)
            if not chunk or job.processed >= job.total:
                _job_finish(job, now=now)
                audit_record(
                    actor=actor,
                    action="ticket.bulk_changed",
                    target_type="job",
                    target_id=job.pk,
                    changes={
                        "operation": [None, job.params["operation"]],
                        "succeeded": [None, job.succeeded],
                        "failed": [None, job.result.get("failed", 0)],
                    },
                )
                return job
            job.save(update_fields=PROGRESS_FIELDS)


def _job_advance(job: Job, results: Sequence[ItemResult]) -> None:
    failed = [r for r in results if r.status != "ok"]
    room = max(0, MAX_FAILURES - len(job.failures))
    job.failures = [
        *job.failures,
        *(
            {
                "item": r.ticket,
                "code": r.status,
                "message": (r.error or {}).get("message", ""),
                "details": (r.error or {}).get("details"),
            }
            for r in failed[:room]
        ),
    ]
    job.processed += len(results)
    job.succeeded += len(results) - len(failed)
    job.result = {
        **job.result,
        "cursor": int(job.result.get("cursor", 0)) + len(results),
        "failed": int(job.result.get("failed", 0)) + len(failed),
    }


def _job_finish(job: Job, *, now: Any, error: str = "") -> None:
    """Set the final status (in the caller's transaction) and announce it."""
    failed = int(job.result.get("failed", 0))
    if error:
        job.status, job.error = Job.Status.FAILED, error
    elif failed == 0:
        job.status = Job.Status.SUCCEEDED
    else:
        job.status = Job.Status.PARTIAL if job.succeeded else Job.Status.FAILED
    job.finished_at = now
    job.started_at = job.started_at or now
    job.save(update_fields=[*PROGRESS_FIELDS, "error", "finished_at"])
    outbox_emit(
        "job.finished",
        aggregate_type="job",
        aggregate_id=job.pk,
        payload={
            "job_id": str(job.pk),
            "kind": job.kind,
            "status": job.status,
            "created_by": job.created_by_id,
        },
    )


def job_get_for_user(*, member: Membership, job_id: str) -> Job:
    """A job its creator or a tenant admin may see; 404 otherwise (also for bad ids)."""
    try:
        pk = uuid.UUID(str(job_id))
    except ValueError:
        pk = None
    job = Job.objects.filter(pk=pk).first() if pk else None
    if job is None or (member.role != Role.ADMIN and job.created_by_id != member.user_id):
        raise NotFound("This job does not exist or you cannot see it.", code="job_not_found")
    return job


def job_as_dict(job: Job) -> dict[str, Any]:
    result = dict(job.result or {})
    failed = int(result.pop("failed", len(job.failures)))
    result.pop("cursor", None)
    return {
        "id": str(job.pk),
        "kind": job.kind,
        "status": job.status,
        "total": job.total,
        "processed": job.processed,
        "succeeded": job.succeeded,
        "failed": failed,
        "failures": job.failures,
        "error": job.error,
        "result": result,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
    }
