from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    """Tenant schema: outbound webhooks, their deliveries and retries."""

    name = "notifications.webhooks"
    label = "webhooks"
    verbose_name = "Outbound webhooks"

    def ready(self) -> None:
        # Registers the outbox consumers (fan-out, admin notice on auto-disable).
        from notifications.webhooks import admin_notice, fanout  # noqa: F401
