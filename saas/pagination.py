"""`offset`/`limit` pagination answering `{"items", "total", "offset", "limit"}`."""

from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest
from ninja import Field, Schema
from ninja.pagination import PaginationBase

MAX_LIMIT = 100


class Page(PaginationBase):
    class Input(Schema):
        offset: int = Field(0, ge=0, description="Items to skip.")
        limit: int = Field(50, ge=1, le=MAX_LIMIT, description=f"Page size, at most {MAX_LIMIT}.")

    class Output(Schema):
        items: list[Any]
        total: int
        offset: int
        limit: int

    items_attribute = "items"

    def paginate_queryset(
        self,
        queryset: QuerySet,
        pagination: Any,
        request: HttpRequest | None = None,
        **params: Any,
    ) -> dict:
        offset, limit = pagination.offset, pagination.limit
        total = queryset.count() if isinstance(queryset, QuerySet) else len(queryset)
        return {
            "items": self.page_items(queryset, offset, limit),
            "total": total,
            "offset": offset,
            "limit": limit,
        }

    def page_items(self, queryset: Any, offset: int, limit: int) -> list[Any]:
        return list(queryset[offset : offset + limit])
