"""Writes on the tenant's custom fields (tenant admins). Values live in each ticket's
`custom_fields` JSON, keyed by field id; projects enable fields through their settings."""

from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Q

from accounts.members.models import Membership
from accounts.policy import ADMIN_TENANT, member_require
from eventlog.audit import field_changes
from eventlog.record import change_record
from saas.errors import Conflict
from tickets import fields as f
from tickets.models import CustomField, Ticket
from tickets.project_services import CUSTOM_FIELD_FIELDS, SELECT_TYPES

_name = partial(f.text_clean, label="Name", max_length=100, required=True)
_description = partial(f.text_clean, label="Description", max_length=255, required=False)
_option = partial(f.text_clean, label="An option", max_length=100, required=True)


# Custom fields -------------------------------------------------------------------------


def _options_clean(kind: str, options: Any, errors: f.FieldErrorList) -> list[str]:
    if options is None:
        options = []
    if not isinstance(options, list | tuple):
        errors.add("options", "Options must be a list of text.")
        return []
    if kind not in SELECT_TYPES:
        if options:
            errors.add("options", "Only select and multiselect fields have options.")
        return []
    if not options:
        errors.add("options", "A select field needs at least one option.")
    cleaned: list[str] = []
    seen: set[str] = set()
    for i, option in enumerate(options):
        text = errors.attempt(_option, option, field=f"options.{i}")
        if text is None:
            continue
        if text.lower() in seen:
            errors.add(f"options.{i}", f"Option {text!r} is listed twice.")
            continue
        seen.add(text.lower())
        cleaned.append(text)
    return cleaned


def _name_taken(name: str) -> Conflict:
    return Conflict(
        f"A custom field named {name!r} already exists.",
        code="custom_field_name_taken",
        details={"name": name},
    )


@transaction.atomic
def custom_field_create(
    *,
    actor: Membership,
    name: str,
    type: str,
    description: str = "",
    options: Sequence[str] | None = None,
) -> CustomField:
    """Create a custom field of the workspace (tenant admins); projects enable it in
    their settings."""
    member_require(actor, ADMIN_TENANT)
    errors = f.FieldErrorList()
    clean_name = errors.attempt(_name, name, field="name")
    if type not in CustomField.Type.values:
        errors.add("type", f"Type must be one of {', '.join(CustomField.Type.values)}.")
    clean_description = errors.attempt(_description, description, field="description")
    clean_options = _options_clean(type, options, errors)
    errors.raise_if_any("The custom field has invalid values.")
    try:
        with transaction.atomic():
            custom_field = CustomField.objects.create(
                name=clean_name, type=type, description=clean_description, options=clean_options
            )
    except IntegrityError as exc:
        raise _name_taken(clean_name) from exc
    change_record(
        "custom_field.created",
        actor=actor,
        target_type="custom_field",
        target_id=custom_field.pk,
        changes={
            "name": [None, clean_name],
            "type": [None, type],
            "options": [None, clean_options],
        },
        payload={"name": clean_name, "type": type},
    )
    return custom_field


def _option_usage(custom_field: CustomField, options: Sequence[str]) -> dict[str, int]:
    """Tickets holding each option, in one query (jsonb containment)."""
    if not options:
        return {}
    key = str(custom_field.pk)

    def holds(option: str) -> Q:
        value: Any = [option] if custom_field.type == CustomField.Type.MULTISELECT else option
        return Q(custom_fields__contains={key: value})

    counts = Ticket.objects.aggregate(
        **{f"o{i}": Count("pk", filter=holds(option)) for i, option in enumerate(options)}
    )
    return {option: counts[f"o{i}"] for i, option in enumerate(options) if counts[f"o{i}"]}


@transaction.atomic
def custom_field_update(
    *, custom_field: CustomField, actor: Membership, data: Mapping[str, Any]
) -> CustomField:
    """Rename, describe or change the options of a field (tenant admins). The type
    cannot change, and an option that tickets hold cannot be removed (409)."""
    member_require(actor, ADMIN_TENANT)
    custom_field = CustomField.objects.select_for_update().get(pk=custom_field.pk)
    errors = f.FieldErrorList()
    for name in sorted(set(data) - set(CUSTOM_FIELD_FIELDS)):
        errors.add(name, "Unknown or read-only field.")
    new: dict[str, Any] = {}
    if "type" in data and data["type"] != custom_field.type:
        errors.add("type", f"The type of a field cannot change (it is {custom_field.type}).")
    if "name" in data:
        new["name"] = errors.attempt(_name, data["name"], field="name")
    if "description" in data:
        new["description"] = errors.attempt(_description, data["description"], field="description")
    if "options" in data:
        new["options"] = _options_clean(custom_field.type, data["options"], errors)
    errors.raise_if_any("The custom field has invalid values.")
    removed = [o for o in custom_field.options if o not in new.get("options", custom_field.options)]
    usage = _option_usage(custom_field, removed)
    if usage:
        raise Conflict(
            "Tickets hold options you removed: "
            + ", ".join(f"{option} ({count})" for option, count in usage.items())
            + ".",
            code="option_in_use",
            details={"options": [{"option": o, "ticket_count": n} for o, n in usage.items()]},
        )
    changes = field_changes({k: getattr(custom_field, k) for k in new}, new)
    if not changes:
        return custom_field
    for attr in changes:
        setattr(custom_field, attr, new[attr])
    try:
        with transaction.atomic():
            custom_field.save(update_fields=sorted(changes))
    except IntegrityError as exc:
        raise _name_taken(new["name"]) from exc
    change_record(
        "custom_field.updated",
        actor=actor,
        target_type="custom_field",
        target_id=custom_field.pk,
        changes=changes,
        payload={"name": custom_field.name, "fields": sorted(changes)},
    )
    return custom_field


@transaction.atomic
def custom_field_delete(*, custom_field: CustomField, actor: Membership) -> int:
    """Delete a field (tenant admins) and its values on every ticket, in one UPDATE.
    Returns the number of tickets that held a value."""
    member_require(actor, ADMIN_TENANT)
    custom_field = CustomField.objects.select_for_update().get(pk=custom_field.pk)
    key = str(custom_field.pk)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {Ticket._meta.db_table} SET custom_fields = custom_fields - %s::text "  # noqa: S608
            "WHERE custom_fields ? %s::text",
            [key, key],
        )
        cleared = cursor.rowcount
    projects = list(custom_field.projects.order_by("key").values_list("key", flat=True))
    change_record(
        "custom_field.deleted",
        actor=actor,
        target_type="custom_field",
        target_id=custom_field.pk,
        changes={
            "name": [custom_field.name, None],
            "type": [custom_field.type, None],
            "projects": [projects, None],
            "tickets_with_value": [cleared, 0],
        },
        payload={"name": custom_field.name, "projects": projects, "tickets_cleared": cleared},
    )
    custom_field.delete()
    return cleared
