"""Provisioning benchmark: N signups through `tenants.services.tenant_signup`.

    make bench                              # 50 tenants, the project's provisioning
    make bench BENCH_ARGS="--compare"       # also django-tenants' stock CloneSchema, first
    python -m bench.provision --tenants 20 --keep

Runs against the server of DATABASE_URL (default: saas.settings' default) but in a
database of its own, `saas_bench` (BENCH_DATABASE_NAME), created and migrated with
`migrate_platform` first. Passwords are hashed with argon2 as in production. Celery
publishes to an in-memory broker (the cost of a publish, no worker, nothing left in
Redis). Prints p50/p95/max seconds per signup, split into cloning the template schema
and the rest, and the total. Afterwards the benchmark's tenants (schemas, rows) and
identities are deleted; `--keep` leaves them (the next run deletes them first).
`DROP DATABASE saas_bench` removes everything.
"""

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/saas"
SUBDOMAIN_PREFIX = "bench-"
EMAIL_DOMAIN = "bench.example.com"
PASSWORD = "Bench-Provisioning-Pass-42"


def database_url_with_name(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def database_ensure(url: str, name: str) -> None:
    import psycopg
    from psycopg import sql

    maintenance = dj_conninfo(database_url_with_name(url, "postgres"))
    with psycopg.connect(**maintenance, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def dj_conninfo(url: str) -> dict[str, object]:
    import dj_database_url

    db = dj_database_url.parse(url)
    info = {"dbname": db["NAME"], "user": db["USER"], "password": db["PASSWORD"] or None}
    info.update(host=db["HOST"] or None, port=db["PORT"] or None)
    return {k: v for k, v in info.items() if v not in (None, "")}


@dataclass
class Timings:
    signup: list[float] = field(default_factory=list)
    clone: list[float] = field(default_factory=list)

    @property
    def rest(self) -> list[float]:
        return [s - c for s, c in zip(self.signup, self.clone, strict=True)]


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    # nearest-rank: the smallest value with at least pct% of the values at or below it
    rank = max(1, -(-len(ordered) * pct // 100))
    return ordered[int(rank) - 1]


def leftovers_delete() -> int:
    """Delete earlier runs' tenants (dropping their schemas) and identities."""
    from django.db import connection, transaction

    from accounts.models import User
    from tenants.models import Tenant

    connection.set_schema_to_public()
    tenants = Tenant.objects.filter(subdomain__startswith=SUBDOMAIN_PREFIX)
    schemas = list(tenants.values_list("schema_name", flat=True))
    qn = connection.ops.quote_name
    for start in range(0, len(schemas), 5):  # a few per statement: quicker, within lock limits
        batch = ", ".join(map(qn, schemas[start : start + 5]))
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"DROP SCHEMA IF EXISTS {batch} CASCADE")
    with transaction.atomic(), connection.cursor() as cursor:
        tenants.delete()  # the rows (domains, operator actions cascade); no model delete()
        # Not QuerySet.delete(): its collector would look for memberships in public.
        cursor.execute(
            f"DELETE FROM {User._meta.db_table} WHERE email LIKE %s", [f"%@{EMAIL_DOMAIN}"]
        )
    connection.close()  # a fresh backend: catalog caches do not carry over
    return len(schemas)


def provision(count: int, clone: Callable[..., None]) -> Timings:
    from django.db import connection

    import tenants.services as services

    timings = Timings()
    clone_seconds: list[float] = []

    def timed_clone(*, schema_name: str) -> None:
        started = time.perf_counter()
        clone(schema_name=schema_name)
        clone_seconds.append(time.perf_counter() - started)

    original = services.schema_clone_from_template
    services.schema_clone_from_template = timed_clone  # type: ignore[assignment]
    try:
        for i in range(count):
            started = time.perf_counter()
            services.tenant_signup(
                company_name=f"Bench Company {i:03d}",
                subdomain=f"{SUBDOMAIN_PREFIX}{i:03d}",
                admin_email=f"admin{i:03d}@{EMAIL_DOMAIN}",
                admin_password=PASSWORD,
                admin_name=f"Bench Admin {i:03d}",
            )
            timings.signup.append(time.perf_counter() - started)
            timings.clone.append(clone_seconds[-1])
            connection.set_schema_to_public()
    finally:
        services.schema_clone_from_template = original  # type: ignore[assignment]
    return timings


def report(timings: Timings) -> None:
    print(f"{len(timings.signup)} signups")
    print(f"  {'seconds':<22}{'p50':>8}{'p95':>8}{'max':>8}{'mean':>8}{'total':>9}")
    for name, values in (
        ("signup", timings.signup),
        ("  clone template", timings.clone),
        ("  everything else", timings.rest),
    ):
        print(
            f"  {name:<22}{percentile(values, 50):>8.3f}{percentile(values, 95):>8.3f}"
            f"{max(values):>8.3f}{statistics.fmean(values):>8.3f}{sum(values):>9.2f}"
        )
    tenth = max(1, len(timings.signup) // 10)
    print(
        f"  clone, mean of the first {tenth}: {statistics.fmean(timings.clone[:tenth]):.3f} s,"
        f" of the last {tenth}: {statistics.fmean(timings.clone[-tenth:]):.3f} s"
    )
    verdict = "met" if percentile(timings.signup, 95) < 1.0 else "MISSED"
    print(f"  goal p95 < 1 s: {verdict}")


def stock_clone(*, schema_name: str) -> None:
    """django-tenants as shipped: re-creates its clone function on every call."""
    from django_tenants.clone import CloneSchema

    from tenants.provisioning import template_schema_name

    CloneSchema().clone_schema(template_schema_name(), schema_name, set_connection=True)


def hasher_seconds() -> float:
    from django.contrib.auth.hashers import make_password

    started = time.perf_counter()
    make_password(PASSWORD)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.provision", description=__doc__)
    parser.add_argument("--tenants", type=int, default=50)
    parser.add_argument(
        "--compare", action="store_true", help="first run django-tenants' stock CloneSchema"
    )
    parser.add_argument("--keep", action="store_true", help="leave the tenants in place")
    args = parser.parse_args()

    name = os.environ.get("BENCH_DATABASE_NAME", "saas_bench")
    url = database_url_with_name(os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL), name)
    from bench.setup import bench_django_setup

    bench_django_setup(database_url=url, database_name=name)
    from django.conf import settings
    from django.db import connection

    from tenants.provisioning import schema_clone_from_template

    assert "Argon2" in settings.PASSWORD_HASHERS[0], "bench the production password hasher"
    removed = leftovers_delete()
    if removed:
        print(f"deleted {removed} tenants left by an earlier run")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = %s",
            [settings.TENANT_TEMPLATE_SCHEMA],
        )
        tables = cursor.fetchone()[0]
    print(f"template schema: {tables} tables; one argon2 hash: {hasher_seconds():.3f} s")

    runs: list[tuple[str, Callable[..., None]]] = []
    if args.compare:
        runs.append(("django-tenants CloneSchema (function re-created per call)", stock_clone))
    runs.append(("tenants.provisioning.schema_clone_from_template", schema_clone_from_template))
    try:
        for index, (title, clone) in enumerate(runs):
            print(f"\n== {title}")
            if not clone_verify(clone) and clone is schema_clone_from_template:
                return 1
            connection.close()  # each run starts on a fresh backend
            total_started = time.perf_counter()
            timings = provision(args.tenants, clone)
            report(timings)
            print(f"  wall clock: {time.perf_counter() - total_started:.2f} s")
            if index < len(runs) - 1:
                leftovers_delete()
    finally:
        if not args.keep:
            started = time.perf_counter()
            leftovers_delete()
            print(f"\ncleaned up ({time.perf_counter() - started:.1f} s)")
    if args.keep:
        print("\nkept the tenants (the next run deletes them)")
    return 0


def clone_verify(clone: Callable[..., None]) -> bool:
    """A bare clone holds exactly what the template holds (see schema_fingerprint);
    made in a transaction that is rolled back."""
    from django.conf import settings
    from django.db import transaction

    from tenants.provisioning import schema_fingerprint

    template = schema_fingerprint(settings.TENANT_TEMPLATE_SCHEMA)
    with transaction.atomic():
        clone(schema_name="bench_verify")
        copy = schema_fingerprint("bench_verify")
        transaction.set_rollback(True)
    different = {
        key: len(set(template[key]) ^ set(copy.get(key, [])))
        for key in template
        if copy.get(key) != template[key]
    }
    if different:
        counts = ", ".join(f"{n} {key}" for key, n in different.items())
        print(f"a clone DIFFERS from the template (differing entries: {counts})")
        return False
    sizes = ", ".join(f"{len(v)} {k.replace('_', ' ')}" for k, v in template.items())
    print(f"verified: a clone equals the template ({sizes})")
    return True


if __name__ == "__main__":
    sys.exit(main())
