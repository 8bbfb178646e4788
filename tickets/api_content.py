from ninja import Router

router = Router(tags=["comments and attachments"])
