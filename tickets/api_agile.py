"""Boards, ranking, backlog and sprints."""

from ninja import Router

router = Router(tags=["boards"])
