"""Test configuration: the real settings, fed test-friendly environment defaults.

Everything still talks to a real PostgreSQL and Redis; only the password hasher is
cheaper (argon2 is exercised by a test of its own) and Celery runs tasks eagerly
unless a test starts a real worker.
"""

import os

from saas.env import redis_url_with_db_offset

os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")
# Parallel test workers (pytest-xdist) each get their own Redis database, since every
# test starts by emptying it.
_worker = os.environ.get("PYTEST_XDIST_WORKER", "")
if _worker.startswith("gw"):
    os.environ["REDIS_URL"] = redis_url_with_db_offset(os.environ["REDIS_URL"], -int(_worker[2:]))

os.environ.setdefault("CELERY_TASK_ALWAYS_EAGER", "1")
os.environ.setdefault("PASSWORD_HASHERS", "django.contrib.auth.hashers.MD5PasswordHasher")
os.environ.setdefault("EMAIL_BACKEND", "django.core.mail.backends.locmem.EmailBackend")
os.environ.setdefault("CONN_MAX_AGE", "0")

from saas.settings import *  # noqa: E402, F403
