"""Outbound webhooks: endpoints, deliveries, redelivery."""

from ninja import Router

router = Router(tags=["webhooks"])
