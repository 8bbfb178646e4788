"""Workflow transition benchmark: many transitions through
`tickets.workflow_engine.ticket_transition`.

    python -m bench.transitions                          # 1,000 tickets, 5,000 transitions
    python -m bench.transitions --transitions 20000

Runs against DATABASE_URL (default postgres://postgres@127.0.0.1:5432/saas_bench_transitions),
creating that database and running `migrate_platform` first. Provisions one tenant with
`tenants.services.tenant_signup`, a project with `project_create` (the Software workflow),
and the tickets (one bulk insert: they are the setting, not the measure). Then takes
transitions round-robin over the tickets, each ticket cycling To Do -> In Progress ->
Done -> To Do, as the tenant admin: each call is one transaction (lock, conditions,
validators, post-functions, history, audit, outbox row, commit, and publishing the
outbox dispatch to Celery's in-memory broker). A warm-up of `--warmup` transitions is
not measured. Prints transitions per second and p50/p95/max milliseconds per call, and
the rows written. The tenant and its identities are dropped at the end (`--keep`
leaves them; the next run drops them first).
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.provision import percentile
from bench.setup import bench_django_setup

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/saas_bench_transitions"
SUBDOMAIN = "bench-transitions"
EMAIL_DOMAIN = "bench-transitions.example.com"
CYCLE = {"To Do": "In Progress", "In Progress": "Done", "Done": "To Do"}


def leftovers_delete() -> None:
    from django.db import connection

    from tenants.models import Tenant

    for tenant in Tenant.objects.filter(subdomain=SUBDOMAIN):
        tenant.delete(force_drop=True)
    connection.set_schema_to_public()
    with connection.cursor() as cursor:  # the ORM would look for memberships everywhere
        cursor.execute("DELETE FROM accounts_user WHERE email LIKE %s", [f"%@{EMAIL_DOMAIN}"])


def tickets_insert(*, project, actor, count: int) -> list:
    """`count` tickets in the workflow's initial status, in one INSERT."""
    from django.utils import timezone

    from tickets import fields as f
    from tickets.models import IssueType, Project, Ticket
    from tickets.workflow_engine import initial_status_for

    task = IssueType.objects.get(name="Task")
    status = initial_status_for(project=project, issue_type=task)
    now = timezone.now()
    tickets = Ticket.objects.bulk_create(
        Ticket(
            project=project,
            number=n,
            key=f"{project.key}-{n}",
            summary=f"Benchmark ticket {n}",
            issue_type=task,
            status=status,
            priority=f.priority_default(),
            reporter_id=actor.user_id,
            creator_id=actor.user_id,
            created_at=now,
            updated_at=now,
        )
        for n in range(1, count + 1)
    )
    Project.objects.filter(pk=project.pk).update(ticket_counter=count)
    return tickets


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.transitions", description=__doc__)
    parser.add_argument("--tickets", type=int, default=1_000)
    parser.add_argument("--transitions", type=int, default=5_000)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--keep", action="store_true", help="leave the tenant in place")
    args = parser.parse_args()

    url = os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)
    bench_django_setup(database_url=url, database_name=url.rsplit("/", 1)[1].split("?")[0])
    from django.db import connection
    from django.db.models import Count
    from django_tenants.utils import schema_context

    from accounts.members.models import Membership
    from eventlog.models import AuditEntry, OutboxEvent
    from tenants.services import tenant_signup
    from tickets.models import Ticket, TicketHistory
    from tickets.project_services import project_create
    from tickets.workflow_engine import ticket_transition, workflow_version_for

    leftovers_delete()
    signup = tenant_signup(
        company_name="Bench Transitions",
        subdomain=SUBDOMAIN,
        admin_email=f"admin@{EMAIL_DOMAIN}",
        admin_password="Bench-Transitions-Pass-42",
        admin_name="Bench Admin",
    )
    schema = signup.tenant.schema_name
    try:
        with schema_context(schema):
            actor = Membership.objects.select_related("user").get(user=signup.admin)
            project = project_create(actor=actor, key="BENCH", name="Benchmark")
            started = time.perf_counter()
            tickets = tickets_insert(project=project, actor=actor, count=args.tickets)
            print(f"inserted {len(tickets)} tickets in {time.perf_counter() - started:.2f} s")
            version = workflow_version_for(project=project, issue_type=tickets[0].issue_type)
            names = {s["id"]: s["name"] for s in version.definition["statuses"]}
            # the transition leading to each status (Software: one per status, from any)
            into = {names[t["to"]]: t["id"] for t in version.definition["transitions"]}
            current = {t.pk: "To Do" for t in tickets}

            def take(i: int) -> float:
                ticket = tickets[i % len(tickets)]
                target = CYCLE[current[ticket.pk]]
                began = time.perf_counter()
                ticket_transition(ticket=ticket, actor=actor, transition_id=into[target])
                took = time.perf_counter() - began
                current[ticket.pk] = target
                return took

            for i in range(args.warmup):
                take(i)
            history_before = TicketHistory.objects.count()
            audit_before = AuditEntry.objects.count()
            outbox_before = OutboxEvent.objects.count()
            seconds: list[float] = []
            started = time.perf_counter()
            for i in range(args.warmup, args.warmup + args.transitions):
                seconds.append(take(i))
            wall = time.perf_counter() - started
            rows = {
                "ticket history": TicketHistory.objects.count() - history_before,
                "audit entries": AuditEntry.objects.count() - audit_before,
                "outbox events": OutboxEvent.objects.count() - outbox_before,
            }
            stored = dict(Ticket.objects.values_list("status__name").annotate(n=Count("pk")))
            expected: dict[str, int] = {}
            for name in current.values():
                expected[name] = expected.get(name, 0) + 1
            assert stored == expected, (stored, expected)

        ms = [s * 1000 for s in seconds]
        print(
            f"\n{len(seconds)} transitions over {len(tickets)} tickets "
            f"(after {args.warmup} warm-up) in {wall:.2f} s: "
            f"{len(seconds) / wall:,.0f} transitions/s"
        )
        print(
            f"  ticket_transition ms: p50 {percentile(ms, 50):.2f}  p95 {percentile(ms, 95):.2f}  "
            f"max {max(ms):.2f}  mean {statistics.fmean(ms):.2f}"
        )
        print("rows written while measured:")
        for name, value in rows.items():
            print(f"  {name:<16}{value:>8,}")
        print(f"tickets by status afterwards: {dict(sorted(stored.items()))}")
    finally:
        connection.set_schema_to_public()
        if not args.keep:
            leftovers_delete()
            print("\ndropped the tenant and its identities")
    return 0


if __name__ == "__main__":
    sys.exit(main())
