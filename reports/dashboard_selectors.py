"""Reads of dashboards: who can see which (one access check for every read)."""

from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet

from accounts.members.models import Group, Membership, Role
from reports.models import Dashboard, Gadget
from saas.errors import NotFound
from saas.refs import db_id_or_none
from tickets.access import projects_visible_to
from tickets.models import Project


def dashboards_visible_to(member: Membership) -> QuerySet[Dashboard]:
    """Dashboards the member owns, that are public, shared with a group of theirs or
    with a project they can see; every dashboard for tenant admins."""
    if member.role == Role.ADMIN:
        return Dashboard.objects.all()
    in_my_group = Dashboard.shared_with_groups.through.objects.filter(
        dashboard_id=OuterRef("pk"), group__members=member
    )
    on_my_project = Dashboard.shared_with_projects.through.objects.filter(
        dashboard_id=OuterRef("pk"), project__in=projects_visible_to(member).values("pk")
    )
    return Dashboard.objects.filter(
        Q(owner_id=member.user_id) | Q(is_public=True) | Exists(in_my_group) | Exists(on_my_project)
    )


def dashboard_can_change(*, member: Membership, dashboard: Dashboard) -> bool:
    """Only the owner or a tenant admin may change or delete a dashboard."""
    return member.role == Role.ADMIN or dashboard.owner_id == member.user_id


def _with_details(dashboards: QuerySet[Dashboard]) -> QuerySet[Dashboard]:
    return dashboards.select_related("owner").prefetch_related(
        Prefetch("shared_with_groups", queryset=Group.objects.order_by("name", "pk")),
        Prefetch("shared_with_projects", queryset=Project.objects.order_by("key")),
        Prefetch("gadgets", queryset=Gadget.objects.order_by("column", "position", "pk")),
    )


def dashboards_list(*, member: Membership, q: str | None = None) -> QuerySet[Dashboard]:
    """The dashboards the member can see, by name; `q` matches part of the name."""
    dashboards = _with_details(dashboards_visible_to(member))
    if q and q.strip():
        dashboards = dashboards.filter(name__icontains=q.strip())
    return dashboards.order_by("name", "id")


def dashboard_get_for_user(*, member: Membership, dashboard_id: int | str) -> Dashboard:
    """A dashboard the member can see, with its sharing and gadgets; else 404."""
    pk = db_id_or_none(str(dashboard_id))
    found = (
        _with_details(dashboards_visible_to(member)).filter(pk=pk).first()
        if pk is not None
        else None
    )
    if found is None:
        raise NotFound(
            f"Dashboard {dashboard_id} does not exist or you cannot see it.",
            code="dashboard_not_found",
        )
    return found


def gadget_get_for_user(*, member: Membership, dashboard_id: int | str, gadget_id: int) -> Gadget:
    """A gadget of a dashboard the member can see; else 404."""
    dashboard = dashboard_get_for_user(member=member, dashboard_id=dashboard_id)
    pk = db_id_or_none(str(gadget_id))
    gadget = next((g for g in dashboard.gadgets.all() if g.pk == pk), None)
    if gadget is None:
        raise NotFound(
            f"Gadget {gadget_id} does not exist or you cannot see it.", code="gadget_not_found"
        )
    return gadget
