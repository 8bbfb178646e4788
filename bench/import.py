"""Import benchmark: a big JSON import through `tickets.importer.import_run`.

    python -m bench.import                     # 200,000 tickets
    python -m bench.import --tickets 20000     # while iterating

Runs against DATABASE_URL (default postgres://postgres@127.0.0.1:5432/saas_bench_import),
creating that database and running `migrate_platform` first. Provisions one tenant with
`tenants.services.tenant_signup`, generates an import document in memory (users, a few
projects, custom fields, tickets with 2 comments and 3 history entries each, epics and
sub-tasks referring to each other in any order) and imports it through the service, not
HTTP: validation, then one transaction writing with COPY. Prints tickets per second,
the seconds of each phase and the row counts written (as the service reports them and
as counted in the database afterwards). The tenant and its identities are dropped at
the end (`--keep` leaves them; the next run drops them first).
"""

import argparse
import os
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.setup import bench_django_setup

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/saas_bench_import"
SUBDOMAIN = "bench-import"
EMAIL_DOMAIN = "bench-import.example.com"
PROJECTS = ("ALPHA", "BRAVO", "CHARLIE", "DELTA")
STATUSES = ("To Do", "In Progress", "In Review", "Done")
PRIORITIES = ("Highest", "High", "Medium", "Low", "Lowest")
WORDS = [
    "checkout",
    "login",
    "search",
    "export",
    "billing",
    "report",
    "cache",
    "queue",
    "api",
    "mobile",
    "sync",
]


def document(*, tickets: int, users: int, seed: int = 7) -> dict[str, Any]:
    """An import document: every 50th ticket of a project is an epic (referred to by
    the tickets before it, so references point forward too), every 10th a sub-task of
    the ticket before it."""
    rng = random.Random(seed)
    names = [f"user{i:03d}" for i in range(users)]
    start = datetime(2024, 1, 1, tzinfo=UTC)
    doc: dict[str, Any] = {
        "users": [
            {
                "username": name,
                "email": f"{name}@{EMAIL_DOMAIN}",
                "display_name": f"User {i:03d}",
                "groups": ["developers" if i % 2 else "support"],
            }
            for i, name in enumerate(names)
        ],
        "projects": [{"key": key, "name": key.title(), "lead": names[0]} for key in PROJECTS],
        "custom_fields": [
            {"name": "Severity", "type": "select", "options": ["S1", "S2", "S3"]},
            {"name": "Customer", "type": "text"},
        ],
        "tickets": [],
    }
    per_project = -(-tickets // len(PROJECTS))
    for p, key in enumerate(PROJECTS):
        count = min(per_project, tickets - p * per_project)
        for n in range(1, count + 1):
            created = start + timedelta(minutes=n * 3 + p)
            iso = created.isoformat().replace("+00:00", "Z")
            status = STATUSES[n % len(STATUSES)]
            epic_number = min(((n - 1) // 50 + 1) * 50, count)
            if n % 50 == 0 or n == count:
                kind, parent, epic = "Epic", None, None
            elif n % 10 == 0:
                kind, parent, epic = "Sub-task", f"{key}-{n - 1}", None
            else:
                kind, parent, epic = rng.choice(("Bug", "Story", "Task")), None, epic_number
            who = rng.sample(names, 3)
            doc["tickets"].append(
                {
                    "key": f"{key}-{n}",
                    "project": key,
                    "type": kind,
                    "status": status,
                    "priority": rng.choice(PRIORITIES),
                    "summary": f"{rng.choice(WORDS).title()} {rng.choice(WORDS)} issue {n}",
                    "description": "Steps to reproduce:\n1. open the page\n2. click save",
                    "labels": rng.sample(WORDS, 2),
                    "components": [rng.choice(WORDS[:3])],
                    "assignee": who[0],
                    "reporter": who[1],
                    "created": iso,
                    "updated": iso,
                    "resolved": iso if status == "Done" else None,
                    "due": "2026-02-01",
                    "story_points": rng.choice((1, 2, 3, 5, 8)),
                    "parent": parent,
                    "epic": f"{key}-{epic}" if epic and epic != n else None,
                    "custom_fields": {"Severity": rng.choice(("S1", "S2", "S3"))},
                    "comments": [
                        {"author": who[1], "body": "I can reproduce this.", "created": iso},
                        {"author": who[0], "body": "Looking into it.", "created": iso},
                    ],
                    "history": [
                        {"field": "status", "from": None, "to": "To Do", "by": who[1], "at": iso},
                        {"field": "assignee", "from": None, "to": who[0], "by": who[1], "at": iso},
                        {"field": "status", "from": "To Do", "to": status, "by": who[0], "at": iso},
                    ],
                }
            )
    return doc


def leftovers_delete() -> None:
    from django.db import connection

    from tenants.models import Tenant

    for tenant in Tenant.objects.filter(subdomain=SUBDOMAIN):
        tenant.delete(force_drop=True)
    connection.set_schema_to_public()
    with connection.cursor() as cursor:  # the ORM would look for memberships everywhere
        cursor.execute("DELETE FROM accounts_user WHERE email LIKE %s", [f"%@{EMAIL_DOMAIN}"])


def table_counts(schema: str) -> dict[str, int]:
    from django.db import connection

    tables = {
        "tickets": "tickets_ticket",
        "comments": "tickets_comment",
        "history": "tickets_tickethistory",
        "watchers": "tickets_watcher",
        "ticket_components": "tickets_ticket_components",
        "memberships": "members_membership",
        "projects": "tickets_project",
    }
    counts = {}
    with connection.cursor() as cursor:
        for label, table in tables.items():
            cursor.execute(f'SELECT count(*) FROM "{schema}"."{table}"')
            counts[label] = cursor.fetchone()[0]
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.import", description=__doc__)
    parser.add_argument("--tickets", type=int, default=200_000)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--keep", action="store_true", help="leave the tenant in place")
    args = parser.parse_args()

    url = os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)
    bench_django_setup(database_url=url, database_name=url.rsplit("/", 1)[1].split("?")[0])
    from django_tenants.utils import schema_context

    from accounts.members.models import Membership
    from tenants.services import tenant_signup
    from tickets.importer import import_run

    leftovers_delete()
    signup = tenant_signup(
        company_name="Bench Import",
        subdomain=SUBDOMAIN,
        admin_email=f"admin@{EMAIL_DOMAIN}",
        admin_password="Bench-Import-Pass-42",
        admin_name="Bench Admin",
    )
    schema = signup.tenant.schema_name
    try:
        started = time.perf_counter()
        doc = document(tickets=args.tickets, users=args.users)
        print(
            f"generated {len(doc['tickets'])} tickets, {len(doc['users'])} users in "
            f"{time.perf_counter() - started:.2f} s"
        )
        batches: list[float] = []
        with schema_context(schema):
            actor = Membership.objects.select_related("user").get(user=signup.admin)
            started = time.perf_counter()
            counts = import_run(
                data=doc, actor=actor, progress=lambda done: batches.append(time.perf_counter())
            )
            seconds = time.perf_counter() - started
        rate = counts["tickets"] / seconds
        print(f"\nimported {counts['tickets']} tickets in {seconds:.2f} s: {rate:,.0f} tickets/s")
        print(f"  goal >= 2,000 tickets/s: {'met' if rate >= 2000 else 'MISSED'}")
        if batches:
            first, last = batches[0] - started, batches[-1] - started
            print(f"  validation, people, catalogues and the first batch: {first:.2f} s")
            print(f"  the other {len(batches) - 1} batches of tickets (COPY): {last - first:.2f} s")
            print(f"  counters, audit, outbox and commit: {seconds - last:.2f} s")
        print("rows written (service):")
        for name, value in sorted(counts.items()):
            print(f"  {name:<24}{value:>10,}")
        print("rows in the tenant's tables afterwards:")
        for name, value in table_counts(schema).items():
            print(f"  {name:<24}{value:>10,}")
    finally:
        if not args.keep:
            leftovers_delete()
            print("\ndropped the tenant and its identities")
    return 0


if __name__ == "__main__":
    sys.exit(main())
