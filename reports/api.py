"""Reports: velocity, burndown, workload, distribution, time tracking, flow."""

from ninja import Router

router = Router(tags=["reports"])
