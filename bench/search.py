"""JQL search benchmark on the Postgres backend: 2,000,000 tickets, the first page.

    python -m bench.search                      # 2,000,000 tickets (seeded once, reused)
    python -m bench.search --tickets 200000     # while iterating
    python -m bench.search --runs 30 --explain  # more runs; EXPLAIN ANALYZE each query

Uses the tenant of bench/seed_big.py (BENCH_DATABASE_URL, default
postgres://postgres@127.0.0.1:5432/saas_bench_big), seeding it with COPY the first time.
Each query of the mix runs as a plain member (USER role, not a member of the private
project, so the visibility filter applies) through the API's code path,
`search.engine.execute.search_page` (parse, compile, the first page's 50 ids in order
with the total counted up to 10,000 in one query, then those tickets with the list's
joins and prefetches), after one warm-up run. Prints p50/p95 of the whole page and,
apart, of the ids query and of loading the rows, the number of matches, and whether
each group meets its goal (field queries p95 < 100 ms; text and history < 300 ms).
"""

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.seed_big import bench_big_setup, ensure_big_tenant

FIELD, TEXT, HISTORY = "field", "text", "history"
GOALS_MS = {FIELD: 100, TEXT: 300, HISTORY: 300}
# (group, JQL); `{me}` is the benchmark member's username.
MIX = [
    (FIELD, 'project = WEB AND status = "In Progress" ORDER BY priority DESC, updated DESC'),
    (FIELD, "project = WEB ORDER BY priority DESC, updated DESC"),
    (FIELD, 'status in ("To Do", "In Review") AND priority in (High, Highest) '
            "ORDER BY created DESC"),
    (FIELD, "type = Bug AND labels = backend ORDER BY key"),
    (FIELD, "project in (API, MOB) AND component = Backend ORDER BY priority DESC"),
    (FIELD, "assignee = bench_big_user020 ORDER BY updated DESC"),
    (FIELD, "assignee = currentUser() AND statusCategory != Done "
            "ORDER BY priority DESC, updated DESC"),
    (FIELD, "sprint in openSprints() AND assignee = currentUser() ORDER BY priority DESC"),
    (FIELD, 'fixVersion in ("2026.01", "2026.02") ORDER BY updated DESC'),
    (FIELD, "created >= -30d ORDER BY created DESC"),
    (FIELD, "updated >= startOfWeek(-2) AND updated < startOfWeek() ORDER BY updated DESC"),
    (FIELD, "resolved >= startOfMonth(-3) AND resolved < startOfMonth(-2) ORDER BY resolved"),
    (FIELD, "project = DATA ORDER BY key DESC"),
    (TEXT, 'text ~ "payment"'),
    (TEXT, 'summary ~ "checkout timeout"'),
    (TEXT, 'text ~ "zeppelin"'),
    (TEXT, 'text ~ "invoic*" AND project = PAY ORDER BY updated DESC'),
    (HISTORY, 'status WAS "In Progress"'),
    (HISTORY, "status CHANGED TO Done AFTER -30d"),
    (HISTORY, 'status WAS "In Review" DURING (startOfMonth(-1), endOfMonth(-1))'),
    (HISTORY, "assignee CHANGED BY currentUser() AFTER -90d"),
    (HISTORY, "labels WAS blocked"),
]  # fmt: skip
MEMBER = "bench_big_user008"


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def _run(query_text: str, *, member: Any, tenant: Any) -> tuple[float, float, float, int]:
    """(total ms, ids ms, rows ms, total) of one search as the API runs it: the page's
    ids in order with the capped total (one query), then the page's rows by id."""
    from search.engine.execute import postgres_page_ids, search_plan
    from search.jql.parser import jql_parse
    from tickets.selectors import tickets_by_ids

    started = time.perf_counter()
    plan = search_plan(query=jql_parse(query_text), member=member, tenant=tenant)
    compiled = time.perf_counter()
    ids, total, _exact = postgres_page_ids(
        plan.tickets, 0, 50, sorts_every_match=plan.sorts_every_match, walk=plan.walk
    )
    counted = time.perf_counter()
    items = tickets_by_ids(ids)
    done = time.perf_counter()
    assert len(items) == min(50, total)
    ms = lambda a, b: (b - a) * 1000  # noqa: E731
    return ms(started, done), ms(compiled, counted), ms(counted, done), total


def _explain(query_text: str, *, member: Any, tenant: Any) -> str:
    from django.db import connection

    from search.engine.execute import COUNT_CAP, search_plan
    from search.jql.parser import jql_parse

    plan = search_plan(query=jql_parse(query_text), member=member, tenant=tenant)
    window = COUNT_CAP + 1  # as postgres_page_ids asks for the first page
    sql, params = plan.tickets.values_list("pk", flat=True)[:window].query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", params)
        return "\n".join(row[0] for row in cursor.fetchall())


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.search", description=__doc__)
    parser.add_argument("--tickets", type=int, default=2_000_000)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--explain", action="store_true", help="print EXPLAIN ANALYZE plans")
    parser.add_argument("--only", help="run the queries containing this text only")
    args = parser.parse_args()

    bench_big_setup()
    tenant = ensure_big_tenant(tickets=args.tickets, say=lambda s: print(s, flush=True))
    from django.db import connection
    from django_tenants.utils import schema_context

    from accounts.members.models import Membership

    with schema_context(tenant.schema_name):
        member = Membership.objects.select_related("user").get(user__username=MEMBER)
        print(f"\n{args.runs} runs per query (after a warm-up) as {MEMBER} (role {member.role})")
        print(f"{'group':<8}{'p50':>8}{'p95':>8}{'ids95':>9}{'rows95':>8}{'matches':>10}  query")
        worst: dict[str, float] = {}
        for group, text in MIX:
            if args.only and args.only not in text:
                continue
            _run(text, member=member, tenant=tenant)
            runs = [_run(text, member=member, tenant=tenant) for _ in range(args.runs)]
            totals = [r[0] for r in runs]
            p95 = _percentile(totals, 95)
            worst[group] = max(worst.get(group, 0.0), p95)
            print(
                f"{group:<8}{statistics.median(totals):>8.1f}{p95:>8.1f}"
                f"{_percentile([r[1] for r in runs], 95):>9.1f}"
                f"{_percentile([r[2] for r in runs], 95):>8.1f}{runs[0][3]:>10,}  {text}",
                flush=True,
            )
            if args.explain:
                print(_explain(text, member=member, tenant=tenant), flush=True)
        print("\ngoals (worst p95 of the group):")
        for group, p95 in worst.items():
            verdict = "met" if p95 < GOALS_MS[group] else "MISSED"
            print(f"  {group:<8} {p95:7.1f} ms  (goal < {GOALS_MS[group]} ms): {verdict}")
    connection.set_schema_to_public()
    return 0


if __name__ == "__main__":
    sys.exit(main())
