"""Per-tenant catalogues: issue types, priorities, statuses, resolutions, custom fields.

Seeded in the template schema (so every new tenant starts with Jira's defaults) and
configurable by tenant admins."""

from django.db import models
from django.db.models.functions import Lower


class IssueType(models.Model):
    name = models.CharField(max_length=60)
    description = models.CharField(max_length=255, blank=True)
    is_subtask = models.BooleanField(default=False)
    is_epic = models.BooleanField(default=False)
    order = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ("order", "id")
        constraints = [models.UniqueConstraint(Lower("name"), name="issuetype_name_ci_unique")]

    def __str__(self) -> str:
        return self.name


class Priority(models.Model):
    """Ordered: a higher `rank` is more urgent (Lowest=1 ... Highest=5)."""

    name = models.CharField(max_length=60)
    rank = models.PositiveIntegerField()
    color = models.CharField(max_length=7, default="#888888")
    is_default = models.BooleanField(default=False)

    class Meta:
        ordering = ("-rank",)
        constraints = [models.UniqueConstraint(Lower("name"), name="priority_name_ci_unique")]

    def __str__(self) -> str:
        return self.name


class Status(models.Model):
    class Category(models.TextChoices):
        TO_DO = "TO_DO", "To Do"
        IN_PROGRESS = "IN_PROGRESS", "In Progress"
        DONE = "DONE", "Done"

    name = models.CharField(max_length=60)
    category = models.CharField(max_length=16, choices=Category.choices)
    color = models.CharField(max_length=7, default="#42526e")
    order = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ("order", "id")
        constraints = [models.UniqueConstraint(Lower("name"), name="status_name_ci_unique")]

    def __str__(self) -> str:
        return self.name


class Resolution(models.Model):
    name = models.CharField(max_length=60)
    description = models.CharField(max_length=255, blank=True)
    order = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ("order", "id")
        constraints = [models.UniqueConstraint(Lower("name"), name="resolution_name_ci_unique")]

    def __str__(self) -> str:
        return self.name


class CustomField(models.Model):
    class Type(models.TextChoices):
        TEXT = "text", "Text"
        NUMBER = "number", "Number"
        DATE = "date", "Date"
        SELECT = "select", "Single select"
        MULTISELECT = "multiselect", "Multi select"
        USER = "user", "User"

    name = models.CharField(max_length=100)
    type = models.CharField(max_length=16, choices=Type.choices)
    description = models.CharField(max_length=255, blank=True)
    options = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("name",)
        constraints = [models.UniqueConstraint(Lower("name"), name="customfield_name_ci_unique")]

    def __str__(self) -> str:
        return self.name
