from django.apps import AppConfig


class SearchConfig(AppConfig):
    """Tenant schema: JQL parsing and compiling, search backends, saved filters."""

    name = "search"
    verbose_name = "Search"

    def ready(self) -> None:
        from search.engine import feed  # noqa: F401  (registers the indexing consumers)
