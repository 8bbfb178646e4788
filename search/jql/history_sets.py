"""WAS / WAS IN / WAS NOT / CHANGED on the multi-valued fields: labels, component,
fixVersion (Postgres backend).

The services record a change of one of these fields as one TicketHistory row (field
`labels`, `components` or `fix_versions`) whose `from_value`/`to_value` are the whole
set before and after, its items separated by spaces (labels have no spaces; component
and version names are matched as whole space-delimited phrases, case-insensitively,
so a renamed component is found under the name it had then). Ticket creation writes
no row for them, so:

- `labels WAS x` holds when x is in the current set of a ticket whose set never
  changed, when x was in the set *before* its first change (from the creation to that
  change), or when a change left x in the set (from that change to the next one);
  `WAS EMPTY` likewise with empty sets. AFTER/BEFORE/ON/DURING ask that such a span
  overlaps the period; BY asks who made the change that gave the value (the ticket's
  creator for the value it was created with).
- `labels CHANGED` is any change; `FROM x` a change that removed x, `TO x` one that
  added x, `FROM EMPTY`/`TO EMPTY` a change from/to the empty set.
"""

from typing import TYPE_CHECKING, Any

from django.db.models import BooleanField, Exists, F, Func, OuterRef, Q, QuerySet, Value
from django.db.models.functions import Coalesce, Lower
from django.db.models.lookups import GreaterThan

from search.jql import ast
from search.jql import fields as fs
from search.jql.ast import JqlError
from tickets.models import Component, TicketHistory, Version
from tickets.models.tickets import UntilOrInfinity

if TYPE_CHECKING:
    from search.jql.compile_postgres import _Compiler


class _HasItem(Func):
    """`' ' || coalesce(column, '') || ' '` contains `' item '`."""

    arg_joiner = " || ' ', "
    template = "(strpos(' ' || %(expressions)s) > 0)"
    output_field = BooleanField()

    def __init__(self, column: str, item: str, *, ci: bool) -> None:
        text: Any = Coalesce(F(column), Value(""))
        super().__init__(Lower(text) if ci else text, Value(f" {item.lower() if ci else item} "))


class _Values:
    """The items asked for, as matched in history text and in the current value."""

    def __init__(self, compiler: "_Compiler", spec: fs.FieldSpec, items: list[Any]) -> None:
        self.spec = spec
        self.empty = any(isinstance(item, ast.Empty) for item in items)
        values = [item for item in items if not isinstance(item, ast.Empty)]
        self.ci = spec.kind == fs.M2M
        if spec.kind == fs.LABELS:
            compiler._functions(spec, values, set())
            self.names = [v.value for v in values]
            self.current = Q(labels__overlap=self.names) if self.names else None
        else:
            ids = compiler.ids(spec, values) if values else []
            model = Component if spec.column == "components" else Version
            names = model.objects.filter(pk__in=ids).values_list("name", flat=True)
            self.names = sorted({name.lower() for name in names})
            self.current = compiler.any_of(spec, values, None) if values else None

    def in_column(self, column: str) -> Q:
        """The history value in `column` holds one of the items (or is empty)."""
        result = Q(pk__in=[])
        for name in self.names:
            result |= Q(_HasItem(column, name, ci=self.ci))
        if self.empty:
            result |= Q(**{f"{column}__isnull": True}) | Q(**{column: ""})
        return result

    def now(self, compiler: "_Compiler") -> Q:
        """The ticket's current value holds one of the items (or is empty)."""
        result = self.current if self.current is not None else Q(pk__in=[])
        if self.empty:
            result |= compiler.empty(self.spec)
        return result


def held_after(start: Any) -> Q:
    """History rows whose value was still held after `start` (`until`, the next change,
    later, or none): one range on the (field, to_ref, COALESCE(until, infinity)) index."""
    return Q(GreaterThan(UntilOrInfinity(F("until")), start))


def set_history(
    compiler: "_Compiler", spec: fs.FieldSpec, node: ast.Comparison, pos: ast.Position | None
) -> Q:
    field_name = spec.history or ""
    rows = TicketHistory.objects.filter(field=field_name)
    if node.op == "changed":
        for predicate in node.predicates:
            rows = _changed_predicate(compiler, spec, rows, predicate)
        return compiler.rows_match(rows)
    operand = node.operand
    if operand is None:
        raise JqlError(f"Expecting a value after '{node.op.upper()}'", pos)
    if node.op in ("was", "was not") and isinstance(operand, ast.ListValue):
        raise JqlError(
            f"The operator '{node.op.upper()}' for the field '{spec.name}' does not take a "
            "list; use WAS IN",
            pos,
        )
    items = ast.operand_items(operand)
    wanted = _Values(compiler, spec, items)
    users, start, end = None, None, None
    for predicate in node.predicates:
        if predicate.kind == "by":
            users = compiler._users_of(spec, predicate)
        else:
            p_start, p_end = compiler._period(spec, predicate)
            start = p_start if start is None or (p_start and p_start > start) else start
            end = p_end if end is None or (p_end and p_end < end) else end
    earlier = TicketHistory.objects.filter(ticket_id=OuterRef("ticket_id"), field=field_name)
    # Spans starting at a change that left the value: [change, next change).
    set_by_change = rows.filter(wanted.in_column("to_value"))
    if users is not None:
        set_by_change = set_by_change.filter(actor_id__in=users)
    if start is not None:
        # Not replaced before the start (`until`: the time of the next change).
        set_by_change = set_by_change.filter(held_after(start))
    if end is not None:
        set_by_change = set_by_change.filter(created_at__lt=end)
    # The span from the creation to the first change.
    first = rows.filter(wanted.in_column("from_value")).exclude(
        Exists(
            earlier.filter(
                Q(created_at__lt=OuterRef("created_at"))
                | Q(created_at=OuterRef("created_at"), pk__lt=OuterRef("pk"))
            )
        )
    )
    if start is not None:
        first = first.filter(created_at__gt=start)
    at_creation = compiler.rows_match(first, whole=False)
    # Never changed: the current value since the creation.
    never_changed = ~Q(Exists(rows.filter(ticket_id=OuterRef("pk")))) & wanted.now(compiler)
    since_creation = at_creation | never_changed
    if users is not None:
        since_creation &= Q(creator_id__in=users)
    if end is not None:
        since_creation &= Q(created_at__lt=end)
    matched = compiler.rows_match(set_by_change, whole=False) | since_creation
    return ~matched if node.op in ("was not", "was not in") else matched


def _changed_predicate(
    compiler: "_Compiler",
    spec: fs.FieldSpec,
    rows: QuerySet[TicketHistory],
    predicate: ast.HistoryPredicate,
) -> QuerySet[TicketHistory]:
    if predicate.kind not in ("from", "to"):
        return compiler._changed_predicate(spec, rows, predicate)
    operand = predicate.operand
    items = ast.operand_items(operand)
    wanted = _Values(compiler, spec, items)
    side, other = (
        ("from_value", "to_value") if predicate.kind == "from" else ("to_value", "from_value")
    )
    # FROM x: a change that removed x; TO x: one that added it.
    cond = Q(pk__in=[])
    for name in wanted.names:
        cond |= Q(_HasItem(side, name, ci=wanted.ci)) & ~Q(_HasItem(other, name, ci=wanted.ci))
    if wanted.empty:
        cond |= Q(**{f"{side}__isnull": True}) | Q(**{side: ""})
    return rows.filter(cond)
