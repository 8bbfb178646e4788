"""Reports and board benchmark on the big tenant of bench/seed_big.py.

    python -m bench.reports                      # the 2,000,000-ticket tenant, 15 runs each
    python -m bench.reports --runs 30
    python -m bench.reports --runs 5 --only burndown --only cycle   # some cases only
    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/saas_bench_small \\
        python -m bench.reports --tickets 20000 --seed

Uses `bench.seed_big.ensure_big_tenant`, but only seeds with `--seed`: without it, a
tenant that is missing or not completely seeded (another process may be seeding it
right now) is reported and left alone, because ensure_big_tenant would drop it.

Each report runs as the tenant admin (who sees every ticket: the largest scope) through
the same selectors the API calls (`reports.scope.report_scope` + the report function,
JSON not serialised), so the figures are SQL plus Python assembly. Before measuring, the
daily snapshots of the last 30 days are taken (timed) so cumulative flow runs both ways:
from snapshots (no JQL) and from the history alone (with a JQL). The board part loads a
Kanban board of one project through `tickets.board_selectors.board_view` (50 cards per
column), its largest column holding at least 10,000 cards; and, for comparison, one
column page deep in that column. Prints p50/p95/max milliseconds per case; goal p95 <
500 ms.
"""

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.provision import percentile

GOAL_MS = 500.0
BOARD_NAME = "bench reports kanban"


def _tenant(tickets: int, seed: bool) -> Any:
    from bench import seed_big
    from tenants.models import Tenant

    if seed:
        return seed_big.ensure_big_tenant(tickets=tickets)
    tenant = Tenant.objects.filter(subdomain=seed_big.SUBDOMAIN).first()
    if tenant is None or seed_big._schema_comment(tenant.schema_name) != seed_big._marker(tickets):
        print(
            f"the {tickets:,}-ticket tenant is not (completely) seeded yet: run "
            f"`python -m bench.seed_big --tickets {tickets}` (or this with --seed)"
        )
        raise SystemExit(2)
    print(f"tenant {tenant.schema_name}: {tickets:,} tickets")
    return tenant


def _measure(name: str, fn: Callable[[], Any], runs: int) -> tuple[str, float, float, float]:
    fn()  # warm-up: plans and caches
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    p50, p95 = statistics.median(times), percentile(times, 95)
    flag = "" if p95 < GOAL_MS else "  (over goal)"
    print(f"{name:<46} p50 {p50:8.1f} ms   p95 {p95:8.1f} ms   max {max(times):8.1f} ms{flag}")
    return name, p50, p95, max(times)


def _snapshots(days: int) -> None:
    from django.db import connection

    from reports.models import SnapshotDay
    from reports.scope import tenant_zone
    from reports.snapshots import snapshot_take, snapshot_yesterday

    yesterday = snapshot_yesterday(tz=tenant_zone(getattr(connection, "tenant", None)))
    missing = [
        yesterday - timedelta(days=n)
        for n in range(days)
        if not SnapshotDay.objects.filter(day=yesterday - timedelta(days=n)).exists()
    ]
    started = time.perf_counter()
    for day in missing:
        snapshot_take(day=day)
    if missing:
        spent = time.perf_counter() - started
        print(
            f"snapshots: {len(missing)} days taken in {spent:.1f} s "
            f"({spent / len(missing) * 1000:.0f} ms per day)"
        )


def _board(member: Any) -> Any:
    """A Kanban board (one column per status) of the smallest project having a status
    with at least 10,000 tickets (on a small seed: of the largest project/status)."""
    from django.db.models import Count

    from tickets.models import Board, BoardColumn, Status, Ticket

    board = Board.objects.filter(name=BOARD_NAME).first()
    if board is not None:
        return board
    sizes = {
        row["project_id"]: row["n"]
        for row in Ticket.objects.values("project_id").annotate(n=Count("id")).order_by()
    }
    per_status = list(
        Ticket.objects.values("project_id", "status_id").annotate(n=Count("id")).order_by()
    )
    big = [row for row in per_status if row["n"] >= 10_000]
    if big:
        pick = min(big, key=lambda row: sizes[row["project_id"]])
    else:
        pick = max(per_status, key=lambda row: row["n"])
        print(f"no status holds 10,000 tickets: the largest column has {pick['n']:,}")
    board = Board.objects.create(name=BOARD_NAME, kind="kanban", project_id=pick["project_id"])
    for position, status in enumerate(Status.objects.order_by("order", "id")):
        BoardColumn.objects.create(
            board=board, name=status.name, position=position, status_ids=[status.pk]
        )
    return board


def _board_cases(member: Any) -> list[tuple[str, Callable[[], Any]]]:
    try:
        from tickets import board_selectors
    except ImportError:
        print("tickets.board_selectors is missing: board not measured")
        return []
    board = _board(member)
    view = board_selectors.board_view(board=board, member=member, column_limit=50)
    sizes = ", ".join(f"{c.column.name} {c.total:,}" for c in view.columns)
    print(f"board {board.name!r} on project {board.project.key}: {sizes}")
    largest = max(view.columns, key=lambda c: c.total)
    deep = max(0, largest.total - 100)
    cases: list[tuple[str, Callable[[], Any]]] = [
        (
            "board: load (50 cards per column)",
            lambda: board_selectors.board_view(board=board, member=member, column_limit=50),
        )
    ]
    if hasattr(board_selectors, "column_page"):
        import inspect

        params = inspect.signature(board_selectors.column_page).parameters
        if {"board", "member", "column", "offset", "limit"} <= set(params):
            cases.append(
                (
                    f"board: column page at offset {deep:,}",
                    lambda: board_selectors.column_page(
                        board=board, member=member, column=largest.column, offset=deep, limit=50
                    ),
                )
            )
    return cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickets", type=int, default=2_000_000)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--seed", action="store_true", help="seed the tenant if needed")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="TEXT",
        help="run only the cases whose name contains TEXT (repeatable, case-insensitive)",
    )
    args = parser.parse_args()

    from bench.seed_big import bench_big_setup

    bench_big_setup()
    from django.db import connection

    from accounts.members.models import Membership, Role
    from reports import agile, breakdowns, flow
    from reports.scope import report_scope
    from tickets.models import Project, Sprint

    tenant = _tenant(args.tickets, args.seed)
    connection.set_tenant(tenant)  # type: ignore[attr-defined]
    member = Membership.objects.select_related("user").filter(role=Role.ADMIN).first()
    assert member is not None
    biggest = Project.objects.order_by("-ticket_counter").values_list("key", flat=True).first()
    sprint = Sprint.objects.filter(project__key=biggest, state="active").first() or (
        Sprint.objects.filter(project__key=biggest).order_by("-completed_at").first()
    )
    _snapshots(30)

    def scope(**kw: Any) -> Any:
        return report_scope(member=member, **kw)

    today = scope().today()
    last_30 = {"date_from": today - timedelta(days=29), "date_to": today}
    cases: list[tuple[str, Callable[[], Any]]] = [
        (
            f"velocity ({biggest}, 7 sprints)",
            lambda: agile.velocity_report(scope=scope(project=biggest)),
        ),
        (
            f"burndown ({biggest}, {sprint.name if sprint else '-'})",
            lambda: agile.burndown_report(
                scope=scope(project=biggest), sprint=str(sprint.pk) if sprint else None
            ),
        ),
        ("assignee-workload (all projects)", lambda: breakdowns.workload_report(scope=scope())),
        (
            f"assignee-workload ({biggest})",
            lambda: breakdowns.workload_report(scope=scope(project=biggest)),
        ),
        (
            "issue-distribution by status (all)",
            lambda: breakdowns.distribution_report(scope=scope(), group_by="status"),
        ),
        (
            f"issue-distribution by labels ({biggest})",
            lambda: breakdowns.distribution_report(scope=scope(project=biggest), group_by="labels"),
        ),
        (
            f"time-tracking ({biggest}, first page)",
            lambda: breakdowns.time_tracking_report(scope=scope(project=biggest)),
        ),
        (
            "cumulative-flow 30 days (snapshots)",
            lambda: flow.cumulative_flow_report(scope=scope(**last_30)),
        ),
        (
            f"cumulative-flow 30 days (history, jql {biggest})",
            lambda: flow.cumulative_flow_report(scope=scope(jql=f"project = {biggest}", **last_30)),
        ),
        (
            "created-vs-resolved 90 days by week (all)",
            lambda: flow.created_vs_resolved_report(
                scope=scope(date_from=today - timedelta(days=89), date_to=today), period="week"
            ),
        ),
        ("cycle-time 30 days (all)", lambda: flow.cycle_time_report(scope=scope(**last_30))),
        *_board_cases(member),
    ]
    if args.only:
        wanted = [text.lower() for text in args.only]
        cases = [(name, fn) for name, fn in cases if any(text in name.lower() for text in wanted)]
    results = [_measure(name, fn, args.runs) for name, fn in cases]
    over = [name for name, _, p95, _ in results if p95 >= GOAL_MS]
    print(f"goal p95 < {GOAL_MS:.0f} ms: {'met' if not over else 'missed by ' + ', '.join(over)}")


if __name__ == "__main__":
    main()
