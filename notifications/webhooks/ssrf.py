"""Where webhooks may be sent: http(s) URLs whose host resolves only to public
addresses. Checked when an endpoint is saved and again, on the resolved address the
request then connects to, at every send (a DNS answer may change in between)."""

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
MAX_URL_LENGTH = 2000


class UrlRefused(Exception):
    """A URL webhooks may not be sent to; `code` names the reason for API answers."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass(frozen=True)
class Target:
    """A checked destination: connect to `ip`, speak to `host` (Host header, SNI)."""

    scheme: str
    host: str
    port: int
    ip: str
    host_header: str
    path: str


def _embedded_ipv4(ip: IpAddress) -> IpAddress:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, Teredo), else itself."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip.sixtofour is not None:
            return ip.sixtofour
        if ip.teredo is not None:
            return ip.teredo[1]
    return ip


def address_refusal(ip: IpAddress) -> str | None:
    """Why webhooks may not go to `ip` ("loopback", "private", ...), or None."""
    ip = _embedded_ipv4(ip)
    if ip.is_loopback:
        return None if settings.WEBHOOKS_ALLOW_LOOPBACK else "loopback"
    for kind in ("unspecified", "link_local", "multicast", "reserved", "private"):
        if getattr(ip, f"is_{kind}"):
            return kind.replace("_", "-")
    if not ip.is_global:  # shared address space (100.64/10), benchmarking, ...
        return "non-public"
    return None


def webhook_url_parse(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, path with query) of a URL webhooks may use; else UrlRefused."""
    if len(url) > MAX_URL_LENGTH or any(ch.isspace() or ch == "\x00" for ch in url):
        raise UrlRefused("The URL is not valid.", code="webhook_url_invalid")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise UrlRefused(
            "Only http and https URLs can receive webhooks.", code="webhook_url_scheme"
        )
    if parts.username is not None or parts.password is not None:
        raise UrlRefused(
            "Credentials in the URL are not allowed; verify the signature instead.",
            code="webhook_url_invalid",
        )
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise UrlRefused("The URL has an invalid port.", code="webhook_url_invalid") from exc
    host = parts.hostname or ""
    if not host or port == 0:
        raise UrlRefused("The URL has no host.", code="webhook_url_invalid")
    path = parts.path or "/"
    return parts.scheme, host, port, path + (f"?{parts.query}" if parts.query else "")


def webhook_target_resolve(url: str) -> Target:
    """Resolve the URL's host and check every address it has (all must be allowed, so
    a name with one public and one private answer is refused); the first is used."""
    scheme, host, port, path = webhook_url_parse(url)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UrlRefused(
            f"The host {host} cannot be resolved.", code="webhook_url_unresolvable"
        ) from exc
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    for address in addresses:
        reason = address_refusal(ipaddress.ip_address(address.split("%", 1)[0]))
        if reason is not None:
            raise UrlRefused(
                f"Webhooks cannot be sent to {host}: it resolves to a {reason} address.",
                code="webhook_url_forbidden",
            )
    if not addresses:
        raise UrlRefused(f"The host {host} cannot be resolved.", code="webhook_url_unresolvable")
    default_port = 443 if scheme == "https" else 80
    shown_host = f"[{host}]" if ":" in host else host
    host_header = shown_host if port == default_port else f"{shown_host}:{port}"
    return Target(scheme, host, port, addresses[0], host_header, path)
