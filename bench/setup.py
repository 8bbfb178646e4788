"""Shared start of every benchmark: its own database, production settings, migrated."""

import os
import time

from bench.provision import database_ensure


def bench_django_setup(*, database_url: str, database_name: str) -> None:
    """Create `database_name` if needed, configure Django with the production settings
    (argon2 first, no eager Celery; tasks go to an in-memory broker), migrate, and say
    where the benchmark runs."""
    database_ensure(database_url, database_name)
    os.environ["DATABASE_URL"] = database_url
    os.environ["DJANGO_SETTINGS_MODULE"] = "saas.settings"
    os.environ.pop("PASSWORD_HASHERS", None)
    os.environ["CELERY_BROKER_URL"] = "memory://localhost//"
    os.environ.setdefault("LOG_LEVEL", "WARNING")

    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    started = time.perf_counter()
    call_command("migrate_platform", verbosity=0)
    db = settings.DATABASES["default"]
    print(f"database {db['NAME']} on {db['HOST'] or 'localhost'}")
    print(f"migrate_platform: {time.perf_counter() - started:.2f} s")
