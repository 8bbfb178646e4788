from django.apps import AppConfig


class EventsConfig(AppConfig):
    """Tenant schema: the append-only audit log and the transactional outbox."""

    name = "eventlog"
    # The package is not called `events`: opensearch-py imports the PyPI `events` module.
    label = "events"
    verbose_name = "Audit and events"
