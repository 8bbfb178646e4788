"""The operators' console: Django's admin on the public host only."""

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django_tenants.utils import schema_exists

from accounts.models import User
from tenants.models import OperatorAction, Tenant
from tests.conftest import PUBLIC_HOST, Api

CHANGELIST = "/admin/tenants/tenant/"
OPERATOR_IP = "203.0.113.9"
SUSPENDED_BODY = {
    "error": {
        "code": "tenant_suspended",
        "message": "This workspace is suspended.",
        "details": None,
    }
}


@pytest.fixture
def operator() -> User:
    """A staff member with exactly the permissions the console needs (not a superuser)."""
    user = User.objects.create_user(
        email="ops@platform.test", username="ops", password=None, is_staff=True
    )
    user.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="tenants",
            codename__in=["view_tenant", "change_tenant", "view_domain", "view_operatoraction"],
        )
    )
    return user


@pytest.fixture
def console(operator) -> Client:
    client = Client(HTTP_HOST=PUBLIC_HOST)
    client.force_login(operator)
    return client


def run_action(console: Client, action: str, *tenants: Tenant):
    return console.post(
        CHANGELIST,
        {"action": action, "_selected_action": [t.pk for t in tenants]},
        REMOTE_ADDR=OPERATOR_IP,
    )


def test_operator_sees_tenants_with_their_member_counts(console, world_a, world_b):
    # when
    response = console.get(CHANGELIST)
    # then
    assert response.status_code == 200
    listed = {t.subdomain: t.member_count for t in response.context["cl"].result_list}
    assert {k: v for k, v in listed.items() if k in {"alpha", "bravo"}} == {"alpha": 3, "bravo": 3}
    assert None not in listed  # the public tenant is the platform, not a customer
    html = response.content.decode()
    assert '<td class="field-members">3</td>' in html
    assert '<td class="field-schema_name">alpha</td>' in html
    assert '<td class="field-schema_name">bravo</td>' in html


def test_operator_search_finds_a_tenant_by_domain(console, world_a):
    # when
    response = console.get(CHANGELIST, {"q": "alpha.localhost"})
    # then
    assert [t.subdomain for t in response.context["cl"].result_list] == ["alpha"]


def test_suspend_action_locks_the_tenant_out_and_records_the_operator(
    console, operator, world_a, world_b
):
    # when
    response = run_action(console, "suspend_tenants", world_a.tenant)
    # then
    assert response.status_code == 302
    suspended = Api(world_a.host).get("/api/v1/openapi.json")
    assert suspended.status_code == 403
    assert suspended.json() == SUSPENDED_BODY
    world_a.tenant.refresh_from_db()
    assert world_a.tenant.status == Tenant.Status.SUSPENDED
    assert world_a.tenant.suspended_at is not None
    actions = list(
        OperatorAction.objects.values_list("operator", "tenant", "action", "details", "ip")
    )
    assert actions == [
        (
            operator.pk,
            world_a.tenant.pk,
            "tenant.suspended",
            {"status": ["active", "suspended"]},
            OPERATOR_IP,
        )
    ]
    # and the other tenant is untouched
    assert Api(world_b.host).get("/api/v1/openapi.json").status_code == 200
    world_b.tenant.refresh_from_db()
    assert world_b.tenant.status == Tenant.Status.ACTIVE


def test_reactivate_action_restores_access(console, operator, world_a):
    # given
    run_action(console, "suspend_tenants", world_a.tenant)
    assert Api(world_a.host).get("/api/v1/openapi.json").status_code == 403
    # when
    response = run_action(console, "reactivate_tenants", world_a.tenant)
    # then
    assert response.status_code == 302
    assert Api(world_a.host).get("/api/v1/openapi.json").status_code == 200
    world_a.tenant.refresh_from_db()
    assert world_a.tenant.status == Tenant.Status.ACTIVE
    assert world_a.tenant.suspended_at is None
    assert list(OperatorAction.objects.order_by("id").values_list("operator", "action", "ip")) == [
        (operator.pk, "tenant.suspended", OPERATOR_IP),
        (operator.pk, "tenant.active", OPERATOR_IP),
    ]


def test_suspending_an_already_suspended_tenant_records_nothing(console, world_a):
    # given
    run_action(console, "suspend_tenants", world_a.tenant)
    # when
    run_action(console, "suspend_tenants", world_a.tenant)
    # then
    assert OperatorAction.objects.count() == 1


def test_tenants_cannot_be_added_or_deleted_from_the_console(console, world_a):
    # when
    changelist = console.get(CHANGELIST)
    delete_page = console.get(f"{CHANGELIST}{world_a.tenant.pk}/delete/")
    add_page = console.get(f"{CHANGELIST}add/")
    bulk_delete = run_action(console, "delete_selected", world_a.tenant)
    # then
    choices = changelist.context["action_form"].fields["action"].choices
    action_names = [name for name, _label in choices]
    assert action_names == ["", "suspend_tenants", "reactivate_tenants"]
    assert delete_page.status_code == 403
    assert add_page.status_code == 403
    assert bulk_delete.status_code == 302  # back to the list: "No action selected."
    assert Tenant.objects.filter(pk=world_a.tenant.pk).exists()
    assert schema_exists(world_a.schema)


def test_operator_actions_are_read_only(console, world_a, operator):
    # given
    run_action(console, "suspend_tenants", world_a.tenant)
    action = OperatorAction.objects.get()
    url = f"/admin/tenants/operatoraction/{action.pk}/change/"
    # when
    listed = console.get("/admin/tenants/operatoraction/")
    add_page = console.get("/admin/tenants/operatoraction/add/")
    change = console.post(url, {"action": "tenant.active", "ip": "198.51.100.1"})
    delete_page = console.get(f"/admin/tenants/operatoraction/{action.pk}/delete/")
    # then
    assert listed.status_code == 200
    assert [a.pk for a in listed.context["cl"].result_list] == [action.pk]
    assert add_page.status_code == 403
    assert change.status_code == 403
    assert delete_page.status_code == 403
    action.refresh_from_db()
    assert (action.action, action.ip) == ("tenant.suspended", OPERATOR_IP)


def test_user_admin_never_edits_the_password_hash(world_a):
    # given a superuser operator
    root = User.objects.create_superuser(email="root@platform.test", username="root")
    client = Client(HTTP_HOST=PUBLIC_HOST)
    client.force_login(root)
    target = world_a.user
    hash_before = User.objects.get(pk=target.pk).password
    # when the change form is posted with a password value
    response = client.post(
        f"/admin/accounts/user/{target.pk}/change/",
        {
            "email": target.email,
            "username": target.username,
            "password": "plain-text-attempt",
            "is_active": "on",
        },
    )
    # then the change is saved but the hash is untouched
    assert response.status_code == 302, response.content
    assert User.objects.get(pk=target.pk).password == hash_before
    page = client.get(f"/admin/accounts/user/{target.pk}/change/").content.decode()
    assert 'href="../password/"' in page  # changed only through Django's password form


def test_staff_without_superuser_cannot_grant_operator_rights(operator, world_a):
    # given an operator who may change identities
    operator.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="accounts", codename__in=["view_user", "change_user"]
        )
    )
    client = Client(HTTP_HOST=PUBLIC_HOST)
    client.force_login(operator)
    # when
    page = client.get(f"/admin/accounts/user/{world_a.user.pk}/change/")
    # then
    assert page.status_code == 200
    editable = set(page.context["adminform"].form.fields)
    assert {"is_staff", "is_superuser", "groups", "user_permissions"}.isdisjoint(editable)
    assert {"email", "username", "is_active"} <= editable


def test_non_staff_user_is_sent_to_the_admin_login(world_a):
    # given
    client = Client(HTTP_HOST=PUBLIC_HOST)
    client.force_login(world_a.admin)
    # when
    response = client.get("/admin/")
    # then
    assert response.status_code == 302
    assert response["Location"] == "/admin/login/?next=/admin/"


def test_console_is_not_served_on_a_tenant_host(world_a, operator):
    # given even a logged-in operator
    client = Client(HTTP_HOST=world_a.host)
    client.force_login(operator)
    # when
    response = client.get("/admin/")
    # then
    assert response.status_code == 404
    assert response.json() == {
        "error": {"code": "not_found", "message": "No route for /admin/.", "details": None}
    }
