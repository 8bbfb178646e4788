"""Writes of dashboards: one transaction each, recorded in the audit log and the
outbox. Callers found the dashboard with dashboard_get_for_user (404 if invisible)."""

from collections.abc import Sequence
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.members.models import Membership
from eventlog.record import change_record
from reports.dashboard_selectors import dashboard_can_change
from reports.gadgets import gadget_config_clean
from reports.models import Dashboard, Gadget
from saas.errors import Forbidden, Invalid
from search.sharing import share_groups_resolve, share_projects_resolve

MAX_GADGETS = 30


def _gadgets_clean(
    gadgets: Sequence[dict[str, Any]], *, columns: int, actor: Membership
) -> list[dict[str, Any]]:
    if len(gadgets) > MAX_GADGETS:
        raise Invalid(f"A dashboard holds at most {MAX_GADGETS} gadgets.", code="too_many_gadgets")
    cleaned = []
    for index, gadget in enumerate(gadgets):
        if gadget["column"] >= columns:
            raise Invalid(
                "Invalid dashboard.",
                details=[
                    {
                        "field": f"gadgets.{index}.column",
                        "message": f"The dashboard has {columns} columns (0 to {columns - 1}).",
                    }
                ],
            )
        config = gadget_config_clean(
            type=gadget["type"], config=gadget["config"], actor=actor, index=index
        )
        cleaned.append({**gadget, "config": config})
    return cleaned


def _require_change(*, actor: Membership, dashboard: Dashboard) -> None:
    if not dashboard_can_change(member=actor, dashboard=dashboard):
        raise Forbidden("Only the owner of a dashboard may change it.", code="dashboard_not_owner")


def _gadgets_write(*, dashboard: Dashboard, gadgets: list[dict[str, Any]]) -> None:
    """Replace the dashboard's gadgets: ones given with an id are kept and updated, new
    ones created, the rest deleted (422 for an id of another dashboard)."""
    existing = {g.pk: g for g in Gadget.objects.filter(dashboard=dashboard)}
    kept: set[int] = set()
    for index, data in enumerate(gadgets):
        gadget_id = data.get("id")
        fields = {k: data[k] for k in ("type", "title", "column", "position", "config")}
        if gadget_id is None:
            Gadget.objects.create(dashboard=dashboard, **fields)
            continue
        gadget = existing.get(gadget_id)
        if gadget is None or gadget_id in kept:
            raise Invalid(
                "Invalid dashboard.",
                details=[{"field": f"gadgets.{index}.id", "message": "No such gadget here."}],
            )
        kept.add(gadget_id)
        for key, value in fields.items():
            setattr(gadget, key, value)
        gadget.save(update_fields=list(fields))
    Gadget.objects.filter(dashboard=dashboard).exclude(pk__in=kept).filter(
        pk__in=list(existing)
    ).delete()


@transaction.atomic
def dashboard_create(
    *,
    actor: Membership,
    name: str,
    description: str = "",
    columns: int = 2,
    is_public: bool = False,
    shared_with_groups: Sequence[int] = (),
    shared_with_projects: Sequence[int] = (),
    gadgets: Sequence[dict[str, Any]] = (),
) -> Dashboard:
    """A dashboard owned by `actor` (422 for unknown groups/projects or a bad gadget)."""
    groups = share_groups_resolve(shared_with_groups, what="dashboard")
    projects = share_projects_resolve(shared_with_projects, actor=actor, what="dashboard")
    cleaned = _gadgets_clean(gadgets, columns=columns, actor=actor)
    dashboard = Dashboard.objects.create(
        name=name,
        description=description,
        owner_id=actor.user_id,
        columns=columns,
        is_public=is_public,
    )
    dashboard.shared_with_groups.set(groups)
    dashboard.shared_with_projects.set(projects)
    _gadgets_write(dashboard=dashboard, gadgets=[{**g, "id": None} for g in cleaned])
    change_record(
        "dashboard.created",
        actor=actor,
        target_type="dashboard",
        target_id=dashboard.pk,
        changes={"name": [None, name], "is_public": [None, is_public]},
        payload={"dashboard_id": dashboard.pk, "name": name, "owner_id": actor.user_id},
    )
    return dashboard


@transaction.atomic
def dashboard_update(
    *,
    dashboard: Dashboard,
    actor: Membership,
    name: str,
    description: str = "",
    columns: int = 2,
    is_public: bool = False,
    shared_with_groups: Sequence[int] = (),
    shared_with_projects: Sequence[int] = (),
    gadgets: Sequence[dict[str, Any]] = (),
) -> Dashboard:
    """Replace a dashboard's settings, sharing and gadgets (its owner or a tenant admin:
    else 403). Gadgets keep their ids when sent with them."""
    _require_change(actor=actor, dashboard=dashboard)
    locked = Dashboard.objects.select_for_update().get(pk=dashboard.pk)
    groups = share_groups_resolve(shared_with_groups, what="dashboard")
    projects = share_projects_resolve(shared_with_projects, actor=actor, what="dashboard")
    cleaned = _gadgets_clean(gadgets, columns=columns, actor=actor)
    before = {"name": locked.name, "is_public": locked.is_public, "columns": locked.columns}
    locked.name, locked.description, locked.columns = name, description, columns
    locked.is_public, locked.updated_at = is_public, timezone.now()
    locked.save(update_fields=["name", "description", "columns", "is_public", "updated_at"])
    locked.shared_with_groups.set(groups)
    locked.shared_with_projects.set(projects)
    _gadgets_write(dashboard=locked, gadgets=cleaned)
    after = {"name": name, "is_public": is_public, "columns": columns}
    change_record(
        "dashboard.updated",
        actor=actor,
        target_type="dashboard",
        target_id=locked.pk,
        changes={k: [before[k], after[k]] for k in before if before[k] != after[k]},
        payload={"dashboard_id": locked.pk, "gadgets": len(cleaned)},
    )
    return locked


@transaction.atomic
def dashboard_delete(*, dashboard: Dashboard, actor: Membership) -> None:
    """Delete a dashboard and its gadgets (its owner or a tenant admin: else 403)."""
    _require_change(actor=actor, dashboard=dashboard)
    dashboard_id, name = dashboard.pk, dashboard.name
    Dashboard.objects.filter(pk=dashboard_id).delete()
    change_record(
        "dashboard.deleted",
        actor=actor,
        target_type="dashboard",
        target_id=dashboard_id,
        changes={"name": [name, None]},
        payload={"dashboard_id": dashboard_id, "name": name},
    )
