"""Dashboards and the signed-in user's summary.

`/web/dashboard` is the caller's home page; `/dashboards` are configurable pages of
gadgets, shared like saved filters (groups, projects, everyone). Only the owner or a
tenant admin changes a dashboard (403); one the caller cannot see answers 404. A
gadget's data is rendered with the viewer's permissions."""

from typing import Any

from ninja import Query, Router, Status
from ninja.pagination import paginate

from accounts.authentication import AuthedRequest
from accounts.user_schemas import errors
from reports.dashboard_schemas import (
    DashboardFilters,
    DashboardIn,
    DashboardOut,
    GadgetDataOut,
    HomeIn,
    HomeOut,
)
from reports.dashboard_selectors import (
    dashboard_get_for_user,
    dashboards_list,
    gadget_get_for_user,
)
from reports.dashboard_services import dashboard_create, dashboard_delete, dashboard_update
from reports.gadgets import gadget_render
from reports.summary import dashboard_summary
from saas.pagination import Page

router = Router(tags=["dashboards"])


@router.get("/web/dashboard", response=HomeOut)
def web_dashboard(request: AuthedRequest, params: Query[HomeIn]) -> Any:
    """Your summary: open tickets assigned to you (most urgent first), recently updated
    tickets you can see, tickets you watch, and the progress (done vs total tickets and
    points) of the active sprints of your projects."""
    return dashboard_summary(member=request.member, limit=params.limit)


def _body(body: DashboardIn) -> dict[str, Any]:
    data = body.dict()
    data["gadgets"] = [{**g, "type": str(g["type"])} for g in data["gadgets"]]
    return data


@router.get("/dashboards", response=list[DashboardOut])
@paginate(Page)
def dashboards_index(request: AuthedRequest, filters: Query[DashboardFilters]) -> Any:
    """The dashboards you can see (yours, shared with your groups or projects, public)."""
    return dashboards_list(member=request.member, q=filters.q)


@router.post("/dashboards", response={201: DashboardOut, **errors(422)})
def dashboards_create(request: AuthedRequest, body: DashboardIn) -> Any:
    """Create a dashboard you own, with its layout, sharing and gadgets (422 for a bad
    gadget configuration, a filter you cannot see or invalid JQL)."""
    dashboard = dashboard_create(actor=request.member, **_body(body))
    return Status(201, dashboard_get_for_user(member=request.member, dashboard_id=dashboard.pk))


@router.get("/dashboards/{dashboardId}", response={200: DashboardOut, **errors(404)})
def dashboards_get(request: AuthedRequest, dashboardId: int) -> Any:
    """One dashboard you can see, with its gadgets."""
    return dashboard_get_for_user(member=request.member, dashboard_id=dashboardId)


@router.put("/dashboards/{dashboardId}", response={200: DashboardOut, **errors(403, 404, 422)})
def dashboards_update(request: AuthedRequest, dashboardId: int, body: DashboardIn) -> Any:
    """Replace a dashboard (its owner or a tenant admin). Gadgets sent with their id are
    kept, without one created, and the ones left out deleted."""
    dashboard = dashboard_get_for_user(member=request.member, dashboard_id=dashboardId)
    dashboard_update(dashboard=dashboard, actor=request.member, **_body(body))
    return dashboard_get_for_user(member=request.member, dashboard_id=dashboardId)


@router.delete("/dashboards/{dashboardId}", response={204: None, **errors(403, 404)})
def dashboards_delete(request: AuthedRequest, dashboardId: int) -> Any:
    """Delete a dashboard (its owner or a tenant admin)."""
    dashboard = dashboard_get_for_user(member=request.member, dashboard_id=dashboardId)
    dashboard_delete(dashboard=dashboard, actor=request.member)
    return Status(204, None)


@router.get(
    "/dashboards/{dashboardId}/gadgets/{gadgetId}/data",
    response={200: GadgetDataOut, **errors(400, 404, 422)},
)
def dashboards_gadget_data(request: AuthedRequest, dashboardId: int, gadgetId: int) -> Any:
    """One gadget's data as you may see it: a filter's tickets, a report, your open
    tickets or the latest changes; 404 for a filter or project you cannot see."""
    gadget = gadget_get_for_user(
        member=request.member, dashboard_id=dashboardId, gadget_id=gadgetId
    )
    return {"gadget": gadget, "data": gadget_render(gadget=gadget, viewer=request.member)}
