"""Reads of sprints: every read starts from the projects the member may see."""

from typing import Any

from django.db.models import Count, Q, QuerySet

from accounts.members.models import Membership
from saas.errors import NotFound
from saas.refs import db_id_or_none
from tickets.access import projects_visible_to
from tickets.models import Project, Sprint


def sprints_visible_to(member: Membership) -> QuerySet[Sprint]:
    return Sprint.objects.filter(project__in=projects_visible_to(member).values("pk"))


def _with_counts(sprints: QuerySet[Sprint]) -> QuerySet[Sprint]:
    return sprints.select_related("project").annotate(
        ticket_count=Count("memberships", filter=Q(memberships__removed_at__isnull=True))
    )


def sprint_get_for_user(*, member: Membership, sprint_id: Any) -> Sprint:
    pk = db_id_or_none(str(sprint_id))
    sprint = _with_counts(sprints_visible_to(member)).filter(pk=pk).first() if pk else None
    if sprint is None:
        raise NotFound(
            f"Sprint {sprint_id} does not exist or you cannot see it.", code="sprint_not_found"
        )
    return sprint


def sprints_of_project(*, project: Project, state: str | None = None) -> QuerySet[Sprint]:
    """Closed sprints first (oldest first), then the active one, then the plan."""
    sprints = Sprint.objects.filter(project=project)
    if state:
        sprints = sprints.filter(state__in=[s.strip() for s in state.split(",")])
    return _with_counts(sprints).order_by("sequence", "id")
