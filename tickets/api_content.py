"""Comments and attachments of tickets.

Uploads are `multipart/form-data` with one or several parts named `file`. The body is
read only after the ticket was found and write access checked, and reading stops as
soon as a file passes the workspace's attachment limit (413).
"""

import contextlib
import unicodedata
from typing import Any
from urllib.parse import quote

from django.core.exceptions import SuspiciousOperation
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.http import (
    FileResponse,
    HttpRequest,
    HttpResponseRedirect,
    UnreadablePostError,
)
from django.http.multipartparser import MultiPartParserError
from django.http.response import HttpResponseBase
from ninja import Router, Status
from ninja.pagination import paginate

from accounts.authentication import AuthedRequest
from saas.errors import ApiError, BadRequest, Invalid, NotFound
from saas.idempotency import idempotent
from saas.pagination import Page
from tickets import content_selectors as selectors
from tickets import content_services as services
from tickets.access import project_require_write, ticket_get_for_user
from tickets.content_schemas import AttachmentOut, CommentIn, CommentOut
from tickets.storage import attachment_download_url, attachment_storage, storage_is_local

router = Router(tags=["comments and attachments"])

UPLOAD_FIELD = "file"
# Room for multipart boundaries and part headers on top of the files themselves.
MULTIPART_OVERHEAD = 1024 * 1024


class UnsupportedMediaType(ApiError):
    status = 415
    code = "unsupported_media_type"


# ---------------------------------------------------------------- comments


def _comment_out(ticket: Any, comment_id: int) -> dict[str, Any]:
    comment = selectors.comment_get_for_ticket(ticket=ticket, comment_id=comment_id)
    return CommentOut.from_orm(comment).model_dump(mode="json")


@router.get("/tickets/{ticketId}/comments", response=list[CommentOut])
@paginate(Page)
def comments_list(request: AuthedRequest, ticketId: str):
    """Comments of a ticket, oldest first, with Markdown rendered to safe HTML."""
    ticket = ticket_get_for_user(member=request.member, ref=ticketId)
    return selectors.comments_of_ticket(ticket=ticket)


@router.post("/tickets/{ticketId}/comments", response={201: CommentOut})
def comment_post(request: AuthedRequest, ticketId: str, body: CommentIn):
    """Comment on a ticket. `@username` mentions active members who can see the ticket.
    Send `Idempotency-Key` to make retries safe."""
    ticket = ticket_get_for_user(member=request.member, ref=ticketId)

    def create() -> tuple[int, Any, dict[str, str]]:
        comment = services.comment_create(ticket=ticket, actor=request.member, body=body.body)
        return 201, _comment_out(ticket, comment.pk), {}

    return idempotent(request, create)


@router.put("/tickets/{ticketId}/comments/{commentId}", response=CommentOut)
def comment_put(request: AuthedRequest, ticketId: str, commentId: int, body: CommentIn):
    """Edit a comment (its author or a project administrator); the history keeps the
    previous text."""
    ticket = ticket_get_for_user(member=request.member, ref=ticketId)
    comment = selectors.comment_get_for_ticket(ticket=ticket, comment_id=commentId)
    comment = services.comment_update(comment=comment, actor=request.member, body=body.body)
    return selectors.comment_get_for_ticket(ticket=ticket, comment_id=comment.pk)


@router.delete("/tickets/{ticketId}/comments/{commentId}", response={204: None})
def comment_del(request: AuthedRequest, ticketId: str, commentId: int):
    """Delete a comment (its author or a project administrator); the history keeps the
    text."""
    ticket = ticket_get_for_user(member=request.member, ref=ticketId)
    comment = selectors.comment_get_for_ticket(ticket=ticket, comment_id=commentId)
    services.comment_delete(comment=comment, actor=request.member)
    return Status(204, None)


# ---------------------------------------------------------------- attachments


class _UploadLimit(FileUploadHandler):
    """Counts the bytes of each file while Django parses the multipart body and stops
    reading as soon as a file passes the limit or too many files arrive."""

    def __init__(self, request: HttpRequest, *, max_bytes: int, max_files: int) -> None:
        super().__init__(request)
        self.max_bytes = max_bytes
        self.max_files = max_files
        self.files = 0
        self.exceeded: str | None = None

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        super().new_file(*args, **kwargs)
        self.files += 1
        if self.files > self.max_files:
            self.exceeded = "count"
            raise StopUpload(connection_reset=True)

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        if start + len(raw_data) > self.max_bytes:
            self.exceeded = "size"
            raise StopUpload(connection_reset=True)
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None


def _uploads(request: AuthedRequest) -> list[Any]:
    """The uploaded files, read under the workspace's limit."""
    if request.content_type != "multipart/form-data":
        raise UnsupportedMediaType(
            f"Send the files as multipart/form-data in the field `{UPLOAD_FIELD}`."
        )
    max_bytes = selectors.attachment_max_bytes()
    max_files = services.MAX_FILES_PER_UPLOAD
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > max_bytes * max_files + MULTIPART_OVERHEAD:
        raise services.PayloadTooLarge(
            f"Attachments are limited to {max_bytes} bytes each.", details={"max_bytes": max_bytes}
        )
    limit = _UploadLimit(request, max_bytes=max_bytes, max_files=max_files)
    # Already parsed when a session's CSRF check read POST: the service checks sizes then.
    with contextlib.suppress(AttributeError):
        request.upload_handlers = [limit, *request.upload_handlers]
    try:
        files = request.FILES.getlist(UPLOAD_FIELD)
    except (MultiPartParserError, SuspiciousOperation, UnreadablePostError) as exc:
        raise BadRequest("The multipart body could not be read.") from exc
    if limit.exceeded == "size":
        raise services.PayloadTooLarge(
            f"Attachments are limited to {max_bytes} bytes each.", details={"max_bytes": max_bytes}
        )
    if limit.exceeded == "count":
        raise Invalid(f"At most {max_files} files per request.")
    return files


@router.get("/tickets/{ticketId}/attachments", response=list[AttachmentOut])
@paginate(Page)
def attachments_list(request: AuthedRequest, ticketId: str):
    """Attachments of a ticket, oldest first."""
    ticket = ticket_get_for_user(member=request.member, ref=ticketId)
    return selectors.attachments_of_ticket(ticket=ticket)


@router.post(
    "/tickets/{ticketId}/attachments",
    response={201: list[AttachmentOut]},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": [UPLOAD_FIELD],
                        "properties": {
                            UPLOAD_FIELD: {
                                "type": "array",
                                "items": {"type": "string", "format": "binary"},
                            }
                        },
                    }
                }
            },
        }
    },
)
def attachments_post(request: AuthedRequest, ticketId: str):
    """Attach one or several files (multipart field `file`, repeated). The content type
    is sniffed from the bytes; each file may be at most the workspace's limit (413)."""
    ticket = ticket_get_for_user(member=request.member, ref=ticketId)
    project_require_write(member=request.member, project=ticket.project)
    files = _uploads(request)
    attachments = services.attachments_add(ticket=ticket, actor=request.member, files=files)
    return Status(201, attachments)


@router.delete("/tickets/{ticketId}/attachments/{attachmentId}", response={204: None})
def attachment_del(request: AuthedRequest, ticketId: str, attachmentId: int):
    """Delete an attachment (its uploader or a project administrator)."""
    ticket = ticket_get_for_user(member=request.member, ref=ticketId)
    attachment = selectors.attachment_get_for_ticket(ticket=ticket, attachment_id=attachmentId)
    services.attachment_delete(attachment=attachment, actor=request.member)
    return Status(204, None)


def content_disposition(filename: str) -> str:
    """`attachment` with an ASCII fallback and the exact name as RFC 5987 `filename*`."""
    ascii_name = unicodedata.normalize("NFKD", filename).encode("ascii", "ignore").decode()
    ascii_name = (
        "".join(ch if ch.isprintable() and ch not in '"\\' else "_" for ch in ascii_name).strip()
        or "download"
    )
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"


def _served_type(content_type: str) -> str:
    return f"{content_type}; charset=utf-8" if content_type == "text/plain" else content_type


@router.get(
    "/attachments/{attachmentId}/download",
    response={200: None, 302: None},
    openapi_extra={
        "responses": {
            200: {
                "description": "The file (local storage).",
                "content": {
                    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
                },
            },
            302: {"description": "A presigned URL valid for 60 seconds (object storage)."},
        }
    },
)
def attachment_download(request: AuthedRequest, attachmentId: int) -> HttpResponseBase:
    """Download an attachment: the file itself from local storage, or a redirect to a
    short-lived presigned URL from object storage."""
    attachment = selectors.attachment_get_for_user(
        member=request.member, attachment_id=attachmentId
    )
    disposition = content_disposition(attachment.filename)
    content_type = _served_type(attachment.content_type)
    storage = attachment_storage()
    response: HttpResponseBase
    if storage_is_local(storage):
        try:
            handle = storage.open(attachment.storage_key, "rb")
        except OSError as exc:
            raise NotFound("The file of this attachment is missing.") from exc
        response = FileResponse(handle, content_type=content_type)
        response["Content-Disposition"] = disposition
    else:
        response = HttpResponseRedirect(
            attachment_download_url(
                storage=storage,
                key=attachment.storage_key,
                content_disposition=disposition,
                content_type=content_type,
            )
        )
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private, no-store"
    return response
