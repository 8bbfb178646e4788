from django.http import HttpRequest
from ninja import Field, Router, Schema, Status

from saas.context import request_context
from saas.ratelimit import ratelimit_hit
from tenants.services import tenant_signup

router = Router(tags=["signup"])


class SignupIn(Schema):
    company_name: str = Field(..., min_length=1, max_length=200)
    subdomain: str = Field(..., min_length=1, max_length=100)
    admin_email: str = Field(..., max_length=254)
    admin_password: str = Field(..., max_length=512)
    admin_name: str = Field("", max_length=255)


class TenantOut(Schema):
    subdomain: str
    name: str
    url: str


class AdminOut(Schema):
    id: int
    email: str
    username: str
    display_name: str
    role: str


class SignupOut(Schema):
    tenant: TenantOut
    admin: AdminOut


@router.post("/signup", response={201: SignupOut}, auth=None)
def signup(request: HttpRequest, body: SignupIn):
    """Create a workspace at `<subdomain>.<BASE_DOMAIN>` and its first admin."""
    ratelimit_hit(
        key=f"signup:ip:{request_context().ip}",
        limit=30,
        window_seconds=3600,
        message="Too many signups from this address.",
    )
    result = tenant_signup(
        company_name=body.company_name,
        subdomain=body.subdomain,
        admin_email=body.admin_email,
        admin_password=body.admin_password,
        admin_name=body.admin_name,
    )
    tenant, admin = result.tenant, result.admin
    return Status(
        201,
        {
            "tenant": {"subdomain": tenant.subdomain, "name": tenant.name, "url": tenant.url},
            "admin": {
                "id": admin.pk,
                "email": admin.email,
                "username": admin.username,
                "display_name": admin.name,
                "role": result.membership.role,
            },
        },
    )
