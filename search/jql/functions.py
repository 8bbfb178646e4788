"""Evaluating JQL values that depend on the caller, the tenant and the clock.

`JqlContext` carries what a query is evaluated against (the member, the tenant's time
zone and one `now` for the whole query, so `startOfDay()` and `-1d` agree). Date
literals and date functions evaluate to `ResolvedDate` in the tenant's time zone;
the other functions evaluate to ids (users, issue types, projects) or to a ticket-id
subquery (`linkedIssues`, `updatedBy`).
"""

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db.models import Q, QuerySet
from django.utils import timezone

from accounts.members.models import Group, Membership
from search.jql import ast
from search.jql.ast import JqlError, ResolvedDate

# What a function evaluates to; a field accepts the kinds it can compare with.
USER, DATE, ISSUE_TYPE, PROJECT, TICKET, SPRINT = (
    "user",
    "date",
    "issuetype",
    "project",
    "ticket",
    "sprint",
)


@dataclass
class JqlContext:
    member: Membership
    tz: tzinfo
    now: datetime = field(default_factory=timezone.now)
    schema: str = ""
    _viewed: dict[int, datetime] | None = None

    @classmethod
    def for_tenant(cls, *, member: Membership, tenant: Any) -> "JqlContext":
        from saas.tenancy import current_schema

        name = getattr(tenant, "time_zone", None) or "UTC"
        try:
            tz: tzinfo = ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            tz = ZoneInfo("UTC")
        schema = getattr(tenant, "schema_name", None) or current_schema()
        return cls(member=member, tz=tz, schema=schema)

    def viewed(self) -> dict[int, datetime]:
        """The caller's recently viewed tickets (id -> when), read once per query."""
        if self._viewed is None:
            from search.jql.views import tickets_viewed

            self._viewed = tickets_viewed(schema=self.schema, user_id=self.member.user_id)
        return self._viewed


# -- dates -----------------------------------------------------------------------------

_DATE_RE = re.compile(r"^(\d{4})[/-](\d{1,2})[/-](\d{1,2})(?:[ T](\d{1,2}):(\d{2}))?$")
_RELATIVE_RE = re.compile(r"^([+-]?)((?:\d+[wdhm])+)$")
_PART_RE = re.compile(r"(\d+)([wdhm])")
_OFFSET_RE = re.compile(r"^([+-]?)(\d+)([yMwdhm]?)$")
_UNIT_DELTA = {"w": timedelta(weeks=1), "d": timedelta(days=1), "h": timedelta(hours=1)}
_UNIT_DELTA["m"] = timedelta(minutes=1)


def _local_midnight(day: date, tz: tzinfo) -> datetime:
    return datetime.combine(day, time.min, tzinfo=tz)


def _add_months(moment: datetime, months: int) -> datetime:
    index = moment.year * 12 + moment.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    # Clamp the day (Jan 31 + 1 month = Feb 28/29).
    next_first = date(year + (month == 12), month % 12 + 1, 1)
    last_day = (next_first - timedelta(days=1)).day
    return moment.replace(year=year, month=month, day=min(moment.day, last_day))


def _shift(moment: datetime, amount: int, unit: str, tz: tzinfo) -> datetime:
    if unit == "y":
        return _add_months(moment, 12 * amount)
    if unit == "M":
        return _add_months(moment, amount)
    if unit in ("w", "d"):
        # Calendar days in local time: a day across a DST change is still one day.
        local = moment.astimezone(tz)
        days = amount * (7 if unit == "w" else 1)
        return datetime.combine(local.date() + timedelta(days=days), local.timetz())
    return moment + amount * _UNIT_DELTA[unit]


def date_literal(text: str, *, ctx: JqlContext, pos: ast.Position | None) -> ResolvedDate:
    """`2026/01/31`, `2026-01-31` (a whole day), `2026-01-31 14:00` (an instant) or a
    relative `-1d`, `2w`, `-4h`, `30m`, `-1w2d` (from now); in the tenant's time zone."""
    value = text.strip()
    match = _DATE_RE.match(value)
    if match:
        year, month, day, hour, minute = match.groups()
        try:
            day_value = date(int(year), int(month), int(day))
            if hour is None:
                start = _local_midnight(day_value, ctx.tz)
                return ResolvedDate(
                    start, _local_midnight(day_value + timedelta(days=1), ctx.tz), True
                )
            moment = datetime.combine(day_value, time(int(hour), int(minute)), tzinfo=ctx.tz)
        except ValueError:
            raise JqlError(f"Date value '{text}' is invalid", pos) from None
        return ResolvedDate(moment, moment, False)
    match = _RELATIVE_RE.match(value)
    if match:
        sign = -1 if match.group(1) == "-" else 1
        moment = ctx.now
        for amount, unit in _PART_RE.findall(match.group(2)):
            moment = _shift(moment, sign * int(amount), unit, ctx.tz)
        return ResolvedDate(moment, moment, False)
    raise JqlError(
        f"Date value '{text}' is invalid. Valid formats include: 'yyyy/MM/dd HH:mm', "
        "'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd', or a period format e.g. '-5d', '4w 2d'",
        pos,
    )


def _period_start(unit: str, now: datetime, tz: tzinfo) -> datetime:
    local = now.astimezone(tz)
    if unit == "d":
        return _local_midnight(local.date(), tz)
    if unit == "w":  # weeks start on Monday
        return _local_midnight(local.date() - timedelta(days=local.weekday()), tz)
    if unit == "M":
        return _local_midnight(local.date().replace(day=1), tz)
    return _local_midnight(local.date().replace(month=1, day=1), tz)


_PERIOD_FUNCTIONS = {
    "startofday": ("d", False),
    "endofday": ("d", True),
    "startofweek": ("w", False),
    "endofweek": ("w", True),
    "startofmonth": ("M", False),
    "endofmonth": ("M", True),
    "startofyear": ("y", False),
    "endofyear": ("y", True),
}


def _period_function(call: ast.FunctionCall, ctx: JqlContext, display: str) -> ResolvedDate:
    unit, is_end = _PERIOD_FUNCTIONS[call.name]
    _expect_args(call, display, 0, 1)
    amount, offset_unit = 0, unit
    if call.args:
        match = _OFFSET_RE.match(call.args[0].strip())
        if not match:
            raise JqlError(
                f'Function \'{display}\' expects an offset such as "-1", "+2d" or "1M" '
                f"but got '{call.args[0]}'",
                call.pos,
            )
        amount = int(match.group(2)) * (-1 if match.group(1) == "-" else 1)
        offset_unit = match.group(3) or unit
    start = _period_start(unit, ctx.now, ctx.tz)
    # The end of a period is its last instant (Jira's 23:59:59.999).
    boundary = _shift(start, 1, unit, ctx.tz) - timedelta(microseconds=1) if is_end else start
    if amount:
        boundary = _shift(boundary, amount, offset_unit, ctx.tz)
    return ResolvedDate(boundary, boundary, False)


# -- the function table ------------------------------------------------------------------

DISPLAY_NAMES = {
    "currentuser": "currentUser",
    "membersof": "membersOf",
    "now": "now",
    "startofday": "startOfDay",
    "endofday": "endOfDay",
    "startofweek": "startOfWeek",
    "endofweek": "endOfWeek",
    "startofmonth": "startOfMonth",
    "endofmonth": "endOfMonth",
    "startofyear": "startOfYear",
    "endofyear": "endOfYear",
    "standardissuetypes": "standardIssueTypes",
    "subtaskissuetypes": "subtaskIssueTypes",
    "projectsleadbyuser": "projectsLeadByUser",
    "linkedissues": "linkedIssues",
    "updatedby": "updatedBy",
    "opensprints": "openSprints",
    "closedsprints": "closedSprints",
    "futuresprints": "futureSprints",
    "issuehistory": "issueHistory",
}
KINDS = {
    "currentuser": USER,
    "membersof": USER,
    "now": DATE,
    **{name: DATE for name in _PERIOD_FUNCTIONS},
    "standardissuetypes": ISSUE_TYPE,
    "subtaskissuetypes": ISSUE_TYPE,
    "projectsleadbyuser": PROJECT,
    "linkedissues": TICKET,
    "updatedby": TICKET,
    "opensprints": SPRINT,
    "closedsprints": SPRINT,
    "futuresprints": SPRINT,
    "issuehistory": TICKET,
}


def function_kind(call: ast.FunctionCall) -> str:
    if call.name not in KINDS:
        raise JqlError(f"Unable to find JQL function '{call.name}()'", call.pos)
    return KINDS[call.name]


def _expect_args(call: ast.FunctionCall, display: str, low: int, high: int) -> None:
    count = len(call.args)
    if low <= count <= high:
        return
    if high == 0:
        expected = "no arguments"
    elif low == high:
        expected = f"exactly {low} argument{'s' if low > 1 else ''}"
    else:
        expected = f"between {low} and {high} arguments"
    raise JqlError(f"Function '{display}' expects {expected} but received {count}", call.pos)


expect_args = _expect_args


def function_dates(call: ast.FunctionCall, ctx: JqlContext) -> ResolvedDate:
    display = DISPLAY_NAMES[call.name]
    if call.name == "now":
        _expect_args(call, display, 0, 0)
        return ResolvedDate(ctx.now, ctx.now, False)
    return _period_function(call, ctx, display)


def _user_by_ref(text: str, *, pos: ast.Position | None, display: str) -> int:
    from search.jql.fields import users_resolve

    ids = users_resolve([text], pos=pos, field_name=display)
    return ids[0]


def function_ids(call: ast.FunctionCall, ctx: JqlContext) -> list[int]:
    """Users, issue types or projects a function stands for."""
    from tickets.models import IssueType, Project

    display = DISPLAY_NAMES[call.name]
    if call.name == "currentuser":
        _expect_args(call, display, 0, 0)
        return [ctx.member.user_id]
    if call.name == "membersof":
        _expect_args(call, display, 1, 1)
        group = Group.objects.filter(name__iexact=call.args[0].strip()).first()
        if group is None:
            raise JqlError(f"Function 'membersOf' cannot find the group '{call.args[0]}'", call.pos)
        return list(group.members.values_list("user_id", flat=True))
    if call.name in ("standardissuetypes", "subtaskissuetypes"):
        _expect_args(call, display, 0, 0)
        subtask = call.name == "subtaskissuetypes"
        return list(IssueType.objects.filter(is_subtask=subtask).values_list("pk", flat=True))
    if call.name == "projectsleadbyuser":
        _expect_args(call, display, 0, 1)
        user_id = (
            _user_by_ref(call.args[0], pos=call.pos, display=display)
            if call.args
            else ctx.member.user_id
        )
        return list(Project.objects.filter(lead_id=user_id).values_list("pk", flat=True))
    raise JqlError(f"Function '{display}' cannot be used here", call.pos)


def function_tickets(call: ast.FunctionCall, ctx: JqlContext) -> Q:
    """A condition on tickets (`issue in linkedIssues("CORE-1")`), as subqueries."""
    from tickets.models import Ticket, TicketHistory, TicketLink

    display = DISPLAY_NAMES[call.name]
    if call.name == "issuehistory":
        _expect_args(call, display, 0, 0)
        return Q(pk__in=list(ctx.viewed()))
    if call.name == "linkedissues":
        _expect_args(call, display, 1, 2)
        key = call.args[0].strip().upper()
        ticket = Ticket.objects.filter(key=key).values_list("pk", flat=True).first()
        if ticket is None:
            raise JqlError(
                f"Issue '{call.args[0]}' could not be found in function 'linkedIssues'", call.pos
            )
        links: QuerySet[TicketLink] = TicketLink.objects.all()
        if len(call.args) == 2:
            links = _links_of_type(links, call.args[1], call.pos)
        outward = links.filter(source_id=ticket).values("target_id")
        inward = links.filter(target_id=ticket).values("source_id")
        return Q(pk__in=outward) | Q(pk__in=inward)
    if call.name == "updatedby":
        _expect_args(call, display, 1, 3)
        user_id = _user_by_ref(call.args[0], pos=call.pos, display=display)
        rows = TicketHistory.objects.filter(actor_id=user_id)
        if len(call.args) > 1:
            rows = rows.filter(
                created_at__gte=date_literal(call.args[1], ctx=ctx, pos=call.pos).start
            )
        if len(call.args) > 2:
            until = date_literal(call.args[2], ctx=ctx, pos=call.pos)
            rows = rows.filter(created_at__lt=until.end if until.date_only else until.start)
        return Q(pk__in=rows.values("ticket_id"))
    raise JqlError(f"Function '{display}' cannot be used here", call.pos)


def _links_of_type(links: QuerySet[Any], name: str, pos: ast.Position | None) -> QuerySet[Any]:
    from tickets.models import TicketLink

    wanted = name.strip().lower()
    for value, label in TicketLink.Type.choices:
        if wanted in (value, str(label).lower()):
            return links.filter(type=value)
    for value, label in TicketLink.INVERSE.items():
        if wanted == label:
            return links.filter(type=value)
    raise JqlError(f"Issue link type '{name}' does not exist", pos)
