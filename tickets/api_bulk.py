from ninja import Router

router = Router(tags=["bulk, jobs and import"])
