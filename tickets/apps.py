from django.apps import AppConfig


class TicketsConfig(AppConfig):
    name = "tickets"
    verbose_name = "Projects and tickets"

    def ready(self) -> None:
        from tickets import consumers  # noqa: F401  (registers outbox consumers)
