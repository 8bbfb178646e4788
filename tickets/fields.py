"""Turning API/import input into ticket field values, with precise errors.

Every resolver raises `FieldError(field, message)`; services collect them and answer
422 listing every problem at once.
"""

import re
from collections.abc import Callable, Sequence
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db.models import Q, QuerySet

from accounts.members.models import Membership
from accounts.models import User
from saas.errors import Invalid
from saas.refs import MAX_DB_ID, db_id_valid, has_nul, is_digits
from tickets.models import (
    Component,
    CustomField,
    IssueType,
    Priority,
    Project,
    Resolution,
    Status,
    Ticket,
    Version,
)

LABEL_RE = re.compile(r"^\S{1,100}$")
DURATION_RE = re.compile(r"^\s*(?:(\d+)w)?\s*(?:(\d+)d)?\s*(?:(\d+)h)?\s*(?:(\d+)m)?\s*$")
# Jira's time tracking defaults: 1d = 8h, 1w = 5d.
SECONDS = {"w": 5 * 8 * 3600, "d": 8 * 3600, "h": 3600, "m": 60}


class FieldError(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message

    def as_detail(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


def _lookup(model: Any, field: str, value: Any, *, label: str, scope: Q | None = None) -> Any:
    """By id (int or digit string) or by case-insensitive name."""
    if value is None or value == "":
        raise FieldError(field, f"{label} is required.")
    qs = model.objects.all() if scope is None else model.objects.filter(scope)
    if isinstance(value, bool):
        raise FieldError(field, f"Unknown {label.lower()} {value!r}.")
    if isinstance(value, str) and has_nul(value):
        raise FieldError(field, f"Unknown {label.lower()} {value!r}.")
    if isinstance(value, int) or (isinstance(value, str) and is_digits(value)):
        found = qs.filter(pk=int(value)).first() if db_id_valid(int(value)) else None
    elif isinstance(value, str):
        found = qs.filter(name__iexact=value.strip()).first()
    elif isinstance(value, dict) and ("id" in value or "name" in value):
        return _lookup(model, field, value.get("id") or value.get("name"), label=label, scope=scope)
    else:
        found = None
    if found is None:
        raise FieldError(field, f"Unknown {label.lower()} {value!r}.")
    return found


def issue_type_resolve(value: Any, *, project: Project) -> IssueType:
    issue_type = _lookup(IssueType, "type", value, label="Issue type")
    enabled = list(project.issue_types.values_list("pk", flat=True))
    if enabled and issue_type.pk not in enabled:
        raise FieldError("type", f"Issue type {issue_type.name} is not enabled in {project.key}.")
    return issue_type


def priority_resolve(value: Any) -> Priority:
    return _lookup(Priority, "priority", value, label="Priority")


def priority_default() -> Priority:
    priority = (
        Priority.objects.filter(is_default=True).first()
        or Priority.objects.order_by("rank").first()
    )
    if priority is None:
        raise FieldError("priority", "This workspace has no priorities configured.")
    return priority


def status_resolve(value: Any) -> Status:
    return _lookup(Status, "status", value, label="Status")


def resolution_resolve(value: Any) -> Resolution | None:
    if value is None:
        return None
    return _lookup(Resolution, "resolution", value, label="Resolution")


def member_users() -> Any:
    """Identities that are active members of the current tenant."""
    return User.objects.filter(
        is_active=True,
        pk__in=Membership.objects.filter(is_active=True).values("user_id"),
    )


def member_user_resolve(value: Any, *, field: str) -> User | None:
    """An active member of this tenant, by id, username or email; None clears."""
    if value is None or value == "":
        return None
    if isinstance(value, dict):
        value = value.get("id") or value.get("username") or value.get("email")
    users = member_users()
    user = None
    if isinstance(value, int) and not isinstance(value, bool):
        user = users.filter(pk=value).first() if db_id_valid(value) else None
    elif isinstance(value, str) and has_nul(value):
        user = None
    elif isinstance(value, str) and is_digits(value.strip()):
        user = users.filter(pk=int(value)).first() if int(value) <= MAX_DB_ID else None
    elif isinstance(value, str):
        text = value.strip()
        user = users.filter(Q(username__iexact=text) | Q(email__iexact=text)).first()
    if user is None:
        raise FieldError(field, f"{value!r} is not an active member of this workspace.")
    return user


def labels_clean(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise FieldError("labels", "Labels must be a list of strings.")
    cleaned: list[str] = []
    for label in value:
        label = label.strip()
        if not LABEL_RE.match(label):
            raise FieldError("labels", f"Label {label!r} must be 1-100 characters without spaces.")
        if label not in cleaned:
            cleaned.append(label)
    return cleaned


def _project_items(
    model: Any, field: str, values: Any, *, project: Project, label: str
) -> list[Any]:
    if values is None:
        return []
    if not isinstance(values, list | tuple):
        raise FieldError(field, f"{label}s must be a list.")
    return [_lookup(model, field, v, label=label, scope=Q(project=project)) for v in values]


def components_resolve(values: Any, *, project: Project) -> list[Component]:
    return _project_items(Component, "components", values, project=project, label="Component")


def versions_resolve(values: Any, *, project: Project) -> list[Version]:
    return _project_items(Version, "fix_versions", values, project=project, label="Version")


def date_clean(value: Any, *, field: str) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError as exc:
        raise FieldError(field, f"{value!r} is not a date (YYYY-MM-DD).") from exc


def story_points_clean(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise FieldError("story_points", "Story points must be a number.")
    try:
        points = Decimal(str(value))
    except InvalidOperation as exc:
        raise FieldError("story_points", "Story points must be a number.") from exc
    if not points.is_finite() or points < 0 or points >= Decimal("100000"):
        raise FieldError("story_points", "Story points must be between 0 and 99999.")
    return points.quantize(Decimal("0.01"))


def duration_clean(value: Any, *, field: str) -> int | None:
    """Seconds, from an integer or a Jira duration such as `"1w 2d 4h 30m"`."""
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0 or value > 2**31 - 1:
            raise FieldError(field, "Durations must be between 0 and 2147483647 seconds.")
        return value
    if isinstance(value, str):
        match = DURATION_RE.match(value)
        if match and any(match.groups()):
            total = sum(
                int(n) * SECONDS[unit] for n, unit in zip(match.groups(), "wdhm", strict=True) if n
            )
            return duration_clean(total, field=field)
    raise FieldError(field, f"{value!r} is not a duration (seconds, or like '2d 4h 30m').")


def duration_format(seconds: int | None) -> str | None:
    if seconds is None:
        return None
    parts = []
    for unit in "wdhm":
        amount, seconds = divmod(seconds, SECONDS[unit])
        if amount:
            parts.append(f"{amount}{unit}")
    return " ".join(parts) or "0m"


def ticket_ref_resolve(value: Any, *, field: str, visible: QuerySet[Ticket]) -> Ticket | None:
    """Another ticket by key or id, among the tickets the actor may see."""
    if value is None or value == "":
        return None
    if isinstance(value, dict):
        value = value.get("key") or value.get("id")
    ref = str(value).strip()
    if has_nul(ref):
        raise FieldError(field, f"Ticket {ref!r} does not exist or you cannot see it.")
    if is_digits(ref):
        ticket = visible.filter(pk=int(ref)).first() if int(ref) <= MAX_DB_ID else None
    else:
        ticket = visible.filter(key=ref.upper()).first()
    if ticket is None:
        raise FieldError(field, f"Ticket {ref} does not exist or you cannot see it.")
    return ticket


def custom_fields_clean(
    values: Any, *, project: Project, current: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Validate `{name or id: value}` against the fields enabled in `project`;
    returns the merged `{str(id): value}` (None removes a value)."""
    if values is None:
        return dict(current or {})
    if not isinstance(values, dict):
        raise FieldError("custom_fields", "Custom fields must be an object.")
    enabled = {cf.pk: cf for cf in project.custom_fields.all()}
    by_name = {cf.name.lower(): cf for cf in enabled.values()}
    result = dict(current or {})
    errors: list[FieldError] = []
    for raw_key, value in values.items():
        key = str(raw_key)
        cf = enabled.get(int(key)) if is_digits(key) else by_name.get(key.lower())
        if cf is None:
            errors.append(
                FieldError(
                    f"custom_fields.{key}", f"No custom field {key!r} is enabled in {project.key}."
                )
            )
            continue
        try:
            cleaned = custom_value_clean(cf, value)
        except FieldError as exc:
            errors.append(exc)
            continue
        if cleaned is None:
            result.pop(str(cf.pk), None)
        else:
            result[str(cf.pk)] = cleaned
    if errors:
        raise FieldErrors(errors)
    return result


def custom_value_clean(cf: CustomField, value: Any) -> Any:
    field = f"custom_fields.{cf.name}"
    if value is None or value == "" or value == []:
        return None
    kind = cf.type
    if kind == CustomField.Type.TEXT:
        if not isinstance(value, str) or len(value) > 10_000:
            raise FieldError(field, "Must be text of at most 10000 characters.")
        return value
    if kind == CustomField.Type.NUMBER:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise FieldError(field, "Must be a number.")
        try:
            number = Decimal(str(value))
        except InvalidOperation as exc:
            raise FieldError(field, "Must be a number.") from exc
        if not number.is_finite():
            raise FieldError(field, "Must be a finite number.")
        return float(number) if number != number.to_integral_value() else int(number)
    if kind == CustomField.Type.DATE:
        cleaned = date_clean(value, field=field)
        return cleaned.isoformat() if cleaned else None
    if kind == CustomField.Type.SELECT:
        return _option(cf, value, field)
    if kind == CustomField.Type.MULTISELECT:
        if not isinstance(value, list):
            raise FieldError(field, "Must be a list of options.")
        picked: list[str] = []
        for item in value:
            option = _option(cf, item, field)
            if option not in picked:
                picked.append(option)
        return picked
    if kind == CustomField.Type.USER:
        user = member_user_resolve(value, field=field)
        return user.pk if user else None
    raise FieldError(field, f"Unsupported field type {kind}.")


def _option(cf: CustomField, value: Any, field: str) -> str:
    options = {str(o).lower(): str(o) for o in cf.options}
    if not isinstance(value, str) or value.lower() not in options:
        raise FieldError(field, f"{value!r} is not one of {', '.join(map(str, cf.options))}.")
    return options[value.lower()]


def custom_fields_display(values: dict[str, Any], fields: Sequence[CustomField]) -> dict[str, Any]:
    """`{field name: value}` for output."""
    names = {str(cf.pk): cf.name for cf in fields}
    return {names[k]: v for k, v in values.items() if k in names}


class FieldErrors(Exception):
    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(e.message for e in errors))
        self.errors = errors


class FieldErrorList:
    """Collects field errors so a 422 lists every problem at once."""

    def __init__(self) -> None:
        self.items: list[FieldError] = []

    def add(self, name: str, message: str) -> None:
        self.items.append(FieldError(name, message))

    def attempt(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """`fn(*args, **kwargs)`, or None after recording the errors it raised."""
        try:
            return fn(*args, **kwargs)
        except FieldErrors as exc:
            self.items.extend(exc.errors)
        except FieldError as exc:
            self.items.append(exc)
        return None

    def raise_if_any(self, message: str) -> None:
        if self.items:
            raise Invalid(message, details=[e.as_detail() for e in self.items])


def text_clean(value: Any, *, field: str, label: str, max_length: int, required: bool) -> str:
    """Stripped text of at most `max_length` characters (NUL refused)."""
    if value is None and not required:
        return ""
    if not isinstance(value, str) or "\x00" in value:
        raise FieldError(field, f"{label} must be text.")
    text = value.strip()
    if required and not text:
        raise FieldError(field, f"{label} is required.")
    if len(text) > max_length:
        raise FieldError(field, f"{label} must be at most {max_length} characters.")
    return text
