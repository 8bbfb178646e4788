"""Sprints in the import format, and ranks for imported tickets.

Top level: `"sprints": [{"id", "name", "state": "future|active|closed", "project",
"start", "end"}]`; per ticket: `"sprints": [ids]`, the file's ids, mapped to ours. A
ticket is in at most one open (future or active) sprint; its closed sprints are
memberships only. The scope log gets what the file can tell: COMMITTED at the start of
an active or closed sprint for each of its tickets, and at the end of a closed sprint
COMPLETED (the ticket is done now and the sprint is its last) or NOT_COMPLETED.
Imported tickets are ranked after their project's last ticket, in number order.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.db.models import Max

from tickets.models import Sprint, SprintChange, SprintMembership, Status
from tickets.rank import project_last_rank, project_rank_lock, ranks_after

if TYPE_CHECKING:
    from tickets.import_validate import ImportPlan, Slot, TicketPlan, _Validator

BATCH = 5_000


@dataclass(eq=False)
class SprintPlan:
    index: int
    ref: str
    name: str
    state: str
    project: "Slot"
    start: datetime | None
    end: datetime | None
    id: int = 0
    tickets: list["TicketPlan"] = field(default_factory=list)


def _ref(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value).strip()
    return text or None


def sprints_validate(v: "_Validator") -> None:
    """Check the `sprints` section into `v.plan.sprints` (the file's id -> plan)."""
    plan: dict[str, SprintPlan] = {}
    active: dict[str, int] = {}
    for i, entry in enumerate(v.section("sprints")):
        where = ("sprints", i)
        if not isinstance(entry, dict):
            v.bad(*where, None, "Each sprint must be an object.")
            continue
        ref = _ref(entry.get("id"))
        if ref is None:
            v.bad(*where, "id", "id is required (text or a number).")
            continue
        if ref in plan:
            v.bad(*where, "id", f"Sprint id {ref!r} appears more than once.")
            continue
        name = v.text(entry, "name", where, limit=255, required=True)
        state = entry.get("state", Sprint.State.FUTURE)
        if state not in Sprint.State.values:
            v.bad(*where, "state", "state must be future, active or closed.")
        key = entry.get("project")
        project = v.plan.projects.get(key.strip().upper()) if isinstance(key, str) else None
        if project is None:
            v.bad(*where, "project", f"Unknown project {key!r}: not in `projects`.")
        start = v._time(entry.get("start"), where, "start", None)
        end = v._time(entry.get("end"), where, "end", None)
        if start is not None and end is not None and end <= start:
            v.bad(*where, "end", "end must be after start.")
        if state in (Sprint.State.ACTIVE, Sprint.State.CLOSED) and start is None:
            v.bad(*where, "start", f"A {state} sprint needs a start.")
        if state == Sprint.State.ACTIVE and project is not None:
            _one_active(v, where, project, active)
        if name is None or project is None or state not in Sprint.State.values:
            continue
        plan[ref] = SprintPlan(i, ref, name, state, project, start, end)
    v.plan.sprints = plan


def _one_active(v: "_Validator", where: tuple[str, int], project: "Slot", seen: dict) -> None:
    if project.name in seen:
        v.bad(*where, "state", f"Project {project.name} has two active sprints in the file.")
        return
    seen[project.name] = where[1]
    existing = (
        None
        if project.new
        else Sprint.objects.filter(project_id=project.id, state=Sprint.State.ACTIVE).first()
    )
    if existing is not None:
        v.bad(*where, "state", f"Project {project.name} already has an active sprint.")


def ticket_sprints_validate(
    v: "_Validator", value: Any, t: "TicketPlan", where: tuple[str, int]
) -> list[SprintPlan]:
    """A ticket's `sprints`: known ids of its project's sprints, one open at most."""
    if value is None:
        return []
    if not isinstance(value, list):
        v.bad(*where, "sprints", "sprints must be a list of sprint ids.")
        return []
    found: list[SprintPlan] = []
    for n, raw in enumerate(value):
        ref = _ref(raw)
        sprint = v.plan.sprints.get(ref) if ref is not None else None
        if sprint is None:
            v.bad(*where, ("sprints", n), f"Unknown sprint {raw!r}: not in `sprints`.")
        elif sprint.project is not t.project:
            v.bad(
                *where,
                ("sprints", n),
                f"Sprint {ref} is in project {sprint.project.name}, not {t.project.name}.",
            )
        elif sprint not in found:
            found.append(sprint)
    if sum(s.state != Sprint.State.CLOSED for s in found) > 1:
        v.bad(*where, "sprints", "A ticket can be in one open (future or active) sprint only.")
    return found


def open_sprint_id(t: "TicketPlan") -> int | None:
    return next((s.id for s in t.sprints if s.state != Sprint.State.CLOSED), None)


def sprints_write(plan: "ImportPlan") -> int:
    """Create the file's sprints (after the projects' own, in file order)."""
    sprints = list(plan.sprints.values())
    if not sprints:
        return 0
    top = dict(
        Sprint.objects.filter(project_id__in={s.project.id for s in sprints})
        .values("project_id")
        .annotate(top=Max("sequence"))
        .values_list("project_id", "top")
    )
    rows = []
    for s in sprints:
        top[s.project.id] = top.get(s.project.id, 0) + 1
        rows.append(
            Sprint(
                project_id=s.project.id,
                name=s.name,
                state=s.state,
                start_at=s.start,
                end_at=s.end,
                completed_at=(s.end or s.start) if s.state == Sprint.State.CLOSED else None,
                sequence=top[s.project.id],
            )
        )
    for s, row in zip(sprints, Sprint.objects.bulk_create(rows), strict=True):
        s.id = row.pk
    return len(sprints)


def tickets_rank(tickets: list["TicketPlan"]) -> None:
    """Ranks after each project's last ticket, in number order (holding the projects'
    rank lock until commit)."""
    by_project: dict[int, list[TicketPlan]] = {}
    for t in tickets:
        by_project.setdefault(t.project.id, []).append(t)
    project_rank_lock(list(by_project))
    for project_id, items in by_project.items():
        items.sort(key=lambda t: t.number)
        for t, rank in zip(
            items, ranks_after(project_last_rank(project_id), len(items)), strict=True
        ):
            t.rank = rank


def sprint_memberships_write(plan: "ImportPlan") -> int:
    """Memberships and the scope log of the imported tickets' sprints."""
    memberships: list[SprintMembership] = []
    changes: list[SprintChange] = []
    for t in plan.tickets:
        last_closed = next((s for s in reversed(t.sprints) if s.state == Sprint.State.CLOSED), None)
        done = t.status.data.get("category") == Status.Category.DONE
        for s in t.sprints:
            memberships.append(
                SprintMembership(sprint_id=s.id, ticket_id=t.id or 0, added_at=s.start or t.created)
            )
            if s.state == Sprint.State.FUTURE or s.start is None:
                continue
            changes.append(_change(s, t, SprintChange.Kind.COMMITTED, s.start))
            if s.state == Sprint.State.CLOSED:
                completed = done and s is last_closed and open_sprint_id(t) is None
                kind = SprintChange.Kind.COMPLETED if completed else SprintChange.Kind.NOT_COMPLETED
                changes.append(_change(s, t, kind, s.end or s.start))
    _bulk(SprintMembership, memberships)
    _bulk(SprintChange, changes)
    return len(memberships)


def _change(s: SprintPlan, t: "TicketPlan", kind: str, at: datetime) -> SprintChange:
    return SprintChange(
        sprint_id=s.id,
        ticket_id=t.id or 0,  # set by the writer before this runs
        kind=kind,
        points=t.story_points,
        estimate=t.remaining_estimate,
        at=at,
    )


def _bulk(model: Any, rows: Iterable[Any]) -> None:
    model.objects.bulk_create(rows, batch_size=BATCH)
