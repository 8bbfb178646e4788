"""Typed access to environment variables (12-factor settings)."""

import os
from urllib.parse import parse_qs, quote, urlencode, urlsplit, urlunsplit


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw else default


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def celery_broker_url(redis_url: str) -> str:
    """Kombu spells a unix-socket Redis URL differently from redis-py."""
    if redis_url.startswith("unix://"):
        path, _, query = redis_url[len("unix://") :].partition("?")
        return f"redis+socket://{path}" + (f"?{query}" if query else "")
    return redis_url


def socket_database_url(socket_dir: str, dbname: str = "postgres") -> str:
    """A DATABASE_URL for a PostgreSQL server listening on a unix socket directory."""
    return f"postgres://postgres@{quote(socket_dir, safe='')}/{dbname}"


def redis_url_with_db_offset(url: str, offset: int) -> str:
    """The same Redis server with database number shifted by `offset` (TCP or unix)."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    if parts.scheme == "unix":
        db = int(query.get("db", ["0"])[0]) + offset
        query["db"] = [str(db)]
        path = parts.path
    else:
        db = int(parts.path.strip("/") or 0) + offset
        path = f"/{db}"
    if not 0 <= db <= 15:
        raise ValueError(f"Redis database {db} is out of range")
    if parts.scheme == "unix":
        return f"unix://{path}?{urlencode(query, doseq=True)}"
    return urlunsplit((parts.scheme, parts.netloc, path, urlencode(query, doseq=True), ""))
