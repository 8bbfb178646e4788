"""Bulk changes of tickets, the jobs that run long operations, and JSON import."""

from django.core.exceptions import RequestDataTooBig
from django.http import JsonResponse
from ninja import Field, Query, Router, Schema

from accounts.authentication import AuthedRequest
from accounts.policy import ADMIN_TENANT, member_require
from eventlog.models import Job
from saas.errors import ApiError, BadRequest
from saas.idempotency import idempotent
from tickets import bulk, importer
from tickets.bulk_schemas import (
    BulkIn,
    BulkOut,
    ImportOut,
    JobAcceptedOut,
    JobOut,
    errors,
)

router = Router(tags=["bulk, jobs and import"])


class PayloadTooLarge(ApiError):
    status = 413
    code = "payload_too_large"


def _accepted(job: Job) -> dict[str, str]:
    return {"job_id": str(job.pk), "status_url": f"/api/v1/jobs/{job.pk}"}


@router.post(
    "/tickets/bulk",
    response={200: BulkOut, 202: JobAcceptedOut, **errors(401, 403, 409, 422)},
)
def tickets_bulk_post(request: AuthedRequest, body: BulkIn):
    """Apply one operation to many tickets (keys or ids).

    Operations: `set_field` (`field`, `value`: any field a ticket edit takes), `assign`
    (`assignee`), `transition` (`status`), `add_label` / `remove_label` (`label`) and
    `delete`. An operation that can succeed for no ticket (unknown field, status or
    member) is refused with 422 before anything changes.

    Up to 100 tickets are changed at once, in one transaction with a savepoint per
    ticket; each gets a result: `ok`, `not_found` (you cannot see it), `forbidden`
    (you may not change it) or `invalid` (with the error). More tickets (up to 10,000)
    run as a job: 202 with its `status_url`. Send `Idempotency-Key` to make retries safe.
    """
    member = request.member  # type: ignore[attr-defined]

    def run() -> tuple[int, dict, dict[str, str]]:
        outcome = bulk.tickets_bulk(
            actor=member, refs=body.tickets, operation=body.operation.model_dump()
        )
        if isinstance(outcome, Job):
            accepted = _accepted(outcome)
            return 202, accepted, {"Location": accepted["status_url"]}
        return 200, outcome.as_dict(), {}

    return idempotent(request, run)


@router.get("/jobs/{jobId}", response={200: JobOut, **errors(401, 404)})
def job_get(request: AuthedRequest, jobId: str):
    """A job's progress: status, total, processed, succeeded, failures (at most 1000
    listed; `failed` counts them all) and times. Its creator and tenant admins see it."""
    job = bulk.job_get_for_user(member=request.member, job_id=jobId)  # type: ignore[attr-defined]
    return bulk.job_as_dict(job)


class ImportParams(Schema):
    strict: bool = Field(False, description="Refuse unknown statuses, issue types and priorities.")
    run_as_job: bool = Field(
        False, alias="async", description="Run as a job even when small (202)."
    )


IMPORT_BODY = {
    "required": True,
    "description": "The import document, as a JSON body or as the `file` of a form.",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {
                    name: {"type": "array", "items": {"type": "object"}}
                    for name in ("users", "projects", "custom_fields", "tickets")
                },
            }
        },
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {"file": {"type": "string", "format": "binary"}},
                "required": ["file"],
            }
        },
    },
}


def _import_raw(request: AuthedRequest) -> bytes:
    if request.content_type == "multipart/form-data":
        upload = request.FILES.get("file")
        if upload is None:
            raise BadRequest("Send the import as the form field `file`.")
        return upload.read()
    try:
        return request.body
    except RequestDataTooBig as exc:
        raise PayloadTooLarge(
            "The body is too large for a JSON request; upload it as the form field `file`."
        ) from exc


@router.post(
    "/import",
    response={200: ImportOut, 202: JobAcceptedOut, **errors(400, 401, 403, 409, 413, 422)},
    openapi_extra={"requestBody": IMPORT_BODY},
)
def import_post(request: AuthedRequest, params: Query[ImportParams]):
    """Import users, projects, custom fields and tickets (tenant admins).

    The whole document is validated first; if anything is wrong, nothing is written and
    the answer is 422 with every problem as `{index, section, field, message}` (the
    first 1000). Ticket keys, timestamps, comments and history are kept; missing
    statuses, issue types, priorities, components and versions are created (with
    `strict=true` unknown statuses, types and priorities are errors instead). Up to
    1000 tickets are imported in the request (200 with the counts); bigger imports, or
    `async=true`, run as a job (202 with its `status_url`).
    """
    member = request.member  # type: ignore[attr-defined]
    member_require(member, ADMIN_TENANT)  # before reading a possibly big body
    raw = _import_raw(request)

    def run() -> tuple[int, dict, dict[str, str]]:
        outcome = importer.import_submit(
            actor=member, raw=raw, strict=params.strict, force_job=params.run_as_job
        )
        if isinstance(outcome, Job):
            accepted = _accepted(outcome)
            return 202, accepted, {"Location": accepted["status_url"]}
        return 200, {"status": "succeeded", "counts": outcome}, {}

    if request.content_type != "multipart/form-data":
        return idempotent(request, run)
    # Idempotency-Key covers JSON bodies only: an upload's body is not kept in memory.
    status, payload, headers = run()
    response = JsonResponse(payload, status=status)
    for name, value in headers.items():
        response[name] = value
    return response
