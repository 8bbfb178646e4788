from django.conf import settings
from django.db import models
from django.db.models.functions import Lower


class Project(models.Model):
    class Type(models.TextChoices):
        SOFTWARE = "software", "Software"
        BUSINESS = "business", "Business"

    key = models.CharField(max_length=10, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    type = models.CharField(max_length=16, choices=Type.choices, default=Type.SOFTWARE)
    lead = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    # Private projects are visible to their members (and tenant admins) only.
    is_private = models.BooleanField(default=False)
    is_archived = models.BooleanField(default=False)
    # Last ticket number handed out; incremented under the row lock (gapless keys).
    ticket_counter = models.PositiveIntegerField(default=0)
    default_assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    issue_types = models.ManyToManyField("tickets.IssueType", related_name="+", blank=True)
    custom_fields = models.ManyToManyField(
        "tickets.CustomField", related_name="projects", blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("key",)

    def __str__(self) -> str:
        return self.key


class ProjectMember(models.Model):
    class Role(models.TextChoices):
        ADMIN = "ADMIN", "Project administrator"
        DEVELOPER = "DEVELOPER", "Developer"
        VIEWER = "VIEWER", "Viewer"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="members")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.DEVELOPER)
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "user"], name="projectmember_unique")
        ]
        indexes = [models.Index(fields=["user", "project"])]

    def __str__(self) -> str:
        return f"{self.user_id} in {self.project_id} as {self.role}"


class Component(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="components")
    name = models.CharField(max_length=100)
    description = models.CharField(max_length=255, blank=True)
    lead = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        ordering = ("name",)
        constraints = [
            models.UniqueConstraint("project", Lower("name"), name="component_name_ci_unique")
        ]

    def __str__(self) -> str:
        return self.name


class Version(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="versions")
    name = models.CharField(max_length=100)
    description = models.CharField(max_length=255, blank=True)
    release_date = models.DateField(null=True, blank=True)
    is_released = models.BooleanField(default=False)
    is_archived = models.BooleanField(default=False)

    class Meta:
        ordering = ("name",)
        constraints = [
            models.UniqueConstraint("project", Lower("name"), name="version_name_ci_unique")
        ]

    def __str__(self) -> str:
        return self.name
