"""Writes of saved filters: one transaction each, recorded in the audit log and the
outbox. Callers have found the filter with filter_get_for_user (404 if invisible)."""

from collections.abc import Sequence
from typing import Any

from django.db import IntegrityError, connection, transaction

from accounts.members.models import Membership
from eventlog.audit import field_changes
from eventlog.record import change_record
from saas.errors import Conflict, Forbidden, Invalid
from search.filter_selectors import filter_can_change
from search.jql.compile_postgres import jql_compile_postgres
from search.jql.errors import jql_errors_as
from search.jql.parser import jql_parse
from search.models import FilterFavourite, SavedFilter
from search.sharing import share_groups_resolve, share_projects_resolve


def filter_jql_check(*, jql: str, owner: Membership, saved: SavedFilter | None = None) -> None:
    """Parse and compile `jql` as its owner would run it; 422 `jql_invalid` with the
    message, line and column. Compiling the filter being edited as already open makes
    a reference back to it (directly or through other filters) an error."""
    with jql_errors_as(Invalid):
        query = jql_parse(jql)
        jql_compile_postgres(
            query,
            member=owner,
            tenant=getattr(connection, "tenant", None),
            within_filter=(saved.pk, saved.name) if saved is not None else None,
        )


def _name_taken(name: str) -> Conflict:
    return Conflict(
        f"You already have a filter named {name!r}.",
        code="filter_name_taken",
        details={"name": name},
    )


def _name_check_free(*, owner_id: int, name: str, exclude_pk: int | None = None) -> None:
    others = SavedFilter.objects.filter(owner_id=owner_id, name__iexact=name)
    if exclude_pk is not None:
        others = others.exclude(pk=exclude_pk)
    if others.exists():
        raise _name_taken(name)


def _require_change(*, actor: Membership, saved: SavedFilter) -> None:
    if not filter_can_change(member=actor, saved_filter=saved):
        raise Forbidden("Only the owner of a filter may change it.", code="filter_not_owner")


def _sharing(saved: SavedFilter) -> dict[str, Any]:
    return {
        "shared_with_groups": sorted(saved.shared_with_groups.values_list("pk", flat=True)),
        "shared_with_projects": sorted(saved.shared_with_projects.values_list("pk", flat=True)),
    }


@transaction.atomic
def filter_create(
    *,
    actor: Membership,
    name: str,
    jql: str,
    description: str = "",
    shared_with_groups: Sequence[int] = (),
    shared_with_projects: Sequence[int] = (),
    is_public: bool = False,
) -> SavedFilter:
    """Save a JQL query as a filter owned by `actor` (422 for invalid JQL or unknown
    groups/projects, 409 if they already have a filter of that name)."""
    groups = share_groups_resolve(shared_with_groups, what="filter")
    projects = share_projects_resolve(shared_with_projects, actor=actor, what="filter")
    filter_jql_check(jql=jql, owner=actor)
    _name_check_free(owner_id=actor.user_id, name=name)
    try:
        with transaction.atomic():
            saved = SavedFilter.objects.create(
                name=name,
                description=description,
                jql=jql,
                owner_id=actor.user_id,
                is_public=is_public,
            )
    except IntegrityError as exc:  # lost a race on the case-insensitive constraint
        raise _name_taken(name) from exc
    saved.shared_with_groups.set(groups)
    saved.shared_with_projects.set(projects)
    sharing = _sharing(saved)
    change_record(
        "filter.created",
        actor=actor,
        target_type="filter",
        target_id=saved.pk,
        changes={
            "name": [None, name],
            "description": [None, description],
            "jql": [None, jql],
            "is_public": [None, is_public],
            **{key: [None, value] for key, value in sharing.items()},
        },
        payload={"filter_id": saved.pk, "name": name, "owner_id": actor.user_id},
    )
    return saved


@transaction.atomic
def filter_update(
    *,
    saved: SavedFilter,
    actor: Membership,
    name: str | None = None,
    description: str | None = None,
    jql: str | None = None,
    shared_with_groups: Sequence[int] | None = None,
    shared_with_projects: Sequence[int] | None = None,
    is_public: bool | None = None,
) -> SavedFilter:
    """Change a filter (its owner or a tenant admin: else 403); omitted fields stay.
    The JQL is checked as the owner would run it, refusing references back to it."""
    _require_change(actor=actor, saved=saved)
    saved = SavedFilter.objects.select_for_update().get(pk=saved.pk)
    before: dict[str, Any] = {
        "name": saved.name,
        "description": saved.description,
        "jql": saved.jql,
        "is_public": saved.is_public,
        **_sharing(saved),
    }
    after: dict[str, Any] = {}
    groups = (
        share_groups_resolve(shared_with_groups, what="filter")
        if shared_with_groups is not None
        else None
    )
    projects = (
        share_projects_resolve(shared_with_projects, actor=actor, what="filter")
        if shared_with_projects is not None
        else None
    )
    for key, value in (
        ("name", name),
        ("description", description),
        ("jql", jql),
        ("is_public", is_public),
    ):
        if value is not None:
            after[key] = value
    if groups is not None:
        after["shared_with_groups"] = sorted(g.pk for g in groups)
    if projects is not None:
        after["shared_with_projects"] = sorted(p.pk for p in projects)
    changes = field_changes(before, after)
    if not changes:
        return saved
    if "name" in changes:
        _name_check_free(owner_id=saved.owner_id, name=after["name"], exclude_pk=saved.pk)
    if "jql" in changes:
        owner = Membership.objects.select_related("user").get(user_id=saved.owner_id)
        filter_jql_check(jql=after.get("jql", saved.jql), owner=owner, saved=saved)
    columns = [key for key in ("name", "description", "jql", "is_public") if key in changes]
    for key in columns:
        setattr(saved, key, after[key])
    try:
        with transaction.atomic():
            saved.save(update_fields=[*columns, "updated_at"])
    except IntegrityError as exc:
        raise _name_taken(after["name"]) from exc
    if "shared_with_groups" in changes and groups is not None:
        saved.shared_with_groups.set(groups)
    if "shared_with_projects" in changes and projects is not None:
        saved.shared_with_projects.set(projects)
    change_record(
        "filter.updated",
        actor=actor,
        target_type="filter",
        target_id=saved.pk,
        changes=changes,
        payload={"filter_id": saved.pk, "fields": sorted(changes)},
    )
    return saved


@transaction.atomic
def filter_delete(*, saved: SavedFilter, actor: Membership) -> None:
    """Delete a filter (its owner or a tenant admin: else 403)."""
    _require_change(actor=actor, saved=saved)
    filter_id, name = saved.pk, saved.name
    SavedFilter.objects.filter(pk=filter_id).delete()
    change_record(
        "filter.deleted",
        actor=actor,
        target_type="filter",
        target_id=filter_id,
        changes={"name": [name, None]},
        payload={"filter_id": filter_id, "name": name},
    )


@transaction.atomic
def filter_favourite_set(*, saved: SavedFilter, actor: Membership, favourite: bool) -> bool:
    """Star or unstar a visible filter for `actor`; a no-op (nothing recorded) when it
    already is so. Returns whether anything changed."""
    if favourite:
        try:
            with transaction.atomic():
                FilterFavourite.objects.create(saved_filter_id=saved.pk, user_id=actor.user_id)
            changed = True
        except IntegrityError:  # already starred
            changed = False
    else:
        deleted, _ = FilterFavourite.objects.filter(
            saved_filter_id=saved.pk, user_id=actor.user_id
        ).delete()
        changed = deleted > 0
    if changed:
        action = "filter.favourited" if favourite else "filter.unfavourited"
        change_record(
            action,
            actor=actor,
            target_type="filter",
            target_id=saved.pk,
            changes={"favourite": [not favourite, favourite]},
            payload={"filter_id": saved.pk, "user_id": actor.user_id},
        )
    return changed
