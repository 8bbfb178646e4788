"""Tenant schema: daily status snapshots (the cumulative flow's fast path), cycle time
starts (the cycle time report's), and configurable dashboards with their gadgets."""

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils import timezone


class StatusSnapshot(models.Model):
    """How many tickets (and story points) of a project were in a status at the end of
    a day in the tenant's time zone. Written by reports.tasks.snapshot_take, one day at
    a time; a day is complete once its SnapshotDay row exists."""

    day = models.DateField()
    project = models.ForeignKey("tickets.Project", on_delete=models.CASCADE, related_name="+")
    status = models.ForeignKey("tickets.Status", on_delete=models.CASCADE, related_name="+")
    tickets = models.PositiveIntegerField()
    points = models.DecimalField(max_digits=14, decimal_places=2, default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["day", "project", "status"], name="status_snapshot_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.project_id}/{self.status_id}: {self.tickets}"


class SnapshotDay(models.Model):
    """Marks a day whose snapshot rows are complete (statuses with no tickets have no row)."""

    day = models.DateField(unique=True)
    taken_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return str(self.day)


class CycleStart(models.Model):
    """When a resolved ticket first moved into an In Progress status (at or before its
    resolution; null if it never did): where cycle time starts. Kept by the daily
    snapshot job (reports.cycle_starts) so the cycle time report joins these rows by
    resolution time instead of searching the status history of every resolved ticket.

    A row holds for the ticket's resolution at `resolved_at` only, computed with the In
    Progress statuses of CycleStartBasis: the report uses it while the ticket's
    `resolved_at` and those statuses are unchanged, and searches the history otherwise
    (status history is append-only: moves before a past resolution never change)."""

    # The ticket's id, without a foreign key: a deleted ticket's row is never joined
    # again, and ticket deletion stays free of this table.
    ticket_id = models.BigIntegerField(primary_key=True)
    resolved_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["resolved_at"],
                include=["ticket_id", "started_at"],
                name="report_cycle_start_resolved",
            )
        ]

    def __str__(self) -> str:
        return f"{self.ticket_id}: {self.started_at} -> {self.resolved_at}"


class CycleStartBasis(models.Model):
    """The In Progress status ids the CycleStart rows were computed with (one row)."""

    in_progress = ArrayField(models.BigIntegerField())
    refreshed_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"in progress {self.in_progress}"


class Dashboard(models.Model):
    """A page of gadgets. Visible like a saved filter: its owner, the groups and the
    projects it is shared with, everyone when public, and tenant admins; only the owner
    and tenant admins change it (reports.dashboard_selectors)."""

    name = models.CharField(max_length=255)
    description = models.TextField(blank=True)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    columns = models.PositiveSmallIntegerField(default=2)
    is_public = models.BooleanField(default=False)
    shared_with_groups = models.ManyToManyField("members.Group", related_name="+", blank=True)
    shared_with_projects = models.ManyToManyField("tickets.Project", related_name="+", blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("name", "id")
        indexes = [models.Index(fields=["owner", "name"])]

    def __str__(self) -> str:
        return self.name


class Gadget(models.Model):
    class Type(models.TextChoices):
        FILTER_RESULTS = "filter_results", "Filter results"
        REPORT = "report", "Report"
        ASSIGNED_TO_ME = "assigned_to_me", "Assigned to me"
        ACTIVITY = "activity", "Activity stream"

    dashboard = models.ForeignKey(Dashboard, on_delete=models.CASCADE, related_name="gadgets")
    type = models.CharField(max_length=16, choices=Type.choices)
    title = models.CharField(max_length=255, blank=True)
    column = models.PositiveSmallIntegerField(default=0)
    position = models.PositiveSmallIntegerField(default=0)
    # Per type: filter_results {filter_id | jql, columns, limit}; report {report, params};
    # assigned_to_me / activity {limit}. Validated by reports.gadgets on write.
    config = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ("dashboard_id", "column", "position", "id")

    def __str__(self) -> str:
        return f"{self.type} on {self.dashboard_id}"
