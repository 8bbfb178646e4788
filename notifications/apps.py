from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    """Tenant schema: in-app notifications, preferences, email, real-time push."""

    name = "notifications"
    verbose_name = "Notifications"

    def ready(self) -> None:
        from notifications import rules  # noqa: F401  (registers outbox consumers)
