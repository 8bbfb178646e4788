"""The bare BASE_DOMAIN: signup and the public API, and the operators' console."""

from django.contrib import admin
from django.urls import path

from saas.api import public_api

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", public_api.urls),
]

handler400 = "saas.views.bad_request"
handler403 = "saas.views.permission_denied"
handler404 = "saas.views.not_found"
handler500 = "saas.views.server_error"
