"""Boards, sprints, sprint scope history and worklogs (tenant schema).

The sprint scope log (`SprintChange`) is append-only: velocity and burndown are
computed from it and from the ticket history, never from the tickets' current state.
"""

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q
from django.utils import timezone


class Sprint(models.Model):
    class State(models.TextChoices):
        FUTURE = "future", "Future"
        ACTIVE = "active", "Active"
        CLOSED = "closed", "Closed"

    project = models.ForeignKey(
        "tickets.Project", on_delete=models.CASCADE, related_name="sprints", db_index=False
    )
    # The Scrum board the sprint was planned on, when it was (imports may have none).
    board = models.ForeignKey(
        "tickets.Board", null=True, blank=True, on_delete=models.SET_NULL, related_name="sprints"
    )
    name = models.CharField(max_length=255)
    goal = models.TextField(blank=True)
    state = models.CharField(max_length=8, choices=State.choices, default=State.FUTURE)
    # Order of future sprints in the backlog.
    sequence = models.PositiveIntegerField(default=0)
    start_at = models.DateTimeField(null=True, blank=True)
    end_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    version = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ("project_id", "sequence", "id")
        constraints = [
            # One active sprint per project (Jira's default without parallel sprints).
            models.UniqueConstraint(
                fields=["project"], condition=Q(state="active"), name="sprint_one_active"
            ),
            models.CheckConstraint(
                condition=Q(end_at__isnull=True)
                | Q(start_at__isnull=True)
                | Q(end_at__gt=models.F("start_at")),
                name="sprint_ends_after_start",
            ),
        ]
        indexes = [models.Index(fields=["project", "state", "sequence"])]

    def __str__(self) -> str:
        return self.name


class SprintMembership(models.Model):
    """A ticket belongs (or belonged) to a sprint. A ticket is in at most one open
    (future or active) sprint at a time (`Ticket.sprint`), but keeps its memberships
    of closed sprints it was carried over from, as in Jira (`sprint = "Sprint 1"`
    still finds a ticket that moved on to Sprint 2)."""

    sprint = models.ForeignKey(Sprint, on_delete=models.CASCADE, related_name="memberships")
    ticket = models.ForeignKey(
        "tickets.Ticket", on_delete=models.CASCADE, related_name="sprint_memberships"
    )
    added_at = models.DateTimeField(default=timezone.now)
    # Set when the ticket left the sprint before it closed (removed or moved).
    removed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["sprint", "ticket"], name="sprint_membership_unique")
        ]
        indexes = [models.Index(fields=["ticket", "sprint"])]

    def __str__(self) -> str:
        return f"{self.ticket_id} in sprint {self.sprint_id}"


class SprintChange(models.Model):
    """Append-only log of a sprint's scope, the source of velocity and burndown.

    COMMITTED: in the sprint when it started. ADDED / REMOVED: scope change while
    active (also recorded before start, for planning history). COMPLETED /
    NOT_COMPLETED: the ticket's outcome when the sprint closed. `points` and
    `estimate` are the ticket's story points and remaining estimate at that moment."""

    class Kind(models.TextChoices):
        COMMITTED = "committed", "Committed"
        ADDED = "added", "Added"
        REMOVED = "removed", "Removed"
        COMPLETED = "completed", "Completed"
        NOT_COMPLETED = "not_completed", "Not completed"

    sprint = models.ForeignKey(Sprint, on_delete=models.CASCADE, related_name="changes")
    ticket = models.ForeignKey("tickets.Ticket", on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    points = models.DecimalField(max_digits=7, decimal_places=2, null=True, blank=True)
    estimate = models.PositiveIntegerField(null=True, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("sprint_id", "at", "id")
        indexes = [
            models.Index(fields=["sprint", "at"]),
            models.Index(fields=["ticket", "at"]),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.ticket_id} in sprint {self.sprint_id}"


class Board(models.Model):
    """A Kanban or Scrum board over the tickets of a JQL query: its project's tickets,
    or a saved filter's (the filter's JQL, evaluated for the viewer)."""

    class Kind(models.TextChoices):
        KANBAN = "kanban", "Kanban"
        SCRUM = "scrum", "Scrum"

    class Swimlanes(models.TextChoices):
        NONE = "none", "None"
        ASSIGNEE = "assignee", "Assignee"
        EPIC = "epic", "Epic"
        PRIORITY = "priority", "Priority"

    name = models.CharField(max_length=255)
    kind = models.CharField(max_length=8, choices=Kind.choices)
    project = models.ForeignKey(
        "tickets.Project", null=True, blank=True, on_delete=models.CASCADE, related_name="boards"
    )
    saved_filter = models.ForeignKey(
        "search.SavedFilter", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # Extra JQL narrowing the board (Jira's "sub-filter"), may be empty.
    sub_jql = models.TextField(blank=True)
    swimlanes = models.CharField(max_length=8, choices=Swimlanes.choices, default=Swimlanes.NONE)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    version = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ("name", "id")
        constraints = [
            models.CheckConstraint(
                condition=Q(project__isnull=False) | Q(saved_filter__isnull=False),
                name="board_has_source",
            )
        ]

    def __str__(self) -> str:
        return self.name


class BoardColumn(models.Model):
    """A column shows the tickets in any of its statuses; WIP limits are per column."""

    board = models.ForeignKey(Board, on_delete=models.CASCADE, related_name="columns")
    name = models.CharField(max_length=100)
    position = models.PositiveIntegerField()
    status_ids = ArrayField(models.BigIntegerField(), default=list, blank=True)
    wip_min = models.PositiveIntegerField(null=True, blank=True)
    wip_max = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ("board_id", "position")
        constraints = [
            models.UniqueConstraint(fields=["board", "position"], name="board_column_position")
        ]

    def __str__(self) -> str:
        return f"{self.board_id}: {self.name}"


class Worklog(models.Model):
    """Time logged on a ticket. `Ticket.time_spent` is the sum, kept by the services."""

    ticket = models.ForeignKey("tickets.Ticket", on_delete=models.CASCADE, related_name="worklogs")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    time_spent = models.PositiveIntegerField()  # seconds
    started_at = models.DateTimeField()
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("ticket_id", "started_at", "id")
        constraints = [
            models.CheckConstraint(condition=Q(time_spent__gt=0), name="worklog_time_positive")
        ]
        indexes = [
            models.Index(fields=["ticket", "started_at"]),
            models.Index(fields=["author", "started_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.time_spent}s on {self.ticket_id}"
