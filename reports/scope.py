"""What a report looks at: the tickets the caller may see, narrowed by project and JQL,
a date range and the tenant's time zone. Reports run their SQL over `tickets_sql` (the
scope as a derived table, which PostgreSQL flattens into the report's query so the
scope's conditions use the ticket indexes) or `ticket_ids_sql` (for rows of other
tables), so permissions always apply and no ticket enters Python."""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db import connection, transaction
from django.db.models import Model, QuerySet
from django.utils import timezone

from accounts.members.models import Membership, Role
from saas.errors import Invalid
from search.jql.compile_postgres import jql_compile_postgres
from search.jql.errors import jql_errors_as
from search.jql.parser import jql_parse
from tickets.access import project_get_for_user, projects_visible_to
from tickets.models import Project, Ticket

# Longest date range a report accepts, in days: bounds the rows a chart can produce.
MAX_RANGE_DAYS = 1100
DEFAULT_RANGE_DAYS = 30


def table(model: type[Model]) -> str:
    """The quoted table name of a model, for raw SQL (tenant tables resolve through
    the connection's search_path)."""
    return connection.ops.quote_name(model._meta.db_table)


def tenant_zone(tenant: Any) -> str:
    """The tenant's IANA time zone (UTC when unset or unknown). Inside schema_context the
    connection holds a stand-in without fields: the tenant is read by schema name."""
    name = getattr(tenant, "time_zone", None)
    if name is None and getattr(tenant, "schema_name", None):
        from tenants.models import Tenant

        name = (
            Tenant.objects.filter(schema_name=tenant.schema_name)
            .values_list("time_zone", flat=True)
            .first()
        )
    name = name or "UTC"
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return "UTC"
    return name


# The columns reports read from the scope's tickets (unused ones cost nothing: the
# derived table is flattened).
TICKET_COLUMNS = (
    "id",
    "project_id",
    "number",
    "key",
    "summary",
    "status_id",
    "priority_id",
    "issue_type_id",
    "resolution_id",
    "assignee_id",
    "reporter_id",
    "creator_id",
    "labels",
    "sprint_id",
    "epic_id",
    "story_points",
    "original_estimate",
    "remaining_estimate",
    "custom_fields",
    "created_at",
    "resolved_at",
)


@dataclass(frozen=True)
class ReportScope:
    member: Membership
    tz: str
    project: Project | None
    tickets: QuerySet[Ticket]
    # Visible and matching the JQL, in any project: what sprint reports count (their
    # sprints come from `project`, their tickets may come from anywhere).
    sprint_tickets: QuerySet[Ticket]
    has_jql: bool
    date_from: date | None
    date_to: date | None

    def ticket_ids_sql(self) -> tuple[str, list[Any]]:
        """`SELECT id FROM tickets WHERE <visible, project, jql>` and its parameters."""
        sql, params = self.tickets.order_by().values("pk").query.sql_with_params()
        return sql, list(params)

    def tickets_sql(self) -> tuple[str, list[Any]]:
        """`SELECT <ticket columns> FROM tickets WHERE <visible, project, jql>`."""
        sql, params = self.tickets.order_by().values(*TICKET_COLUMNS).query.sql_with_params()
        return sql, list(params)

    def sprint_ticket_filter(self, column: str) -> tuple[str, list[Any]]:
        """`AND <column> IN (<visible tickets matching the JQL>)`, or nothing when that
        is every ticket (a tenant admin without JQL), sparing a join with all tickets."""
        if not self.has_jql and self.member.role == Role.ADMIN:
            return "", []
        sql, params = self.sprint_tickets.order_by().values("pk").query.sql_with_params()
        return f" AND {column} IN ({sql})", list(params)

    def project_ids(self) -> Any:
        """The projects in scope (visible, and the one asked for)."""
        projects = projects_visible_to(self.member)
        if self.project is not None:
            projects = projects.filter(pk=self.project.pk)
        return projects.values("pk")

    def today(self) -> date:
        return timezone.now().astimezone(ZoneInfo(self.tz)).date()

    def day_start(self, day: date) -> datetime:
        """The instant a local day starts."""
        return datetime.combine(day, time.min, tzinfo=ZoneInfo(self.tz))

    def window(self, *, default_days: int = DEFAULT_RANGE_DAYS) -> tuple[date, date]:
        """`from`..`to` (inclusive local days), defaulting to the last `default_days`."""
        end = self.date_to or self.today()
        start = self.date_from or end - timedelta(days=default_days - 1)
        if start > end:
            raise Invalid("`from` must not be after `to`.", code="date_range_invalid")
        if (end - start).days >= MAX_RANGE_DAYS:
            raise Invalid(
                f"The date range is longer than {MAX_RANGE_DAYS} days.", code="date_range_invalid"
            )
        return start, end


def jql_tickets(*, member: Membership, jql: str | None) -> QuerySet[Ticket]:
    """The tickets `member` may see that match `jql` (all visible when empty); 400
    `jql_invalid` for a bad query."""
    tenant = getattr(connection, "tenant", None)
    with jql_errors_as():
        return jql_compile_postgres(jql_parse(jql or ""), member=member, tenant=tenant)


def report_scope(
    *,
    member: Membership,
    project: str | None = None,
    jql: str | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
) -> ReportScope:
    """The scope of one report for `member`: 404 for a project they cannot see, 400 for
    invalid JQL, 422 for `from` after `to`."""
    found = project_get_for_user(member=member, ref=project) if project else None
    has_jql = bool(jql and jql.strip())
    sprint_tickets = jql_tickets(member=member, jql=jql)
    tickets = sprint_tickets
    if found is not None:
        tickets = tickets.filter(project_id=found.pk)
    if date_from and date_to and date_from > date_to:
        raise Invalid("`from` must not be after `to`.", code="date_range_invalid")
    return ReportScope(
        member=member,
        tz=tenant_zone(getattr(connection, "tenant", None)),
        project=found,
        tickets=tickets,
        sprint_tickets=sprint_tickets,
        has_jql=has_jql,
        date_from=date_from,
        date_to=date_to,
    )


# Memory for each sort and hash of one report query (the server default is 4 MB). The
# windows, percentiles and joins of reports over a large project or sprint hold 10-50 MB
# of rows; with 4 MB they spilled to temporary files (bench/reports.py, EXPLAIN
# BUFFERS: "external merge", "Batches: 5"). Set per transaction, so other queries keep
# the server's default.
REPORT_WORK_MEM = "64MB"


def report_session_settings(cursor: Any) -> None:
    """The settings of a report query's transaction: JIT off (report queries are short,
    and on big tables the planner's cost estimates made PostgreSQL spend seconds
    compiling queries that run in milliseconds) and REPORT_WORK_MEM."""
    cursor.execute("SET LOCAL jit = off")
    cursor.execute("SELECT set_config('work_mem', %s, true)", [REPORT_WORK_MEM])


def fetch_all(sql: str, params: list[Any]) -> list[dict[str, Any]]:
    """Rows of a raw query as dicts, with `report_session_settings`."""
    with transaction.atomic(), connection.cursor() as cursor:
        report_session_settings(cursor)
        cursor.execute(sql, params)
        names = [col.name for col in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def number(value: Any) -> Any:
    """A JSON-friendly number: Decimal as int when whole, else float; None as 0."""
    if value is None:
        return 0
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value
