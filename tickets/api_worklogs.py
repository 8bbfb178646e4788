"""Worklogs and estimates of a ticket."""

from ninja import Router

router = Router(tags=["worklogs"])
