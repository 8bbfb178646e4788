"""Writes on workflow configuration: workflows and their versions, the project's
workflow scheme, and moving tickets off statuses their workflow no longer has.

Every write locks the project row first, so configuration changes of one project and
the chunks of its migration jobs queue instead of racing. Then it authorizes (project
administrators), validates everything (422 listing every problem), writes, and
records an audit entry and an outbox event in the same transaction.

A change that leaves tickets in statuses their workflow lacks (a new definition
without a status, an issue type moved to another workflow) needs a `status_mapping`
for each such status. Up to `MIGRATION_SYNC_LIMIT` tickets are moved in the same
transaction; more are moved by a job (`Job.kind == "workflow_migration"`) in chunks
of `MIGRATION_CHUNK_SIZE`, each its own transaction, after the change is saved.
"""

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Count, F
from django.utils import timezone

from accounts.members.models import Group, Membership
from eventlog.audit import audit_record
from eventlog.models import Job
from eventlog.outbox import outbox_emit
from eventlog.record import change_record
from saas.errors import Conflict, Invalid, NotFound, PreconditionFailed
from saas.tenancy import current_schema
from tickets import fields as f
from tickets.access import project_require_admin
from tickets.models import (
    IssueType,
    Project,
    Status,
    Ticket,
    TicketHistory,
    Workflow,
    WorkflowSchemeEntry,
    WorkflowVersion,
)
from tickets.workflow_definition import (
    TEMPLATES,
    DefinitionProblems,
    definition_compile,
    template_definition,
)
from tickets.workflow_engine import project_workflow_ensure, workflow_create

# Read at call time, so tests (and operators) can lower them.
MIGRATION_SYNC_LIMIT = 500
MIGRATION_CHUNK_SIZE = 500
MIGRATION_JOB_KIND = "workflow_migration"
_FINISHED = (Job.Status.SUCCEEDED, Job.Status.FAILED, Job.Status.PARTIAL)
Problem = dict[str, Any]


@dataclass(frozen=True)
class StatusMove:
    """Tickets of `issue_type_ids` follow `workflow_id`: those in a status that workflow
    lacks move by `mapping` (old status id -> status id of the workflow)."""

    workflow_id: int
    issue_type_ids: tuple[int, ...]
    mapping: dict[int, int]

    def as_params(self) -> dict[str, Any]:
        return {
            "workflow_id": self.workflow_id,
            "issue_type_ids": list(self.issue_type_ids),
            "mapping": {str(old): new for old, new in self.mapping.items()},
        }

    @classmethod
    def from_params(cls, raw: Mapping[str, Any]) -> "StatusMove":
        return cls(
            workflow_id=int(raw["workflow_id"]),
            issue_type_ids=tuple(int(i) for i in raw["issue_type_ids"]),
            mapping={int(old): int(new) for old, new in raw["mapping"].items()},
        )


@dataclass(frozen=True)
class StatusMigration:
    """What a change does to tickets: moved now (`ticket_ids`) or by `job`."""

    planned: int = 0
    ticket_ids: tuple[int, ...] = ()
    job: Job | None = None


@dataclass(frozen=True)
class WorkflowChange:
    workflow: Workflow
    migration: StatusMigration


@dataclass(frozen=True)
class SchemeChange:
    project: Project
    migration: StatusMigration


# Shared --------------------------------------------------------------------------------


def _lock(project: Project) -> Project:
    """Lock the project's row: its configuration writes and migration chunks queue here."""
    locked = Project.objects.select_for_update(of=("self",)).filter(pk=project.pk).first()
    if locked is None:
        raise NotFound(f"Project {project.key} no longer exists.", code="project_not_found")
    return locked


def _workflow_reread(project: Project, workflow: Workflow) -> Workflow:
    found = (
        Workflow.objects.select_related("current").filter(pk=workflow.pk, project=project).first()
    )
    if found is None or found.current is None:
        raise NotFound(
            f"Workflow {workflow.pk} does not exist in project {project.key}.",
            code="workflow_not_found",
        )
    return found


def _text(value: Any, *, field: str, label: str, max_length: int, required: bool) -> str:
    if value is None and not required:
        return ""
    text = value.strip() if isinstance(value, str) else ""
    if (required and not text) or "\x00" in text or len(text) > max_length:
        raise f.FieldError(field, f"{label} must be 1-{max_length} characters of text.")
    return text


def _compile(raw: Any, problems: list[Problem]) -> dict[str, Any] | None:
    """The stored form of an input definition, or None after listing its problems
    (with paths from the request body: `definition.statuses.2.name`)."""
    group_names = {g.lower() for g in Group.objects.values_list("name", flat=True)}
    try:
        return definition_compile(raw, group_names=group_names)
    except DefinitionProblems as exc:
        problems.extend(_in_body(exc))
        return None


def _in_body(exc: DefinitionProblems) -> list[Problem]:
    return [
        {**p, "field": ".".join(part for part in ("definition", p["field"]) if part)}
        for p in exc.problems
    ]


def _raise(problems: list[Problem], message: str) -> None:
    if not problems:
        return
    mapping_only = all("ticket_count" in p for p in problems)
    raise Invalid(
        message if not mapping_only else "Tickets hold statuses that need a status_mapping.",
        code="status_mapping_required" if mapping_only else None,
        details=problems,
    )


def _entries(project: Project) -> dict[int | None, int]:
    """The scheme: issue type id (None: the default) -> workflow id."""
    return dict(
        WorkflowSchemeEntry.objects.filter(project=project).values_list(
            "issue_type_id", "workflow_id"
        )
    )


def _effective(entries: Mapping[int | None, int], type_ids: Sequence[int]) -> dict[int, int]:
    """Issue type id -> the workflow its tickets follow."""
    return {t: entries.get(t, entries[None]) for t in type_ids}


def _status_ids(version: WorkflowVersion) -> set[int]:
    return {s["id"] for s in version.definition["statuses"]}


def _moves_plan(
    *,
    project: Project,
    targets: Mapping[int, tuple[Workflow, WorkflowVersion, Sequence[int]]],
    status_mapping: Mapping[str, str] | None,
    problems: list[Problem],
) -> tuple[list[StatusMove], int]:
    """For each workflow that issue types now follow (`targets`: workflow id ->
    (workflow, its definition to check against, issue type ids)): the statuses tickets
    hold that the definition lacks, each mapped through `status_mapping` (names,
    case-insensitive) to a status of the definition. Returns the moves and the number of
    tickets they move; unmapped statuses become problems with their ticket counts."""
    wanted = {k.strip().lower(): v.strip() for k, v in (status_mapping or {}).items()}
    moves: list[StatusMove] = []
    total = 0
    for workflow_id, (workflow, version, type_ids) in targets.items():
        if not type_ids:
            continue
        allowed = {s["name"].lower(): s for s in version.definition["statuses"]}
        allowed_ids = {s["id"] for s in allowed.values()}
        held = dict(
            Ticket.objects.filter(project=project, issue_type_id__in=type_ids)
            .exclude(status_id__in=allowed_ids)
            .order_by()
            .values_list("status_id")
            .annotate(n=Count("pk"))
        )
        if not held:
            continue
        names = dict(Status.objects.filter(pk__in=held).values_list("pk", "name"))
        mapping: dict[int, int] = {}
        for status_id, count in sorted(held.items(), key=lambda item: names[item[0]].lower()):
            name = names[status_id]
            choices = ", ".join(s["name"] for s in version.definition["statuses"])
            sent = wanted.get(name.lower())
            target = sent.lower() if sent is not None else None
            if target is None or target not in allowed:
                tickets = f"{count} ticket is" if count == 1 else f"{count} tickets are"
                hint = "" if sent is None else f" ({sent!r} is not one of them)"
                problems.append(
                    {
                        "field": f"status_mapping.{name}",
                        "message": f"{tickets} in {name!r}, which {workflow.name!r} does not "
                        f"have: map it to one of {choices}{hint}.",
                        "status": name,
                        "ticket_count": count,
                        "workflow": workflow.name,
                    }
                )
                continue
            mapping[status_id] = allowed[target]["id"]
            total += count
        moves.append(StatusMove(workflow_id, tuple(sorted(type_ids)), mapping))
    return moves, total


def tickets_migrate_statuses(
    *,
    project: Project,
    moves: Sequence[StatusMove],
    actor_id: int | None,
    limit: int | None = None,
    at: Any = None,
) -> list[int]:
    """Move tickets still in a status their workflow lacks to the mapped status: one
    UPDATE per status pair (status, resolved_at by the DONE category, version + 1,
    updated_at) and one history row per ticket. At most `limit` tickets; returns the
    ids moved. Runs in the caller's transaction; safe to repeat (tickets already
    moved, or whose status the workflow has again, are left alone)."""
    assert connection.in_atomic_block, "tickets_migrate_statuses runs inside a transaction"
    now = at or timezone.now()
    moved: list[int] = []
    for move in moves:
        if limit is not None and len(moved) >= limit:
            break
        workflow = Workflow.objects.select_related("current").filter(pk=move.workflow_id).first()
        if workflow is None or workflow.current is None:
            continue
        allowed = _status_ids(workflow.current)
        pairs = {
            old: new for old, new in move.mapping.items() if old not in allowed and new in allowed
        }
        if not pairs:
            continue
        tickets = (
            Ticket.objects.filter(
                project=project, issue_type_id__in=move.issue_type_ids, status_id__in=pairs
            )
            .order_by("pk")
            .select_for_update()
        )
        if limit is not None:
            tickets = tickets[: limit - len(moved)]
        rows = list(tickets.values_list("pk", "status_id"))
        if not rows:
            continue
        by_status: dict[int, list[int]] = defaultdict(list)
        for pk, status_id in rows:
            by_status[status_id].append(pk)
        statuses = Status.objects.in_bulk({*by_status, *(pairs[s] for s in by_status)})
        history: list[TicketHistory] = []
        for old_id, ids in by_status.items():
            old, new = statuses[old_id], statuses[pairs[old_id]]
            done = Status.Category.DONE
            resolved: dict[str, Any] = {}
            if new.category == done and old.category != done:
                resolved["resolved_at"] = now
            elif old.category == done and new.category != done:
                resolved["resolved_at"] = None
            Ticket.objects.filter(pk__in=ids).update(
                status_id=new.pk, version=F("version") + 1, updated_at=now, **resolved
            )
            history.extend(
                TicketHistory(
                    ticket_id=pk,
                    actor_id=actor_id,
                    field="status",
                    from_value=old.name,
                    to_value=new.name,
                    from_ref=old.pk,
                    to_ref=new.pk,
                    created_at=now,
                )
                for pk in ids
            )
            moved.extend(ids)
        TicketHistory.objects.bulk_create(history)
    return moved


def _migrate(
    *, project: Project, moves: list[StatusMove], planned: int, actor: Membership, reason: str
) -> StatusMigration:
    """Move the tickets now, or queue a job when there are too many."""
    if not planned:
        return StatusMigration()
    if planned <= MIGRATION_SYNC_LIMIT:
        ids = tickets_migrate_statuses(project=project, moves=moves, actor_id=actor.user_id)
        return StatusMigration(planned=planned, ticket_ids=tuple(ids))
    job = Job.objects.create(
        kind=MIGRATION_JOB_KIND,
        created_by_id=actor.user_id,
        params={
            "project_id": project.pk,
            "reason": reason,
            "moves": [m.as_params() for m in moves],
        },
        total=planned,
        result={"tickets_migrated": 0},
    )
    schema_name, job_id = current_schema(), str(job.pk)

    def enqueue() -> None:
        from tickets.workflow_tasks import workflow_migration_job_run

        workflow_migration_job_run.delay(schema_name, job_id)

    transaction.on_commit(enqueue)
    return StatusMigration(planned=planned, job=job)


def _migration_record(migration: StatusMigration, mapping_names: dict[str, str]) -> dict[str, Any]:
    """Audit changes and event payload fields describing a migration."""
    return {
        "tickets_migrated": len(migration.ticket_ids),
        "tickets_to_migrate": migration.planned,
        "status_mapping": mapping_names,
        "job_id": str(migration.job.pk) if migration.job else None,
    }


def _mapping_names(moves: Sequence[StatusMove]) -> dict[str, str]:
    ids = {i for m in moves for pair in m.mapping.items() for i in pair}
    names = dict(Status.objects.filter(pk__in=ids).values_list("pk", "name"))
    return {names[old]: names[new] for m in moves for old, new in m.mapping.items()}


# Workflows -----------------------------------------------------------------------------


@transaction.atomic
def workflow_add(
    *,
    project: Project,
    actor: Membership,
    name: str,
    description: str = "",
    template: str | None = None,
    definition: Any = None,
) -> Workflow:
    """A new workflow of the project from a template or a definition (exactly one), as
    version 1 (project administrators). It is used once the scheme points at it."""
    project = _lock(project)
    project_require_admin(member=actor, project=project)
    project_workflow_ensure(project=project, actor=actor)
    problems: list[Problem] = []
    clean: dict[str, str] = {}
    for attr, value, limit in (("name", name, 100), ("description", description, 255)):
        try:
            clean[attr] = _text(
                value, field=attr, label=attr.title(), max_length=limit, required=attr == "name"
            )
        except f.FieldError as exc:
            problems.append(exc.as_detail())
    if (template is None) == (definition is None):
        problems.append({"field": "template", "message": "Send either a template or a definition."})
    elif template is not None and template not in TEMPLATES:
        problems.append({"field": "template", "message": f"Templates are {', '.join(TEMPLATES)}."})
    elif definition is not None and problems:
        _compile(definition, problems)  # to list its problems too
    _raise(problems, "The workflow is invalid.")
    try:
        workflow = workflow_create(
            project=project,
            name=clean["name"],
            definition=template_definition(template) if template is not None else definition,
            actor=actor,
            description=clean["description"],
        )
    except DefinitionProblems as exc:
        raise Invalid("The workflow is invalid.", details=_in_body(exc)) from exc
    change_record(
        "workflow.created",
        actor=actor,
        target_type="workflow",
        target_id=workflow.pk,
        changes={
            "project": [None, project.key],
            "name": [None, workflow.name],
            "version": [None, 1],
            "template": [None, template],
        },
        payload={"project": project.key, "workflow_id": workflow.pk, "version": 1},
    )
    return workflow


def _types_following(
    workflow_id: int, entries: Mapping[int | None, int], type_ids: Sequence[int]
) -> list[int]:
    return [t for t, w in _effective(entries, type_ids).items() if w == workflow_id]


@transaction.atomic
def workflow_update(
    *,
    workflow: Workflow,
    actor: Membership,
    data: Mapping[str, Any],
    expected_version: int | None = None,
) -> WorkflowChange:
    """Rename, describe, or give the workflow a new definition (project administrators).

    A new definition is saved as a new version, which becomes current; the old ones stay
    readable. Tickets of the workflow in statuses the new definition lacks move by
    `status_mapping` (422 listing each unmapped status with its ticket count). An
    `expected_version` other than the current one answers 412."""
    project = _lock(workflow.project)
    project_require_admin(member=actor, project=project)
    project_workflow_ensure(project=project, actor=actor)
    workflow = _workflow_reread(project, workflow)
    current = workflow.current
    assert current is not None
    if expected_version is not None and expected_version != current.number:
        raise PreconditionFailed(
            f"Workflow {workflow.name!r} was changed by someone else (version "
            f"{current.number}, you sent {expected_version}).",
            details={"current_version": current.number},
        )
    problems: list[Problem] = []
    changes: dict[str, list[Any]] = {}
    for attr, limit, required in (("name", 100, True), ("description", 255, False)):
        if attr not in data:
            continue
        try:
            value = _text(
                data[attr], field=attr, label=attr.title(), max_length=limit, required=required
            )
        except f.FieldError as exc:
            problems.append(exc.as_detail())
            continue
        if value != getattr(workflow, attr):
            changes[attr] = [getattr(workflow, attr), value]
    stored = None
    if data.get("definition") is not None:
        stored = _compile(data["definition"], problems)
    elif data.get("status_mapping"):
        problems.append(
            {"field": "status_mapping", "message": "A status_mapping goes with a new definition."}
        )
    if stored == current.definition:
        stored = None  # the same definition again: no new version
    moves: list[StatusMove] = []
    planned = 0
    if stored is not None:
        type_ids = list(IssueType.objects.values_list("pk", flat=True))
        following = _types_following(workflow.pk, _entries(project), type_ids)
        draft = WorkflowVersion(workflow=workflow, number=current.number + 1, definition=stored)
        moves, planned = _moves_plan(
            project=project,
            targets={workflow.pk: (workflow, draft, following)},
            status_mapping=data.get("status_mapping"),
            problems=problems,
        )
    _raise(problems, "The workflow change is invalid.")
    if not changes and stored is None:
        return WorkflowChange(workflow=workflow, migration=StatusMigration())

    for attr, (_, new) in changes.items():
        setattr(workflow, attr, new)
    if stored is not None:
        workflow.current = WorkflowVersion.objects.create(
            workflow=workflow,
            number=current.number + 1,
            definition=stored,
            created_by_id=actor.user_id,
        )
        changes["version"] = [current.number, workflow.current.number]
    try:
        with transaction.atomic():
            workflow.save(
                update_fields=[*sorted(set(changes) - {"version"}), "current", "updated_at"]
            )
    except IntegrityError as exc:
        raise Conflict(
            f"{project.key} already has a workflow named {workflow.name!r}.",
            code="workflow_name_taken",
        ) from exc
    migration = _migrate(
        project=project, moves=moves, planned=planned, actor=actor, reason="workflow.updated"
    )
    record = _migration_record(migration, _mapping_names(moves)) if stored is not None else {}
    change_record(
        "workflow.updated",
        actor=actor,
        target_type="workflow",
        target_id=workflow.pk,
        changes={**changes, **{k: [None, v] for k, v in record.items()}},
        payload={
            "project": project.key,
            "workflow_id": workflow.pk,
            "version": workflow.current.number if workflow.current else None,
            "fields": sorted(changes),
            **record,
            "ticket_ids": list(migration.ticket_ids),
        },
    )
    return WorkflowChange(workflow=workflow, migration=migration)


@transaction.atomic
def workflow_delete(*, workflow: Workflow, actor: Membership) -> None:
    """Delete a workflow with its versions (project administrators); one the scheme
    uses answers 409 naming what uses it."""
    project = _lock(workflow.project)
    project_require_admin(member=actor, project=project)
    project_workflow_ensure(project=project, actor=actor)
    workflow = _workflow_reread(project, workflow)
    used_by = [
        name or "default"
        for name in WorkflowSchemeEntry.objects.filter(workflow=workflow)
        .order_by("issue_type__order", "issue_type_id")
        .values_list("issue_type__name", flat=True)
    ]
    if used_by:
        raise Conflict(
            f"{workflow.name!r} is used by {', '.join(used_by)}; change the workflow scheme first.",
            code="workflow_in_use",
            details={"used_by": used_by},
        )
    change_record(
        "workflow.deleted",
        actor=actor,
        target_type="workflow",
        target_id=workflow.pk,
        changes={"project": [project.key, None], "name": [workflow.name, None]},
        payload={"project": project.key, "workflow_id": workflow.pk, "name": workflow.name},
    )
    workflow.delete()


# Scheme --------------------------------------------------------------------------------


@transaction.atomic
def scheme_update(*, project: Project, actor: Membership, data: Mapping[str, Any]) -> SchemeChange:
    """Change the default workflow and which workflow issue types use (project
    administrators). `mappings` maps issue type names to workflow ids of the project, or
    null to use the default. Tickets changing workflow whose status the new workflow
    lacks move by `status_mapping` (422 listing each unmapped status with its count)."""
    project = _lock(project)
    project_require_admin(member=actor, project=project)
    project_workflow_ensure(project=project, actor=actor)
    problems: list[Problem] = []
    workflows = {
        w.pk: w for w in Workflow.objects.filter(project=project).select_related("current")
    }
    before = _entries(project)
    after = dict(before)

    def workflow_of(ref: Any, field: str) -> int | None:
        if ref not in workflows:
            problems.append({"field": field, "message": f"No workflow {ref} in {project.key}."})
            return None
        return int(ref)

    if "default" in data:
        if data["default"] is None:
            problems.append({"field": "default", "message": "A project needs a default workflow."})
        elif (chosen := workflow_of(data["default"], "default")) is not None:
            after[None] = chosen
    names: dict[int, str] = {}
    for type_name, ref in (data.get("mappings") or {}).items():
        field = f"mappings.{type_name}"
        try:
            issue_type = f.issue_type_resolve(type_name, project=project)
        except f.FieldError as exc:
            problems.append({"field": field, "message": exc.message})
            continue
        names[issue_type.pk] = issue_type.name
        if ref is None:
            after.pop(issue_type.pk, None)
        elif (chosen := workflow_of(ref, field)) is not None:
            after[issue_type.pk] = chosen
    type_ids = list(IssueType.objects.values_list("pk", flat=True))
    old, new = _effective(before, type_ids), _effective(after, type_ids)
    targets: dict[int, tuple[Workflow, WorkflowVersion, list[int]]] = {}
    for type_id in type_ids:
        if old[type_id] != new[type_id]:
            target = workflows[new[type_id]]
            assert target.current is not None
            targets.setdefault(target.pk, (target, target.current, []))[2].append(type_id)
    moves, planned = _moves_plan(
        project=project,
        targets=targets,
        status_mapping=data.get("status_mapping"),
        problems=problems,
    )
    _raise(problems, "The workflow scheme is invalid.")
    if after == before:
        return SchemeChange(project=project, migration=StatusMigration())

    # The default first, then issue types in the order they were sent.
    changed = [k for k in (None, *names) if before.get(k) != after.get(k)]
    for key in changed:
        if key not in after:
            WorkflowSchemeEntry.objects.filter(project=project, issue_type_id=key).delete()
        else:
            WorkflowSchemeEntry.objects.update_or_create(
                project=project, issue_type_id=key, defaults={"workflow_id": after[key]}
            )
    migration = _migrate(
        project=project,
        moves=moves,
        planned=planned,
        actor=actor,
        reason="workflow_scheme.updated",
    )

    def label(key: int | None) -> str:
        return "default" if key is None else f"mappings.{names[key]}"

    def followed(entries: Mapping[int | None, int], key: int | None) -> str:
        return workflows[entries.get(key, entries[None])].name

    changes = {label(k): [followed(before, k), followed(after, k)] for k in changed}
    record = _migration_record(migration, _mapping_names(moves))
    change_record(
        "workflow_scheme.updated",
        actor=actor,
        target_type="project",
        target_id=project.key,
        changes={**changes, **{k: [None, v] for k, v in record.items()}},
        payload={
            "project": project.key,
            "changed": sorted(changes),
            **record,
            "ticket_ids": list(migration.ticket_ids),
        },
        aggregate_id=project.pk,
    )
    return SchemeChange(project=project, migration=migration)


# The migration job ---------------------------------------------------------------------


def workflow_migration_job_process(*, job_id: str, chunk_size: int | None = None) -> Job | None:
    """Run (or resume) a workflow migration job, a chunk per transaction, until no ticket
    is left in a status its workflow lacks. Safe to run twice, even at once: each chunk
    locks the job row, then the project row, and picks the tickets still to move."""
    size = chunk_size or MIGRATION_CHUNK_SIZE
    while True:
        with transaction.atomic():
            job = Job.objects.select_for_update().filter(pk=job_id, kind=MIGRATION_JOB_KIND).first()
            if job is None or job.status in _FINISHED:
                return job
            now = timezone.now()
            if job.status == Job.Status.QUEUED:
                job.status, job.started_at = Job.Status.RUNNING, now
            project = (
                Project.objects.select_for_update(of=("self",))
                .filter(pk=job.params["project_id"])
                .first()
            )
            if project is None:
                _job_finish(job, now=now, error="The project was deleted.")
                return job
            ids = tickets_migrate_statuses(
                project=project,
                moves=[StatusMove.from_params(m) for m in job.params["moves"]],
                actor_id=job.created_by_id,
                limit=size,
                at=now,
            )
            job.processed += len(ids)
            job.succeeded += len(ids)
            job.result = {**job.result, "tickets_migrated": job.succeeded}
            if ids:
                outbox_emit(
                    "workflow.tickets_migrated",
                    aggregate_type="project",
                    aggregate_id=project.pk,
                    payload={"project": project.key, "job_id": str(job.pk), "ticket_ids": ids},
                )
            if len(ids) < size:
                audit_record(
                    actor=None,
                    action="workflow.tickets_migrated",
                    target_type="job",
                    target_id=job.pk,
                    changes={
                        "project": [None, project.key],
                        "reason": [None, job.params.get("reason")],
                        "tickets_migrated": [None, job.succeeded],
                    },
                )
                _job_finish(job, now=now)
                return job
            job.save()


def _job_finish(job: Job, *, now: Any, error: str = "") -> None:
    job.status = Job.Status.FAILED if error else Job.Status.SUCCEEDED
    job.error = error
    job.finished_at = now
    job.started_at = job.started_at or now
    job.save()
    outbox_emit(
        "job.finished",
        aggregate_type="job",
        aggregate_id=job.pk,
        payload={
            "job_id": str(job.pk),
            "kind": job.kind,
            "status": job.status,
            "created_by": job.created_by_id,
        },
    )
