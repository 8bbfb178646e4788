"""Tenant schema: saved JQL filters, shared with groups, projects or everyone."""

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower

from accounts.models import User


class SavedFilter(models.Model):
    """A named JQL query. Visible to its owner, the members of the groups it is shared
    with, the members who can see a project it is shared with, everyone when public,
    and tenant admins (search.filter_selectors.filters_visible_to)."""

    name = models.CharField(max_length=255)
    description = models.TextField(blank=True)
    jql = models.TextField()
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    shared_with_groups = models.ManyToManyField("members.Group", related_name="+", blank=True)
    shared_with_projects = models.ManyToManyField("tickets.Project", related_name="+", blank=True)
    is_public = models.BooleanField(default=False)
    favourites: "models.ManyToManyField[User, FilterFavourite]" = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="FilterFavourite", related_name="+", blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("name", "id")
        constraints = [
            models.UniqueConstraint(
                Lower("name"), "owner", name="saved_filter_name_ci_unique_per_owner"
            )
        ]

    def __str__(self) -> str:
        return self.name


class FilterFavourite(models.Model):
    """A person's star on a filter."""

    saved_filter = models.ForeignKey(SavedFilter, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["saved_filter", "user"], name="filter_favourite_unique")
        ]
        indexes = [models.Index(fields=["user", "saved_filter"])]

    def __str__(self) -> str:
        return f"favourite {self.saved_filter_id} of {self.user_id}"
