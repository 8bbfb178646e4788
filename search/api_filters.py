"""Saved filters: `/filters`.

Thin routers: find the filter the caller can see (404 otherwise), call one service,
answer a schema. Only a filter's owner or a tenant admin may change it (403).
"""

from ninja import Query, Router, Status
from ninja.pagination import paginate

from accounts.authentication import AuthedRequest
from accounts.user_schemas import errors
from saas.pagination import Page
from search.filter_schemas import FilterFilters, FilterIn, FilterOut, FilterUpdateIn
from search.filter_selectors import filter_get_for_user, filters_list
from search.filter_services import (
    filter_create,
    filter_delete,
    filter_favourite_set,
    filter_update,
)
from search.models import SavedFilter

router = Router(tags=["filters"])


def _reload(request: AuthedRequest, saved: SavedFilter) -> SavedFilter:
    return filter_get_for_user(member=request.member, filter_id=saved.pk)


@router.get("", response=list[FilterOut])
@paginate(Page)
def filters_index(request: AuthedRequest, filters: Query[FilterFilters]):
    """The filters you can see (yours, shared with your groups or projects, public),
    by name; `favourite=true` for the ones you starred, `q` for part of the name."""
    return filters_list(member=request.member, favourite=filters.favourite, q=filters.q)


@router.post("", response={201: FilterOut, **errors(409, 422)})
def filters_create(request: AuthedRequest, body: FilterIn):
    """Save a JQL query as a filter you own. The query is checked as you would run
    it: 422 `jql_invalid` with the message, line and column. 409 if you already have
    a filter of that name (ignoring case)."""
    saved = filter_create(actor=request.member, **body.dict())
    return Status(201, _reload(request, saved))


@router.get("/{filterId}", response={200: FilterOut, **errors(404)})
def filters_get(request: AuthedRequest, filterId: int):
    """One filter you can see."""
    return filter_get_for_user(member=request.member, filter_id=filterId)


@router.put("/{filterId}", response={200: FilterOut, **errors(403, 404, 409, 422)})
def filters_update(request: AuthedRequest, filterId: int, body: FilterUpdateIn):
    """Change a filter (its owner or a tenant admin); omitted fields stay, the sharing
    lists replace the current ones. A query that refers back to this filter, directly
    or through other filters, is refused (422)."""
    saved = filter_get_for_user(member=request.member, filter_id=filterId)
    filter_update(saved=saved, actor=request.member, **body.dict(exclude_unset=True))
    return _reload(request, saved)


@router.delete("/{filterId}", response={204: None, **errors(403, 404)})
def filters_delete(request: AuthedRequest, filterId: int):
    """Delete a filter (its owner or a tenant admin)."""
    saved = filter_get_for_user(member=request.member, filter_id=filterId)
    filter_delete(saved=saved, actor=request.member)
    return Status(204, None)


@router.post("/{filterId}/favourite", response={200: FilterOut, **errors(404)})
def filters_favourite_add(request: AuthedRequest, filterId: int):
    """Star a filter you can see (again: no change)."""
    saved = filter_get_for_user(member=request.member, filter_id=filterId)
    filter_favourite_set(saved=saved, actor=request.member, favourite=True)
    return _reload(request, saved)


@router.delete("/{filterId}/favourite", response={200: FilterOut, **errors(404)})
def filters_favourite_remove(request: AuthedRequest, filterId: int):
    """Unstar a filter (not starred: no change)."""
    saved = filter_get_for_user(member=request.member, filter_id=filterId)
    filter_favourite_set(saved=saved, actor=request.member, favourite=False)
    return _reload(request, saved)
