# mypy: disable-error-code="var-annotated"
# (django-stubs cannot infer field types through django-tenants' untyped TenantMixin)
"""Public schema: companies (tenants), their host names, and operators' actions on them."""

from django.conf import settings
from django.db import models
from django_tenants.models import DomainMixin, TenantMixin


class Tenant(TenantMixin):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"

    class MfaPolicy(models.TextChoices):
        OFF = "off", "Not required"
        ADMINS = "admins", "Required for admins"
        ALL = "all", "Required for everyone"

    name = models.CharField(max_length=200)
    # None only for the public tenant (the bare BASE_DOMAIN).
    subdomain = models.CharField(max_length=63, unique=True, null=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    require_mfa = models.CharField(max_length=8, choices=MfaPolicy.choices, default=MfaPolicy.OFF)
    time_zone = models.CharField(max_length=64, default="UTC")
    member_count = models.PositiveIntegerField(default=0)
    max_attachment_bytes = models.PositiveBigIntegerField(default=25 * 1024 * 1024)
    # Search engine override (None: the SEARCH_BACKEND / SEARCH_SHARDS settings).
    search_backend = models.CharField(
        max_length=16,
        null=True,
        blank=True,
        choices=[
            ("postgres", "PostgreSQL"),
            ("opensearch", "OpenSearch"),
            ("elasticsearch", "Elasticsearch"),
        ],
    )
    search_shards = models.PositiveSmallIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    suspended_at = models.DateTimeField(null=True, blank=True)

    # Provisioning clones the template schema explicitly (tenants.provisioning).
    auto_create_schema = False
    auto_drop_schema = True

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return f"{self.name} ({self.subdomain or 'public'})"

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE

    @property
    def url(self) -> str:
        return tenant_url(self.subdomain)


def tenant_url(subdomain: str | None) -> str:
    host = f"{subdomain}.{settings.BASE_DOMAIN}" if subdomain else settings.BASE_DOMAIN
    port = f":{settings.PUBLIC_PORT}" if settings.PUBLIC_PORT else ""
    return f"{settings.PUBLIC_SCHEME}://{host}{port}"


class Domain(DomainMixin):
    def __str__(self) -> str:
        return self.domain


class OperatorAction(models.Model):
    """Append-only record of what platform operators did to tenants."""

    operator = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="operator_actions")
    action = models.CharField(max_length=64)
    details = models.JSONField(default=dict, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ("-created_at", "-id")

    def __str__(self) -> str:
        return f"{self.action} {self.tenant_id}"
