"""Writing a validated import plan, inside the caller's transaction.

Small things (catalogue entries, people, groups, projects, components) go through
`bulk_create`; tickets and everything hanging off them (history, comments, watchers,
components and versions) are streamed with PostgreSQL's COPY, in batches of `BATCH`
tickets. Ticket ids are taken from the table's sequence up front, so rows can refer to
each other (parent, epic) in any order: Django's foreign keys are deferred to commit.
Where allowed, the per-row foreign-key checks are skipped for the COPYs (see
`_foreign_key_checks_skip`): they are the biggest single cost of a big import.
"""

import json
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from typing import Any

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.db import DatabaseError, connection, transaction
from django.db.models import F, Max, Value
from django.db.models.functions import Greatest, Lower
from django.utils import timezone
from psycopg.copy import QueuedLibpqWriter

from accounts.members.models import Group, Invitation, Membership, Role
from accounts.models import User
from accounts.tokens import secret_hash, secret_new
from saas.tenancy import current_schema
from search.link_keys import LINK_KEYS_TRIGGERS, link_keys_refresh
from search.text_vectors import SEARCH_TEXT_TRIGGERS, search_text_fill_later
from tenants.models import Tenant
from tickets.history import HISTORY_UNTIL_TRIGGERS
from tickets.import_validate import ImportPlan, Slot, TicketPlan
from tickets.models import (
    Comment,
    Component,
    CustomField,
    IssueType,
    Priority,
    Project,
    Resolution,
    Status,
    Ticket,
    TicketHistory,
    Version,
    Watcher,
    WorkflowSchemeEntry,
)
from tickets.sprint_import import (
    open_sprint_id,
    sprint_memberships_write,
    sprints_write,
    tickets_rank,
)
from tickets.workflow_definition import DEFAULT_TEMPLATE, TEMPLATES
from tickets.workflow_engine import workflow_create

BATCH = 10_000
COUNTS = (
    *("users_created", "members_created", "members_matched", "invitations_created"),
    *("groups_created", "statuses_created", "issue_types_created", "priorities_created"),
    *("resolutions_created", "custom_fields_created", "projects_created"),
    *("workflows_created", "components_created", "versions_created"),
    *("tickets", "ticket_components", "ticket_versions", "watchers", "comments", "history"),
)
Progress = Callable[[int], None]

TICKET_COLUMNS = (
    "id", "project_id", "number", "key", "summary", "description", "issue_type_id",
    "status_id", "priority_id", "resolution_id", "assignee_id", "reporter_id", "creator_id",
    "labels", "due_date", "story_points", "original_estimate", "remaining_estimate",
    "time_spent", "parent_id", "epic_id", "custom_fields", "created_at", "updated_at",
    "resolved_at", "version", "rank", "sprint_id",
)  # fmt: skip
COMMENT_COLUMNS = ("ticket_id", "author_id", "body", "mentions", "created_at", "updated_at")
HISTORY_COLUMNS = (
    "ticket_id", "actor_id", "field", "from_value", "to_value", "from_ref", "to_ref",
    "created_at", "until",
)  # fmt: skip
WATCHER_COLUMNS = ("ticket_id", "user_id", "created_at")


def import_write(
    *, plan: ImportPlan, actor: Membership, progress: Progress | None = None
) -> dict[str, int]:
    """Write everything `plan` describes; returns the number of rows of each kind."""
    counts: Counter[str] = Counter({name: 0 for name in COUNTS})
    _catalogues(plan, counts)
    _people(plan, actor, counts)
    counts["custom_fields_created"] = _create(
        CustomField, plan.custom_fields.values(), lambda s, i: s.data["field"]
    )
    _projects(plan, actor, counts)
    sprints = sprints_write(plan)
    _tickets(plan, counts, progress or (lambda done: None))
    if plan.sprints:  # only then: the counts of imports without sprints stay as they were
        counts["sprints_created"] = sprints
        counts["sprint_memberships"] = sprint_memberships_write(plan)
    return dict(counts)


def _create(model: Any, slots: Iterable[Slot], build: Callable[[Slot, int], Any]) -> int:
    """Create the new slots' rows and give the slots their ids."""
    new = [slot for slot in slots if slot.new]
    created = model.objects.bulk_create([build(slot, i) for i, slot in enumerate(new)])
    for slot, obj in zip(new, created, strict=True):
        slot.id, slot.new = obj.pk, False
    return len(new)


def _next(model: Any, column: str) -> int:
    return (model.objects.aggregate(top=Max(column))["top"] or 0) + 1


def _catalogues(plan: ImportPlan, counts: Counter[str]) -> None:
    order = _next(Status, "order")
    counts["statuses_created"] = _create(
        Status,
        plan.statuses.values(),
        lambda s, i: Status(name=s.name, category=s.data["category"], order=order + i),
    )
    order = _next(IssueType, "order")
    counts["issue_types_created"] = _create(
        IssueType,
        plan.types.values(),
        lambda s, i: IssueType(
            name=s.name,
            is_subtask=s.data["is_subtask"],
            is_epic=s.data["is_epic"],
            order=order + i,
        ),
    )
    # An unknown priority's urgency is unknown: it ranks below every existing one.
    counts["priorities_created"] = _create(
        Priority, plan.priorities.values(), lambda s, i: Priority(name=s.name, rank=0)
    )
    order = _next(Resolution, "order")
    counts["resolutions_created"] = _create(
        Resolution, plan.resolutions.values(), lambda s, i: Resolution(name=s.name, order=order + i)
    )


def _free_usernames(slots: Sequence[Slot]) -> list[str]:
    """Usernames are global: a taken one gets a numeric suffix (alice -> alice2)."""
    wanted = [slot.name for slot in slots]
    taken = set(
        User.objects.annotate(lowered=Lower("username"))
        .filter(lowered__in={name.lower() for name in wanted})
        .values_list("lowered", flat=True)
    )
    reserved = taken | {name.lower() for name in wanted}
    result = []
    for name in wanted:
        candidate, n = name, 1
        while candidate.lower() in taken or (n > 1 and candidate.lower() in reserved):
            n += 1
            candidate = f"{name[:140]}{n}"
            if User.objects.filter(username__iexact=candidate).exists():
                reserved.add(candidate.lower())
        reserved.add(candidate.lower())
        result.append(candidate)
    return result


def _people(plan: ImportPlan, actor: Membership, counts: Counter[str]) -> None:
    now = timezone.now()
    new = [s for s in plan.users if s.new]
    usernames = _free_usernames(new)

    def identity(slot: Slot, i: int) -> User:
        display = slot.data["display_name"]
        first, _, last = display.partition(" ")
        return User(
            email=slot.data["email"],
            username=usernames[i],
            display_name=display,
            first_name=first[:150],
            last_name=last[:150],
            password=make_password(None),  # unusable until they set one
            date_joined=now,
        )

    counts["users_created"] = _create(User, new, identity)
    joining = [s for s in plan.users if not s.data.get("member")]
    Membership.objects.bulk_create(Membership(user_id=s.id, role=Role.USER) for s in joining)
    for slot in joining:
        slot.data["member"] = True
    counts["members_created"] = len(joining)
    counts["members_matched"] = len(plan.users) - len(joining)
    if joining:
        Tenant.objects.filter(schema_name=current_schema()).update(
            member_count=F("member_count") + len(joining)
        )
    counts["groups_created"] = _create(Group, plan.groups.values(), lambda s, i: Group(name=s.name))
    membership_ids = dict(
        Membership.objects.filter(user_id__in=[s.id for s in plan.users]).values_list(
            "user_id", "id"
        )
    )
    Group.members.through.objects.bulk_create(
        [
            Group.members.through(group_id=group.id, membership_id=membership_ids[s.id])
            for s in plan.users
            for group in s.data.get("groups", [])
        ],
        ignore_conflicts=True,
    )
    invited = [s for s in plan.users if s.data.get("invite")]
    invitations = Invitation.objects.bulk_create(
        Invitation(
            email=s.data["email"],
            display_name=s.data["display_name"],
            role=Role.USER,
            token_hash=secret_hash(secret_new()),  # no email sent: an admin resends it
            invited_by=actor,
            expires_at=now + settings.INVITATION_TTL,
        )
        for s in invited
    )
    Invitation.groups.through.objects.bulk_create(
        Invitation.groups.through(invitation_id=invitation.pk, group_id=group.id)
        for invitation, s in zip(invitations, invited, strict=True)
        for group in s.data.get("groups", [])
    )
    counts["invitations_created"] = len(invitations)


def _projects(plan: ImportPlan, actor: Membership, counts: Counter[str]) -> None:
    def project(slot: Slot, i: int) -> Project:
        lead = slot.data["lead"]
        return Project(
            key=slot.name,
            name=slot.data["name"],
            description=slot.data["description"],
            lead_id=lead.id if lead else None,
            owner_id=actor.user_id,
        )

    created = [slot for slot in plan.projects.values() if slot.new]
    counts["projects_created"] = _create(Project, created, project)
    counts["workflows_created"] = _workflows(plan, created, actor)
    Project.custom_fields.through.objects.bulk_create(
        [
            Project.custom_fields.through(
                project_id=plan.projects[key].id, customfield_id=plan.custom_fields[name].id
            )
            for key, name in sorted(plan.enable_fields)
        ],
        ignore_conflicts=True,
    )
    Project.issue_types.through.objects.bulk_create(
        [
            Project.issue_types.through(
                project_id=plan.projects[key].id, issuetype_id=plan.types[name].id
            )
            for key, name in sorted(plan.enable_types)
        ],
        ignore_conflicts=True,
    )
    parts: tuple[tuple[Any, dict[tuple[str, str], Slot], str], ...] = (
        (Component, plan.components, "components_created"),
        (Version, plan.versions, "versions_created"),
    )
    for model, slots, label in parts:
        new = [(key, slot) for key, slot in slots.items() if slot.new]
        created = model.objects.bulk_create(
            model(project_id=plan.projects[key[0]].id, name=slot.name) for key, slot in new
        )
        for (_, slot), obj in zip(new, created, strict=True):
            slot.id, slot.new = obj.pk, False
        counts[label] = len(new)


def _workflows(plan: ImportPlan, projects: list[Slot], actor: Membership) -> int:
    """Give each project the import creates a workflow knowing every status its tickets
    are in: the default template's statuses plus those, any one reachable from any other
    (Jira's simplified workflow). Projects that exist keep theirs."""
    if not projects:
        return 0
    template = TEMPLATES[DEFAULT_TEMPLATE][1]()
    base = [(s["name"], s["category"]) for s in template["statuses"]]
    used: dict[int, dict[str, str]] = {slot.id: {} for slot in projects}
    for t in plan.tickets:
        if t.project.id in used:
            used[t.project.id].setdefault(t.status.name, t.status.data["category"])
    for slot in projects:
        known = {name.lower() for name, _ in base}
        extra = [(n, c) for n, c in used[slot.id].items() if n.lower() not in known]
        statuses = base + extra
        definition = {
            "statuses": [{"name": name, "category": category} for name, category in statuses],
            "initial": template["initial"],
            "transitions": [
                {
                    "name": name,
                    "from": None,
                    "to": name,
                    "post_functions": [{"type": "set_resolution", "value": "Done"}]
                    if category == Status.Category.DONE
                    else [{"type": "clear_resolution"}],
                }
                for name, category in statuses
            ],
        }
        project = Project(pk=slot.id, key=slot.name)
        workflow = workflow_create(
            project=project, name="Imported workflow", definition=definition, actor=actor
        )
        WorkflowSchemeEntry.objects.create(project_id=slot.id, issue_type=None, workflow=workflow)
    return len(projects)


def _ticket_ids(count: int) -> list[int]:
    table = Ticket._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
            [table, count],
        )
        return [row[0] for row in cursor.fetchall()]


def _with_until(history: list[Any]) -> list[tuple[Any, Any]]:
    """The ticket's history rows with their `until` (the time of the next row of the
    same field, in (time, order written) order, as the database's triggers compute it;
    None for the last), in the order given."""
    until: list[Any] = [None] * len(history)
    last: dict[str, int] = {}
    order = sorted(range(len(history)), key=lambda i: history[i][6])  # stable: ties keep order
    for i in order:
        field_name = history[i][0]
        if field_name in last:
            until[last[field_name]] = history[i][6]
        last[field_name] = i
    return list(zip(history, until, strict=True))


def _id(value: Any) -> int | None:
    return None if value is None else value.id


def _tickets(plan: ImportPlan, counts: Counter[str], progress: Progress) -> None:
    tickets = plan.tickets
    for t, pk in zip(tickets, _ticket_ids(len(tickets)), strict=True):
        t.id = pk
    tickets_rank(tickets)
    now = timezone.now()
    m2m = (
        (Ticket.components.through, "component_id", "components", "ticket_components"),
        (Ticket.fix_versions.through, "version_id", "versions", "ticket_versions"),
    )
    fast = _foreign_key_checks_skip(plan)
    with connection.cursor() as cursor:
        raw = cursor.cursor
        for start in range(0, len(tickets), BATCH):
            batch = tickets[start : start + BATCH]
            counts["tickets"] += _copy(raw, Ticket, TICKET_COLUMNS, map(_ticket_row, batch))
            rows: Iterable[tuple[Any, ...]]
            for through, column, attr, label in m2m:
                rows = ((t.id, s.id) for t in batch for s in getattr(t, attr))
                counts[label] += _copy(raw, through, ("ticket_id", column), rows)
            rows = ((t.id, s.id, now) for t in batch for s in t.watchers)
            counts["watchers"] += _copy(raw, Watcher, WATCHER_COLUMNS, rows)
            rows = (
                (t.id, _id(author), body, "{}", created, created)
                for t in batch
                for author, body, created in t.comments
            )
            counts["comments"] += _copy(raw, Comment, COMMENT_COLUMNS, rows)
            rows = (
                (t.id, _id(by), name, old, new, _id(old_ref), _id(new_ref), at, until)
                for t in batch
                for (name, old, new, old_ref, new_ref, by, at), until in _with_until(t.history)
            )
            counts["history"] += _copy(raw, TicketHistory, HISTORY_COLUMNS, rows)
            progress(start + len(batch))
        if fast:
            cursor.execute("SET LOCAL session_replication_role = origin")
            # The search text trigger was skipped with the foreign-key ones: the
            # vectors are filled after commit. Until then they are NULL, which text
            # search reads as "search this ticket the exact way": slower, not wrong.
            # (History `until` is written by the COPY itself.) The links' copy of
            # their ticket's dates is filled now, in this transaction.
            ids = [t.id for t in tickets if t.id is not None]
            link_keys_refresh(ids)
            transaction.on_commit(partial(search_text_fill_later, current_schema(), ids))
    top: dict[int, int] = {}
    for t in tickets:
        top[t.project.id] = max(top.get(t.project.id, 0), t.number)
    for project_id, number in top.items():
        Project.objects.filter(pk=project_id).update(
            ticket_counter=Greatest(F("ticket_counter"), Value(number))
        )


COPY_TABLES = (
    Ticket,
    Ticket.components.through,
    Ticket.fix_versions.through,
    Watcher,
    Comment,
    TicketHistory,
)


def _foreign_key_checks_skip(plan: ImportPlan) -> bool:
    """Switch off the per-row foreign-key triggers for the COPYs, as `pg_restore
    --disable-triggers` does, when that is safe and allowed; returns whether it did.

    Each checked reference costs a query at commit (~8 us here; five per ticket row and
    two per history, comment and watcher row: the biggest cost of an import). Every
    reference was resolved by the validation in this transaction, so the checks could
    only fail if a referenced row were deleted meanwhile; `_references_lock` takes the
    same KEY SHARE locks the checks would, once per row instead of once per reference.
    Not done when a table has triggers of its own (they would be skipped too; the
    search text, history `until` and link sort key triggers are the exception:
    `_tickets` writes `until` itself, fills the links' keys and has the text vectors
    filled after commit) or when
    the role may not set `session_replication_role` (superuser, or on PostgreSQL 15+
    `GRANT SET ON PARAMETER session_replication_role TO <role>`).
    """
    if not plan.tickets:
        return False
    tables = [model._meta.db_table for model in COPY_TABLES]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_trigger WHERE tgrelid = ANY(%s::regclass[])"
            " AND NOT tgisinternal AND NOT tgname LIKE %s AND NOT tgname LIKE %s"
            " AND NOT tgname LIKE %s",
            [
                tables,
                f"{SEARCH_TEXT_TRIGGERS}%",
                f"{HISTORY_UNTIL_TRIGGERS}%",
                f"{LINK_KEYS_TRIGGERS}%",
            ],
        )
        if cursor.fetchone()[0]:
            return False
        try:
            with transaction.atomic():  # a refusal must not abort the import
                cursor.execute("SET LOCAL session_replication_role = replica")
        except DatabaseError:
            return False
    _references_lock(plan)
    return True


def _references_lock(plan: ImportPlan) -> None:
    """KEY SHARE locks on the existing rows the tickets refer to, until commit."""
    existing: dict[Any, list[int]] = {
        Component: [s.id for s in plan.components.values()],
        Version: [s.id for s in plan.versions.values()],
        Ticket: [ref for t in plan.tickets for ref in (t.parent, t.epic) if isinstance(ref, int)],
    }
    members = Membership._meta.db_table
    with connection.cursor() as cursor:
        for model in (Status, IssueType, Priority, Resolution, Project):
            cursor.execute(f"SELECT 1 FROM {model._meta.db_table} FOR KEY SHARE")  # noqa: S608
        for model, ids in existing.items():
            cursor.execute(
                f"SELECT 1 FROM {model._meta.db_table} WHERE id = ANY(%s) FOR KEY SHARE",  # noqa: S608
                [ids],
            )
        cursor.execute(
            f"SELECT 1 FROM {User._meta.db_table} WHERE id IN"  # noqa: S608
            f" (SELECT user_id FROM {members}) FOR KEY SHARE"
        )


def _ticket_id(ref: TicketPlan | int | str | None) -> int | None:
    """A parent or epic: a ticket of the import, an existing ticket's id, or none."""
    if isinstance(ref, TicketPlan):
        return ref.id
    return ref if isinstance(ref, int) else None


def _ticket_row(t: TicketPlan) -> tuple[Any, ...]:
    reporter = _id(t.reporter)
    custom = {str(slot.id): _id(v) if isinstance(v, Slot) else v for slot, v in t.custom}
    return (
        t.id, t.project.id, t.number, t.key, t.summary, t.description, t.type.id,
        t.status.id, t.priority.id, _id(t.resolution), _id(t.assignee), reporter, reporter,
        _text_array(t.labels), t.due, t.story_points, t.original_estimate, t.remaining_estimate,
        t.time_spent, _ticket_id(t.parent), _ticket_id(t.epic), json.dumps(custom), t.created,
        t.updated, t.resolved, 1, t.rank, open_sprint_id(t),
    )  # fmt: skip


def _text_array(values: Sequence[str]) -> str:
    """A PostgreSQL array literal: much cheaper than adapting a Python list per row."""
    quoted = ('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values)
    return "{" + ",".join(quoted) + "}"


def _copy(raw: Any, model: Any, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    quote = connection.ops.quote_name
    statement = f"COPY {quote(model._meta.db_table)} ({', '.join(map(quote, columns))}) FROM STDIN"
    count = 0
    # Rows are formatted here while a worker thread feeds the server: both cores work.
    with raw.copy(statement, writer=QueuedLibpqWriter(raw)) as copy:
        for row in rows:
            copy.write_row(row)
            count += 1
    return count
