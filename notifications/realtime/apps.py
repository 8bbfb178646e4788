from django.apps import AppConfig


class RealtimeConfig(AppConfig):
    """Live push to browsers (no models): registers the outbox consumer that pushes
    ticket and comment changes, in every process role that loads the apps."""

    name = "notifications.realtime"
    label = "realtime"
    verbose_name = "Real-time push"

    def ready(self) -> None:
        from notifications.realtime import ticket_events  # noqa: F401  (outbox consumer)
