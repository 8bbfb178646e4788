"""Workflow configuration: templates, a project's workflows and their versions, and
the workflow scheme (which workflow each issue type follows).

Every member who sees the project reads; project administrators write. A workflow's
`version` is its ETag: send it back as `expected_version` (or `If-Match`) to refuse
edits over someone else's newer version with 412. Changes that leave tickets in
statuses their workflow lacks need a `status_mapping`; more than 500 tickets to move
answer 202 with a job to follow at `status_url`.
"""

import re
from typing import Any

from django.http import HttpResponse
from ninja import Router, Status
from ninja.pagination import paginate

from accounts.authentication import AuthedRequest
from accounts.members.models import Membership
from accounts.policy import READ_TICKETS, member_require
from saas.errors import BadRequest
from saas.idempotency import idempotent
from saas.pagination import Page
from tickets import workflow_selectors as selectors
from tickets import workflow_services as services
from tickets.access import project_get_for_user
from tickets.models import Project, Workflow
from tickets.project_schemas import errors
from tickets.workflow_engine import project_workflow_ensure
from tickets.workflow_schemas import (
    WorkflowAcceptedOut,
    WorkflowIn,
    WorkflowOut,
    WorkflowSchemeAcceptedOut,
    WorkflowSchemeIn,
    WorkflowSchemeOut,
    WorkflowTemplateOut,
    WorkflowUpdateIn,
    WorkflowVersionOut,
)

router = Router(tags=["workflows"])
_IF_MATCH = re.compile(r'^(?:W/)?"?(\d{1,9})"?$')


def _caller(request: AuthedRequest) -> Membership:
    return request.member  # type: ignore[attr-defined]


def _project(request: AuthedRequest, ref: str) -> Project:
    return project_get_for_user(member=_caller(request), ref=ref)


def _workflow(request: AuthedRequest, project_ref: str, ref: str) -> Workflow:
    project = _project(request, project_ref)
    return selectors.workflow_get_for_project(project=project, ref=ref)


def _expected_version(request: AuthedRequest, sent: int | None) -> int | None:
    """`expected_version` from the body, else the version in `If-Match`."""
    if sent is not None:
        return sent
    raw = request.headers.get("If-Match", "").strip()
    if not raw or raw == "*":
        return None
    match = _IF_MATCH.match(raw)
    if not match:
        raise BadRequest('If-Match must be the workflow\'s version, e.g. "3".')
    return int(match.group(1))


def _etag(version: int) -> str:
    return f'"{version}"'


def _job_fields(job: Any) -> dict[str, str]:
    return {"job_id": str(job.pk), "status_url": f"/api/v1/jobs/{job.pk}"}


# Templates ------------------------------------------------------------------------------


@router.get("/workflow-templates", response=list[WorkflowTemplateOut], by_alias=True)
def workflow_templates(request: AuthedRequest):
    """The built-in workflows a project or a workflow can start from (basic, software,
    bug_tracking), with their definitions. Statuses the workspace does not have yet show
    `id: null`: they are created when a workflow uses them."""
    member_require(_caller(request), READ_TICKETS)
    return selectors.workflow_templates_list()


# Workflows ------------------------------------------------------------------------------


@router.get("/projects/{projectId}/workflows", response=list[WorkflowOut], by_alias=True)
@paginate(Page)
def workflows_of_project(request: AuthedRequest, projectId: str):
    """The project's workflows by name: current version and definition, and the issue
    types using each through the scheme (`"default"` for the project's default)."""
    project = _project(request, projectId)
    project_workflow_ensure(project=project)
    return selectors.workflows_list(project=project)


@router.post(
    "/projects/{projectId}/workflows",
    response={201: WorkflowOut, **errors(403, 404, 409, 422)},
    by_alias=True,
)
def workflow_post(request: AuthedRequest, projectId: str, body: WorkflowIn):
    """Create a workflow from a `template` or a `definition` (exactly one) as version 1
    (project administrators). An invalid definition answers 422 listing every problem;
    a name the project already uses answers 409. Issue types use it once the workflow
    scheme says so. Send `Idempotency-Key` to make retries safe."""
    project = _project(request, projectId)
    actor = _caller(request)

    def create() -> tuple[int, Any, dict[str, str]]:
        workflow = services.workflow_add(
            project=project,
            actor=actor,
            name=body.name,
            description=body.description,
            template=body.template,
            definition=(
                body.definition.model_dump(by_alias=True, exclude_unset=True)
                if body.definition
                else None
            ),
        )
        payload = WorkflowOut.model_validate(selectors.workflow_detail(workflow=workflow))
        headers = {
            "Location": f"/api/v1/projects/{project.key}/workflows/{workflow.pk}",
            "ETag": _etag(1),
        }
        return 201, payload.model_dump(by_alias=True), headers

    return idempotent(request, create)


@router.get(
    "/projects/{projectId}/workflows/{workflowId}",
    response={200: WorkflowOut, **errors(404)},
    by_alias=True,
)
def workflow_get(request: AuthedRequest, projectId: str, workflowId: str, response: HttpResponse):
    """A workflow of the project with its current definition; the ETag is its version."""
    detail = selectors.workflow_detail(workflow=_workflow(request, projectId, workflowId))
    response["ETag"] = _etag(detail["version"])
    return detail


@router.get(
    "/projects/{projectId}/workflows/{workflowId}/versions",
    response=list[WorkflowVersionOut],
    by_alias=True,
)
@paginate(Page)
def workflow_versions(request: AuthedRequest, projectId: str, workflowId: str):
    """Every saved version of the workflow, oldest first: number, when, by whom, and
    the definition (versions never change once saved)."""
    return selectors.workflow_versions_list(workflow=_workflow(request, projectId, workflowId))


@router.put(
    "/projects/{projectId}/workflows/{workflowId}",
    response={
        200: WorkflowOut,
        202: WorkflowAcceptedOut,
        **errors(400, 403, 404, 409, 412, 422),
    },
    by_alias=True,
)
def workflow_put(
    request: AuthedRequest,
    projectId: str,
    workflowId: str,
    body: WorkflowUpdateIn,
    response: HttpResponse,
):
    """Change the fields sent (project administrators). A new `definition` is saved as
    the next version and becomes current. Tickets of this workflow in statuses the new
    definition lacks must be moved: `status_mapping` maps each such status (by name) to
    one of the new definition, else 422 lists them with their ticket counts. Up to 500
    tickets move at once (200); more move in a job (202 with `job_id`). Send the version
    you edited as `expected_version` or `If-Match`: 412 when someone saved a newer one."""
    workflow = _workflow(request, projectId, workflowId)
    change = services.workflow_update(
        workflow=workflow,
        actor=_caller(request),
        data=body.changes(),
        expected_version=_expected_version(request, body.expected_version),
    )
    detail = selectors.workflow_detail(workflow=change.workflow)
    response["ETag"] = _etag(detail["version"])
    if change.migration.job is not None:
        accepted = {**detail, **_job_fields(change.migration.job)}
        response["Location"] = accepted["status_url"]
        return Status(202, accepted)
    return detail


@router.delete(
    "/projects/{projectId}/workflows/{workflowId}",
    response={204: None, **errors(403, 404, 409)},
)
def workflow_delete(request: AuthedRequest, projectId: str, workflowId: str):
    """Delete a workflow and its versions (project administrators); one the workflow
    scheme uses answers 409 with `used_by`."""
    workflow = _workflow(request, projectId, workflowId)
    services.workflow_delete(workflow=workflow, actor=_caller(request))
    return Status(204, None)


# Scheme ---------------------------------------------------------------------------------


@router.get(
    "/projects/{projectId}/workflow-scheme", response={200: WorkflowSchemeOut, **errors(404)}
)
def workflow_scheme_get(request: AuthedRequest, projectId: str):
    """The project's default workflow and the issue types mapped to other workflows."""
    project = _project(request, projectId)
    project_workflow_ensure(project=project)
    return selectors.workflow_scheme_detail(project=project)


@router.put(
    "/projects/{projectId}/workflow-scheme",
    response={
        200: WorkflowSchemeOut,
        202: WorkflowSchemeAcceptedOut,
        **errors(403, 404, 422),
    },
)
def workflow_scheme_put(request: AuthedRequest, projectId: str, body: WorkflowSchemeIn):
    """Change the default workflow and the workflows of issue types (project
    administrators): `mappings` maps issue type names to workflow ids, null for the
    default. Tickets changing workflow must hold statuses the new workflow has, or
    `status_mapping` maps each missing status (by name) to one of it; else 422 lists
    them with their ticket counts. More than 500 tickets to move answer 202 with a job."""
    project = _project(request, projectId)
    change = services.scheme_update(project=project, actor=_caller(request), data=body.changes())
    scheme = selectors.workflow_scheme_detail(project=change.project)
    if change.migration.job is not None:
        return Status(202, {**scheme, **_job_fields(change.migration.job)})
    return scheme
