"""Reads of comments and attachments, always through a ticket the member may see.

`comment_get_for_ticket`, `attachment_get_for_ticket` and `attachment_get_for_user`
are the access functions of these types: anything the member may not see answers 404.
"""

from typing import Any

import markdown  # type: ignore[import-untyped]
import nh3
from django.contrib.postgres.expressions import ArraySubquery
from django.db import connection
from django.db.models import BooleanField, F, Func, OuterRef, QuerySet
from django.db.models.functions import JSONObject

from accounts.members.models import Membership
from accounts.models import User
from saas.errors import NotFound
from saas.refs import db_id_valid
from saas.tenancy import current_schema
from tenants.models import Tenant
from tickets.access import tickets_visible_to
from tickets.models import Attachment, Comment, Ticket

# What a rendered comment may contain: formatting and links, no images (tracking
# pixels), no styles, no scripts. nh3 (ammonia) also forces rel=noopener on links.
HTML_TAGS = {
    "a",
    "b",
    "blockquote",
    "br",
    "code",
    "del",
    "em",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "i",
    "li",
    "ol",
    "p",
    "pre",
    "strong",
    "table",
    "tbody",
    "td",
    "th",
    "thead",
    "tr",
    "ul",
}
HTML_ATTRIBUTES = {"a": {"href", "title"}, "td": {"align"}, "th": {"align"}}
URL_SCHEMES = {"http", "https", "mailto"}
MARKDOWN_EXTENSIONS = ["fenced_code", "tables", "sane_lists", "nl2br"]


def comment_body_html(body: str) -> str:
    """The comment's Markdown rendered to HTML that is safe to insert into a page."""
    html = markdown.markdown(body, extensions=MARKDOWN_EXTENSIONS, output_format="html")
    return nh3.clean(
        html,
        tags=HTML_TAGS,
        attributes=HTML_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
    )


def _db_id(value: int) -> int | None:
    return value if db_id_valid(value) else None


class _EqualsAny(Func):
    """`<value> = ANY(<array>)`: PostgreSQL answers it with an index lookup per element
    (Django would wrap a right-hand `ANY(...)` of a lookup in parentheses)."""

    template = "%(expressions)s)"
    arg_joiner = " = ANY("
    output_field = BooleanField()


def comments_of_ticket(*, ticket: Ticket) -> QuerySet[Comment]:
    """Oldest first, with the author and the mentioned identities in the same query."""
    mentioned = (
        User.objects.filter(_EqualsAny(F("pk"), OuterRef("mentions")))
        .order_by("pk")
        .values(
            json=JSONObject(
                id="id",
                username="username",
                display_name="display_name",
                first_name="first_name",
                last_name="last_name",
            )
        )
    )
    return (
        Comment.objects.filter(ticket=ticket)
        .select_related("author")
        .annotate(mentioned_users=ArraySubquery(mentioned))
        .order_by("created_at", "id")
    )


def comment_mentioned_users(comment: Comment) -> list[User]:
    """The mentioned identities in the order they were mentioned (unsaved `User`s built
    from the `mentioned_users` annotation of `comments_of_ticket`)."""
    by_id = {row["id"]: row for row in getattr(comment, "mentioned_users", None) or []}
    return [User(**by_id[uid]) for uid in comment.mentions if uid in by_id]


def comment_get_for_ticket(*, ticket: Ticket, comment_id: int) -> Comment:
    """A comment of a ticket the caller already may see; 404 otherwise."""
    pk = _db_id(comment_id)
    comment = comments_of_ticket(ticket=ticket).filter(pk=pk).first() if pk is not None else None
    if comment is None:
        raise NotFound("No such comment on this ticket.", code="comment_not_found")
    comment.ticket = ticket
    return comment


def attachments_of_ticket(*, ticket: Ticket) -> QuerySet[Attachment]:
    return (
        Attachment.objects.filter(ticket=ticket)
        .select_related("uploader")
        .order_by("created_at", "id")
    )


def attachment_get_for_ticket(*, ticket: Ticket, attachment_id: int) -> Attachment:
    """An attachment of a ticket the caller already may see; 404 otherwise."""
    pk = _db_id(attachment_id)
    attachment = (
        attachments_of_ticket(ticket=ticket).filter(pk=pk).first() if pk is not None else None
    )
    if attachment is None:
        raise NotFound("No such attachment on this ticket.", code="attachment_not_found")
    attachment.ticket = ticket
    return attachment


def attachment_get_for_user(*, member: Membership, attachment_id: int) -> Attachment:
    """An attachment on a ticket the member may see; 404 otherwise (one query)."""
    pk = _db_id(attachment_id)
    attachment = (
        Attachment.objects.filter(pk=pk, ticket__in=tickets_visible_to(member).values("pk"))
        .select_related("ticket")
        .first()
        if pk is not None
        else None
    )
    if attachment is None:
        raise NotFound(
            f"Attachment {attachment_id} does not exist or you cannot see it.",
            code="attachment_not_found",
        )
    return attachment


def attachment_max_bytes() -> int:
    """The current tenant's limit for one attachment."""
    tenant: Any = getattr(connection, "tenant", None)
    limit = getattr(tenant, "max_attachment_bytes", None)
    if limit is None:  # schema_context() outside a request carries a stand-in tenant
        limit = (
            Tenant.objects.filter(schema_name=current_schema())
            .values_list("max_attachment_bytes", flat=True)
            .first()
        )
    return int(
        limit if limit is not None else Tenant._meta.get_field("max_attachment_bytes").default
    )
