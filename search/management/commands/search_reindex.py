"""`manage.py search_reindex [--tenant X] [--shards N]`: rebuild tenants' search
indices with no downtime (new index, bulk load, atomic alias swap, old index gone)."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django_tenants.utils import get_tenant_model, schema_context
from tqdm import tqdm

from search.engine.backend import search_backend_name
from search.engine.client import POSTGRES, EngineError
from search.engine.maintenance import search_index_rebuild
from tickets.models import Ticket


class Command(BaseCommand):
    help = "Rebuild the search index of one tenant (--tenant) or of every tenant on an engine."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--tenant", help="subdomain or schema name of one tenant")
        parser.add_argument(
            "--shards", type=int, help="primary shards of the new index (default: the setting)"
        )
        parser.add_argument("--batch", type=int, default=500, help="tickets per _bulk request")

    def handle(self, *args: Any, tenant: str | None, shards: int | None, batch: int, **kw: Any):
        tenants = get_tenant_model().objects.exclude(schema_name="public")
        if tenant:
            tenants = tenants.filter(subdomain=tenant) | tenants.filter(schema_name=tenant)
            if not tenants.exists():
                raise CommandError(f"No tenant {tenant!r}.")
        if shards is not None and not 1 <= shards <= 1024:
            raise CommandError("--shards must be between 1 and 1024.")
        if not 1 <= batch <= 10_000:
            raise CommandError("--batch must be between 1 and 10000.")
        done = 0
        for row in tenants.order_by("schema_name"):
            if search_backend_name(row) == POSTGRES:
                if tenant:
                    raise CommandError(f"Tenant {tenant!r} searches on Postgres: nothing to index.")
                continue
            with schema_context(row.schema_name):
                total = Ticket.objects.count()
                with tqdm(
                    total=total, desc=row.schema_name, unit="ticket", file=self.stderr._out
                ) as bar:
                    try:
                        name = search_index_rebuild(
                            tenant=row, shards=shards, progress=bar.update, batch=batch
                        )
                    except EngineError as exc:
                        raise CommandError(str(exc)) from exc
            self.stdout.write(f"{row.schema_name}: {total} tickets indexed into {name}")
            done += 1
        if not done:
            self.stdout.write("No tenant searches on an engine.")
