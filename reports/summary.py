"""The signed-in member's home page: what is assigned to them, what changed lately,
what they watch, and how the active sprints of their projects are going."""

from typing import Any

from django.db.models import Exists, OuterRef, Q

from accounts.members.models import Membership
from reports.agile import sprint_progress
from reports.gadgets import DEFAULT_COLUMNS, assigned_to_me, ticket_rows
from reports.scope import number
from tickets.access import projects_visible_to, tickets_visible_to
from tickets.models import ProjectMember, Ticket, Watcher

COLUMNS = [*DEFAULT_COLUMNS, "updated"]


def my_projects(member: Membership) -> Any:
    """Visible projects the member leads, belongs to, or has work in an active sprint of."""
    mine = ProjectMember.objects.filter(project=OuterRef("pk"), user_id=member.user_id)
    sprint_work = Ticket.objects.filter(
        project=OuterRef("pk"), assignee_id=member.user_id, sprint__state="active"
    )
    return projects_visible_to(member).filter(
        Q(lead_id=member.user_id) | Exists(mine) | Exists(sprint_work)
    )


def dashboard_summary(*, member: Membership, limit: int = 10) -> dict[str, Any]:
    visible = tickets_visible_to(member)
    watched = visible.filter(
        Exists(Watcher.objects.filter(ticket=OuterRef("pk"), user_id=member.user_id))
    )
    sprints = sprint_progress(
        member=member, project_ids=my_projects(member).values_list("pk", flat=True)
    )
    return {
        "assigned_to_me": assigned_to_me(member=member, limit=limit),
        "recently_updated": ticket_rows(visible.order_by("-updated_at", "-id"), COLUMNS, limit),
        "watched": {
            "total": watched.count(),
            "items": ticket_rows(watched.order_by("-updated_at", "-id"), COLUMNS, limit),
        },
        "sprints": [
            {
                **row,
                "total_points": number(row["total_points"]),
                "done_points": number(row["done_points"]),
            }
            for row in sprints
        ],
    }
