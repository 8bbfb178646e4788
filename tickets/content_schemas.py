from datetime import datetime
from typing import Any

from ninja import Field, Schema
from pydantic import ConfigDict

from tickets.content_selectors import comment_body_html, comment_mentioned_users
from tickets.content_services import COMMENT_MAX_CHARS
from tickets.schemas import UserRef


class CommentIn(Schema):
    model_config = ConfigDict(extra="forbid")

    body: str = Field(
        ...,
        min_length=1,
        max_length=COMMENT_MAX_CHARS,
        description="Markdown. `@username` mentions members who can see the ticket.",
    )


class CommentOut(Schema):
    id: int
    author: UserRef | None
    body: str = Field(..., description="The Markdown source.")
    body_html: str = Field(..., description="Rendered and sanitized HTML.")
    mentions: list[UserRef]
    created_at: datetime
    updated_at: datetime
    edited_at: datetime | None

    @staticmethod
    def resolve_body_html(obj: Any) -> str:
        return comment_body_html(obj.body)

    @staticmethod
    def resolve_mentions(obj: Any) -> list[Any]:
        return comment_mentioned_users(obj)


class AttachmentOut(Schema):
    id: int
    filename: str
    content_type: str = Field(..., description="Sniffed from the bytes, not the upload.")
    size: int
    checksum_sha256: str
    uploader: UserRef | None
    created_at: datetime
    download_url: str

    @staticmethod
    def resolve_download_url(obj: Any) -> str:
        return f"/api/v1/attachments/{obj.pk}/download"
