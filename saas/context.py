"""Per-request context (request id, client address) for audit and logs."""

from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True)
class RequestContext:
    request_id: str = ""
    ip: str | None = None


_EMPTY = RequestContext()
_current: ContextVar[RequestContext | None] = ContextVar("request_context", default=None)


def request_context() -> RequestContext:
    return _current.get() or _EMPTY


def request_context_set(ctx: RequestContext) -> object:
    return _current.set(ctx)


def request_context_reset(token: object) -> None:
    _current.reset(token)  # type: ignore[arg-type]
