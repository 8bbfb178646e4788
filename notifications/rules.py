"""Who hears about which event: outbox consumers turning ticket, comment and sprint
events into notifications (registered by NotificationsConfig.ready).

Each rule lists its drafts most specific first (mentioned before commented), so a
watcher who is also mentioned gets the mention only. `notifications_create` drops the
actor, inactive members and people who cannot see the ticket, and de-duplicates on
the outbox event id, so a redelivered event notifies nobody twice.
"""

from collections import defaultdict

from accounts.members.models import Membership
from accounts.models import User
from eventlog.models import OutboxEvent
from eventlog.outbox import outbox_consumer
from notifications.models import Kind
from notifications.services import Draft, notifications_create
from tickets.access import tickets_visible_to
from tickets.models import Comment, Ticket, TicketHistory, Watcher

EXCERPT_CHARS = 300


def person_name(user: User | None) -> str:
    if user is None:
        return "Someone"
    return user.display_name or user.username or user.email


def _excerpt(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= EXCERPT_CHARS else text[: EXCERPT_CHARS - 1] + "…"


def _ticket(event: OutboxEvent) -> Ticket | None:
    try:
        pk = int(event.aggregate_id)
    except ValueError:
        return None
    return Ticket.objects.select_related("project").filter(pk=pk).first()


def _actor(event: OutboxEvent) -> str:
    if event.actor_id is None:
        return "Someone"
    return person_name(User.objects.filter(pk=event.actor_id).first())


def _followers(ticket: Ticket) -> list[int]:
    """Watchers, the reporter and the assignee."""
    ids: list[int | None] = list(
        Watcher.objects.filter(ticket=ticket).order_by("id").values_list("user_id", flat=True)
    )
    ids += [ticket.reporter_id, ticket.assignee_id]
    return [uid for uid in dict.fromkeys(ids) if uid]


def _create(event: OutboxEvent, drafts: list[Draft]) -> None:
    notifications_create(event_id=str(event.pk), actor_id=event.actor_id, drafts=drafts)


def _assignee_at(ticket: Ticket, event: OutboxEvent) -> int | None:
    """The assignee as of the event (the history row it wrote), not as of now: an
    event handled late must not name whoever was assigned since."""
    return (
        TicketHistory.objects.filter(
            ticket=ticket, field="assignee", created_at__lte=event.created_at
        )
        .order_by("-created_at", "-id")
        .values_list("to_ref", flat=True)
        .first()
    )


@outbox_consumer("ticket.created", "ticket.updated")
def notify_assignee(event: OutboxEvent) -> None:
    """A new ticket with an assignee, or a change of assignee: tell the assignee."""
    if event.kind == "ticket.updated" and "assignee" not in event.payload.get("fields", []):
        return
    ticket = _ticket(event)
    if ticket is None:
        return
    assignee_id = _assignee_at(ticket, event)
    if assignee_id is None:
        return
    verb = "assigned" if event.kind == "ticket.updated" else "created and assigned"
    _create(
        event,
        [
            Draft(
                recipient_id=assignee_id,
                kind=Kind.ASSIGNED,
                title=f"{_actor(event)} {verb} {ticket.key} to you",
                body=ticket.summary,
                url=f"/browse/{ticket.key}",
                ticket=ticket,
                payload={"key": ticket.key, "project": ticket.project.key},
            )
        ],
    )


@outbox_consumer("comment.created", "comment.updated")
def notify_comment(event: OutboxEvent) -> None:
    """Mentions (new ones only on an edit); on a new comment, the ticket's followers."""
    ticket = _ticket(event)
    if ticket is None:
        return
    comment = Comment.objects.filter(pk=event.payload.get("comment_id"), ticket=ticket).first()
    if comment is None:  # deleted before we got to it
        return
    actor = _actor(event)

    def draft(uid: int, kind: str, title: str) -> Draft:
        return Draft(
            recipient_id=uid,
            kind=kind,
            title=title,
            body=_excerpt(comment.body),
            url=f"/browse/{ticket.key}?focusedCommentId={comment.pk}",
            ticket=ticket,
            payload={"key": ticket.key, "project": ticket.project.key, "comment_id": comment.pk},
        )

    mentioned = event.payload.get(
        "new_mentions" if event.kind == "comment.updated" else "mentions", []
    )
    drafts = [
        draft(uid, Kind.MENTIONED, f"{actor} mentioned you on {ticket.key}") for uid in mentioned
    ]
    if event.kind == "comment.created":
        drafts += [
            draft(uid, Kind.COMMENTED, f"{actor} commented on {ticket.key}")
            for uid in _followers(ticket)
        ]
    _create(event, drafts)


@outbox_consumer("ticket.transitioned")
def notify_status_change(event: OutboxEvent) -> None:
    """A status change: the ticket's followers."""
    ticket = _ticket(event)
    if ticket is None:
        return
    before, after = event.payload.get("from", ""), event.payload.get("to", "")
    actor = _actor(event)
    _create(
        event,
        [
            Draft(
                recipient_id=uid,
                kind=Kind.STATUS_CHANGED,
                title=f"{actor} changed {ticket.key} from {before} to {after}",
                body=ticket.summary,
                url=f"/browse/{ticket.key}",
                ticket=ticket,
                payload={
                    "key": ticket.key,
                    "project": ticket.project.key,
                    "from": before,
                    "to": after,
                },
            )
            for uid in _followers(ticket)
        ],
    )


@outbox_consumer("sprint.started", "sprint.completed")
def notify_sprint(event: OutboxEvent) -> None:
    """A sprint started or completed: one notification per assignee of its tickets,
    listing their tickets (only the ones they can see: notifications_create checks
    the first, the list is filtered here)."""
    started = event.kind == "sprint.started"
    name = str(event.payload.get("name", ""))
    project = str(event.payload.get("project", ""))
    ids = [i for i in event.payload.get("ticket_ids", []) if isinstance(i, int)]
    by_assignee: dict[int, list[Ticket]] = defaultdict(list)
    for ticket in (
        Ticket.objects.select_related("project")
        .filter(pk__in=ids, assignee_id__isnull=False)
        .order_by("project_id", "number")
    ):
        by_assignee[ticket.assignee_id].append(ticket)  # type: ignore[index]
    members = {
        m.user_id: m for m in Membership.objects.filter(user_id__in=by_assignee, is_active=True)
    }
    drafts = []
    for uid, tickets in by_assignee.items():
        member = members.get(uid)
        if member is None:
            continue
        visible = set(
            tickets_visible_to(member)
            .filter(pk__in=[t.pk for t in tickets])
            .values_list("pk", flat=True)
        )
        keys = [t.key for t in tickets if t.pk in visible]
        if not keys:
            continue
        count = len(keys)
        drafts.append(
            Draft(
                recipient_id=uid,
                kind=Kind.SPRINT_STARTED if started else Kind.SPRINT_COMPLETED,
                title=f"Sprint {name} {'started' if started else 'was completed'}",
                body=f"{count} of your ticket{'s' if count != 1 else ''}: {', '.join(keys)}",
                url=f"/projects/{project}/board" if project else "",
                payload={
                    "sprint_id": event.payload.get("sprint_id"),
                    "name": name,
                    "project": project,
                    "keys": keys,
                },
            )
        )
    _create(event, drafts)
