"""The workflow definition format, its built-in templates and its validation.

Input (API) names statuses; the stored form adds the status ids of the tenant's
catalogue. Stored definition:

    {"initial": <status id>,
     "statuses": [{"id": 1, "name": "To Do", "category": "TO_DO", "color": "#42526e"}],
     "transitions": [{"id": 11, "name": "Start progress", "from": [1] | null (any),
                      "to": 2, "conditions": [...], "validators": [...],
                      "post_functions": [...]}]}

Conditions (who may use a transition): {"type": "role", "roles": [...]},
{"type": "group", "groups": [...]}, {"type": "project_role", "roles": [...]},
{"type": "assignee"}, {"type": "reporter"}, {"type": "permission", "permission": ...}.
Validators (what must hold): {"type": "required_fields", "fields": [...]},
{"type": "field_matches", "field": ..., "value": ...}, {"type": "comment_required"},
{"type": "subtasks_done"}.
Post-functions (what happens): {"type": "set_resolution", "value": ...},
{"type": "clear_resolution"}, {"type": "assign", "to": "current_user"|"reporter"|
"unassigned"}, {"type": "set_field", "field": ..., "value": ...},
{"type": "add_comment", "body": ...}.
"""

from collections import deque
from typing import Any

from accounts.members.models import Role
from accounts.policy import ALL_PERMISSIONS
from tickets.models import CustomField, ProjectMember, Resolution, Status

CONDITIONS = {"role", "group", "project_role", "assignee", "reporter", "permission"}
VALIDATORS = {"required_fields", "field_matches", "comment_required", "subtasks_done"}
POST_FUNCTIONS = {"set_resolution", "clear_resolution", "assign", "set_field", "add_comment"}
SYSTEM_FIELDS = {
    "summary",
    "description",
    "type",
    "priority",
    "assignee",
    "reporter",
    "labels",
    "components",
    "fix_versions",
    "due_date",
    "story_points",
    "original_estimate",
    "remaining_estimate",
    "resolution",
}
ASSIGN_TARGETS = {"current_user", "reporter", "unassigned"}


def _all_to_all(names: list[tuple[str, str]]) -> dict[str, Any]:
    """Jira's simplified workflow: every status can be reached from any other."""
    return {
        "statuses": [{"name": n, "category": c} for n, c in names],
        "initial": names[0][0],
        "transitions": [
            {
                "name": n,
                "from": None,
                "to": n,
                "post_functions": [{"type": "set_resolution", "value": "Done"}]
                if c == "DONE"
                else [{"type": "clear_resolution"}],
            }
            for n, c in names
        ],
    }


def _bug_tracking() -> dict[str, Any]:
    clear = [{"type": "clear_resolution"}]
    return {
        "statuses": [
            {"name": "Open", "category": "TO_DO"},
            {"name": "In Progress", "category": "IN_PROGRESS"},
            {"name": "Resolved", "category": "DONE"},
            {"name": "Reopened", "category": "TO_DO"},
            {"name": "Closed", "category": "DONE"},
        ],
        "initial": "Open",
        "transitions": [
            {
                "name": "Start Progress",
                "from": ["Open", "Reopened"],
                "to": "In Progress",
                "post_functions": [{"type": "assign", "to": "current_user"}],
            },
            {"name": "Stop Progress", "from": ["In Progress"], "to": "Open"},
            {
                "name": "Resolve Issue",
                "from": ["Open", "In Progress", "Reopened"],
                "to": "Resolved",
                "validators": [{"type": "required_fields", "fields": ["resolution"]}],
            },
            {
                "name": "Close Issue",
                "from": ["Open", "In Progress", "Reopened", "Resolved"],
                "to": "Closed",
                "post_functions": [{"type": "set_resolution", "value": "Done"}],
            },
            {
                "name": "Reopen Issue",
                "from": ["Resolved", "Closed"],
                "to": "Reopened",
                "post_functions": clear,
            },
        ],
    }


TEMPLATES: dict[str, tuple[str, Any]] = {
    "basic": (
        "Basic workflow",
        lambda: _all_to_all([("To Do", "TO_DO"), ("In Progress", "IN_PROGRESS"), ("Done", "DONE")]),
    ),
    "software": (
        "Software workflow",
        lambda: _all_to_all(
            [
                ("To Do", "TO_DO"),
                ("In Progress", "IN_PROGRESS"),
                ("In Review", "IN_PROGRESS"),
                ("Done", "DONE"),
            ]
        ),
    ),
    "bug_tracking": ("Bug tracking workflow", _bug_tracking),
}
DEFAULT_TEMPLATE = "software"


def template_definition(key: str) -> dict[str, Any]:
    return TEMPLATES[key][1]()


class DefinitionProblems(Exception):
    def __init__(self, problems: list[dict[str, str]]) -> None:
        super().__init__("; ".join(p["message"] for p in problems))
        self.problems = problems


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def definition_compile(raw: Any, *, group_names: set[str] | None = None) -> dict[str, Any]:
    """Check an input definition (statuses by name) and return the stored form with
    status ids. Statuses missing from the tenant's catalogue are created. Every
    problem is listed at once (DefinitionProblems)."""
    problems: list[dict[str, str]] = []

    def problem(where: str, message: str) -> None:
        problems.append({"field": where, "message": message})

    if not isinstance(raw, dict):
        raise DefinitionProblems([{"field": "", "message": "A definition is an object."}])
    statuses = _as_list(raw.get("statuses"))
    if not statuses:
        problem("statuses", "A workflow needs at least one status.")
    names: dict[str, dict[str, Any]] = {}
    catalogue = {s.name.lower(): s for s in Status.objects.all()}
    for i, entry in enumerate(statuses):
        name = str(entry.get("name", "")).strip() if isinstance(entry, dict) else ""
        category = entry.get("category") if isinstance(entry, dict) else None
        if not name:
            problem(f"statuses.{i}.name", "A status needs a name.")
            continue
        if name.lower() in names:
            problem(f"statuses.{i}.name", f"Status {name!r} is listed twice.")
            continue
        existing = catalogue.get(name.lower())
        if category is None and existing is not None:
            category = existing.category
        if category not in Status.Category.values:
            problem(
                f"statuses.{i}.category",
                f"Status {name!r} needs a category: TO_DO, IN_PROGRESS or DONE.",
            )
            continue
        if existing is not None and existing.category != category:
            problem(
                f"statuses.{i}.category",
                f"Status {existing.name!r} exists with category {existing.category}.",
            )
            continue
        names[name.lower()] = {
            "name": existing.name if existing else name,
            "category": category,
            "color": entry.get("color") or (existing.color if existing else None),
        }

    initial = str(raw.get("initial") or "").strip()
    if not initial:
        problem("initial", "A workflow needs an initial status.")
    elif initial.lower() not in names:
        problem("initial", f"The initial status {initial!r} is not one of the statuses.")

    transitions = _as_list(raw.get("transitions"))
    seen: dict[tuple[str, str], int] = {}
    edges: list[tuple[list[str] | None, str]] = []
    compiled_transitions: list[dict[str, Any]] = []
    used_ids = {t.get("id") for t in transitions if isinstance(t, dict)}
    next_id = 11
    custom_names = {n.lower() for n in CustomField.objects.values_list("name", flat=True)}
    for i, t in enumerate(transitions):
        where = f"transitions.{i}"
        if not isinstance(t, dict):
            problem(where, "A transition is an object.")
            continue
        name = str(t.get("name", "")).strip()
        if not name:
            problem(f"{where}.name", "A transition needs a name.")
        target = str(t.get("to", "")).strip()
        if target.lower() not in names:
            problem(f"{where}.to", f"Transition {name!r} goes to unknown status {target!r}.")
        sources = t.get("from")
        if sources in (None, "any", "*"):
            source_keys = None
        elif isinstance(sources, list):
            source_keys = []
            for src in sources:
                if str(src).strip().lower() not in names:
                    problem(
                        f"{where}.from", f"Transition {name!r} starts from unknown status {src!r}."
                    )
                else:
                    source_keys.append(str(src).strip().lower())
        else:
            problem(f"{where}.from", "`from` is a list of statuses, or null for any status.")
            source_keys = []
        for key in source_keys if source_keys is not None else ["*"]:
            if (key, name.lower()) in seen:
                problem(f"{where}.name", f"Two transitions named {name!r} leave the same status.")
            seen[(key, name.lower())] = i
        tid = t.get("id")
        if not isinstance(tid, int) or isinstance(tid, bool) or tid <= 0:
            while next_id in used_ids:
                next_id += 10
            tid = next_id
            used_ids.add(tid)
        _check_rules(t, where, problem, group_names=group_names, custom_names=custom_names)
        edges.append((source_keys, target.lower()))
        compiled_transitions.append(
            {
                "id": tid,
                "name": name,
                "from": source_keys,
                "to": target.lower(),
                "conditions": _as_list(t.get("conditions")),
                "validators": _as_list(t.get("validators")),
                "post_functions": _as_list(t.get("post_functions")),
            }
        )
    if len({t["id"] for t in compiled_transitions}) != len(compiled_transitions):
        problem("transitions", "Transition ids must be unique.")

    if initial.lower() in names:
        reachable = _reachable(initial.lower(), edges, set(names))
        for key, entry in names.items():
            if key not in reachable:
                problem(
                    "statuses",
                    f"Status {entry['name']!r} cannot be reached from "
                    f"{names[initial.lower()]['name']!r}.",
                )
    if problems:
        raise DefinitionProblems(problems)

    ids: dict[str, Status] = {}
    for key, entry in names.items():
        status = catalogue.get(key)
        if status is None:
            status = Status.objects.create(
                name=entry["name"],
                category=entry["category"],
                color=entry["color"] or "#42526e",
                order=len(catalogue) + len(ids),
            )
        ids[key] = status
    return {
        "initial": ids[initial.lower()].pk,
        "statuses": [
            {
                "id": ids[k].pk,
                "name": ids[k].name,
                "category": ids[k].category,
                "color": ids[k].color,
            }
            for k in names
        ],
        "transitions": [
            {
                **t,
                "from": None if t["from"] is None else [ids[k].pk for k in t["from"]],
                "to": ids[t["to"]].pk,
            }
            for t in compiled_transitions
        ],
    }


def _reachable(
    start: str, edges: list[tuple[list[str] | None, str]], everything: set[str]
) -> set[str]:
    seen, queue = {start}, deque([start])
    while queue:
        current = queue.popleft()
        for sources, target in edges:
            if (sources is None or current in sources) and target not in seen:
                seen.add(target)
                queue.append(target)
    return seen & everything


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _texts(value: Any) -> list[str] | None:
    """A list of strings, or None for anything else."""
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    return None


def _check_rules(
    t: dict[str, Any],
    where: str,
    problem: Any,
    *,
    group_names: set[str] | None,
    custom_names: set[str],
) -> None:
    """Rules arrive as JSON from a client: every value is type-checked before use."""

    def known_field(name: Any) -> bool:
        return isinstance(name, str) and (name in SYSTEM_FIELDS or name.lower() in custom_names)

    def kind_of(rule: Any) -> str | None:
        return _text(rule.get("type")) if isinstance(rule, dict) else None

    for j, rule in enumerate(_as_list(t.get("conditions"))):
        kind = kind_of(rule)
        at = f"{where}.conditions.{j}"
        if kind not in CONDITIONS:
            problem(at, f"Unknown condition {kind!r}.")
        elif kind in ("role", "project_role"):
            allowed = Role.values if kind == "role" else ProjectMember.Role.values
            roles = _texts(rule.get("roles"))
            if not roles or not set(roles) <= set(allowed):
                problem(at, f"Roles must be a list among {', '.join(allowed)}.")
        elif kind == "group":
            groups = _texts(rule.get("groups"))
            unknown = [
                g for g in groups or [] if group_names is not None and g.lower() not in group_names
            ]
            if not groups or unknown:
                problem(at, f"Unknown groups: {', '.join(unknown) or 'none given'}.")
        elif kind == "permission" and _text(rule.get("permission")) not in ALL_PERMISSIONS:
            problem(at, f"Unknown permission {rule.get('permission')!r}.")
    for j, rule in enumerate(_as_list(t.get("validators"))):
        kind = kind_of(rule)
        at = f"{where}.validators.{j}"
        if kind not in VALIDATORS:
            problem(at, f"Unknown validator {kind!r}.")
        elif kind == "required_fields":
            fields = _as_list(rule.get("fields"))
            unknown = [str(f) for f in fields if not known_field(f)]
            if not fields or unknown:
                problem(
                    at,
                    f"Validator on fields that do not exist: {', '.join(unknown) or 'none given'}.",
                )
        elif kind == "field_matches" and not known_field(rule.get("field")):
            problem(at, f"Validator on a field that does not exist: {rule.get('field')!r}.")
    resolutions = {n.lower() for n in Resolution.objects.values_list("name", flat=True)}
    for j, rule in enumerate(_as_list(t.get("post_functions"))):
        kind = kind_of(rule)
        at = f"{where}.post_functions.{j}"
        if kind not in POST_FUNCTIONS:
            problem(at, f"Unknown post-function {kind!r}.")
        elif kind == "assign" and _text(rule.get("to")) not in ASSIGN_TARGETS:
            problem(at, f"`to` must be one of {', '.join(sorted(ASSIGN_TARGETS))}.")
        elif kind == "set_field" and not known_field(rule.get("field")):
            problem(at, f"Post-function on a field that does not exist: {rule.get('field')!r}.")
        elif kind == "add_comment" and not (_text(rule.get("body")) or "").strip():
            problem(at, "add_comment needs a body.")
        elif (
            kind == "set_resolution" and (_text(rule.get("value")) or "").lower() not in resolutions
        ):
            problem(at, f"Unknown resolution {rule.get('value')!r}.")


def definition_for_output(stored: dict[str, Any]) -> dict[str, Any]:
    """The stored definition with status names instead of ids (what the API shows)."""
    names = {s["id"]: s["name"] for s in stored["statuses"]}
    return {
        "initial": names[stored["initial"]],
        "statuses": stored["statuses"],
        "transitions": [
            {
                **t,
                "from": None if t["from"] is None else [names[i] for i in t["from"]],
                "to": names[t["to"]],
            }
            for t in stored["transitions"]
        ],
    }
