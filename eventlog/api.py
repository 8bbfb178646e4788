from datetime import datetime

from ninja import Query, Router, Schema
from ninja.pagination import paginate

from accounts.authentication import AuthedRequest
from accounts.policy import READ_AUDIT, member_require
from eventlog.models import AuditEntry
from saas.pagination import Page

router = Router(tags=["audit"])


class AuditOut(Schema):
    id: int
    actor_id: int | None
    actor_email: str
    action: str
    target_type: str
    target_id: str
    changes: dict
    ip: str | None
    request_id: str
    created_at: datetime


class AuditFilters(Schema):
    actor_id: int | None = None
    action: str | None = None
    target_type: str | None = None
    target_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


@router.get("", response=list[AuditOut])
@paginate(Page)
def audit_list(request: AuthedRequest, filters: Query[AuditFilters]):
    """The workspace's audit log, newest first (tenant admins)."""
    member_require(request.member, READ_AUDIT)  # type: ignore[attr-defined]
    entries = AuditEntry.objects.all()
    if filters.actor_id is not None:
        entries = entries.filter(actor_id=filters.actor_id)
    if filters.action:
        entries = entries.filter(action=filters.action)
    if filters.target_type:
        entries = entries.filter(target_type=filters.target_type)
    if filters.target_id:
        entries = entries.filter(target_id=filters.target_id)
    if filters.since:
        entries = entries.filter(created_at__gte=filters.since)
    if filters.until:
        entries = entries.filter(created_at__lt=filters.until)
    return entries.order_by("-id")
