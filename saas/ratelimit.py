"""Fixed-window counters in Redis. Keys always carry the scope they limit."""

from dataclasses import dataclass

from redis.commands.core import Script

from saas.errors import RateLimited
from saas.redis import redis_client

# Counts one hit on each key in turn and stops at the first key over its limit, so a
# request refused by one limit is not counted against the limits after it.
# KEYS: counters; ARGV: window and limit per key. Returns {index or 0, count, ttl}.
_HIT_IN_TURN = """
for i, key in ipairs(KEYS) do
  local window = tonumber(ARGV[2 * i - 1])
  local n = redis.call('INCR', key)
  if n == 1 then redis.call('EXPIRE', key, window) end
  if n > tonumber(ARGV[2 * i]) then
    return {i, n, redis.call('TTL', key)}
  end
end
return {0, 0, 0}
"""


@dataclass(frozen=True)
class Limit:
    key: str
    limit: int
    window_seconds: int
    message: str


def _hit_script() -> Script:
    # Runs as EVALSHA (loaded once per server), so the script is not resent per request.
    return redis_client().register_script(_HIT_IN_TURN)


def ratelimit_hits(*limits: Limit) -> None:
    """Count one hit against each limit in one round trip; raise 429 with Retry-After
    for the first limit passed."""
    args: list[int] = []
    for item in limits:
        args += [item.window_seconds, item.limit]
    index, _count, ttl = _hit_script()(keys=[f"rl:{item.key}" for item in limits], args=args)
    if int(index):
        passed = limits[int(index) - 1]
        raise RateLimited(
            passed.message, retry_after=int(ttl) if int(ttl) > 0 else passed.window_seconds
        )


def ratelimit_hit(*, key: str, limit: int, window_seconds: int, message: str) -> None:
    """Count one hit against `key`; raise 429 with Retry-After once `limit` is passed."""
    ratelimit_hits(Limit(key=key, limit=limit, window_seconds=window_seconds, message=message))


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
