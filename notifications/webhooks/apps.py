from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    """Tenant schema: outbound webhooks, their deliveries and retries."""

    name = "notifications.webhooks"
    label = "webhooks"
    verbose_name = "Outbound webhooks"
