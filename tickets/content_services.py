"""Writes on comments and attachments.

Each write is one database transaction that records ticket history, an audit entry and
an outbox event. Attachment bytes go to storage *before* that transaction opens (no row
locks or pooled connection held during a slow upload) and are deleted again if the
transaction fails; deleted attachments lose their object after commit.
"""

import codecs
import hashlib
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import filetype
from django.core.files import File
from django.db import transaction
from django.db.models.functions import Lower
from django.utils import timezone

from accounts.members.models import Membership
from eventlog.audit import audit_record
from eventlog.outbox import outbox_emit
from eventlog.record import change_record
from saas.errors import ApiError, Forbidden, Invalid, NotFound
from saas.tenancy import current_schema
from tickets.access import project_can_administer, project_require_write, tickets_visible_to
from tickets.content_selectors import attachment_max_bytes
from tickets.history import FieldChange, history_record
from tickets.models import Attachment, Comment, Ticket, Watcher
from tickets.storage import (
    attachment_key_new,
    attachment_object_delete,
    attachment_storage,
)

COMMENT_MAX_CHARS = 32768
MAX_MENTIONS = 50
MAX_FILES_PER_UPLOAD = 20
FILENAME_MAX_CHARS = 200
# ext4 and most file systems cap one path component at 255 bytes.
FILENAME_MAX_BYTES = 255
SNIFF_BYTES = 8192
# `@name` where name follows the username alphabet ([\w.@+-]); not inside addresses.
MENTION_RE = re.compile(r"(?<![\w.@+-])@([\w.+-][\w.@+-]{0,149})")
FILENAME_RESERVED = re.compile(r'[<>:"/\\|?*]')
WINDOWS_DEVICES = re.compile(r"^(con|prn|aux|nul|com\d|lpt\d)(\..*)?$", re.IGNORECASE)


class PayloadTooLarge(ApiError):
    status = 413
    code = "payload_too_large"


# ---------------------------------------------------------------- comments


def _body_clean(body: Any) -> str:
    if not isinstance(body, str) or not body.strip():
        raise Invalid("A comment needs some text.", details=[{"field": "body"}])
    if len(body) > COMMENT_MAX_CHARS:
        raise Invalid(
            f"A comment has at most {COMMENT_MAX_CHARS} characters.",
            details=[{"field": "body", "max_length": COMMENT_MAX_CHARS}],
        )
    if "\x00" in body:
        raise Invalid("A comment cannot contain NUL characters.", details=[{"field": "body"}])
    return body


def _mention_candidates(body: str) -> list[tuple[str, ...]]:
    """Per `@word`, the usernames it may mean: as written, then without trailing
    punctuation (`@ana.` at the end of a sentence means ana)."""
    found: list[tuple[str, ...]] = []
    for word in MENTION_RE.findall(body):
        trimmed = word.rstrip(".@+-")
        options = tuple(dict.fromkeys(w.lower() for w in (word, trimmed) if w))
        if options and options not in found:
            found.append(options)
    return found


def mentions_resolve(*, body: str, ticket: Ticket) -> list[int]:
    """Identity ids of the active members of this tenant that `body` @mentions and that
    can see `ticket`, in order of first mention; unknown words stay plain text."""
    candidates = _mention_candidates(body)[: MAX_MENTIONS * 2]
    if not candidates:
        return []
    names = {name for options in candidates for name in options}
    members = {
        m.user.username.lower(): m
        for m in Membership.objects.select_related("user")
        .annotate(username_lower=Lower("user__username"))
        .filter(is_active=True, user__is_active=True, username_lower__in=names)
    }
    resolved: list[int] = []
    for options in candidates:
        member = next((members[name] for name in options if name in members), None)
        if member is None or member.user_id in resolved:
            continue
        if tickets_visible_to(member).filter(pk=ticket.pk).exists():
            resolved.append(member.user_id)
        if len(resolved) == MAX_MENTIONS:
            break
    return resolved


def _ticket_touch(ticket: Ticket, now: Any) -> None:
    # Comment and attachment activity counts as an update of the ticket (as in Jira),
    # without bumping the version: field edits in flight must not get 412 for it.
    Ticket.objects.filter(pk=ticket.pk).update(updated_at=now)


def _require_author_or_admin(*, owner_id: int | None, actor: Membership, ticket: Ticket) -> None:
    project_require_write(member=actor, project=ticket.project)
    if owner_id != actor.user_id and not project_can_administer(
        member=actor, project=ticket.project
    ):
        raise Forbidden("Only its author or a project administrator can change this.")


@transaction.atomic
def comment_create(*, ticket: Ticket, actor: Membership, body: str) -> Comment:
    """Add a comment; the author starts watching the ticket."""
    project_require_write(member=actor, project=ticket.project)
    body = _body_clean(body)
    mentions = mentions_resolve(body=body, ticket=ticket)
    now = timezone.now()
    comment = Comment.objects.create(
        ticket=ticket,
        author_id=actor.user_id,
        body=body,
        mentions=mentions,
        created_at=now,
        updated_at=now,
    )
    _ticket_touch(ticket, now)
    Watcher.objects.bulk_create(
        [Watcher(ticket=ticket, user_id=actor.user_id)], ignore_conflicts=True
    )
    history_record(
        ticket=ticket,
        actor=actor,
        changes=[FieldChange("comment", None, str(comment.pk), None, comment.pk)],
        at=now,
    )
    audit_record(
        actor=actor,
        action="comment.created",
        target_type="comment",
        target_id=comment.pk,
        changes={"ticket": [None, ticket.key], "mentions": [None, mentions]},
    )
    outbox_emit(
        "comment.created",
        aggregate_type="ticket",
        aggregate_id=ticket.pk,
        actor=actor,
        payload={"key": ticket.key, "comment_id": comment.pk, "mentions": mentions},
    )
    return comment


@transaction.atomic
def comment_update(*, comment: Comment, actor: Membership, body: str) -> Comment:
    """Replace a comment's text (its author or a project administrator); history keeps
    the previous text."""
    ticket = comment.ticket
    locked = Comment.objects.select_for_update().get(pk=comment.pk)
    _require_author_or_admin(owner_id=locked.author_id, actor=actor, ticket=ticket)
    body = _body_clean(body)
    if body == locked.body:
        return locked
    old_body, old_mentions = locked.body, list(locked.mentions)
    now = timezone.now()
    locked.body = body
    locked.mentions = mentions_resolve(body=body, ticket=ticket)
    locked.edited_at = locked.updated_at = now
    locked.save(update_fields=["body", "mentions", "edited_at", "updated_at"])
    _ticket_touch(ticket, now)
    history_record(
        ticket=ticket,
        actor=actor,
        changes=[FieldChange("comment", old_body, body, locked.pk, locked.pk)],
        at=now,
    )
    audit_record(
        actor=actor,
        action="comment.updated",
        target_type="comment",
        target_id=locked.pk,
        changes={
            "body_chars": [len(old_body), len(body)],
            "mentions": [old_mentions, locked.mentions],
        },
    )
    outbox_emit(
        "comment.updated",
        aggregate_type="ticket",
        aggregate_id=ticket.pk,
        actor=actor,
        payload={
            "key": ticket.key,
            "comment_id": locked.pk,
            "mentions": locked.mentions,
            "new_mentions": [uid for uid in locked.mentions if uid not in old_mentions],
        },
    )
    return locked


@transaction.atomic
def comment_delete(*, comment: Comment, actor: Membership) -> None:
    """Delete a comment (its author or a project administrator); history keeps the text."""
    ticket = comment.ticket
    locked = Comment.objects.select_for_update().filter(pk=comment.pk).first()
    if locked is None:
        raise NotFound("No such comment on this ticket.", code="comment_not_found")
    _require_author_or_admin(owner_id=locked.author_id, actor=actor, ticket=ticket)
    locked_id = locked.pk
    locked.delete()
    now = timezone.now()
    _ticket_touch(ticket, now)
    history_record(
        ticket=ticket,
        actor=actor,
        changes=[FieldChange("comment", locked.body, None, locked_id, None)],
        at=now,
    )
    audit_record(
        actor=actor,
        action="comment.deleted",
        target_type="comment",
        target_id=locked_id,
        changes={"ticket": [ticket.key, None], "author": [locked.author_id, None]},
    )
    outbox_emit(
        "comment.deleted",
        aggregate_type="ticket",
        aggregate_id=ticket.pk,
        actor=actor,
        payload={"key": ticket.key, "comment_id": locked_id},
    )


# ---------------------------------------------------------------- attachments


def attachment_filename_clean(name: str | None) -> str:
    """A file name safe on every file system and in an object key: no path, no control
    or format characters (no bidi tricks), no reserved characters, unicode letters kept,
    at most 200 characters (and 255 UTF-8 bytes), extension kept; never empty."""
    text = unicodedata.normalize("NFC", str(name or ""))
    text = text.replace("\\", "/").rsplit("/", 1)[-1]
    text = "".join(ch for ch in text if not unicodedata.category(ch).startswith("C"))
    text = FILENAME_RESERVED.sub("_", text)
    text = " ".join(text.split()).strip(". ")
    if not text:
        return "file"
    if WINDOWS_DEVICES.match(text):
        text = f"_{text}"
    stem, dot, ext = text.rpartition(".")
    if not dot or not stem or len(ext) > 16:
        stem, dot, ext = text, "", ""
    suffix = f"{dot}{ext}"
    while len(stem) + len(suffix) > FILENAME_MAX_CHARS or (
        len((stem + suffix).encode()) > FILENAME_MAX_BYTES
    ):
        stem = stem[:-1]
    return (stem.rstrip(". ") or "file") + suffix


def _original_filename(name: str | None) -> str:
    # Kept for reference only; PostgreSQL text cannot hold NUL.
    return "".join(ch for ch in str(name or "") if ch != "\x00")[:255]


def content_type_sniff(head: bytes) -> str:
    """The media type told by the bytes, never by the client: a known signature, else
    UTF-8 text, else opaque binary."""
    if not head:
        return "application/octet-stream"
    kind = filetype.guess(head)
    if kind is not None:
        return str(kind.mime)
    if b"\x00" not in head:
        try:
            # final=False: the sample may end in the middle of a multi-byte character
            codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
        except UnicodeDecodeError:
            pass
        else:
            return "text/plain"
    return "application/octet-stream"


@dataclass
class _Scanned:
    size: int
    checksum_sha256: str
    content_type: str


def _scan(upload: File, *, max_bytes: int) -> _Scanned:
    """One streaming pass: size, SHA-256 and the first bytes for sniffing."""
    digest = hashlib.sha256()
    head = b""
    size = 0
    for chunk in upload.chunks():
        size += len(chunk)
        if size > max_bytes:  # the declared size may lie
            raise _too_large(upload, max_bytes)
        digest.update(chunk)
        if len(head) < SNIFF_BYTES:
            head += chunk[: SNIFF_BYTES - len(head)]
    return _Scanned(
        size=size, checksum_sha256=digest.hexdigest(), content_type=content_type_sniff(head)
    )


def _too_large(upload: File, max_bytes: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"Attachments are limited to {max_bytes} bytes each.",
        details={"max_bytes": max_bytes, "filename": _original_filename(upload.name)},
    )


def attachments_add(
    *, ticket: Ticket, actor: Membership, files: Sequence[File]
) -> list[Attachment]:
    """Attach files to a ticket: sniffed type, sanitized name, SHA-256, tenant-scoped key.
    All or nothing: a failure removes whatever was already stored."""
    project_require_write(member=actor, project=ticket.project)
    if not files:
        raise Invalid("Send at least one file in the multipart field `file`.")
    if len(files) > MAX_FILES_PER_UPLOAD:
        raise Invalid(f"At most {MAX_FILES_PER_UPLOAD} files per request.")
    max_bytes = attachment_max_bytes()
    for upload in files:
        if upload.size is not None and upload.size > max_bytes:
            raise _too_large(upload, max_bytes)
    storage = attachment_storage()
    stored: list[str] = []
    try:
        rows = []
        for upload in files:
            scanned = _scan(upload, max_bytes=max_bytes)
            filename = attachment_filename_clean(upload.name)
            content = File(upload, name=filename)
            content.content_type = scanned.content_type  # type: ignore[attr-defined]
            key = storage.save(
                attachment_key_new(schema_name=current_schema(), filename=filename),
                content,
            )
            stored.append(key)
            rows.append(
                Attachment(
                    ticket=ticket,
                    filename=filename,
                    original_filename=_original_filename(upload.name),
                    content_type=scanned.content_type,
                    size=scanned.size,
                    checksum_sha256=scanned.checksum_sha256,
                    storage_key=key,
                    uploader_id=actor.user_id,
                )
            )
        attachments = _attachments_record(ticket=ticket, actor=actor, rows=rows)
    except BaseException:
        for key in stored:
            attachment_object_delete(storage=storage, key=key)
        raise
    for attachment in attachments:
        attachment.uploader = actor.user
    return attachments


@transaction.atomic
def _attachments_record(
    *, ticket: Ticket, actor: Membership, rows: list[Attachment]
) -> list[Attachment]:
    attachments = Attachment.objects.bulk_create(rows)
    now = timezone.now()
    _ticket_touch(ticket, now)
    history_record(
        ticket=ticket,
        actor=actor,
        changes=[FieldChange("attachment", None, a.filename, None, a.pk) for a in attachments],
        at=now,
    )
    change_record(
        "attachment.created",
        actor=actor,
        target_type="ticket",
        target_id=ticket.key,
        changes={"attachments": [None, [a.pk for a in attachments]]},
        payload={
            "key": ticket.key,
            "attachments": [
                {"id": a.pk, "filename": a.filename, "size": a.size} for a in attachments
            ],
        },
        aggregate_id=ticket.pk,
    )
    return attachments


@transaction.atomic
def attachment_delete(*, attachment: Attachment, actor: Membership) -> None:
    """Remove an attachment (its uploader or a project administrator); the stored object
    is deleted after commit."""
    ticket = attachment.ticket
    _require_author_or_admin(owner_id=attachment.uploader_id, actor=actor, ticket=ticket)
    deleted, _ = Attachment.objects.filter(pk=attachment.pk).delete()
    if not deleted:
        raise NotFound("No such attachment on this ticket.", code="attachment_not_found")
    now = timezone.now()
    _ticket_touch(ticket, now)
    history_record(
        ticket=ticket,
        actor=actor,
        changes=[FieldChange("attachment", attachment.filename, None, attachment.pk, None)],
        at=now,
    )
    change_record(
        "attachment.deleted",
        actor=actor,
        target_type="ticket",
        target_id=ticket.key,
        changes={"attachment": [attachment.filename, None]},
        payload={
            "key": ticket.key,
            "attachment_id": attachment.pk,
            "storage_key": attachment.storage_key,
        },
        aggregate_id=ticket.pk,
    )
    storage, key = attachment_storage(), attachment.storage_key
    transaction.on_commit(lambda: attachment_object_delete(storage=storage, key=key))
