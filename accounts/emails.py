"""Transactional emails (invitations, password resets), sent by Celery after commit."""

from django.db import transaction


def email_send_after_commit(*, to: str, subject: str, body: str) -> None:
    """Queue a plain-text email; it leaves only if the surrounding transaction commits."""
    from accounts.tasks import email_send

    transaction.on_commit(lambda: email_send.delay(to=to, subject=subject, body=body))
