"""Signup: a company, its host name, its schema, and its first admin, all or nothing."""

import re
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.db import IntegrityError, transaction
from django.utils import timezone
from django_tenants.utils import schema_context

from accounts.members.models import Membership, Role
from accounts.models import User
from accounts.services import identity_create, identity_validate, membership_create
from eventlog.record import change_record
from saas.errors import Conflict, Invalid
from saas.tenancy import public_schema_set
from tenants.models import Domain, OperatorAction, Tenant
from tenants.provisioning import schema_clone_from_template

SUBDOMAIN_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{1,61}[a-z0-9])$")


def subdomain_problems(subdomain: str) -> list[str]:
    """Every reason `subdomain` cannot be used (empty when it can)."""
    problems = []
    if subdomain != subdomain.lower():
        problems.append("Use lowercase letters only.")
    value = subdomain.lower()
    if not 3 <= len(value) <= 63:
        problems.append("Must be 3 to 63 characters long.")
    if not SUBDOMAIN_RE.match(value):
        problems.append("Use letters, digits and hyphens; start and end with a letter or digit.")
    if "--" in value:
        problems.append("Must not contain two hyphens in a row.")
    if value in settings.RESERVED_SUBDOMAINS or value.startswith("pg-"):
        problems.append("This name is reserved.")
    return problems


def schema_name_for(subdomain: str) -> str:
    # DNS labels have no underscores, so this mapping is one-to-one.
    return subdomain.replace("-", "_")


@dataclass(frozen=True)
class SignupResult:
    tenant: Tenant
    admin: User
    membership: Membership


def tenant_signup(
    *, company_name: str, subdomain: str, admin_email: str, admin_password: str, admin_name: str
) -> SignupResult:
    """Create a tenant with its domain, schema (cloned from the template), admin identity
    and ADMIN membership. Any failure rolls everything back, the schema included.

    Password checks and hashing (argon2, the slow part) happen before the transaction
    opens, so its locks are held only for the writes."""
    admin_email = admin_email.strip().lower()
    existing = User.objects.filter(email__iexact=admin_email).first()
    password_ok = existing.check_password(admin_password) if existing else None
    password_hash = make_password(admin_password) if existing is None else None
    with transaction.atomic():
        return _tenant_signup(
            company_name=company_name,
            subdomain=subdomain,
            admin_email=admin_email,
            admin_password=admin_password,
            admin_name=admin_name,
            existing=existing,
            password_ok=password_ok,
            password_hash=password_hash,
        )


def _tenant_signup(
    *,
    company_name: str,
    subdomain: str,
    admin_email: str,
    admin_password: str,
    admin_name: str,
    existing: User | None,
    password_ok: bool | None,
    password_hash: str | None,
) -> SignupResult:
    problems = [{"field": "subdomain", "message": m} for m in subdomain_problems(subdomain)]
    if not company_name.strip():
        problems.append({"field": "company_name", "message": "Enter your company's name."})
    if problems:
        raise Invalid("Invalid signup.", details=problems)
    if existing is None:
        identity_validate(email=admin_email, password=admin_password, display_name=admin_name)
    elif not password_ok:
        raise Conflict(
            "An account with this email exists; sign up with its password to add a workspace.",
            code="email_taken",
        )
    if Tenant.objects.filter(subdomain=subdomain).exists():
        raise Conflict(
            "This subdomain is taken.", code="subdomain_taken", details={"subdomain": subdomain}
        )
    try:
        with transaction.atomic():
            tenant = Tenant.objects.create(
                name=company_name.strip(),
                subdomain=subdomain,
                schema_name=schema_name_for(subdomain),
            )
            Domain.objects.create(
                domain=f"{subdomain}.{settings.BASE_DOMAIN}", tenant=tenant, is_primary=True
            )
    except IntegrityError as exc:  # a concurrent signup won the race
        raise Conflict(
            "This subdomain is taken.", code="subdomain_taken", details={"subdomain": subdomain}
        ) from exc
    schema_clone_from_template(schema_name=tenant.schema_name)
    admin = existing or identity_create(
        email=admin_email, password=None, password_hash=password_hash, display_name=admin_name
    )
    with schema_context(tenant.schema_name):
        membership = membership_create(user=admin, role=Role.ADMIN, actor=admin)
        change_record(
            "tenant.created",
            actor=admin,
            target_type="tenant",
            target_id=tenant.pk,
            changes={"name": [None, tenant.name]},
            payload={"subdomain": subdomain},
        )
    public_schema_set()
    tenant.refresh_from_db()
    return SignupResult(tenant=tenant, admin=admin, membership=membership)


@transaction.atomic
def tenant_set_status(
    *, tenant: Tenant, status: str, operator: User | None, ip: str | None = None
) -> Tenant:
    """Suspend or reactivate a tenant (operators); recorded as an operator action."""
    if tenant.schema_name == "public":
        raise Invalid("The public tenant cannot be suspended.")
    if status not in Tenant.Status.values:
        raise Invalid(f"Unknown status {status!r}.")
    previous = tenant.status
    if previous == status:
        return tenant
    tenant.status = status
    tenant.suspended_at = timezone.now() if status == Tenant.Status.SUSPENDED else None
    tenant.save(update_fields=["status", "suspended_at"])
    OperatorAction.objects.create(
        operator=operator,
        tenant=tenant,
        action=f"tenant.{status}",
        details={"status": [previous, status]},
        ip=ip,
    )
    return tenant
