"""The demo workspace and the platform operator that `make run` provides, created once.

Passwords are generated on first use, kept in `.data/demo-credentials.json` (mode 0600)
and printed at every start. An account whose password is not in that file (the file
was deleted, the database was not) gets a new one.
"""

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction
from django_tenants.utils import schema_context

from accounts.members.models import Membership, Role
from accounts.models import User
from accounts.services import identity_create, membership_create
from accounts.user_services import group_create
from saas.tenancy import public_schema_set
from tenants.models import Tenant
from tenants.services import tenant_signup
from tickets.project_services import project_create
from tickets.services import ticket_create
from tickets.workflow_engine import ticket_move_to_status

DEMO_SUBDOMAIN = "demo"
DEMO_COMPANY = "Demo Company"
OPERATOR_EMAIL = "operator@example.com"
DEMO_GROUP = "developers"


@dataclass(frozen=True)
class DemoAccount:
    label: str
    email: str
    display_name: str
    role: str | None  # the role in the demo tenant; None for the platform operator


DEMO_ADMIN = DemoAccount("demo admin", "admin@demo.example.com", "Dana Admin", Role.ADMIN)
DEMO_MEMBERS = (
    DemoAccount("demo project lead", "lead@demo.example.com", "Lee Lead", Role.PROJECT_LEAD),
    DemoAccount("demo user", "user@demo.example.com", "Uma User", Role.USER),
)
OPERATOR = DemoAccount("platform operator", OPERATOR_EMAIL, "Platform Operator", None)
ACCOUNTS = (OPERATOR, DEMO_ADMIN, *DEMO_MEMBERS)


@dataclass(frozen=True)
class DemoSeedResult:
    created: list[str]
    credentials: list[tuple[DemoAccount, str]]


def credentials_file_default() -> Path:
    return Path(settings.BASE_DIR) / ".data" / "demo-credentials.json"


def _credentials_load(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _credentials_save(path: Path, credentials: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(credentials, fh, indent=2)


def _password_new() -> str:
    return secrets.token_urlsafe(12)


def _password_known(account: DemoAccount, credentials: dict[str, str]) -> str:
    """The account's password from the file; an existing account missing from it gets a
    new one (the file is the only place the demo passwords are kept)."""
    if account.email in credentials:
        return credentials[account.email]
    password = _password_new()
    user = User.objects.filter(email__iexact=account.email).first()
    if user is not None:
        user.set_password(password)
        user.save(update_fields=["password"])
    credentials[account.email] = password
    return password


def _operator_ensure(credentials: dict[str, str]) -> bool:
    password = _password_known(OPERATOR, credentials)
    if User.objects.filter(email__iexact=OPERATOR.email).exists():
        return False
    User.objects.create_superuser(
        email=OPERATOR.email,
        username="operator",
        password=password,
        display_name=OPERATOR.display_name,
    )
    return True


def _demo_tenant_ensure(credentials: dict[str, str]) -> bool:
    passwords = {a.email: _password_known(a, credentials) for a in (DEMO_ADMIN, *DEMO_MEMBERS)}
    if Tenant.objects.filter(subdomain=DEMO_SUBDOMAIN).exists():
        return False
    with transaction.atomic():
        result = tenant_signup(
            company_name=DEMO_COMPANY,
            subdomain=DEMO_SUBDOMAIN,
            admin_email=DEMO_ADMIN.email,
            admin_password=passwords[DEMO_ADMIN.email],
            admin_name=DEMO_ADMIN.display_name,
        )
        with schema_context(result.tenant.schema_name):
            member_ids = []
            for account in DEMO_MEMBERS:
                user = User.objects.filter(email__iexact=account.email).first() or (
                    identity_create(
                        email=account.email,
                        password=passwords[account.email],
                        display_name=account.display_name,
                    )
                )
                membership_create(user=user, role=str(account.role), actor=result.admin)
                member_ids.append(user.pk)
            group_create(
                actor=result.membership,
                name=DEMO_GROUP,
                description="The people who build the product.",
                member_ids=member_ids,
            )
            _sample_tickets(admin=result.membership, member_ids=member_ids)
        public_schema_set()
    return True


SAMPLE_TICKETS = [
    # summary, type, priority, status, assignee index (None: unassigned), labels
    ("Set up continuous integration", "Task", "High", "Done", 0, ["infra"]),
    ("Login page shows a blank screen on Safari", "Bug", "Highest", "In Progress", 1, ["ui"]),
    ("Customers can export tickets to CSV", "Story", "Medium", "To Do", None, ["export"]),
    ("Write the onboarding guide", "Task", "Low", "In Review", 0, ["docs"]),
    ("Slow search on large projects", "Bug", "High", "To Do", 1, ["performance"]),
]


def _sample_tickets(*, admin: Membership, member_ids: list[int]) -> None:
    """A project with a few tickets in different states, so the demo is not empty."""
    project = project_create(
        actor=admin,
        key="DEMO",
        name="Demo product",
        description="A sample project to try tickets, workflows and search.",
    )
    epic = ticket_create(
        project=project, actor=admin, data={"summary": "Launch version 1.0", "type": "Epic"}
    )
    for summary, kind, priority, status, who, labels in SAMPLE_TICKETS:
        ticket = ticket_create(
            project=project,
            actor=admin,
            data={
                "summary": summary,
                "type": kind,
                "priority": priority,
                "labels": labels,
                "epic": epic.key,
                "assignee": member_ids[who] if who is not None else None,
            },
        )
        if status != "To Do":
            ticket_move_to_status(ticket=ticket, actor=admin, status_ref=status)


def demo_seed(*, credentials_file: Path | None = None) -> DemoSeedResult:
    """Create the platform operator and the demo tenant (with a project lead, a user and
    the group "developers") unless they exist; return every demo account's password."""
    path = credentials_file or credentials_file_default()
    credentials = _credentials_load(path)
    created = []
    try:
        if _operator_ensure(credentials):
            created.append(f"platform operator {OPERATOR.email}")
        if _demo_tenant_ensure(credentials):
            created.append(f"demo tenant '{DEMO_SUBDOMAIN}' with 3 members")
    finally:
        _credentials_save(path, credentials)
    return DemoSeedResult(
        created=created, credentials=[(a, credentials[a.email]) for a in ACCOUNTS]
    )


def credentials_lines(result: DemoSeedResult) -> list[str]:
    width = max(len(a.label) for a in ACCOUNTS)
    email_width = max(len(a.email) for a in ACCOUNTS)
    return [
        f"{account.label:<{width}}  {account.email:<{email_width}}  {password}"
        for account, password in result.credentials
    ]


class Command(BaseCommand):
    help = "Create the demo tenant and the platform operator once; print their credentials."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--credentials-file",
            type=Path,
            default=None,
            help="Where the generated passwords are kept (default .data/demo-credentials.json).",
        )

    def handle(self, *args: object, **options: object) -> None:
        result = demo_seed(credentials_file=options["credentials_file"])  # type: ignore[arg-type]
        for line in result.created:
            self.stdout.write(f"created {line}")
        for line in credentials_lines(result):
            self.stdout.write(line)
