"""Workflows: statuses and the transitions between them, per project, versioned.

A workflow's definition is immutable once saved: a change writes a new
`WorkflowVersion` and moves `Workflow.current` to it. The project's scheme says
which workflow each issue type uses (an entry without issue type is the default).
Definition format: see tickets.workflow_definition.
"""

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower


class Workflow(models.Model):
    project = models.ForeignKey(
        "tickets.Project", on_delete=models.CASCADE, related_name="workflows"
    )
    name = models.CharField(max_length=100)
    description = models.CharField(max_length=255, blank=True)
    current = models.ForeignKey(
        "tickets.WorkflowVersion",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("project_id", "name")
        constraints = [
            models.UniqueConstraint("project", Lower("name"), name="workflow_name_ci_unique")
        ]

    def __str__(self) -> str:
        return self.name


class WorkflowVersion(models.Model):
    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    definition = models.JSONField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("workflow_id", "number")
        constraints = [
            models.UniqueConstraint(fields=["workflow", "number"], name="workflowversion_unique")
        ]

    def __str__(self) -> str:
        return f"{self.workflow_id} v{self.number}"


class WorkflowSchemeEntry(models.Model):
    project = models.ForeignKey(
        "tickets.Project", on_delete=models.CASCADE, related_name="workflow_scheme"
    )
    # None: the project's default workflow, for issue types without an entry.
    issue_type = models.ForeignKey(
        "tickets.IssueType", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    # Deleting a workflow that is in use is refused by the service, not the database:
    # PROTECT here would block deleting the project that owns both.
    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "issue_type"], name="scheme_entry_per_type"),
            models.UniqueConstraint(
                fields=["project"], condition=models.Q(issue_type=None), name="scheme_one_default"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.project_id}/{self.issue_type_id or '*'} -> {self.workflow_id}"
