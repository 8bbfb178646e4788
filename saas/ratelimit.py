"""Fixed-window counters in Redis. Keys always carry the scope they limit."""

from saas.errors import RateLimited
from saas.redis import redis_client

_INCR_WITH_TTL = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('TTL', KEYS[1])
return {n, ttl}
"""


def ratelimit_hit(*, key: str, limit: int, window_seconds: int, message: str) -> None:
    """Count one hit against `key`; raise 429 with Retry-After once `limit` is passed."""
    count, ttl = redis_client().eval(_INCR_WITH_TTL, 1, f"rl:{key}", window_seconds)
    if int(count) > limit:
        raise RateLimited(message, retry_after=int(ttl) if int(ttl) > 0 else window_seconds)


def ratelimit_blocked_for(*, key: str, limit: int) -> int:
    """Seconds until `key` is usable again, or 0 if it is under `limit` (does not count)."""
    client = redis_client()
    raw = client.get(f"rl:{key}")
    if raw is None or int(raw) < limit:
        return 0
    ttl = client.ttl(f"rl:{key}")
    return max(1, int(ttl))


def ratelimit_clear(*, key: str) -> None:
    redis_client().delete(f"rl:{key}")
