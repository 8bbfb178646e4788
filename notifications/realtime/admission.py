"""Who may open a live connection, and what they may follow.

The same rules as the HTTP API, reused rather than restated: the tenant comes from the
Host header as in `saas.middleware.TenantMiddleware`, the caller from the API's token
checks in `accounts.authentication`, visibility from `tickets.access`. Everything here
is synchronous and enters the tenant's schema itself (the consumer calls it through
`database_sync_to_async`, in whichever thread that picks).
"""

from dataclasses import dataclass
from http.cookies import CookieError
from importlib import import_module
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

from django.conf import settings
from django.contrib.auth import get_user
from django.http import HttpRequest, parse_cookie
from django.http.request import split_domain_port, validate_host
from django_tenants.utils import (
    get_public_schema_name,
    get_tenant_domain_model,
    remove_www,
    schema_context,
)

from accounts.authentication import (
    API_TOKEN_PREFIX,
    member_admit,
    member_for_access_token,
    member_for_api_token,
)
from accounts.members.models import Membership
from saas.errors import BadRequest, Forbidden, NotFound, Unauthorized
from tickets.access import (
    project_get_for_user,
    projects_visible_to,
    ticket_get_for_user,
    tickets_visible_to,
)

# The subprotocol a browser offers together with its token:
# `new WebSocket(url, ["bearer", token])`; the server answers "bearer".
BEARER_SUBPROTOCOL = "bearer"

CredentialKind = Literal["bearer", "session"]


@dataclass(frozen=True)
class Credential:
    kind: CredentialKind
    secret: str
    # "subprotocol", "query" or "cookie": the subprotocol must be echoed on accept.
    source: str


@dataclass(frozen=True)
class LiveIdentity:
    """An admitted connection: the tenant, the member and how they proved it."""

    schema: str
    user_id: int
    credential: Credential


def scope_header(scope: dict[str, Any], name: bytes) -> str:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return ""


def credential_from_scope(scope: dict[str, Any]) -> Credential | None:
    """The token from `Sec-WebSocket-Protocol: bearer, <token>` (browsers cannot set an
    Authorization header on a WebSocket), else `?token=`, else the session cookie."""
    subprotocols = [p.strip() for p in scope.get("subprotocols") or ()]
    if BEARER_SUBPROTOCOL in subprotocols:
        others = [p for p in subprotocols if p and p != BEARER_SUBPROTOCOL]
        if others:
            return Credential(kind="bearer", secret=others[0], source="subprotocol")
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    if query.get("token") and query["token"][0]:
        return Credential(kind="bearer", secret=query["token"][0], source="query")
    try:
        cookies = parse_cookie(scope_header(scope, b"cookie"))
    except CookieError:
        cookies = {}
    session_key = cookies.get(settings.SESSION_COOKIE_NAME)
    if session_key:
        return Credential(kind="session", secret=session_key, source="cookie")
    return None


def tenant_for_host(host: str) -> Any:
    """The active tenant serving `host`, as TenantMiddleware finds it; 400 for a host
    Django refuses, 404 for no workspace (or the public site), 403 when suspended."""
    domain, _port = split_domain_port(host)
    if not domain or not validate_host(domain, settings.ALLOWED_HOSTS):
        raise BadRequest("Invalid Host header.")
    hostname = remove_www(domain)
    with schema_context(get_public_schema_name()):
        found = (
            get_tenant_domain_model()
            .objects.select_related("tenant")
            .filter(domain=hostname)
            .first()
        )
    tenant = found.tenant if found is not None else None
    if tenant is None or tenant.schema_name == get_public_schema_name():
        raise NotFound(f"No workspace at {hostname}.", code="tenant_not_found")
    if not tenant.is_active:
        raise Forbidden("This workspace is suspended.", code="tenant_suspended")
    return tenant


def origin_check(*, origin: str, host: str) -> None:
    """Cookies ride along on cross-site WebSocket handshakes (no CORS, no CSRF token):
    a session may only connect from a page of its own workspace. Clients that send no
    Origin are not browsers, and a forged page cannot leave it out."""
    if origin and urlsplit(origin).netloc.lower() != host.lower():
        raise Forbidden("Connections with a session must come from this workspace's pages.")


def member_for_credential(credential: Credential) -> Membership:
    """The membership behind a token or a session, in the current schema; 401 when the
    credential is invalid, expired, revoked, or its holder is deactivated."""
    if credential.kind == "bearer":
        if credential.secret.startswith(API_TOKEN_PREFIX):
            member = member_for_api_token(credential.secret)
        else:
            member = member_for_access_token(credential.secret)
    else:
        request = HttpRequest()
        request.session = import_module(settings.SESSION_ENGINE).SessionStore(credential.secret)
        user = get_user(request)  # checks the session's password hash, like the middleware
        found = (
            Membership.objects.select_related("user").filter(user_id=user.pk).first()
            if user.is_authenticated
            else None
        )
        if found is None:
            raise Unauthorized("Not logged in.", code="not_authenticated")
        member = found
    if not member.is_active or not member.user.is_active:
        raise Unauthorized("This account is deactivated.", code="account_inactive")
    return member


def live_admit(*, host: str, origin: str, credential: Credential | None) -> LiveIdentity:
    """Admit a connection: tenant by host, then the caller (rate limits included, as a
    request would count). Raises the API's errors; the consumer turns them into close
    codes."""
    tenant = tenant_for_host(host)
    if credential is None:
        raise Unauthorized("Authentication required.", code="not_authenticated")
    if credential.kind == "session":
        origin_check(origin=origin, host=host)
    with schema_context(tenant.schema_name):
        member = member_admit(HttpRequest(), member_for_credential(credential))
    return LiveIdentity(schema=tenant.schema_name, user_id=member.user_id, credential=credential)


def live_member(identity: LiveIdentity) -> Membership:
    """The member behind a live connection now (in the current schema); 401 once the
    token expired or was revoked, or the member was deactivated or removed."""
    member = member_for_credential(identity.credential)
    if member.user_id != identity.user_id:  # a refreshed credential of someone else
        raise Unauthorized("The token belongs to another user.", code="token_invalid")
    return member


def live_project_resolve(*, identity: LiveIdentity, ref: str) -> tuple[int, str]:
    """(id, key) of a project the member may see; 404 otherwise, whether it is private
    or does not exist."""
    with schema_context(identity.schema):
        project = project_get_for_user(member=live_member(identity), ref=ref)
        return project.pk, project.key


def live_ticket_resolve(*, identity: LiveIdentity, ref: str) -> tuple[int, str, int]:
    """(id, key, project id) of a ticket the member may see; 404 otherwise."""
    with schema_context(identity.schema):
        ticket = ticket_get_for_user(member=live_member(identity), ref=ref)
        return ticket.pk, ticket.key, ticket.project_id


def live_recheck(
    *, identity: LiveIdentity, project_ids: set[int], ticket_ids: set[int]
) -> tuple[set[int], set[int]]:
    """The followed projects and tickets the member may still see (401 when the member
    may no longer connect at all)."""
    with schema_context(identity.schema):
        member = live_member(identity)
        projects = set(
            projects_visible_to(member).filter(pk__in=project_ids).values_list("pk", flat=True)
        )
        tickets = set(
            tickets_visible_to(member).filter(pk__in=ticket_ids).values_list("pk", flat=True)
        )
    return projects, tickets


def live_reauthenticate(*, identity: LiveIdentity, token: str) -> LiveIdentity:
    """Swap in a fresh token of the same user (access tokens expire while sockets stay
    open); 401 if it is invalid or someone else's."""
    renewed = LiveIdentity(
        schema=identity.schema,
        user_id=identity.user_id,
        credential=Credential(kind="bearer", secret=token, source="message"),
    )
    with schema_context(identity.schema):
        live_member(renewed)
    return renewed
