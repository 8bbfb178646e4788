from ninja import Router

users_router = Router(tags=["users"])
groups_router = Router(tags=["groups"])
invitations_router = Router(tags=["invitations"])
