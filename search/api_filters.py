"""Saved filters."""

from ninja import Router

router = Router(tags=["filters"])
