from django.db import connection
from django_tenants.utils import schema_context

from tenants.management.commands.demo_seed import demo_seed
from tenants.models import Tenant
from tickets.models import Ticket


def test_demo_seed_provisions_a_demo_workspace_with_sample_tickets_once(tmp_path):
    # when
    first = demo_seed(credentials_file=tmp_path / "credentials.json")
    again = demo_seed(credentials_file=tmp_path / "credentials.json")
    # then
    tenant = Tenant.objects.get(subdomain="demo")
    assert tenant.member_count == 3
    with schema_context(tenant.schema_name):
        tickets = list(
            Ticket.objects.order_by("number").values_list("key", "issue_type__name", "status__name")
        )
    connection.set_schema_to_public()
    assert tickets == [
        ("DEMO-1", "Epic", "To Do"),
        ("DEMO-2", "Task", "Done"),
        ("DEMO-3", "Bug", "In Progress"),
        ("DEMO-4", "Story", "To Do"),
        ("DEMO-5", "Task", "In Review"),
        ("DEMO-6", "Bug", "To Do"),
    ]
    assert Tenant.objects.filter(subdomain="demo").count() == 1
    assert "demo tenant" in " ".join(first.created)
    assert again.created == []
    assert [c[1] for c in again.credentials] == [c[1] for c in first.credentials]
