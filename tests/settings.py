"""Test configuration: the real settings, fed test-friendly environment defaults.

Everything still talks to a real PostgreSQL and Redis; only the password hasher is
cheaper (argon2 is exercised by a test of its own) and Celery runs tasks eagerly
unless a test starts a real worker.
"""

import os

os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")
os.environ.setdefault("CELERY_TASK_ALWAYS_EAGER", "1")
os.environ.setdefault("PASSWORD_HASHERS", "django.contrib.auth.hashers.MD5PasswordHasher")
os.environ.setdefault("EMAIL_BACKEND", "django.core.mail.backends.locmem.EmailBackend")
os.environ.setdefault("CONN_MAX_AGE", "0")

from saas.settings import *  # noqa: F403
