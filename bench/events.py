"""Events per second through the outbox to in-app notifications and webhooks.

    python -m bench.events                     # 1,000 events, 2 webhooks, 4 senders
    python -m bench.events --events 5000 --senders 8

Runs against DATABASE_URL (default postgres://postgres@127.0.0.1:5432/saas_bench_events),
creating that database and running `migrate_platform` first. Provisions a tenant with
three members, a project and tickets, and two webhooks to a fast HTTP receiver on
loopback (one for every event, one with a JQL filter). Then writes `--events` outbox
events through the real services (not measured): alternately an assignee change
(`ticket.updated`, notifies the new assignee) and a comment mentioning a member
(`comment.created`, notifies the mentioned and the watchers).

Measured, in-process, as a worker would run them:
1. dispatch: `outbox_dispatch_pending` until nothing is pending; every registered
   consumer runs (in-app notification rules, webhook fan-out, search indexing, ...).
2. send: every webhook delivery through `webhook_delivery_attempt` (resolve and check
   the address, sign, POST, log), sequentially and then by `--senders` threads, each
   with its own database connection (like that many worker processes).
Prints events/s for each stage and end to end, and the rows created. The tenant and
its identities are dropped at the end (`--keep` leaves them).
"""

import argparse
import cProfile
import os
import pstats
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.setup import bench_django_setup

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/saas_bench_events"
SUBDOMAIN = "bench-events"
EMAIL_DOMAIN = "bench-events.example.com"
PASSWORD = "Bench-Events-Pass-42"


class _Receiver(BaseHTTPRequestHandler):
    received = 0
    lock = threading.Lock()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with _Receiver.lock:
            _Receiver.received += 1
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def leftovers_delete() -> None:
    from django.db import connection

    from tenants.models import Tenant

    for tenant in Tenant.objects.filter(subdomain=SUBDOMAIN):
        tenant.delete(force_drop=True)
    connection.set_schema_to_public()
    with connection.cursor() as cursor:  # the ORM would look for memberships everywhere
        cursor.execute("DELETE FROM accounts_user WHERE email LIKE %s", [f"%@{EMAIL_DOMAIN}"])


def events_write(*, actor: Any, others: list[Any], tickets: list[Any], count: int) -> None:
    from tickets.content_services import comment_create
    from tickets.services import ticket_update

    for i in range(count):
        ticket = tickets[i % len(tickets)]
        other = others[(i // 2) % len(others)]
        if i % 2 == 0:
            ticket.refresh_from_db()
            ticket_update(ticket=ticket, actor=actor, data={"assignee": other.user.username})
        else:
            comment_create(ticket=ticket, actor=actor, body=f"@{other.user.username} look #{i}")


def _send_all(schema: str, ids: list[int], senders: int) -> list[str]:
    from django.db import connections
    from django_tenants.utils import schema_context

    from notifications.webhooks.delivery import webhook_delivery_attempt

    def send(chunk: list[int]) -> list[str]:
        try:
            with schema_context(schema):
                return [webhook_delivery_attempt(delivery_id=pk) for pk in chunk]
        finally:
            connections.close_all()

    chunks = [ids[i::senders] for i in range(senders)]
    with ThreadPoolExecutor(max_workers=senders) as pool:
        return [outcome for result in pool.map(send, chunks) for outcome in result]


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.events", description=__doc__)
    parser.add_argument("--events", type=int, default=1_000)
    parser.add_argument("--tickets", type=int, default=50)
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--profile", action="store_true", help="profile the dispatch")
    parser.add_argument("--keep", action="store_true", help="leave the tenant in place")
    args = parser.parse_args()

    os.environ["WEBHOOKS_ALLOW_LOOPBACK"] = "1"  # the receiver is on loopback
    url = os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)
    bench_django_setup(database_url=url, database_name=url.rsplit("/", 1)[1].split("?")[0])
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django_tenants.utils import schema_context

    from accounts.members.models import Membership, Role
    from accounts.services import identity_create, membership_create
    from eventlog.dispatch import outbox_dispatch_pending
    from eventlog.models import OutboxEvent
    from eventlog.outbox import outbox_consumers_for
    from notifications.models import Notification
    from notifications.webhooks.models import WebhookDelivery
    from notifications.webhooks.services import webhook_create
    from tenants.services import tenant_signup
    from tickets.project_services import project_create
    from tickets.services import ticket_create

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    receiver_url = f"http://127.0.0.1:{server.server_address[1]}/hook"

    leftovers_delete()
    signup = tenant_signup(
        company_name="Bench Events",
        subdomain=SUBDOMAIN,
        admin_email=f"admin@{EMAIL_DOMAIN}",
        admin_password=PASSWORD,
        admin_name="Bench Admin",
    )
    schema = signup.tenant.schema_name
    try:
        with schema_context(schema):
            actor = Membership.objects.select_related("user").get(user=signup.admin)
            others = []
            for name in ("dev", "qa"):
                user = identity_create(
                    email=f"{name}@{EMAIL_DOMAIN}", password=PASSWORD, username=f"bench_{name}"
                )
                others.append(membership_create(user=user, role=Role.USER))
            project = project_create(actor=actor, key="EVT", name="Events")
            tickets = [
                ticket_create(project=project, actor=actor, data={"summary": f"Event {n}"})
                for n in range(args.tickets)
            ]
            webhook_create(actor=actor, url=receiver_url, event_types=["*"])
            webhook_create(
                actor=actor,
                url=receiver_url + "?filtered",
                event_types=["ticket.*", "comment.*"],
                jql="project = EVT AND assignee = bench_dev",
            )
            outbox_dispatch_pending(batch=10_000)  # the setting up, not the measure
            WebhookDelivery.objects.all().delete()
            Notification.objects.all().delete()

            started = time.perf_counter()
            events_write(actor=actor, others=others, tickets=tickets, count=args.events)
            written = time.perf_counter() - started
            pending = OutboxEvent.objects.filter(dispatched_at__isnull=True).count()
            print(f"\nwrote {pending} events in {written:.2f} s (not measured)")
            consumers = sorted(
                {
                    f"{c.__module__}.{c.__name__}"
                    for k in ("ticket.updated", "comment.created")
                    for c in outbox_consumers_for(k)
                }
            )
            print("consumers: " + ", ".join(consumers))

            profiler = cProfile.Profile() if args.profile else None
            started = time.perf_counter()
            dispatched = 0
            if profiler:
                profiler.enable()
            with CaptureQueriesContext(connection) as queries:
                while (count := outbox_dispatch_pending()) > 0:
                    dispatched += count
            dispatch_s = time.perf_counter() - started
            if profiler:
                profiler.disable()
                pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)
            notifications = Notification.objects.count()
            ids = list(WebhookDelivery.objects.order_by("id").values_list("pk", flat=True))
        connection.set_schema_to_public()

        half = len(ids) // 2
        started = time.perf_counter()
        sequential = _send_all(schema, ids[:half], 1)
        seq_s = time.perf_counter() - started
        started = time.perf_counter()
        parallel = _send_all(schema, ids[half:], args.senders)
        par_s = time.perf_counter() - started
        outcomes = sequential + parallel
        with schema_context(schema):
            latencies = list(WebhookDelivery.objects.values_list("last_latency_ms", flat=True))
            succeeded = WebhookDelivery.objects.filter(status="succeeded").count()

        print(
            f"\ndispatch: {dispatched} events in {dispatch_s:.2f} s: "
            f"{dispatched / dispatch_s:,.0f} events/s "
            f"({notifications} notifications, {len(ids)} webhook deliveries created; "
            f"{len(queries) / max(1, dispatched):.1f} SQL queries per event)"
        )
        print(
            f"send, 1 sender: {len(sequential)} deliveries in {seq_s:.2f} s: "
            f"{len(sequential) / seq_s:,.0f} deliveries/s"
        )
        print(
            f"send, {args.senders} senders: {len(parallel)} deliveries in {par_s:.2f} s: "
            f"{len(parallel) / par_s:,.0f} deliveries/s"
        )
        per_delivery = (seq_s / max(1, len(sequential))) if sequential else 0
        end_to_end = dispatched / (dispatch_s + per_delivery * len(ids))
        print(f"end to end with 1 sender: {end_to_end:,.0f} events/s")
        print(
            f"deliveries succeeded {succeeded}/{len(ids)}, receiver got {_Receiver.received}; "
            f"POST latency ms p50 {statistics.median(latencies or [0]):.0f} "
            f"max {max(latencies or [0])}; outcomes {sorted(set(outcomes))}"
        )
    finally:
        server.shutdown()
        connection.set_schema_to_public()
        if not args.keep:
            leftovers_delete()
            print("\ndropped the tenant and its identities")
    return 0


if __name__ == "__main__":
    sys.exit(main())
