"""Who may see and change projects and tickets: the access functions of this app.

Reads of single objects go through `project_get_for_user` / `ticket_get_for_user`,
which answer 404 for anything the member may not see. Lists start from
`projects_visible_to` / `tickets_visible_to`.
"""

from django.db.models import Exists, OuterRef, Q, QuerySet

from accounts.members.models import Membership, Role
from accounts.policy import ADMIN_PROJECT, READ_TICKETS, WRITE_TICKETS, member_can
from saas.errors import Forbidden, NotFound
from saas.refs import db_id_or_none, has_nul
from tickets.models import Project, ProjectMember, Ticket


def _project_membership(member: Membership) -> QuerySet[ProjectMember]:
    return ProjectMember.objects.filter(project=OuterRef("pk"), user_id=member.user_id)


def projects_visible_to(member: Membership) -> QuerySet[Project]:
    """Open projects, private projects the member belongs to; everything for admins."""
    if not member_can(member, READ_TICKETS):
        return Project.objects.none()
    if member.role == Role.ADMIN:
        return Project.objects.all()
    return Project.objects.filter(Q(is_private=False) | Exists(_project_membership(member)))


def _sees_every_ticket(member: Membership) -> bool:
    return member.role == Role.ADMIN and member_can(member, READ_TICKETS)


def tickets_visible_to(member: Membership) -> QuerySet[Ticket]:
    if _sees_every_ticket(member):
        return Ticket.objects.all()
    return Ticket.objects.filter(project__in=projects_visible_to(member).values("pk"))


def tickets_visible_to_resolved(member: Membership) -> QuerySet[Ticket]:
    """`tickets_visible_to`, with the visible projects looked up first (one small query)
    and written into the ticket query as a list of ids. For big searches: the planner
    then estimates the share of tickets those projects hold from the column's
    statistics, where a subquery leaves it guessing."""
    if _sees_every_ticket(member):
        return Ticket.objects.all()
    ids = list(projects_visible_to(member).values_list("pk", flat=True))
    return Ticket.objects.filter(project_id__in=ids)


def project_get_for_user(*, member: Membership, ref: str | int) -> Project:
    """A project by id or key (case-insensitive) that the member may see; else 404."""
    ref = str(ref).strip()
    projects = projects_visible_to(member)
    if has_nul(ref):
        projects = projects.none()
    pk = db_id_or_none(ref)
    project = (
        projects.filter(pk=pk).first()
        if pk is not None
        else projects.filter(key=ref.upper()).first()
    )
    if project is None:
        raise NotFound(
            f"Project {ref} does not exist or you cannot see it.", code="project_not_found"
        )
    return project


def ticket_get_for_user(*, member: Membership, ref: str | int, for_update: bool = False) -> Ticket:
    """A ticket by id or key (`PROJ-123`, case-insensitive) that the member may see."""
    ref = str(ref).strip()
    tickets = tickets_visible_to(member).select_related(
        "project",
        "issue_type",
        "status",
        "priority",
        "resolution",
        "assignee",
        "reporter",
        "creator",
        "parent",
        "epic",
    )
    if for_update:
        tickets = tickets.select_for_update(of=("self",))
    if has_nul(ref):
        tickets = tickets.none()
    pk = db_id_or_none(ref)
    ticket = (
        tickets.filter(pk=pk).first() if pk is not None else tickets.filter(key=ref.upper()).first()
    )
    if ticket is None:
        raise NotFound(
            f"Ticket {ref} does not exist or you cannot see it.", code="ticket_not_found"
        )
    return ticket


def project_role_of(*, member: Membership, project: Project) -> str | None:
    return (
        ProjectMember.objects.filter(project=project, user_id=member.user_id)
        .values_list("role", flat=True)
        .first()
    )


def project_can_administer(*, member: Membership, project: Project) -> bool:
    """Tenant admins, the project's lead, and the project's administrators."""
    if member.role == Role.ADMIN:
        return True
    if not member_can(member, WRITE_TICKETS):
        return False
    if project.lead_id == member.user_id:
        return True
    return project_role_of(member=member, project=project) == ProjectMember.Role.ADMIN


def project_require_admin(*, member: Membership, project: Project) -> None:
    if not project_can_administer(member=member, project=project):
        raise Forbidden(
            f"You cannot administer project {project.key}.", details={"permission": ADMIN_PROJECT}
        )


def project_can_write(*, member: Membership, project: Project) -> bool:
    """Create and edit tickets: anyone with write:tickets who sees the project, except
    project viewers; archived projects are read-only."""
    if project.is_archived or not member_can(member, WRITE_TICKETS):
        return False
    if member.role == Role.ADMIN:
        return True
    return project_role_of(member=member, project=project) != ProjectMember.Role.VIEWER


def project_require_write(*, member: Membership, project: Project) -> None:
    if not project_can_write(member=member, project=project):
        reason = "is archived" if project.is_archived else "is read-only for you"
        raise Forbidden(f"Project {project.key} {reason}.", details={"permission": WRITE_TICKETS})
