"""In-app notifications and notification preferences."""

from ninja import Router

router = Router(tags=["notifications"])
