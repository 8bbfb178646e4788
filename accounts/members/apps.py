from django.apps import AppConfig


class MembersConfig(AppConfig):
    """Tenant schema half of accounts: memberships, groups, tokens, invitations."""

    name = "accounts.members"
    label = "members"
    verbose_name = "Members"
