"""The permission policy, in one place: which role may do what.

Every endpoint asks `member_require(member, perm)`; objects the caller may not
see are answered 404 by the access functions, not 403.
"""

from typing import Final

from accounts.members.models import Membership, Role
from saas.errors import Forbidden

READ_TICKETS: Final = "read:tickets"
WRITE_TICKETS: Final = "write:tickets"
READ_USERS: Final = "read:users"
ADMIN_PROJECT: Final = "admin:project"
ADMIN_USERS: Final = "admin:users"
ADMIN_TENANT: Final = "admin:tenant"
READ_AUDIT: Final = "read:audit"

ALL_PERMISSIONS: Final = frozenset(
    {READ_TICKETS, WRITE_TICKETS, READ_USERS, ADMIN_PROJECT, ADMIN_USERS, ADMIN_TENANT, READ_AUDIT}
)

ROLE_PERMISSIONS: Final[dict[str, frozenset[str]]] = {
    Role.ADMIN: ALL_PERMISSIONS,
    Role.PROJECT_LEAD: frozenset({READ_TICKETS, WRITE_TICKETS, READ_USERS, ADMIN_PROJECT}),
    Role.USER: frozenset({READ_TICKETS, WRITE_TICKETS, READ_USERS}),
}


def member_permissions(member: Membership) -> frozenset[str]:
    if not member.is_active:
        return frozenset()
    return ROLE_PERMISSIONS.get(member.role, frozenset())


def member_can(member: Membership, perm: str) -> bool:
    return perm in member_permissions(member)


def member_require(member: Membership, perm: str) -> None:
    """Raise 403 unless the member holds `perm`."""
    if not member_can(member, perm):
        raise Forbidden(f"You need the '{perm}' permission for this.", details={"permission": perm})
