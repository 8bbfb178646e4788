"""A tenant's host: the API for everything the company owns."""

from django.urls import path

from saas.api import tenant_api

urlpatterns = [
    path("api/v1/", tenant_api.urls),
]

handler400 = "saas.views.bad_request"
handler403 = "saas.views.permission_denied"
handler404 = "saas.views.not_found"
handler500 = "saas.views.server_error"
