"""Projects, their members and settings; the workspace's custom fields and catalogues.

A project is addressed by id or key. Projects you may not see answer 404. Writes
accept `Idempotency-Key` where they create something.
"""

import re
from typing import Any

from django.http import HttpResponse
from ninja import Query, Router, Schema, Status
from ninja.pagination import paginate

from accounts.authentication import AuthedRequest
from accounts.members.models import Membership
from accounts.policy import ADMIN_PROJECT, READ_TICKETS, member_require
from saas.errors import NotFound
from saas.idempotency import idempotent
from saas.pagination import Page
from tickets import custom_field_services as custom_fields
from tickets import project_selectors as selectors
from tickets import project_services as services
from tickets.access import project_get_for_user
from tickets.models import Project
from tickets.project_schemas import (
    CustomFieldIn,
    CustomFieldOut,
    CustomFieldUpdateIn,
    IssueTypeOut,
    PriorityOut,
    ProjectFilters,
    ProjectIn,
    ProjectMemberIn,
    ProjectMemberOut,
    ProjectMemberRoleIn,
    ProjectOut,
    ProjectSettingsIn,
    ProjectSettingsOut,
    ProjectUpdateIn,
    ResolutionOut,
    StatusOut,
    errors,
)

router = Router(tags=["projects"])
# Keys are ASCII letters and digits, ids are digits: anything else cannot be a project.
_PROJECT_REF = re.compile(r"^[A-Za-z0-9]{1,20}$")


def _caller(request: AuthedRequest) -> Membership:
    return request.member  # type: ignore[attr-defined]


def _project(request: AuthedRequest, ref: str) -> Project:
    if not _PROJECT_REF.match(ref.strip()):
        raise NotFound(
            f"Project {ref} does not exist or you cannot see it.", code="project_not_found"
        )
    return project_get_for_user(member=_caller(request), ref=ref)


def _created(
    request: AuthedRequest, schema: type[Schema], make: Any, location: str | None = None
) -> HttpResponse:
    """201 with the created object; a retry with the same `Idempotency-Key` replays it."""

    def produce() -> tuple[int, Any, dict[str, str]]:
        obj = make()
        headers = {"Location": location.format(obj=obj)} if location else {}
        return 201, schema.from_orm(obj).model_dump(), headers

    return idempotent(request, produce)


# Projects ------------------------------------------------------------------------------


@router.get("/projects", response=list[ProjectOut])
@paginate(Page)
def projects_list(request: AuthedRequest, filters: Query[ProjectFilters]):
    """Projects you can see, by key: filter by `q` (key or name), `archived`, `type`."""
    return selectors.projects_list(
        member=_caller(request), q=filters.q, archived=filters.archived, type=filters.type
    )


@router.post("/projects", response={201: ProjectOut, **errors(403, 409, 422)})
def project_post(request: AuthedRequest, body: ProjectIn):
    """Create a project (tenant admins and project leads). The key is uppercased and
    must be 2-10 letters and digits starting with a letter; a taken key answers 409.
    The lead (default: you) must be an active member. Send `Idempotency-Key` to make
    retries safe."""
    actor = _caller(request)
    member_require(actor, ADMIN_PROJECT)

    def create() -> Project:
        project = services.project_create(
            actor=actor,
            key=body.key,
            name=body.name,
            description=body.description,
            type=body.type,
            lead=body.lead,
            is_private=body.is_private,
            workflow_template=body.workflow_template,
        )
        return selectors.project_detail(project=project)

    return _created(request, ProjectOut, create, "/api/v1/projects/{obj.key}")


@router.get("/projects/{projectId}", response={200: ProjectOut, **errors(404)})
def project_get(request: AuthedRequest, projectId: str):
    """A project by id or key."""
    return selectors.project_detail(project=_project(request, projectId))


@router.put("/projects/{projectId}", response={200: ProjectOut, **errors(403, 404, 422)})
def project_put(request: AuthedRequest, projectId: str, body: ProjectUpdateIn):
    """Change the fields sent (project administrators). The key cannot change."""
    project = _project(request, projectId)
    project = services.project_update(project=project, actor=_caller(request), data=body.changes())
    return selectors.project_detail(project=project)


@router.delete("/projects/{projectId}", response={204: None, **errors(403, 404, 409)})
def project_delete(request: AuthedRequest, projectId: str, confirm: str | None = None):
    """Delete a project with its tickets (tenant admins). A project with tickets answers
    409 with their count unless `?confirm=<KEY>` repeats its key."""
    project = _project(request, projectId)
    services.project_delete(project=project, actor=_caller(request), confirm=confirm)
    return Status(204, None)


# Members -------------------------------------------------------------------------------


@router.get("/projects/{projectId}/members", response=list[ProjectMemberOut])
@paginate(Page)
def project_members(request: AuthedRequest, projectId: str):
    """The project's members and their project roles, by username."""
    return selectors.project_members_list(project=_project(request, projectId))


@router.post(
    "/projects/{projectId}/members",
    response={201: ProjectMemberOut, **errors(403, 404, 409, 422)},
)
def project_member_post(request: AuthedRequest, projectId: str, body: ProjectMemberIn):
    """Add an active member of the workspace (by id, username or email) with a project
    role (project administrators). An existing member answers 409: change the role
    with PUT instead."""
    project = _project(request, projectId)

    def add() -> Any:
        return services.project_member_add(
            project=project, actor=_caller(request), user_ref=body.user, role=body.role
        )

    return _created(request, ProjectMemberOut, add)


@router.put(
    "/projects/{projectId}/members/{userId}",
    response={200: ProjectMemberOut, **errors(403, 404, 409)},
)
def project_member_put(
    request: AuthedRequest, projectId: str, userId: int, body: ProjectMemberRoleIn
):
    """Change a member's project role (project administrators); demoting the last
    administrator answers 409."""
    project = _project(request, projectId)
    return services.project_member_update(
        project=project, actor=_caller(request), user_id=userId, role=body.role
    )


@router.delete(
    "/projects/{projectId}/members/{userId}", response={204: None, **errors(403, 404, 409)}
)
def project_member_delete(request: AuthedRequest, projectId: str, userId: int):
    """Remove a member (project administrators); the last administrator and the lead
    cannot be removed (409)."""
    project = _project(request, projectId)
    services.project_member_remove(project=project, actor=_caller(request), user_id=userId)
    return Status(204, None)


# Settings ------------------------------------------------------------------------------


@router.get("/projects/{projectId}/settings", response={200: ProjectSettingsOut, **errors(404)})
def project_settings_get(request: AuthedRequest, projectId: str):
    """Default assignee, enabled issue types and custom fields, components, versions."""
    return selectors.project_settings(project=_project(request, projectId))


@router.put(
    "/projects/{projectId}/settings",
    response={200: ProjectSettingsOut, **errors(403, 404, 409, 422)},
)
def project_settings_put(request: AuthedRequest, projectId: str, body: ProjectSettingsIn):
    """Replace the settings sent (project administrators). Components and versions are
    matched by id, else by name: new ones are created, and ones left out are deleted
    unless tickets use them (409 listing them)."""
    project = _project(request, projectId)
    project = services.project_settings_update(
        project=project, actor=_caller(request), data=body.changes()
    )
    return selectors.project_settings(project=project)


# Custom fields -------------------------------------------------------------------------


@router.get("/custom-fields", response=list[CustomFieldOut])
@paginate(Page)
def custom_fields_list(request: AuthedRequest):
    """The workspace's custom fields, by name. Projects enable them in their settings."""
    member_require(_caller(request), READ_TICKETS)
    return selectors.custom_fields_list()


@router.post("/custom-fields", response={201: CustomFieldOut, **errors(403, 409, 422)})
def custom_field_post(request: AuthedRequest, body: CustomFieldIn):
    """Create a custom field (tenant admins): text, number, date, select, multiselect or
    user; select types need unique options. Send `Idempotency-Key` to make retries safe."""
    actor = _caller(request)

    def create() -> Any:
        return custom_fields.custom_field_create(
            actor=actor,
            name=body.name,
            type=body.type,
            description=body.description,
            options=body.options,
        )

    return _created(request, CustomFieldOut, create, "/api/v1/custom-fields/{obj.pk}")


@router.get("/custom-fields/{fieldId}", response={200: CustomFieldOut, **errors(404)})
def custom_field_get(request: AuthedRequest, fieldId: int):
    """A custom field by id."""
    member_require(_caller(request), READ_TICKETS)
    return selectors.custom_field_get(field_id=fieldId)


@router.put(
    "/custom-fields/{fieldId}", response={200: CustomFieldOut, **errors(403, 404, 409, 422)}
)
def custom_field_put(request: AuthedRequest, fieldId: int, body: CustomFieldUpdateIn):
    """Rename a field, change its description or options (tenant admins). Its type
    cannot change; removing an option that tickets hold answers 409."""
    custom_field = selectors.custom_field_get(field_id=fieldId)
    return custom_fields.custom_field_update(
        custom_field=custom_field, actor=_caller(request), data=body.changes()
    )


@router.delete("/custom-fields/{fieldId}", response={204: None, **errors(403, 404)})
def custom_field_delete(request: AuthedRequest, fieldId: int):
    """Delete a field and its values on every ticket (tenant admins)."""
    custom_field = selectors.custom_field_get(field_id=fieldId)
    custom_fields.custom_field_delete(custom_field=custom_field, actor=_caller(request))
    return Status(204, None)


# Catalogues ----------------------------------------------------------------------------


@router.get("/issue-types", response=list[IssueTypeOut])
def issue_types_list(request: AuthedRequest):
    """The workspace's issue types, in display order (a short catalogue: not paginated)."""
    member_require(_caller(request), READ_TICKETS)
    return selectors.issue_types_list()


@router.get("/priorities", response=list[PriorityOut])
def priorities_list(request: AuthedRequest):
    """The workspace's priorities, most urgent first (a short catalogue: not paginated)."""
    member_require(_caller(request), READ_TICKETS)
    return selectors.priorities_list()


@router.get("/statuses", response=list[StatusOut])
def statuses_list(request: AuthedRequest):
    """The workspace's statuses, in workflow order (a short catalogue: not paginated)."""
    member_require(_caller(request), READ_TICKETS)
    return selectors.statuses_list()


@router.get("/resolutions", response=list[ResolutionOut])
def resolutions_list(request: AuthedRequest):
    """The workspace's resolutions (a short catalogue: not paginated)."""
    member_require(_caller(request), READ_TICKETS)
    return selectors.resolutions_list()
