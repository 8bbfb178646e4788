"""Dashboards and the signed-in user's summary."""

from ninja import Router

router = Router(tags=["dashboards"])
