import pytest
from django.db import connection
from django_tenants.utils import schema_context, schema_exists

from accounts.members.models import Membership, Role
from accounts.models import User
from eventlog.models import AuditEntry, OutboxEvent
from tenants.models import Domain, Tenant
from tests.conftest import PASSWORD

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


def _nothing_provisioned(subdomain: str, email: str) -> None:
    assert not Tenant.objects.filter(subdomain=subdomain).exists()
    assert not Domain.objects.filter(domain__startswith=f"{subdomain}.").exists()
    assert not schema_exists(subdomain.replace("-", "_"))
    assert not User.objects.filter(email__iexact=email).exists()


@pytest.mark.parametrize(
    ("subdomain", "message"),
    [
        ("ab", "Must be 3 to 63 characters long."),
        ("a" * 64, "Must be 3 to 63 characters long."),
        ("Acme", "Use lowercase letters only."),
        ("-acme", "Use letters, digits and hyphens; start and end with a letter or digit."),
        ("acme-", "Use letters, digits and hyphens; start and end with a letter or digit."),
        ("ac_me", "Use letters, digits and hyphens; start and end with a letter or digit."),
        ("ac.me", "Use letters, digits and hyphens; start and end with a letter or digit."),
        ("ac--me", "Must not contain two hyphens in a row."),
        ("www", "This name is reserved."),
        ("admin", "This name is reserved."),
        ("api", "This name is reserved."),
        ("mail", "This name is reserved."),
        ("template", "This name is reserved."),
        ("pg-acme", "This name is reserved."),
    ],
)
def test_signup_refuses_invalid_or_reserved_subdomains(public_api, subdomain, message):
    # when
    response = public_api.post("/api/v1/signup", {**VALID, "subdomain": subdomain})
    # then
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert {"field": "subdomain", "message": message} in error["details"]
    _nothing_provisioned(subdomain.lower(), VALID["admin_email"])


def test_signup_refuses_a_taken_subdomain_with_409(public_api, world_a):
    # given tenant "alpha" exists
    # when
    response = public_api.post("/api/v1/signup", {**VALID, "subdomain": "alpha"})
    # then
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "subdomain_taken"
    assert Tenant.objects.filter(subdomain="alpha").count() == 1
    assert not User.objects.filter(email__iexact=VALID["admin_email"]).exists()


def test_signup_refuses_weak_password_and_bad_email_listing_every_problem(public_api):
    # when
    response = public_api.post(
        "/api/v1/signup", {**VALID, "admin_email": "not-an-email", "admin_password": "12345"}
    )
    # then
    assert response.status_code == 422
    details = response.json()["error"]["details"]
    assert {"field": "email", "message": "Enter a valid email address."} in details
    assert {
        "field": "password",
        "message": "This password is too short. It must contain at least 10 characters.",
    } in details
    assert {"field": "password", "message": "This password is entirely numeric."} in details
    _nothing_provisioned(VALID["subdomain"], "not-an-email")


def test_signup_with_existing_identity_needs_its_password(public_api, world_a):
    # given admin@alpha.test exists with the conftest password
    # when the wrong password is given
    response = public_api.post(
        "/api/v1/signup",
        {**VALID, "admin_email": "admin@alpha.test", "admin_password": "Some-Other-Password-1"},
    )
    # then
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "email_taken"
    assert not Tenant.objects.filter(subdomain=VALID["subdomain"]).exists()
    assert not schema_exists("acme_rockets")


def test_signup_with_existing_identity_and_its_password_adds_a_workspace(public_api, world_a):
    # when
    response = public_api.post(
        "/api/v1/signup",
        {**VALID, "admin_email": "admin@alpha.test", "admin_password": PASSWORD},
    )
    # then the same identity becomes admin of the new tenant
    assert response.status_code == 201, response.content
    assert response.json()["admin"]["id"] == world_a.admin.pk
    assert User.objects.filter(email="admin@alpha.test").count() == 1
    with schema_context("acme_rockets"):
        assert Membership.objects.get().user_id == world_a.admin.pk


def test_signup_failing_midway_leaves_no_schema_tenant_domain_or_identity(public_api, monkeypatch):
    # given the last step of provisioning fails (fault injection, after the schema
    # was cloned and the identity and membership were written)
    def explode(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr("tenants.services.change_record", explode)
    # when
    response = public_api.post("/api/v1/signup", VALID)
    # then
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    _nothing_provisioned(VALID["subdomain"], VALID["admin_email"])


def test_signup_malformed_json_and_wrong_types(public_api):
    # when
    malformed = public_api.post("/api/v1/signup", raw=b'{"company_name": ')
    wrong_types = public_api.post("/api/v1/signup", {**VALID, "subdomain": ["x"]})
    missing = public_api.post("/api/v1/signup", {"company_name": "X"})
    # then
    assert malformed.status_code == 400
    assert malformed.json() == {
        "error": {
            "code": "bad_request",
            "message": "Malformed JSON in request body.",
            "details": None,
        }
    }
    assert wrong_types.status_code == 422
    assert wrong_types.json()["error"]["details"][0]["field"] == "subdomain"
    assert missing.status_code == 422
    assert {d["field"] for d in missing.json()["error"]["details"]} == {
        "subdomain",
        "admin_email",
        "admin_password",
    }
    assert not Tenant.objects.filter(name="X").exists()


def test_signup_is_served_only_on_the_public_host(anon_a):
    # when
    response = anon_a.post("/api/v1/signup", VALID)
    # then
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert not Tenant.objects.filter(subdomain=VALID["subdomain"]).exists()


def test_signup_stores_argon2_hashes_in_production_configuration(public_api, settings):
    # given the production hasher
    settings.PASSWORD_HASHERS = ["accounts.hashers.Argon2idHasher"]
    # when
    response = public_api.post("/api/v1/signup", VALID)
    # then
    assert response.status_code == 201
    assert User.objects.get(email="wile@acme.example").password.startswith(
        "argon2$argon2id$v=19$m=47104,t=2,p=1$"
    )
