"""Ticket list benchmark on 2,000,000 tickets: a project's list, the first page.

    python -m bench.lists                     # 2,000,000 tickets (seeded once, reused)
    python -m bench.lists --tickets 200000    # while iterating
    python -m bench.lists --runs 30

Uses the tenant of bench/seed_big.py (the same database as bench/search.py). Each list
is read as a plain member through the API's code path for
`GET /projects/{key}/tickets` and `GET /users/{id}/assigned-tickets`: the selector's
queryset, `tickets.api.TicketPage` (the exact count, the page's 50 ids in order, then
those tickets with the list's joins and prefetches) and `TicketOut` serialization,
after one warm-up run. Prints p50/p95 and the total; the goal is the read target,
p95 < 200 ms.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.search import MEMBER, _percentile
from bench.seed_big import bench_big_setup, ensure_big_tenant

GOAL_MS = 200
PROJECT = "WEB"  # the biggest project of the seed (about a quarter of the tickets)
# (label, filters of the project list); None: the member's assigned tickets instead.
LISTS: list[tuple[str, dict[str, str] | None]] = [
    ("project, default order (updated desc)", {}),
    ("project, sort=key", {"sort": "key"}),
    ("project, sort=-created", {"sort": "-created"}),
    ("project, sort=-priority", {"sort": "-priority"}),
    ("project, sort=status", {"sort": "status"}),
    ("project, status=In Progress", {"status": "In Progress"}),
    ("project, assignee=me, sort=-priority", {"assignee": "me", "sort": "-priority"}),
    ("project, label=backend", {"label": "backend"}),
    ("user's assigned tickets", None),
]


def _run(filters: dict[str, str] | None, *, member: Any, project: Any) -> tuple[float, int]:
    from tickets import selectors
    from tickets.api import TicketPage
    from tickets.schemas import TicketFilters, TicketOut

    started = time.perf_counter()
    if filters is None:
        qs = selectors.user_tickets(member=member, user_id=member.user_id, kind="assigned-tickets")
    else:
        wanted = TicketFilters(**filters)
        qs = selectors.tickets_list(member=member, project=project, filters=wanted)
    page = TicketPage().paginate_queryset(qs, TicketPage.Input(offset=0, limit=50))
    body = [TicketOut.from_orm(ticket).model_dump(mode="json") for ticket in page["items"]]
    assert len(body) == min(50, page["total"])
    return (time.perf_counter() - started) * 1000, page["total"]


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.lists", description=__doc__)
    parser.add_argument("--tickets", type=int, default=2_000_000)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()

    bench_big_setup()
    tenant = ensure_big_tenant(tickets=args.tickets, say=lambda s: print(s, flush=True))
    from django.db import connection
    from django_tenants.utils import schema_context

    from accounts.members.models import Membership
    from tickets.models import Project

    with schema_context(tenant.schema_name):
        member = Membership.objects.select_related("user").get(user__username=MEMBER)
        project = Project.objects.get(key=PROJECT)
        print(f"\n{args.runs} runs per list (after a warm-up) as {MEMBER}, project {PROJECT}")
        print(f"{'p50':>8}{'p95':>8}{'total':>10}  list")
        worst = 0.0
        for label, filters in LISTS:
            _run(filters, member=member, project=project)
            runs = [_run(filters, member=member, project=project) for _ in range(args.runs)]
            times = [r[0] for r in runs]
            p95 = _percentile(times, 95)
            worst = max(worst, p95)
            p50 = statistics.median(times)
            print(f"{p50:>8.1f}{p95:>8.1f}{runs[0][1]:>10,}  {label}", flush=True)
        verdict = "met" if worst < GOAL_MS else "MISSED"
        print(f"\nworst p95 {worst:.1f} ms (goal < {GOAL_MS} ms): {verdict}")
    connection.set_schema_to_public()
    return 0


if __name__ == "__main__":
    sys.exit(main())
