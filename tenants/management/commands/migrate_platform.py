from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from tenants.models import Domain, Tenant
from tenants.provisioning import template_schema_sync


class Command(BaseCommand):
    help = "Migrate the public schema, the tenant template, then every tenant schema."

    def handle(self, *args: object, **options: object) -> None:
        verbosity = int(options.get("verbosity", 1))  # type: ignore[call-overload]
        call_command("migrate_schemas", shared=True, interactive=False, verbosity=verbosity)
        public_tenant_ensure()
        template_schema_sync(verbosity=verbosity)
        call_command("migrate_schemas", tenant=True, interactive=False, verbosity=verbosity)


def public_tenant_ensure() -> Tenant:
    """The public tenant row and the bare BASE_DOMAIN (idempotent)."""
    tenant, _ = Tenant.objects.get_or_create(
        schema_name="public", defaults={"name": "Platform", "subdomain": None}
    )
    Domain.objects.get_or_create(
        domain=settings.BASE_DOMAIN, defaults={"tenant": tenant, "is_primary": True}
    )
    return tenant
