"""The operators' console: Django's admin on the public host (saas/urls_public.py).

Tenants are created by signup and never deleted here (deleting one drops its schema);
suspension and reactivation go through `tenant_set_status`, which records who did it
and from where. Operator actions are read-only history.
"""

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.models import User
from saas.errors import ApiError
from saas.middleware import client_ip
from tenants.models import Domain, OperatorAction, Tenant
from tenants.services import tenant_set_status

admin.site.site_header = "Ticketing platform operators"
admin.site.site_title = "Operators"
admin.site.index_title = "Operator console"


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "subdomain",
        "schema_name",
        "status",
        "members",
        "require_mfa",
        "created_at",
    )
    list_filter = ("status", "require_mfa", "created_at")
    search_fields = ("name", "subdomain", "schema_name", "domains__domain")
    ordering = ("name",)
    date_hierarchy = "created_at"
    fields = (
        "name",
        "subdomain",
        "schema_name",
        "status",
        "suspended_at",
        "require_mfa",
        "time_zone",
        "member_count",
        "created_at",
    )
    # Identity and status change only through signup and the actions (which record them).
    readonly_fields = (
        "subdomain",
        "schema_name",
        "status",
        "suspended_at",
        "member_count",
        "created_at",
    )
    actions = ("suspend_tenants", "reactivate_tenants")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Tenant]:
        # The public tenant is the platform itself, not a customer.
        return super().get_queryset(request).exclude(schema_name="public")

    @admin.display(description="Members", ordering="member_count")
    def members(self, tenant: Tenant) -> int:
        return tenant.member_count

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # a tenant needs a schema and an admin: signup makes both

    def has_delete_permission(self, request: HttpRequest, obj: Tenant | None = None) -> bool:
        return False  # deleting a tenant drops its schema

    @admin.action(description="Suspend selected tenants", permissions=["change"])
    def suspend_tenants(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> None:
        self._status_set(request, queryset, Tenant.Status.SUSPENDED, "suspended")

    @admin.action(description="Reactivate selected tenants", permissions=["change"])
    def reactivate_tenants(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> None:
        self._status_set(request, queryset, Tenant.Status.ACTIVE, "reactivated")

    def _status_set(
        self, request: HttpRequest, queryset: QuerySet[Tenant], status: str, verb: str
    ) -> None:
        changed = []
        with transaction.atomic():
            # Locked, so two operators acting at once record one change, not two.
            for tenant in queryset.select_for_update().order_by("pk"):
                if tenant.status == status:
                    continue
                try:
                    tenant_set_status(
                        tenant=tenant,
                        status=status,
                        operator=request.user,  # type: ignore[arg-type]
                        ip=client_ip(request),
                    )
                except ApiError as exc:
                    self.message_user(request, f"{tenant}: {exc.message}", messages.ERROR)
                    continue
                changed.append(tenant.name)
        if changed:
            self.message_user(
                request, f"{len(changed)} tenant(s) {verb}: {', '.join(changed)}.", messages.SUCCESS
            )
        else:
            self.message_user(request, f"No tenant needed to be {verb}.", messages.WARNING)


@admin.register(Domain)
class DomainAdmin(admin.ModelAdmin):
    list_display = ("domain", "tenant", "is_primary")
    list_filter = ("is_primary",)
    list_select_related = ("tenant",)
    search_fields = ("domain", "tenant__name", "tenant__subdomain")
    autocomplete_fields = ("tenant",)
    ordering = ("domain",)

    def has_change_permission(self, request: HttpRequest, obj: Domain | None = None) -> bool:
        # A primary domain is the tenant's subdomain (or the public site): fixed at signup.
        if obj is not None and obj.is_primary:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Domain | None = None) -> bool:
        if obj is not None and obj.is_primary:
            return False
        return super().has_delete_permission(request, obj)


@admin.register(OperatorAction)
class OperatorActionAdmin(admin.ModelAdmin):
    list_display = ("created_at", "action", "tenant", "operator", "ip")
    list_filter = ("action", "created_at")
    list_select_related = ("tenant", "operator")
    search_fields = ("tenant__name", "tenant__subdomain", "operator__email", "ip")
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(
        self, request: HttpRequest, obj: OperatorAction | None = None
    ) -> bool:
        return False

    def has_delete_permission(
        self, request: HttpRequest, obj: OperatorAction | None = None
    ) -> bool:
        return False


class OperatorUserChangeForm(UserChangeForm):
    """The password shows as a hash summary linking to Django's password change form."""

    class Meta(UserChangeForm.Meta):  # type: ignore[name-defined]
        model = User
        fields = (
            "email",
            "username",
            "display_name",
            "first_name",
            "last_name",
            "password",
            "is_active",
            "is_staff",
            "is_superuser",
            "groups",
            "user_permissions",
        )


class OperatorUserCreationForm(AdminUserCreationForm):
    class Meta(AdminUserCreationForm.Meta):  # type: ignore[name-defined]
        model = User
        fields = ("email", "username")

    def clean_email(self) -> str:
        email = self.cleaned_data["email"].strip().lower()
        if User.objects.filter(email__iexact=email).exists():
            raise ValidationError("An account with this email already exists.")
        return email


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    form = OperatorUserChangeForm
    add_form = OperatorUserCreationForm
    list_display = ("email", "username", "display_name", "is_staff", "is_active", "date_joined")
    list_filter = ("is_staff", "is_superuser", "is_active")
    search_fields = ("email", "username", "display_name", "first_name", "last_name")
    ordering = ("email",)
    readonly_fields = ("last_login", "date_joined")
    fieldsets = (
        (None, {"fields": ("email", "username", "password")}),
        ("Personal info", {"fields": ("display_name", "first_name", "last_name")}),
        (
            "Platform access",
            {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")},
        ),
        ("Important dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": ("email", "username", "usable_password", "password1", "password2"),
            },
        ),
    )

    def get_readonly_fields(self, request: HttpRequest, obj: User | None = None) -> tuple[str, ...]:
        fields = tuple(super().get_readonly_fields(request, obj))
        if not request.user.is_superuser:  # type: ignore[union-attr]
            # Only superusers grant operator rights.
            fields += ("is_staff", "is_superuser", "groups", "user_permissions")
        return fields
