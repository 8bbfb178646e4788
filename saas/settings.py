"""Settings, all from the environment (12-factor), with safe development defaults.

`DJANGO_ENV=production` turns on the strict checks: a missing secret refuses to start.
"""

from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from saas.env import celery_broker_url, env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
ENVIRONMENT = env_str("DJANGO_ENV", "development")
PRODUCTION = ENVIRONMENT == "production"

_DEV_SECRET = "dev-only-insecure-secret-key-change-me-0123456789"
SECRET_KEY = env_str("SECRET_KEY", "" if PRODUCTION else _DEV_SECRET)
JWT_SIGNING_KEY = env_str("JWT_SIGNING_KEY", "" if PRODUCTION else SECRET_KEY)
if PRODUCTION:
    missing = [
        name
        for name, value in (("SECRET_KEY", SECRET_KEY), ("JWT_SIGNING_KEY", JWT_SIGNING_KEY))
        if len(value) < 32
    ]
    if missing:
        raise ImproperlyConfigured(
            f"production mode needs {', '.join(missing)} (at least 32 characters each)"
        )

DEBUG = env_bool("DEBUG", default=False)

# Hosts: the bare BASE_DOMAIN is the public site; <sub>.BASE_DOMAIN is a tenant.
BASE_DOMAIN = env_str("BASE_DOMAIN", "localhost")
PUBLIC_SCHEME = env_str("PUBLIC_SCHEME", "https" if PRODUCTION else "http")
PUBLIC_PORT = env_str("PUBLIC_PORT", "" if PRODUCTION else "8000")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", [BASE_DOMAIN, f".{BASE_DOMAIN}"])
CSRF_TRUSTED_ORIGINS = env_list(
    "CSRF_TRUSTED_ORIGINS",
    [f"{PUBLIC_SCHEME}://*.{BASE_DOMAIN}" + (f":{PUBLIC_PORT}" if PUBLIC_PORT else "")],
)
RESERVED_SUBDOMAINS = frozenset(
    env_list(
        "RESERVED_SUBDOMAINS",
        [
            "www",
            "api",
            "admin",
            "app",
            "apps",
            "static",
            "media",
            "assets",
            "cdn",
            "mail",
            "email",
            "smtp",
            "imap",
            "pop",
            "ftp",
            "ns",
            "ns1",
            "ns2",
            "dns",
            "status",
            "help",
            "support",
            "docs",
            "blog",
            "billing",
            "login",
            "auth",
            "sso",
            "account",
            "accounts",
            "signup",
            "dashboard",
            "console",
            "operator",
            "public",
            "template",
            "tenant",
            "tenants",
            "root",
            "system",
            "internal",
            "test",
            "staging",
            "dev",
            "demo-template",
        ],
    )
)

SHARED_APPS = [
    "django_tenants",
    "tenants",
    "accounts",
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.admin",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "ninja",
]
TENANT_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "accounts.members",
    "eventlog.apps.EventsConfig",
    "tickets",
    "search",
    "reports",
    "notifications",
    "notifications.webhooks.apps.WebhooksConfig",
    "notifications.realtime.apps.RealtimeConfig",
]
INSTALLED_APPS = SHARED_APPS + [app for app in TENANT_APPS if app not in SHARED_APPS]

TENANT_MODEL = "tenants.Tenant"
TENANT_DOMAIN_MODEL = "tenants.Domain"
PUBLIC_SCHEMA_URLCONF = "saas.urls_public"
ROOT_URLCONF = "saas.urls_tenants"
# New tenants are cloned from this pre-migrated schema (see tenants.provisioning).
TENANT_TEMPLATE_SCHEMA = "tenant_template"

MIDDLEWARE = [
    "saas.middleware.RequestContextMiddleware",
    "saas.middleware.HealthCheckMiddleware",
    "saas.middleware.TenantMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "saas.middleware.JsonMethodNotAllowedMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "saas" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "saas.wsgi.application"

DATABASE_URL = env_str("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/saas")
_db = dj_database_url.parse(DATABASE_URL)
_db["ENGINE"] = "django_tenants.postgresql_backend"
_db["CONN_HEALTH_CHECKS"] = True
if env_bool("DB_POOL", default=False):
    # ASGI: psycopg's pool; persistent connections leak under ASGI (see DESIGN.md).
    _db["CONN_MAX_AGE"] = 0
    _db["OPTIONS"] = {"pool": {"min_size": 2, "max_size": env_int("DB_POOL_MAX", 10)}}
else:
    _db["CONN_MAX_AGE"] = env_int("CONN_MAX_AGE", 60)
_db.setdefault("TEST", {})["NAME"] = env_str("TEST_DATABASE_NAME", f"test_{_db['NAME']}")
# PostgreSQL's JIT compiles any plan above a cost threshold, ~100 ms each time: on
# millions of tickets that is most JQL searches, whose first page takes a few ms (see
# bench/search.py). JIT_ENABLED=1 turns it back on for analytics-only deployments.
if not env_bool("JIT_ENABLED", default=False):
    _db.setdefault("OPTIONS", {})["options"] = "-c jit=off"
DATABASES = {"default": _db}
DATABASE_ROUTERS = ("django_tenants.routers.TenantSyncRouter",)
# Set search_path once per connection and tenant switch, not before every query.
TENANT_LIMIT_SET_CALLS = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        # Cache keys carry the tenant's schema.
        "KEY_FUNCTION": "django_tenants.cache.make_key",
        "REVERSE_KEY_FUNCTION": "django_tenants.cache.reverse_key",
        "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "saas"),
    }
}

# Real-time push (Django Channels, notifications.realtime): group names carry the tenant
# schema, so the prefix is the same for every tenant.
CHANNEL_REDIS_URL = env_str("CHANNEL_REDIS_URL", REDIS_URL)
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            # redis-py's 5 s default read timeout races the layer's 5 s blocking pop.
            "hosts": [{"address": CHANNEL_REDIS_URL, "socket_timeout": 15}],
            "prefix": env_str("CHANNEL_LAYER_PREFIX", "saas-rt"),
            "capacity": env_int("CHANNEL_LAYER_CAPACITY", 200),
            "expiry": 60,
        },
    }
}
# A live connection re-checks its credential and what it follows at most this often.
REALTIME_RECHECK_SECONDS = env_int("REALTIME_RECHECK_SECONDS", 60)

AUTH_USER_MODEL = "accounts.User"
PASSWORD_HASHERS = env_list(
    "PASSWORD_HASHERS",
    [
        "accounts.hashers.Argon2idHasher",
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    ],
)
AUTH_PASSWORD_VALIDATORS = [
    {
        "NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator",
        "OPTIONS": {"user_attributes": ("username", "email", "first_name", "last_name")},
    },
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Tokens
JWT_ISSUER = env_str("JWT_ISSUER", "saas-ticketing")
JWT_ACCESS_TTL = timedelta(seconds=env_int("JWT_ACCESS_TTL_SECONDS", 900))
JWT_REFRESH_TTL = timedelta(seconds=env_int("JWT_REFRESH_TTL_SECONDS", 14 * 24 * 3600))
MFA_TOKEN_TTL = timedelta(seconds=env_int("MFA_TOKEN_TTL_SECONDS", 300))
INVITATION_TTL = timedelta(days=env_int("INVITATION_TTL_DAYS", 7))
PASSWORD_RESET_TTL = timedelta(seconds=env_int("PASSWORD_RESET_TTL_SECONDS", 3600))
MFA_BACKUP_CODE_COUNT = 10
OTP_TOTP_ISSUER = env_str("OTP_TOTP_ISSUER", "Ticketing")

# Throttling and rate limits (Redis, fixed windows)
LOGIN_MAX_FAILURES_PER_ACCOUNT = env_int("LOGIN_MAX_FAILURES_PER_ACCOUNT", 5)
LOGIN_MAX_FAILURES_PER_IP = env_int("LOGIN_MAX_FAILURES_PER_IP", 20)
LOGIN_FAILURE_WINDOW_SECONDS = env_int("LOGIN_FAILURE_WINDOW_SECONDS", 900)
RATE_LIMIT_USER_PER_MINUTE = env_int("RATE_LIMIT_USER_PER_MINUTE", 1200)
RATE_LIMIT_TENANT_PER_MINUTE = env_int("RATE_LIMIT_TENANT_PER_MINUTE", 20000)
# Number of trusted reverse proxies in front of the app (X-Forwarded-For hops).
NUM_PROXIES = env_int("NUM_PROXIES", 0)

# Sessions and cookies: per host (one tenant each), never shared across subdomains.
SESSION_COOKIE_SECURE = PRODUCTION
CSRF_COOKIE_SECURE = PRODUCTION
SESSION_COOKIE_HTTPONLY = True
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if PRODUCTION else None
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# Email
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "127.0.0.1")
EMAIL_PORT = env_int("EMAIL_PORT", 1025)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
# Where the file-based backend (`make run` without EMAIL_HOST) writes each email.
EMAIL_FILE_PATH = env_str("EMAIL_FILE_PATH", str(BASE_DIR / ".data" / "mail"))
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", f"Ticketing <no-reply@{BASE_DOMAIN}>")

# Celery: Redis broker; tasks carry the tenant schema (tenant-schemas-celery).
CELERY_BROKER_URL = celery_broker_url(env_str("CELERY_BROKER_URL", REDIS_URL))
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_BEAT_SCHEDULE = {
    "outbox-sweep": {"task": "eventlog.tasks.outbox_sweep_all", "schedule": 30.0},
    # Hourly: each tenant's yesterday is snapshotted soon after its local midnight.
    "reports-snapshot": {"task": "reports.tasks.reports_snapshot_all", "schedule": 3600.0},
    # Email digests that are due, and deliveries whose task was lost.
    "notifications-email-sweep": {
        "task": "notifications.tasks.notifications_email_sweep_all",
        "schedule": 300.0,
    },
    # Outbound webhooks: send deliveries that are due (retries, lost tasks).
    "webhooks-sweep": {
        "task": "notifications.webhooks.tasks.webhooks_sweep_all",
        "schedule": 30.0,
    },
    # Search engine drift repair (a no-op for tenants searching on Postgres).
    "search-reconcile": {"task": "search.tasks.search_reconcile_all", "schedule": 3600.0},
    # Stored text vectors whose fill task was lost (after an import).
    "search-text-sweep": {"task": "search.tasks.search_text_sweep_all", "schedule": 3600.0},
}

# Search: "postgres" (default), "opensearch" or "elasticsearch"; a tenant may override
# the backend and the number of primary shards (Tenant.search_backend/search_shards).
SEARCH_BACKEND = env_str("SEARCH_BACKEND", "postgres")
SEARCH_URL = env_str("SEARCH_URL", "http://127.0.0.1:9200")
SEARCH_INDEX_PREFIX = env_str("SEARCH_INDEX_PREFIX", "tkt")
SEARCH_SHARDS = env_int("SEARCH_SHARDS", 1)
SEARCH_REPLICAS = env_int("SEARCH_REPLICAS", 0)

# Outbound webhooks: loopback receivers only for tests and local development (SSRF).
WEBHOOKS_ALLOW_LOOPBACK = env_bool("WEBHOOKS_ALLOW_LOOPBACK", False)
WEBHOOKS_CONNECT_TIMEOUT = float(env_int("WEBHOOKS_CONNECT_TIMEOUT_SECONDS", 3))
WEBHOOKS_READ_TIMEOUT = float(env_int("WEBHOOKS_READ_TIMEOUT_SECONDS", 10))
# Signing secrets are encrypted at rest with a key derived from this (SECRET_KEY if unset).
WEBHOOKS_SECRET_KEY = env_str("WEBHOOKS_SECRET_KEY", SECRET_KEY)

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(BASE_DIR / ".data" / "media")))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
