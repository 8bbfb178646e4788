"""Reads on projects, their members and settings, custom fields and catalogues."""

from typing import Any

from django.db.models import Count, IntegerField, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from accounts.members.models import Membership
from accounts.models import User
from saas.errors import NotFound
from saas.refs import db_id_valid
from tickets.access import projects_visible_to
from tickets.models import (
    Component,
    CustomField,
    IssueType,
    Priority,
    Project,
    ProjectMember,
    Resolution,
    Status,
    Ticket,
    Version,
)


def _ticket_count() -> Coalesce:
    tickets = (
        Ticket.objects.filter(project=OuterRef("pk"))
        .order_by()
        .values("project")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(tickets, output_field=IntegerField()), Value(0))


def _for_output(projects: QuerySet[Project]) -> QuerySet[Project]:
    return projects.select_related("lead", "owner").annotate(ticket_count=_ticket_count())


def projects_list(
    *,
    member: Membership,
    q: str | None = None,
    archived: bool | None = None,
    type: str | None = None,
) -> QuerySet[Project]:
    """Projects the member may see, by key, with their ticket counts (one query)."""
    projects = projects_visible_to(member)
    if q:
        projects = projects.filter(Q(key__icontains=q) | Q(name__icontains=q))
    if archived is not None:
        projects = projects.filter(is_archived=archived)
    if type:
        projects = projects.filter(type=type)
    return _for_output(projects).order_by("key")


def project_detail(*, project: Project) -> Project:
    """The project with its lead, owner and ticket count loaded for output."""
    return _for_output(Project.objects.filter(pk=project.pk)).get()


def project_members_list(*, project: Project) -> QuerySet[ProjectMember]:
    return (
        ProjectMember.objects.filter(project=project)
        .select_related("user")
        .order_by("user__username", "user_id")
    )


def _user(user: User | None) -> dict[str, Any] | None:
    if user is None:
        return None
    return {"id": user.pk, "username": user.username, "display_name": user.name}


def project_settings(*, project: Project) -> dict[str, Any]:
    """The settings as plain data: the API's answer and the audit's before/after."""
    assignee = (
        User.objects.filter(pk=project.default_assignee_id).first()
        if project.default_assignee_id
        else None
    )
    return {
        "default_assignee": _user(assignee),
        "issue_types": list(
            project.issue_types.order_by("order", "id").values_list("name", flat=True)
        ),
        "components": [
            {
                "id": c.pk,
                "name": c.name,
                "description": c.description,
                "lead": _user(c.lead),
            }
            for c in Component.objects.filter(project=project).select_related("lead")
        ],
        "versions": [
            {
                "id": v.pk,
                "name": v.name,
                "description": v.description,
                "release_date": v.release_date,
                "is_released": v.is_released,
                "is_archived": v.is_archived,
            }
            for v in Version.objects.filter(project=project)
        ],
        "custom_fields": list(
            project.custom_fields.order_by("name").values_list("name", flat=True)
        ),
    }


def custom_fields_list() -> QuerySet[CustomField]:
    return CustomField.objects.order_by("name", "id")


def custom_field_get(*, field_id: int) -> CustomField:
    """A custom field of this tenant by id; else 404."""
    field = CustomField.objects.filter(pk=field_id).first() if db_id_valid(field_id) else None
    if field is None:
        raise NotFound(f"Custom field {field_id} does not exist.", code="custom_field_not_found")
    return field


def issue_types_list() -> QuerySet[IssueType]:
    return IssueType.objects.order_by("order", "id")


def priorities_list() -> QuerySet[Priority]:
    """Most urgent first."""
    return Priority.objects.order_by("-rank", "id")


def statuses_list() -> QuerySet[Status]:
    return Status.objects.order_by("order", "id")


def resolutions_list() -> QuerySet[Resolution]:
    return Resolution.objects.order_by("order", "id")
