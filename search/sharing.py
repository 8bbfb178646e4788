"""The audience of a shared object (saved filters, dashboards): groups and projects by
id, checked to exist and, for projects, to be visible to the one sharing."""

from collections.abc import Mapping, Sequence
from typing import TypeVar

from accounts.members.models import Group, Membership
from saas.errors import Invalid
from tickets.access import projects_visible_to
from tickets.models import Project

T = TypeVar("T")


def _in_order(
    found: Mapping[int, T], ids: Sequence[int], *, field: str, what: str, noun: str
) -> list[T]:
    missing = sorted({i for i in ids if i not in found})
    if missing:
        raise Invalid(
            f"Invalid {what}.",
            details=[{"field": field, "message": f"No such {noun}: {missing}."}],
        )
    return [found[i] for i in dict.fromkeys(ids)]


def share_groups_resolve(ids: Sequence[int], *, what: str) -> list[Group]:
    """The groups `ids` names, in order without repeats; 422 naming the unknown ones
    (`what` names the object in the message: "filter", "dashboard")."""
    found = {g.pk: g for g in Group.objects.filter(pk__in=set(ids))}
    return _in_order(found, ids, field="shared_with_groups", what=what, noun="groups")


def share_projects_resolve(ids: Sequence[int], *, actor: Membership, what: str) -> list[Project]:
    """The projects `ids` names that `actor` can see, in order without repeats; 422
    naming the others, unknown or not visible alike."""
    found = {p.pk: p for p in projects_visible_to(actor).filter(pk__in=set(ids))}
    return _in_order(found, ids, field="shared_with_projects", what=what, noun="projects")
