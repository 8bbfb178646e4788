from tickets.models.agile import (
    Board,
    BoardColumn,
    Sprint,
    SprintChange,
    SprintMembership,
    Worklog,
)
from tickets.models.catalog import CustomField, IssueType, Priority, Resolution, Status
from tickets.models.content import Attachment, Comment
from tickets.models.projects import Component, Project, ProjectMember, Version
from tickets.models.tickets import Ticket, TicketHistory, TicketLink, Watcher
from tickets.models.workflows import Workflow, WorkflowSchemeEntry, WorkflowVersion

__all__ = [
    "Attachment",
    "Board",
    "BoardColumn",
    "Comment",
    "Component",
    "CustomField",
    "IssueType",
    "Priority",
    "Project",
    "ProjectMember",
    "Resolution",
    "Sprint",
    "SprintChange",
    "SprintMembership",
    "Status",
    "Ticket",
    "TicketHistory",
    "TicketLink",
    "Version",
    "Watcher",
    "Workflow",
    "WorkflowSchemeEntry",
    "WorkflowVersion",
    "Worklog",
]
