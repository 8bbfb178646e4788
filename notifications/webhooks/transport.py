"""One HTTP POST to a checked, pinned address: the connection goes to the IP that was
resolved and checked (no second DNS lookup to rebind), with the URL's host in the Host
header, SNI and certificate check. Redirects are not followed; only a short excerpt
of the response body is read."""

import time
from dataclasses import dataclass

import certifi
import urllib3
from django.conf import settings

from notifications.webhooks.ssrf import Target

EXCERPT_BYTES = 1024


@dataclass(frozen=True)
class SendResult:
    status_code: int | None
    latency_ms: int
    error: str
    response_excerpt: str

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _pool(target: Target) -> urllib3.HTTPConnectionPool:
    timeout = urllib3.Timeout(
        connect=settings.WEBHOOKS_CONNECT_TIMEOUT, read=settings.WEBHOOKS_READ_TIMEOUT
    )
    if target.scheme == "https":
        return urllib3.HTTPSConnectionPool(
            target.ip,
            target.port,
            timeout=timeout,
            retries=False,
            maxsize=1,
            cert_reqs="CERT_REQUIRED",
            ca_certs=certifi.where(),
            server_hostname=target.host,
            assert_hostname=target.host,
        )
    return urllib3.HTTPConnectionPool(
        target.ip, target.port, timeout=timeout, retries=False, maxsize=1
    )


def http_post_pinned(*, target: Target, body: bytes, headers: dict[str, str]) -> SendResult:
    """POST `body`; any answer or failure becomes a SendResult (never raises for I/O)."""
    started = time.monotonic()
    pool = _pool(target)
    try:
        response = pool.urlopen(
            "POST",
            target.path,
            body=body,
            headers={**headers, "Host": target.host_header},
            redirect=False,
            retries=False,
            preload_content=False,
            assert_same_host=False,
        )
        latency_ms = int((time.monotonic() - started) * 1000)
        try:
            excerpt = response.read(EXCERPT_BYTES, decode_content=False) or b""
        except urllib3.exceptions.HTTPError:
            excerpt = b""
        finally:
            response.close()
        error = "" if 200 <= response.status < 300 else f"HTTP {response.status}"
        if 300 <= response.status < 400:
            error = f"HTTP {response.status} (redirects are not followed)"
        return SendResult(
            status_code=response.status,
            latency_ms=latency_ms,
            error=error,
            response_excerpt=excerpt.decode("utf-8", errors="replace"),
        )
    except urllib3.exceptions.HTTPError as exc:
        return SendResult(
            status_code=None,
            latency_ms=int((time.monotonic() - started) * 1000),
            error=_describe(exc),
            response_excerpt="",
        )
    finally:
        pool.close()


def _describe(exc: Exception) -> str:
    reason = getattr(exc, "reason", None)
    if isinstance(exc, urllib3.exceptions.ConnectTimeoutError):
        return "connection timed out"
    if isinstance(exc, urllib3.exceptions.ReadTimeoutError):
        return "timed out waiting for the response"
    return f"{type(exc).__name__}: {reason or exc}"[:500]
