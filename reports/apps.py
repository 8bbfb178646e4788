from django.apps import AppConfig


class ReportsConfig(AppConfig):
    """Tenant schema: agile and flow reports, daily snapshots, dashboards."""

    name = "reports"
    verbose_name = "Reports and dashboards"
