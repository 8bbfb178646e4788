from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.db import models
from django.db.models import F
from django.utils import timezone


class Ticket(models.Model):
    # FK columns carry no index of their own: the composite indexes in Meta lead with
    # the ones worth searching by, and the rest are too unselective to help. Every index
    # costs on each write (see bench/import.py).
    project = models.ForeignKey(
        "tickets.Project", on_delete=models.CASCADE, related_name="tickets", db_index=False
    )
    number = models.PositiveIntegerField()
    key = models.CharField(max_length=24)
    summary = models.CharField(max_length=255)
    description = models.TextField(blank=True)
    issue_type = models.ForeignKey(
        "tickets.IssueType", on_delete=models.PROTECT, related_name="+", db_index=False
    )
    status = models.ForeignKey(
        "tickets.Status", on_delete=models.PROTECT, related_name="+", db_index=False
    )
    priority = models.ForeignKey(
        "tickets.Priority", on_delete=models.PROTECT, related_name="+", db_index=False
    )
    resolution = models.ForeignKey(
        "tickets.Resolution",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )
    reporter = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )
    creator = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )
    labels = ArrayField(models.CharField(max_length=100), default=list, blank=True)
    components = models.ManyToManyField("tickets.Component", related_name="tickets", blank=True)
    fix_versions = models.ManyToManyField("tickets.Version", related_name="tickets", blank=True)
    due_date = models.DateField(null=True, blank=True)
    story_points = models.DecimalField(max_digits=7, decimal_places=2, null=True, blank=True)
    # Estimates and time spent in seconds.
    original_estimate = models.PositiveIntegerField(null=True, blank=True)
    remaining_estimate = models.PositiveIntegerField(null=True, blank=True)
    time_spent = models.PositiveIntegerField(default=0)
    parent = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="subtasks",
        db_index=False,
    )
    epic = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="epic_children",
        db_index=False,
    )
    # The open (future or active) sprint the ticket is in; null in the backlog.
    sprint = models.ForeignKey(
        "tickets.Sprint",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="tickets",
        db_index=False,
    )
    # Board/backlog order: a LexoRank-style string compared bytewise (collation "C"),
    # so moving one card rewrites one row.
    rank = models.CharField(max_length=64, default="", blank=True, db_collation="C")
    # {"<custom field id>": value}; validated against the field's type on write.
    custom_fields = models.JSONField(default=dict, blank=True)
    # Set from the import or by the service; not auto_now so imports keep their times.
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)
    # Optimistic concurrency: bumped on every write, exposed as the ETag.
    version = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ("project_id", "number")
        constraints = [
            models.UniqueConstraint(fields=["project", "number"], name="ticket_project_number"),
            models.UniqueConstraint(fields=["key"], name="ticket_key_unique"),
        ]
        indexes = [
            models.Index(fields=["project", "status"]),
            # Covering: a member's tickets, filtered by project and sorted by priority
            # (lists, JQL `assignee = X`), read from the index alone. 257 to 31 ms for
            # 26,000 tickets of one member sorted by priority (bench/lists.py).
            models.Index(
                fields=["assignee", "status"],
                include=["project", "priority", "id"],
                name="ticket_assignee_status",
            ),
            models.Index(fields=["reporter"]),
            models.Index(fields=["updated_at"]),
            # Covering: walking creation order through tickets given by id (JQL
            # `status CHANGED ...`, newest first) tests each entry's id and project
            # without reading the ticket (search.jql.compile_postgres.sorted_apart).
            models.Index(
                fields=["created_at"], include=["id", "project"], name="ticket_created_walk"
            ),
            models.Index(fields=["parent"]),
            models.Index(fields=["epic"]),
            models.Index(fields=["sprint", "rank"]),
            models.Index(fields=["project", "rank"]),
            GinIndex(fields=["labels"], name="ticket_labels_gin"),
        ]

    def __str__(self) -> str:
        return self.key


class TicketLink(models.Model):
    class Type(models.TextChoices):
        BLOCKS = "blocks", "blocks"
        RELATES = "relates", "relates to"
        DUPLICATES = "duplicates", "duplicates"
        CLONES = "clones", "clones"

    # Read from the target's side.
    INVERSE = {
        "blocks": "is blocked by",
        "relates": "relates to",
        "duplicates": "is duplicated by",
        "clones": "is cloned by",
    }

    source = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="links_out")
    target = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="links_in")
    type = models.CharField(max_length=16, choices=Type.choices)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["source", "target", "type"], name="ticketlink_unique"),
            models.CheckConstraint(
                condition=~models.Q(source=models.F("target")), name="ticketlink_not_self"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.source_id} {self.type} {self.target_id}"


class Watcher(models.Model):
    # Covered by watcher_unique (ticket, user) and the (user, ticket) index.
    ticket = models.ForeignKey(
        Ticket, on_delete=models.CASCADE, related_name="watchers", db_index=False
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["ticket", "user"], name="watcher_unique")]
        indexes = [models.Index(fields=["user", "ticket"])]

    def __str__(self) -> str:
        return f"{self.user_id} watches {self.ticket_id}"


class UntilOrInfinity(models.Func):
    """`COALESCE(until, 'infinity')`: a value still held ends at infinity, so "held after
    t" is one range condition on the (field, to_ref, this) index."""

    template = "COALESCE(%(expressions)s, 'infinity'::timestamptz)"
    output_field = models.DateTimeField()


class TicketHistory(models.Model):
    """One row per changed field: the basis of JQL WAS/CHANGED and of reports.

    Narrow rows; `from_ref`/`to_ref` hold ids for reference fields (status, assignee,
    priority, ...) so history predicates are index lookups on (field, ref, time), and
    `from_value`/`to_value` hold the display strings."""

    # Covered by the (ticket, created_at) index.
    ticket = models.ForeignKey(
        Ticket, on_delete=models.CASCADE, related_name="history", db_index=False
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    field = models.CharField(max_length=64)
    from_value = models.TextField(null=True, blank=True)
    to_value = models.TextField(null=True, blank=True)
    from_ref = models.BigIntegerField(null=True, blank=True)
    to_ref = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # When the next change of the same field replaced this value (None: still held),
    # in (created_at, id) order. Kept by the database (tickets/migrations/0007): JQL
    # `WAS ... DURING/BEFORE/AFTER/ON` ask for values held in a period, an interval
    # lookup on (field, to_ref, COALESCE(until, infinity)) instead of a search for the
    # next row of each.
    until = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ("created_at", "id")
        indexes = [
            models.Index(fields=["ticket", "created_at"]),
            # CHANGED TO / FROM read ticket_id, id and the other reference from these.
            models.Index(
                fields=["field", "to_ref", "created_at"],
                name="history_changed_to",
                include=["ticket_id", "from_ref", "id"],
            ),
            models.Index(
                F("field"),
                F("to_ref"),
                UntilOrInfinity(F("until")),
                name="history_value_until",
                include=["created_at", "ticket_id", "until"],
            ),
            models.Index(
                fields=["field", "from_ref", "created_at"],
                name="history_changed_from",
                include=["ticket_id", "to_ref", "id"],
            ),
            models.Index(fields=["field", "created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.ticket_id}.{self.field}: {self.from_value} -> {self.to_value}"
