"""Reads of saved filters: who can see which, one access check for every read."""

from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet

from accounts.members.models import Group, Membership, Role
from saas.errors import NotFound
from saas.refs import db_id_or_none, has_nul
from search.models import FilterFavourite, SavedFilter
from tickets.access import projects_visible_to
from tickets.models import Project


def filters_visible_to(member: Membership) -> QuerySet[SavedFilter]:
    """Filters the member owns, that are public, shared with a group of theirs or with
    a project they can see; every filter for tenant admins."""
    if member.role == Role.ADMIN:
        return SavedFilter.objects.all()
    in_my_group = SavedFilter.shared_with_groups.through.objects.filter(
        savedfilter_id=OuterRef("pk"), group__members=member
    )
    on_my_project = SavedFilter.shared_with_projects.through.objects.filter(
        savedfilter_id=OuterRef("pk"), project__in=projects_visible_to(member).values("pk")
    )
    return SavedFilter.objects.filter(
        Q(owner_id=member.user_id) | Q(is_public=True) | Exists(in_my_group) | Exists(on_my_project)
    )


def filter_can_change(*, member: Membership, saved_filter: SavedFilter) -> bool:
    """Only the owner or a tenant admin may change or delete a filter."""
    return member.role == Role.ADMIN or saved_filter.owner_id == member.user_id


def _with_details(filters: QuerySet[SavedFilter], member: Membership) -> QuerySet[SavedFilter]:
    starred = FilterFavourite.objects.filter(saved_filter_id=OuterRef("pk"), user_id=member.user_id)
    return (
        filters.select_related("owner")
        .prefetch_related(
            Prefetch("shared_with_groups", queryset=Group.objects.order_by("name", "pk")),
            Prefetch("shared_with_projects", queryset=Project.objects.order_by("key")),
        )
        .annotate(is_favourite=Exists(starred))
    )


def filters_list(
    *, member: Membership, favourite: bool | None = None, q: str | None = None
) -> QuerySet[SavedFilter]:
    """The filters the member can see, by name; `favourite` keeps (or drops) the ones
    they starred, `q` matches part of the name."""
    filters = _with_details(filters_visible_to(member), member)
    if favourite is not None:
        starred = FilterFavourite.objects.filter(
            saved_filter_id=OuterRef("pk"), user_id=member.user_id
        )
        filters = filters.filter(Exists(starred) if favourite else ~Exists(starred))
    if q and q.strip():
        filters = filters.filter(name__icontains=q.strip())
    return filters.order_by("name", "id")


def filter_get_for_user(*, member: Membership, filter_id: int | str) -> SavedFilter:
    """A filter the member can see, with its sharing and their star; else 404."""
    pk = db_id_or_none(str(filter_id))
    saved = (
        _with_details(filters_visible_to(member), member).filter(pk=pk).first()
        if pk is not None
        else None
    )
    if saved is None:
        raise NotFound(
            f"Filter {filter_id} does not exist or you cannot see it.", code="filter_not_found"
        )
    return saved


def filters_named(*, member: Membership, texts: list[str]) -> list[SavedFilter]:
    """Visible filters whose name (case-insensitively) or id is one of `texts`."""
    cond = Q(pk__in=[])
    for text in texts:
        value = text.strip()
        if has_nul(value):
            continue
        cond |= Q(name__iexact=value)
        pk = db_id_or_none(value)
        if pk is not None:
            cond |= Q(pk=pk)
    return list(filters_visible_to(member).filter(cond).order_by("pk"))
