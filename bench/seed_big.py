"""One big tenant for the benchmarks that need millions of tickets (search, reports).

    from bench.seed_big import bench_big_setup, ensure_big_tenant
    bench_big_setup()                               # own database, production settings
    tenant = ensure_big_tenant(tickets=2_000_000)   # seeds once, then reuses it at once

    python -m bench.seed_big --tickets 2000000      # seed (or check) from the shell

The tenant (`bench-big`) lives in its own database (BENCH_DATABASE_URL, default
postgres://postgres@127.0.0.1:5432/saas_bench_big). A finished seed writes a marker on
the tenant's schema (`COMMENT ON SCHEMA`) naming the ticket count and the seed version;
`ensure_big_tenant` returns a tenant carrying the same marker immediately, and drops and
reseeds anything else (a different size, an interrupted seed).

What is written, all with COPY (secondary indexes dropped first and rebuilt after, the
per-row foreign-key triggers off as `pg_restore --disable-triggers` does):
- 300 members with a skewed (Zipf-like) share of the work, 8 projects of skewed sizes
  (6 Scrum projects with sprints, 2 Kanban ones; one private), components, monthly
  fix versions, 40 labels;
- tickets over two years: types, priorities, statuses by age, summaries and
  descriptions from a word list with a Zipf distribution (common and rare words),
  epics and sub-tasks, story points, due dates, LexoRank-like ranks in project order;
- history as the services write it: creation rows (status, type, priority, assignee),
  status paths To Do -> In Progress (-> In Review) -> Done with a few reopenings,
  resolution changes, reassignments;
- sprints of two weeks per Scrum project (closed ones, one active, three future) with
  memberships and the scope log (committed at start, added/removed mid-sprint,
  completed/not completed at close) consistent with the status history: a ticket is
  completed in the sprint in which it reached Done, carried over otherwise;
- comments on ~30% of tickets, worklogs on ~15% (Ticket.time_spent is their sum),
  the reporter watching ~10%.
"""

import argparse
import bisect
import itertools
import os
import random
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/saas_bench_big"
SUBDOMAIN = "bench-big"
EMAIL_DOMAIN = "bench-big.example.com"
SEED_VERSION = 1
SEED_LOCK = 0x5EED_B16  # pg_advisory_lock key held while seeding
BATCH = 20_000
USERS = 300
# key, share of the tickets, scrum (sprints) or kanban
PROJECTS = (
    ("WEB", 0.26, True),
    ("API", 0.20, True),
    ("MOB", 0.15, True),
    ("DATA", 0.11, True),
    ("OPS", 0.10, False),
    ("PAY", 0.08, True),
    ("HELP", 0.06, False),
    ("SEC", 0.04, True),
)
PRIVATE_PROJECT = "SEC"
SPRINT_DAYS = 14
FUTURE_SPRINTS = 3
DAY = 86_400.0

WORDS = """
error page user login button crash data report api request response timeout server client
mobile app screen update sync search filter export import email notification payment invoice
account password settings profile dashboard chart table list view form field validation
upload download file image video cache queue worker job schedule retry fail fails failed
slow performance memory leak database query index migration backup restore deploy release
build test tests flaky pipeline docker kubernetes config environment staging production
monitoring alert log logs metric metrics trace latency spike outage incident customer
support ticket refund subscription plan billing tax currency price discount coupon cart
checkout order shipping address map location permission role admin access token session
cookie security vulnerability audit compliance encryption certificate domain dns proxy
network firewall webhook integration slack jira github calendar reminder comment mention
attachment preview editor markdown text font layout responsive dark mode theme color icon
animation scroll keyboard shortcut accessibility translation locale timezone date format
number rounding duplicate missing wrong broken blank empty null undefined exception stack
overflow regression refactor cleanup deprecate remove rename move split merge improve
optimize support add allow enable disable show hide display render load save delete edit
create
""".split()  # noqa: SIM905
RARE_WORDS = """
zeppelin quokka narwhal kumquat obsidian tamarind xylophone yodel wombat vortex
""".split()  # noqa: SIM905
LABELS = """
frontend backend ux performance security regression customer tech-debt infra docs mobile ios
android api billing onboarding search reporting analytics i18n a11y quick-win needs-info
blocked hotfix spike research design qa release flaky-test database migration monitoring
privacy gdpr enterprise partner integration beta legacy
""".split()  # noqa: SIM905
COMPONENTS = ("Core", "UI", "Backend", "Database", "Auth", "Notifications", "Reports", "Mobile")
STATUSES = ("To Do", "In Progress", "In Review", "Done")
PRIORITY_WEIGHTS = {"Highest": 4, "High": 18, "Medium": 55, "Low": 16, "Lowest": 7}
TYPE_WEIGHTS = {"Story": 36, "Task": 30, "Bug": 26, "Sub-task": 8}
RESOLUTION_WEIGHTS = {"Done": 85, "Won't Do": 8, "Duplicate": 4, "Cannot Reproduce": 3}
POINTS = ("1", "2", "3", "5", "8", "13")
SENTENCES = 30_000


def bench_big_setup() -> str:
    """Configure Django on the big benchmark database (created and migrated if needed);
    returns its URL."""
    from bench.setup import bench_django_setup

    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)
    bench_django_setup(database_url=url, database_name=url.rsplit("/", 1)[1].split("?")[0])
    return url


def _marker(tickets: int) -> str:
    return f"bench-big seed v{SEED_VERSION}: {tickets} tickets, complete"


def _schema_comment(schema: str) -> str | None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace WHERE nspname = %s",
            [schema],
        )
        row = cursor.fetchone()
    return row[0] if row else None


def big_tenant_drop() -> None:
    """Drop the benchmark tenant, its schema and its identities."""
    from django.db import connection

    from tenants.models import Tenant

    for tenant in Tenant.objects.filter(subdomain=SUBDOMAIN):
        tenant.delete(force_drop=True)
    connection.set_schema_to_public()
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM accounts_user WHERE email LIKE %s", [f"%@{EMAIL_DOMAIN}"])


def ensure_big_tenant(
    *, tickets: int = 2_000_000, seed: int = 5, say: Callable[[str], None] = print
) -> Any:
    """The seeded benchmark tenant with `tickets` tickets: reused when a finished seed of
    that size exists, otherwise (re)seeded. Django must be set up (`bench_big_setup`)."""
    from django.db import connection

    from tenants.models import Tenant

    # One seeder at a time: a second caller waits here, then finds the finished seed.
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", [SEED_LOCK])
    try:
        existing = Tenant.objects.filter(subdomain=SUBDOMAIN).first()
        if big_tenant_ready(tickets):
            say(f"reusing tenant {existing.schema_name}: {tickets:,} tickets")
            return existing
        if existing is not None:
            say(f"dropping the incomplete or different tenant {existing.schema_name}")
        big_tenant_drop()
        return _seed(tickets=tickets, seed=seed, say=say)
    finally:
        connection.set_schema_to_public()
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [SEED_LOCK])


def big_tenant_ready(tickets: int) -> bool:
    """Whether a finished seed of `tickets` tickets is in place."""
    from tenants.models import Tenant

    existing = Tenant.objects.filter(subdomain=SUBDOMAIN).first()
    return existing is not None and _schema_comment(existing.schema_name) == _marker(tickets)


# -- text and distributions ------------------------------------------------------------------


def _zipf_cum(n: int, s: float = 1.0) -> list[float]:
    return list(itertools.accumulate(1.0 / (i + 1) ** s for i in range(n)))


def _cum(weights: dict[str, int]) -> tuple[list[str], list[float]]:
    return list(weights), list(itertools.accumulate(weights.values()))


def _copy_text(value: Any) -> str:
    """A value in COPY's text format."""
    if value is None:
        return "\\N"
    if isinstance(value, datetime):
        return value.isoformat()
    text = str(value)
    if "\\" in text or "\t" in text or "\n" in text:
        text = text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
    return text


def _with_until(history: list[tuple[str, float, str]]) -> list[str]:
    """A ticket's history rows with their `until`: the time of the next row of the same
    field (by time, then order written), as the triggers of tickets/migrations/0007
    would have written it; empty for the last."""
    until: list[str] = ["\\N"] * len(history)
    last: dict[str, int] = {}
    for i in sorted(range(len(history)), key=lambda i: history[i][1]):  # stable
        name = history[i][0]
        if name in last:
            until[last[name]] = _ts(history[i][1])
        last[name] = i
    return [f"{row}\t{end}\n" for (_, _, row), end in zip(history, until, strict=True)]


def _ts(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


def _rank(position: int) -> str:
    """LexoRank-like: bucket, base-36 digits, spaced so cards can move between."""
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    value, out = position * 4096 + 1_000_000, []
    while value:
        value, r = divmod(value, 36)
        out.append(digits[r])
    return "0|" + "".join(reversed(out)).rjust(10, "0") + ":"


# -- the generator ---------------------------------------------------------------------------


@dataclass
class _Sprint:
    id: int
    start: float
    end: float
    state: str


@dataclass
class _Project:
    id: int
    key: str
    scrum: bool
    count: int
    components: list[int]
    versions: list[tuple[int, float]]  # (id, release time), in order
    sprints: list[_Sprint] = field(default_factory=list)
    starts: list[float] = field(default_factory=list)


@dataclass
class _Rows:
    tickets: list[str] = field(default_factory=list)
    history: list[str] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    components: list[str] = field(default_factory=list)
    versions: list[str] = field(default_factory=list)
    memberships: list[str] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)
    worklogs: list[str] = field(default_factory=list)
    watchers: list[str] = field(default_factory=list)


class _Generator:
    def __init__(self, *, seed: int, now: float, catalog: dict[str, dict[str, int]]) -> None:
        self.rng = random.Random(seed)
        self.now = now
        self.start = now - 730 * DAY
        self.catalog = catalog
        self.word_cum = _zipf_cum(len(WORDS), 1.05)
        self.label_cum = _zipf_cum(len(LABELS), 1.1)
        self.priorities = _cum(PRIORITY_WEIGHTS)
        self.types = _cum(TYPE_WEIGHTS)
        self.resolutions = _cum(RESOLUTION_WEIGHTS)
        self.sentences = [self._sentence() for _ in range(SENTENCES)]
        self.users: list[int] = []
        self.user_cum: list[float] = []

    def set_users(self, users: list[int]) -> None:
        self.users = users
        self.user_cum = _zipf_cum(len(users), 0.8)

    def _words(self, k: int) -> list[str]:
        return self.rng.choices(WORDS, cum_weights=self.word_cum, k=k)

    def _sentence(self) -> str:
        words = self._words(self.rng.randint(6, 14))
        if self.rng.random() < 0.02:
            words.append(self.rng.choice(RARE_WORDS))
        return " ".join(words).capitalize() + "."

    def summary(self) -> str:
        words = self._words(self.rng.randint(4, 9))
        if self.rng.random() < 0.005:
            words.insert(self.rng.randrange(len(words)), self.rng.choice(RARE_WORDS))
        return " ".join(words).capitalize()

    def description(self) -> str:
        if self.rng.random() < 0.1:
            return ""
        parts = self.rng.sample(self.sentences, self.rng.randint(1, 4))
        return "\n".join(parts)

    def user(self) -> int:
        return self.rng.choices(self.users, cum_weights=self.user_cum)[0]

    def pick(self, table: tuple[list[str], list[float]]) -> str:
        return self.rng.choices(table[0], cum_weights=table[1])[0]

    def labels(self) -> str:
        k = self.rng.choices((0, 1, 2, 3), weights=(35, 35, 20, 10))[0]
        chosen = sorted(set(self.rng.choices(LABELS, cum_weights=self.label_cum, k=k)))
        return "{" + ",".join(chosen) + "}"

    # one ticket --------------------------------------------------------------------------

    def ticket(
        self, rows: _Rows, *, pk: int, number: int, project: _Project, position: int,
        created: float, epic: int | None, parent: int | None, is_epic: bool,
    ) -> None:  # fmt: skip
        rng, st, now = self.rng, self.catalog["status"], self.now
        kind = "Epic" if is_epic else ("Sub-task" if parent else self.pick(self.types))
        if kind == "Sub-task" and parent is None:
            kind = "Task"
        priority = self.pick(self.priorities)
        reporter = self.user()
        assignee = None if rng.random() < 0.12 else self.user()
        points = rng.choice(POINTS) if kind in ("Story", "Task", "Bug") else None
        # status path: (status name, at) after creation
        path: list[tuple[str, float]] = []
        # (sprint, "<how it joined>[-<how it left>]", joined at, left at)
        sprint_plan: list[tuple[_Sprint, str, float, float | None]] = []
        current_sprint: _Sprint | None = None
        if project.scrum and kind in ("Story", "Task", "Bug") and rng.random() < 0.8:
            current_sprint, _ = self._sprints(project, created, path, sprint_plan)
        else:
            self._kanban_path(created, path)
        resolved = None
        status = "To Do"
        for name, _ in path:
            status = name
        if status == "Done":
            resolved = path[-1][1]
        events = [created] + [at for _, at in path]
        # history: creation rows, then status changes
        hist: list[tuple[str, float, str]] = []  # (field, time, the row up to its time)
        ts_created = _ts(created)

        def h(field: str, old: str | None, new: str | None, old_ref: Any, new_ref: Any,
              actor: int | None, at: float) -> None:  # fmt: skip
            hist.append((field, at, (
                f"{pk}\t{_copy_text(actor)}\t{field}\t{_copy_text(old)}\t{_copy_text(new)}"
                f"\t{_copy_text(old_ref)}\t{_copy_text(new_ref)}\t{_ts(at)}"
            )))  # fmt: skip

        h("status", None, "To Do", None, st["To Do"], reporter, created)
        h("type", None, kind, None, self.catalog["type"][kind], reporter, created)
        h("priority", None, priority, None, self.catalog["priority"][priority], reporter,
          created)  # fmt: skip
        first_assignee = assignee
        if assignee is not None and rng.random() < 0.2:
            first_assignee = self.user()
        if first_assignee is not None:
            h("assignee", None, f"user{first_assignee}", None, first_assignee, reporter,
              created)  # fmt: skip
        previous = "To Do"
        resolution = None
        for name, at in path:
            actor = assignee or reporter
            h("status", previous, name, st[previous], st[name], actor, at)
            if name == "Done":
                resolution = self.pick(self.resolutions)
                ref = self.catalog["resolution"][resolution]
                h("resolution", None, resolution, None, ref, actor, at)
            elif previous == "Done" and resolution is not None:
                ref = self.catalog["resolution"][resolution]
                h("resolution", resolution, None, ref, None, actor, at)
                resolution = None
            previous = name
        if first_assignee != assignee:
            at = created + (max(events) - created) * rng.random() * 0.5 + 60
            events.append(at)
            h("assignee", f"user{first_assignee}" if first_assignee else None,
              f"user{assignee}" if assignee else None, first_assignee, assignee, reporter,
              at)  # fmt: skip
        rows.history.extend(_with_until(hist))
        # comments, worklogs, watchers
        if rng.random() < 0.3:
            for _ in range(rng.randint(1, 3)):
                at = created + rng.random() * (min(now, max(events) + 3 * DAY) - created)
                events.append(at)
                body = _copy_text(rng.choice(self.sentences))
                rows.comments.append(f"{pk}\t{self.user()}\t{body}\t{{}}\t{_ts(at)}\t{_ts(at)}\n")
        time_spent = 0
        if rng.random() < 0.15 and len(path) > 0:
            for _ in range(rng.randint(1, 3)):
                spent = rng.choice((900, 1800, 3600, 7200, 14400, 28800))
                at = created + rng.random() * (max(events) - created)
                time_spent += spent
                ts = _ts(at)
                rows.worklogs.append(f"{pk}\t{assignee or reporter}\t{spent}\t{ts}\t\t{ts}\t{ts}\n")
        if rng.random() < 0.1:
            rows.watchers.append(f"{pk}\t{reporter}\t{ts_created}\n")
        # components and fix versions (their links carry the ticket's dates, as the
        # triggers of search/migrations/0006 would write them)
        components = set(rng.sample(project.components, rng.choice((0, 1, 1, 1, 2))))
        version = self._version(project, resolved)
        # sprints
        for sprint, how, joined, left in sprint_plan:
            self._sprint_rows(rows, pk, sprint, how, joined, left, points, assignee or reporter)
        updated = max(events)
        dates = f"{ts_created}\t{_ts(updated)}"
        for component in components:
            rows.components.append(f"{pk}\t{component}\t{dates}\n")
        if version is not None:
            rows.versions.append(f"{pk}\t{version}\t{dates}\n")
        due = None
        if rng.random() < 0.2:
            due = datetime.fromtimestamp(created + rng.uniform(3, 60) * DAY, UTC).date()
        ticket = (
            pk, project.id, number, f"{project.key}-{number}", self.summary(), self.description(),
            self.catalog["type"][kind], st[status], self.catalog["priority"][priority],
            self.catalog["resolution"][resolution] if resolution else None, assignee, reporter,
            reporter, self.labels(), due, points, None, None, time_spent, parent, epic,
            current_sprint.id if current_sprint else None, _rank(position), "{}",
            ts_created, _ts(updated), _ts(resolved) if resolved else None, len(path) + 1,
        )  # fmt: skip
        rows.tickets.append("\t".join(map(_copy_text, ticket)) + "\n")

    def _kanban_path(self, created: float, path: list[tuple[str, float]]) -> None:
        """Status changes of a ticket outside sprints: the older, the likelier done."""
        rng, now = self.rng, self.now
        age = (now - created) / DAY
        if rng.random() > min(0.93, age / 45):
            if rng.random() < 0.5:
                path.append(("In Progress", created + rng.random() * (now - created)))
            return
        started = created + rng.expovariate(1 / (3 * DAY))
        done = started + rng.expovariate(1 / (8 * DAY))
        if done >= now:
            if started < now:
                path.append(("In Progress", started))
            return
        path.append(("In Progress", started))
        if rng.random() < 0.5:
            path.append(("In Review", started + (done - started) * rng.uniform(0.5, 0.9)))
        path.append(("Done", done))
        if rng.random() < 0.05:  # reopened and done again
            again = done + rng.expovariate(1 / (5 * DAY))
            if again + DAY < now:
                path.append(("In Progress", again))
                path.append(("Done", again + rng.uniform(0.2, 3) * DAY))

    def _sprints(
        self,
        project: _Project,
        created: float,
        path: list[tuple[str, float]],
        plan: list[tuple[_Sprint, str, float, float | None]],
    ) -> tuple[_Sprint | None, bool]:
        """Put the ticket in sprints from the one after its creation (committed) or the
        running one (added); it is completed in the sprint in which it reaches Done, or
        carried over. Returns its current open sprint and whether it was removed."""
        rng, now = self.rng, self.now
        i = bisect.bisect_right(project.starts, created)  # first sprint starting after
        if i > 0 and rng.random() < 0.2 and project.sprints[i - 1].end > created:
            i -= 1
            added = created + rng.uniform(60, 3600)
        else:
            added = None
        if i >= len(project.sprints):
            return None, False
        first = project.sprints[i]
        if first.state == "future":
            plan.append((first, "open", created, None))
            return first, False
        join = added or first.start
        if rng.random() < 0.05:  # removed mid-sprint before work started: backlog
            out = join + (min(first.end, now) - join) * rng.uniform(0.1, 0.9)
            plan.append((first, "added-removed" if added else "committed-removed", join, out))
            return None, True
        spans = rng.choices((1, 2, 3), weights=(70, 20, 10))[0]
        last = min(i + spans - 1, len(project.sprints) - 1)
        while project.sprints[last].state == "future":
            last -= 1
        final = project.sprints[last]
        started = join + (min(first.end, now) - join) * rng.uniform(0.0, 0.5)
        path.append(("In Progress", started))
        if final.state == "closed" or rng.random() < 0.35:
            lo = max(final.start, started + 600)
            hi = min(final.end, now) - 60
            if hi > lo:
                done = rng.uniform(lo, hi)
                if rng.random() < 0.5:
                    path.append(("In Review", started + (done - started) * rng.uniform(0.6, 0.95)))
                path.append(("Done", done))
        elif rng.random() < 0.3:
            path.append(("In Review", started + (now - started) * rng.uniform(0.3, 0.9)))
        done_at = path[-1][1] if path[-1][0] == "Done" else None
        for k in range(i, last + 1):
            sprint = project.sprints[k]
            how = "added" if (k == i and added) else "committed"
            if sprint.state == "active":
                plan.append((sprint, how, added if how == "added" else sprint.start, None))
                return sprint, False
            complete = done_at is not None and done_at <= sprint.end
            outcome = "completed" if complete else "not_completed"
            plan.append((sprint, f"{how}-{outcome}", added if how == "added" else sprint.start,
                         sprint.end))  # fmt: skip
            if complete:
                return None, False
        # a closed span whose work was not done: back to the backlog after the last
        if path and path[-1][0] != "Done":
            path[:] = [p for p in path if p[1] <= final.end]
        return None, False

    def _sprint_rows(self, rows: _Rows, pk: int, sprint: _Sprint, how: str, joined: float,
                     left: float | None, points: str | None, actor: int) -> None:  # fmt: skip
        pts = _copy_text(points)
        kind, _, outcome = how.partition("-")
        if kind == "open":  # planned into a future sprint
            kind = "added"
        ts = _ts(joined)
        removed_at = _ts(left) if outcome == "removed" and left else "\\N"
        rows.memberships.append(f"{sprint.id}\t{pk}\t{ts}\t{removed_at}\n")
        rows.changes.append(f"{sprint.id}\t{pk}\t{kind}\t{pts}\t\\N\t{actor}\t{ts}\n")
        if outcome and left:
            at = _ts(left)
            rows.changes.append(f"{sprint.id}\t{pk}\t{outcome}\t{pts}\t\\N\t{actor}\t{at}\n")

    def _version(self, project: _Project, resolved: float | None) -> int | None:
        rng = self.rng
        if resolved is not None:
            if rng.random() > 0.7:
                return None
            for pk, release in project.versions:
                if release >= resolved:
                    return pk
            return None
        if rng.random() < 0.2:
            upcoming = [pk for pk, release in project.versions if release > self.now]
            return rng.choice(upcoming) if upcoming else None
        return None


# -- writing ---------------------------------------------------------------------------------

COPY_TARGETS = {
    "tickets": ("tickets_ticket", (
        "id", "project_id", "number", "key", "summary", "description", "issue_type_id",
        "status_id", "priority_id", "resolution_id", "assignee_id", "reporter_id", "creator_id",
        "labels", "due_date", "story_points", "original_estimate", "remaining_estimate",
        "time_spent", "parent_id", "epic_id", "sprint_id", "rank", "custom_fields",
        "created_at", "updated_at", "resolved_at", "version",
    )),
    "history": ("tickets_tickethistory", (
        "ticket_id", "actor_id", "field", "from_value", "to_value", "from_ref", "to_ref",
        "created_at", "until",
    )),
    "comments": ("tickets_comment", (
        "ticket_id", "author_id", "body", "mentions", "created_at", "updated_at",
    )),
    "components": (
        "tickets_ticket_components",
        ("ticket_id", "component_id", "ticket_created_at", "ticket_updated_at"),
    ),
    "versions": ("tickets_ticket_fix_versions", ("ticket_id", "version_id",
                                                 "ticket_created_at", "ticket_updated_at")),
    "memberships": ("tickets_sprintmembership", ("sprint_id", "ticket_id", "added_at",
                                                 "removed_at")),
    "changes": ("tickets_sprintchange", (
        "sprint_id", "ticket_id", "kind", "points", "estimate", "actor_id", "at",
    )),
    "worklogs": ("tickets_worklog", (
        "ticket_id", "author_id", "time_spent", "started_at", "comment", "created_at",
        "updated_at",
    )),
    "watchers": ("tickets_watcher", ("ticket_id", "user_id", "created_at")),
}  # fmt: skip


def _copy(cursor: Any, table: str, columns: tuple[str, ...], lines: list[str]) -> None:
    if not lines:
        return
    sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
    with cursor.copy(sql) as copy:
        for start in range(0, len(lines), 5000):
            copy.write("".join(lines[start : start + 5000]))


def _secondary_indexes_drop(cursor: Any, schema: str) -> list[str]:
    """Drop the indexes of the seeded tables that back no constraint; returns their
    definitions to rebuild them after the load."""
    tables = [table for table, _ in COPY_TARGETS.values()]
    cursor.execute(
        """
        SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
        FROM pg_index i
        JOIN pg_class t ON t.oid = i.indrelid
        JOIN pg_namespace n ON n.oid = t.relnamespace
        WHERE n.nspname = %s AND t.relname = ANY(%s)
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
        """,
        [schema, tables],
    )
    found = cursor.fetchall()
    for name, _ in found:
        cursor.execute(f"DROP INDEX {name}")
    return [definition for _, definition in found]


def _seed(*, tickets: int, seed: int, say: Callable[[str], None]) -> Any:
    from django.db import connection
    from django_tenants.utils import schema_context

    from search.text_vectors import search_text_refresh
    from tenants.services import tenant_signup

    started = time.perf_counter()
    signup = tenant_signup(
        company_name="Bench Big",
        subdomain=SUBDOMAIN,
        admin_email=f"admin@{EMAIL_DOMAIN}",
        admin_password="Bench-Big-Pass-42",
        admin_name="Bench Admin",
    )
    schema = signup.tenant.schema_name
    say(f"tenant {schema} created in {time.perf_counter() - started:.1f} s")
    with schema_context(schema):
        gen, projects = _catalogues(signup, tickets=tickets, seed=seed)
        with connection.cursor() as django_cursor:
            cursor = django_cursor.cursor
            cursor.execute("SET session_replication_role = replica")
            definitions = _secondary_indexes_drop(cursor, schema)
            _tickets_write(cursor, gen, projects, tickets=tickets, say=say)
            cursor.execute("SET session_replication_role = origin")
            t0 = time.perf_counter()
            # Their triggers were off with the others (the history's `until` is written).
            search_text_refresh(None)
            say(f"search text vectors: {time.perf_counter() - t0:.0f} s")
            say(f"rebuilding {len(definitions)} indexes")
            t0 = time.perf_counter()
            cursor.execute("SET maintenance_work_mem = '512MB'")
            for definition in definitions:
                cursor.execute(definition)
            tables = ", ".join(table for table, _ in COPY_TARGETS.values())
            cursor.execute("SELECT setval(pg_get_serial_sequence('tickets_ticket', 'id'), %s)",
                           [tickets])  # fmt: skip
            for project in projects:
                cursor.execute(
                    "UPDATE tickets_project SET ticket_counter = %s WHERE id = %s",
                    [project.count, project.id],
                )
            # VACUUM as autovacuum soon would: the visibility map lets counts and
            # index-only scans skip the heap, as on a production database.
            cursor.execute(f"VACUUM (ANALYZE) {tables}")
            say(f"indexes and VACUUM (ANALYZE): {time.perf_counter() - t0:.0f} s")
            cursor.execute(f'COMMENT ON SCHEMA "{schema}" IS %s', [_marker(tickets)])
    connection.set_schema_to_public()
    say(f"seeded {tickets:,} tickets in {time.perf_counter() - started:.0f} s")
    signup.tenant.refresh_from_db()
    return signup.tenant


def _catalogues(signup: Any, *, tickets: int, seed: int) -> tuple[_Generator, list[_Project]]:
    """Members, projects, components, versions, a board and sprints per Scrum project."""
    from django.contrib.auth.hashers import make_password

    from accounts.members.models import Membership, Role
    from accounts.models import User
    from tickets.models import (
        Board,
        Component,
        IssueType,
        Priority,
        ProjectMember,
        Resolution,
        Sprint,
        Status,
        Version,
    )  # fmt: skip
    from tickets.project_services import project_create

    now = time.time()
    password = make_password(None)
    users = User.objects.bulk_create(
        User(
            email=f"user{i:03d}@{EMAIL_DOMAIN}",
            username=f"bench_big_user{i:03d}",
            display_name=f"Bench User {i:03d}",
            first_name="Bench",
            last_name=f"User {i:03d}",
            password=password,
        )
        for i in range(USERS)
    )
    Membership.objects.bulk_create(
        Membership(user=u, role=Role.PROJECT_LEAD if i < 8 else Role.USER)
        for i, u in enumerate(users)
    )
    actor = signup.membership
    projects: list[_Project] = []
    total = 0
    for n, (key, share, scrum) in enumerate(PROJECTS):
        count = tickets - total if n == len(PROJECTS) - 1 else int(tickets * share)
        total += count
        project = project_create(
            actor=actor, key=key, name=f"{key.title()} project", lead=users[n].pk,
            is_private=key == PRIVATE_PROJECT,
        )  # fmt: skip
        ProjectMember.objects.bulk_create(
            [ProjectMember(project=project, user=u) for u in users[n * 30 : n * 30 + 30]],
            ignore_conflicts=True,
        )
        components = Component.objects.bulk_create(
            Component(project=project, name=name) for name in COMPONENTS
        )
        releases = []
        month = datetime.fromtimestamp(now - 730 * DAY, UTC).replace(day=1, hour=12)
        while month.timestamp() < now + 120 * DAY:
            releases.append(month)
            month = (month + timedelta(days=32)).replace(day=1)
        versions = Version.objects.bulk_create(
            Version(
                project=project, name=f"{r.year}.{r.month:02d}", release_date=r.date(),
                is_released=r.timestamp() < now,
            )
            for r in releases
        )  # fmt: skip
        p = _Project(
            id=project.pk, key=key, scrum=scrum, count=count,
            components=[c.pk for c in components],
            versions=[(v.pk, r.timestamp()) for v, r in zip(versions, releases, strict=True)],
        )  # fmt: skip
        if scrum:
            _sprints_create(p, project, now=now, board_model=Board, sprint_model=Sprint)
        projects.append(p)
    catalog = {
        "status": {s.name: s.pk for s in Status.objects.filter(name__in=STATUSES)},
        "type": {t.name: t.pk for t in IssueType.objects.all()},
        "priority": {p.name: p.pk for p in Priority.objects.all()},
        "resolution": {r.name: r.pk for r in Resolution.objects.all()},
    }
    gen = _Generator(seed=seed, now=now, catalog=catalog)
    gen.set_users([u.pk for u in users])
    return gen, projects


def _sprints_create(p: _Project, project: Any, *, now: float, board_model: Any,
                    sprint_model: Any) -> None:  # fmt: skip
    board = board_model.objects.create(name=f"{p.key} board", kind="scrum", project=project)
    first = now - 730 * DAY + (sum(map(ord, p.key)) % 7) * DAY
    rows = []
    k = 0
    while True:
        start, end = first + k * SPRINT_DAYS * DAY, first + (k + 1) * SPRINT_DAYS * DAY
        state = "closed" if end <= now else ("active" if start <= now else "future")
        if state == "future" and (start - now) / (SPRINT_DAYS * DAY) >= FUTURE_SPRINTS:
            break
        rows.append(
            sprint_model(
                project=project, board=board, name=f"{p.key} Sprint {k + 1}", state=state,
                sequence=k, start_at=None if state == "future" else _dt(start),
                end_at=None if state == "future" else _dt(end),
                completed_at=_dt(end) if state == "closed" else None, created_at=_dt(start - DAY),
                goal=f"Sprint {k + 1} of {p.key}",
            )
        )  # fmt: skip
        k += 1
    created = sprint_model.objects.bulk_create(rows)
    for k, sprint in enumerate(created):
        start, end = first + k * SPRINT_DAYS * DAY, first + (k + 1) * SPRINT_DAYS * DAY
        p.sprints.append(_Sprint(id=sprint.pk, start=start, end=end, state=sprint.state))
    p.starts = [s.start for s in p.sprints]


def _dt(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _positions(projects: list[_Project]) -> Iterator[tuple[_Project, int]]:
    """(project, number) for every ticket, the projects interleaved as time goes by."""
    cursors = {p.key: 0 for p in projects}
    weights = [p.count for p in projects]
    remaining = sum(weights)
    rng = random.Random(11)
    while remaining:
        p = rng.choices(projects, weights=weights)[0]
        i = projects.index(p)
        cursors[p.key] += 1
        weights[i] -= 1
        remaining -= 1
        yield p, cursors[p.key]


def _tickets_write(cursor: Any, gen: _Generator, projects: list[_Project], *, tickets: int,
                   say: Callable[[str], None]) -> None:  # fmt: skip
    rng = gen.rng
    rows = _Rows()
    started = time.perf_counter()
    epics: dict[str, int | None] = {p.key: None for p in projects}
    last_parent: dict[str, int | None] = {p.key: None for p in projects}
    span = gen.now - gen.start
    pk = 0
    for pk, (project, number) in enumerate(_positions(projects), start=1):
        # creation times grow with the id, busier recently
        fraction = pk / (tickets + 1)
        created = gen.start + span * (fraction**0.8) + rng.uniform(0, 600)
        created = min(created, gen.now - 60)
        is_epic = number % 60 == 1
        parent = last_parent[project.key] if rng.random() < 0.08 else None
        epic = epics[project.key] if rng.random() < 0.5 else None
        gen.ticket(
            rows, pk=pk, number=number, project=project, position=pk, created=created,
            epic=None if is_epic or parent else epic, parent=None if is_epic else parent,
            is_epic=is_epic,
        )  # fmt: skip
        if is_epic:
            epics[project.key] = pk
        elif parent is None:
            last_parent[project.key] = pk
        if pk % BATCH == 0:
            _flush(cursor, rows)
            rows = _Rows()
            if pk % (BATCH * 10) == 0:
                rate = pk / (time.perf_counter() - started)
                say(f"  {pk:,} tickets ({rate:,.0f}/s)")
    _flush(cursor, rows)
    say(f"wrote {pk:,} tickets and their rows in {time.perf_counter() - started:.0f} s")


def _flush(cursor: Any, rows: _Rows) -> None:
    for name, (table, columns) in COPY_TARGETS.items():
        _copy(cursor, table, columns, getattr(rows, name))


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.seed_big", description=__doc__)
    parser.add_argument("--tickets", type=int, default=2_000_000)
    parser.add_argument("--drop", action="store_true", help="drop the tenant and stop")
    args = parser.parse_args()
    bench_big_setup()
    if args.drop:
        big_tenant_drop()
        return 0
    tenant = ensure_big_tenant(tickets=args.tickets, say=lambda s: print(s, flush=True))
    print(f"tenant {tenant.schema_name} ready")
    return 0


if __name__ == "__main__":
    sys.exit(main())
