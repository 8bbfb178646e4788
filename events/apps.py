from django.apps import AppConfig


class EventsConfig(AppConfig):
    """Tenant schema: the append-only audit log and the transactional outbox."""

    name = "events"
    verbose_name = "Audit and events"
