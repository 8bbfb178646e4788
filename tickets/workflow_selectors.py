"""Reads on workflow configuration: templates, a project's workflows and versions, and
its workflow scheme. Callers have already checked that the member sees the project."""

from collections import defaultdict
from typing import Any

from django.db.models import QuerySet

from saas.errors import NotFound
from saas.refs import db_id_or_none, has_nul
from tickets.models import Project, Status, Workflow, WorkflowSchemeEntry, WorkflowVersion
from tickets.workflow_definition import TEMPLATES, definition_for_output, template_definition

DEFAULT_USE = "default"
_DEFAULT_COLOR = "#42526e"


def workflow_get_for_project(*, project: Project, ref: str | int) -> Workflow:
    """A workflow of `project` by id; 404 otherwise (other projects' workflows too)."""
    text = str(ref).strip()
    pk = None if has_nul(text) else db_id_or_none(text)
    workflow = (
        Workflow.objects.select_related("current").filter(project=project, pk=pk).first()
        if pk
        else None
    )
    if workflow is None:
        raise NotFound(
            f"Workflow {ref} does not exist in project {project.key}.", code="workflow_not_found"
        )
    return workflow


def _template_for_output(raw: dict[str, Any]) -> dict[str, Any]:
    """A template in the output form without compiling it (compiling would add missing
    statuses to the workspace): ids of the statuses the workspace has, transition ids
    as they will be assigned."""
    catalogue = {s.name.lower(): s for s in Status.objects.all()}
    statuses = []
    for entry in raw["statuses"]:
        known = catalogue.get(entry["name"].lower())
        statuses.append(
            {
                "id": known.pk if known else None,
                "name": known.name if known else entry["name"],
                "category": entry["category"],
                "color": known.color if known else entry.get("color") or _DEFAULT_COLOR,
            }
        )
    names = {s["name"].lower(): s["name"] for s in statuses}
    # definition_compile keeps given ids and numbers the others 11, 21, 31, ...
    ids, used, next_id = [], {t.get("id") for t in raw["transitions"]}, 11
    for t in raw["transitions"]:
        if t.get("id"):
            ids.append(t["id"])
            continue
        while next_id in used:
            next_id += 10
        ids.append(next_id)
        used.add(next_id)
    return {
        "initial": names[raw["initial"].lower()],
        "statuses": statuses,
        "transitions": [
            {
                "id": ids[i],
                "name": t["name"],
                "from": None if t.get("from") is None else [names[n.lower()] for n in t["from"]],
                "to": names[t["to"].lower()],
                "conditions": t.get("conditions", []),
                "validators": t.get("validators", []),
                "post_functions": t.get("post_functions", []),
            }
            for i, t in enumerate(raw["transitions"])
        ],
    }


def workflow_templates_list() -> list[dict[str, Any]]:
    """The built-in templates, each with its definition in the output form."""
    return [
        {"key": key, "name": name, "definition": _template_for_output(template_definition(key))}
        for key, (name, _) in TEMPLATES.items()
    ]


def _uses(project: Project) -> dict[int, list[str]]:
    """Workflow id -> what uses it: "default" first, then issue types in display order."""
    entries = (
        WorkflowSchemeEntry.objects.filter(project=project)
        .select_related("issue_type")
        .order_by("issue_type__order", "issue_type_id")
    )
    uses: dict[int, list[str]] = defaultdict(list)
    for entry in sorted(entries, key=lambda e: e.issue_type_id is not None):
        uses[entry.workflow_id].append(entry.issue_type.name if entry.issue_type else DEFAULT_USE)
    return uses


def _as_dict(workflow: Workflow, used_by: list[str]) -> dict[str, Any]:
    assert workflow.current is not None
    return {
        "id": workflow.pk,
        "name": workflow.name,
        "description": workflow.description,
        "version": workflow.current.number,
        "definition": definition_for_output(workflow.current.definition),
        "used_by": used_by,
        "created_at": workflow.created_at,
        "updated_at": workflow.updated_at,
    }


def workflows_list(*, project: Project) -> list[dict[str, Any]]:
    """The project's workflows by name, with their current definitions (two queries)."""
    uses = _uses(project)
    workflows = Workflow.objects.filter(project=project).select_related("current")
    return [_as_dict(w, uses.get(w.pk, [])) for w in workflows.order_by("name", "pk")]


def workflow_detail(*, workflow: Workflow) -> dict[str, Any]:
    workflow = Workflow.objects.select_related("current", "project").get(pk=workflow.pk)
    return _as_dict(workflow, _uses(workflow.project).get(workflow.pk, []))


def workflow_versions_list(*, workflow: Workflow) -> QuerySet[WorkflowVersion]:
    """Every saved version of the workflow, oldest first."""
    return (
        WorkflowVersion.objects.filter(workflow=workflow)
        .select_related("created_by")
        .order_by("number")
    )


def workflow_scheme_detail(*, project: Project) -> dict[str, Any]:
    """The default workflow and the issue types mapped to another (by issue type order)."""
    entries = (
        WorkflowSchemeEntry.objects.filter(project=project)
        .select_related("issue_type", "workflow")
        .order_by("issue_type__order", "issue_type_id")
    )
    scheme: dict[str, Any] = {"default": None, "mappings": {}}
    for entry in entries:
        ref = {"id": entry.workflow.pk, "name": entry.workflow.name}
        if entry.issue_type is None:
            scheme["default"] = ref
        else:
            scheme["mappings"][entry.issue_type.name] = ref
    return scheme
