from django.db import connection
from django_tenants.utils import schema_context, schema_exists

from accounts.members.models import Membership, Role
from accounts.models import User
from events.models import AuditEntry, OutboxEvent
from tenants.models import Domain, Tenant

VALID = {
    "company_name": "Acme Rockets",
    "subdomain": "acme-rockets",
    "admin_email": "Wile@Acme.Example",
    "admin_password": "Road-Runner-Beware-42",
    "admin_name": "Wile Coyote",
}


def test_signup_provisions_tenant_domain_schema_and_admin(public_api):
    # when
    response = public_api.post("/api/v1/signup", VALID)
    # then
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["tenant"] == {
        "subdomain": "acme-rockets",
        "name": "Acme Rockets",
        "url": "http://acme-rockets.localhost:8000",
    }
    admin = User.objects.get(email="wile@acme.example")
    assert body["admin"] == {
        "id": admin.pk,
        "email": "wile@acme.example",
        "username": "wile",
        "display_name": "Wile Coyote",
        "role": "ADMIN",
    }
    tenant = Tenant.objects.get(subdomain="acme-rockets")
    assert tenant.schema_name == "acme_rockets"
    assert tenant.member_count == 1
    assert list(Domain.objects.filter(tenant=tenant).values_list("domain", flat=True)) == [
        "acme-rockets.localhost"
    ]
    assert schema_exists("acme_rockets")
    with schema_context("acme_rockets"):
        assert list(Membership.objects.values_list("user_id", "role")) == [(admin.pk, Role.ADMIN)]
        assert list(AuditEntry.objects.order_by("id").values_list("action", flat=True)) == [
            "member.created",
            "tenant.created",
        ]
        assert list(OutboxEvent.objects.order_by("id").values_list("kind", flat=True)) == [
            "member.created",
            "tenant.created",
        ]
    connection.set_schema_to_public()
    assert admin.check_password("Road-Runner-Beware-42")
