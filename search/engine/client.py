"""One small interface over the two official engine clients.

`opensearch-py` talks to OpenSearch (and osmem in tests); `elasticsearch` 8 talks to
Elasticsearch (it refuses OpenSearch with 406 on its compatibility media type, so both
are needed). Callers only see `SearchEngine`: plain-dict request bodies in, plain
dicts out, version conflicts reported per document instead of raised.
"""

from collections.abc import Iterable, Iterator
from functools import cache
from typing import Any

OPENSEARCH = "opensearch"
ELASTICSEARCH = "elasticsearch"
POSTGRES = "postgres"
ENGINES = (OPENSEARCH, ELASTICSEARCH)


class EngineError(Exception):
    """The engine answered an error that is not a per-document version conflict."""


def _connection_errors() -> tuple[type[BaseException], ...]:
    from elastic_transport import ConnectionError as ElasticConnectionError
    from opensearchpy.exceptions import ConnectionError as OpenSearchConnectionError

    return (ElasticConnectionError, OpenSearchConnectionError, ConnectionError)


# The engine cannot be reached (down, restarting, network): reads fall back to Postgres,
# writes are retried by Celery.
ENGINE_DOWN = _connection_errors()


class SearchEngine:
    """What the search backend needs from an engine; one instance per (kind, url)."""

    kind = ""

    def __init__(self, url: str) -> None:
        self.url = url
        self.client: Any = None
        self.helpers: Any = None

    # indices and aliases -----------------------------------------------------------------

    def index_create(self, *, name: str, body: dict[str, Any]) -> None:
        self.client.indices.create(index=name, body=body)

    def index_delete(self, *, name: str) -> None:
        self.client.indices.delete(index=name, ignore_unavailable=True)

    def index_refresh(self, *, name: str) -> None:
        self.client.indices.refresh(index=name)

    def alias_targets(self, *, alias: str) -> list[str]:
        """The concrete indices behind `alias` (empty when it does not exist)."""
        if not self.client.indices.exists_alias(name=alias):
            return []
        return sorted(self.client.indices.get_alias(name=alias))

    def alias_swap(self, *, alias: str, new: str, old: Iterable[str]) -> None:
        """Point `alias` at `new` and away from `old` in one atomic request."""
        actions: list[dict[str, Any]] = [{"add": {"index": new, "alias": alias}}]
        actions += [{"remove": {"index": name, "alias": alias}} for name in old]
        self.client.indices.update_aliases(body={"actions": actions})

    # documents --------------------------------------------------------------------------

    def bulk(self, actions: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Send `_bulk` actions (helpers format); returns the failed items other than
        version conflicts (409: a newer version is already indexed, which is fine)."""
        if not actions:
            return []
        _, errors = self.helpers.bulk(
            self.client, actions, raise_on_error=False, raise_on_exception=False
        )
        failed = []
        for item in errors:
            result = next(iter(item.values()))
            status = result.get("status")
            if status == 409 or (status == 404 and next(iter(item)) == "delete"):
                continue
            failed.append(item)
        return failed

    def search(self, *, index: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.client.search(index=index, body=body)

    def delete_by_query(self, *, index: str, query: dict[str, Any]) -> None:
        self.client.delete_by_query(
            index=index, body={"query": query}, conflicts="proceed", refresh=True
        )

    def scan_versions(
        self, *, index: str, query: dict[str, Any], batch: int = 1000
    ) -> Iterator[list[tuple[int, int, dict[str, Any]]]]:
        """Batches of (id, version, source of `watcher_ids`) ordered by id, with
        `search_after` (no scroll context to leak)."""
        after: list[Any] | None = None
        while True:
            body: dict[str, Any] = {
                "query": query,
                "size": batch,
                "sort": [{"id": "asc"}],
                "version": True,
                "_source": ["watcher_ids"],
                "track_total_hits": False,
            }
            if after is not None:
                body["search_after"] = after
            hits = self.search(index=index, body=body)["hits"]["hits"]
            if not hits:
                return
            yield [(int(h["_id"]), int(h["_version"]), h.get("_source") or {}) for h in hits]
            after = hits[-1]["sort"]


class OpenSearchEngine(SearchEngine):
    kind = OPENSEARCH

    def __init__(self, url: str) -> None:
        super().__init__(url)
        from opensearchpy import OpenSearch, helpers

        self.client = OpenSearch(hosts=[url], timeout=30, max_retries=2, retry_on_timeout=True)
        self.helpers = helpers


class ElasticsearchEngine(SearchEngine):
    """Elasticsearch 8: the same calls, with the keyword arguments its client wants."""

    kind = ELASTICSEARCH

    def __init__(self, url: str) -> None:
        super().__init__(url)
        from elasticsearch import Elasticsearch, helpers

        self.client = Elasticsearch(url, request_timeout=30, max_retries=2, retry_on_timeout=True)
        self.helpers = helpers

    def index_create(self, *, name: str, body: dict[str, Any]) -> None:
        self.client.indices.create(index=name, **body)

    def alias_swap(self, *, alias: str, new: str, old: Iterable[str]) -> None:
        actions: list[dict[str, Any]] = [{"add": {"index": new, "alias": alias}}]
        actions += [{"remove": {"index": name, "alias": alias}} for name in old]
        self.client.indices.update_aliases(actions=actions)

    def search(self, *, index: str, body: dict[str, Any]) -> dict[str, Any]:
        params = {("from_" if key == "from" else key): value for key, value in body.items()}
        return dict(self.client.search(index=index, **params))

    def delete_by_query(self, *, index: str, query: dict[str, Any]) -> None:
        self.client.delete_by_query(index=index, query=query, conflicts="proceed", refresh=True)


@cache
def search_engine(kind: str, url: str) -> SearchEngine:
    """The client for an engine (one connection pool per process and engine)."""
    if kind == OPENSEARCH:
        return OpenSearchEngine(url)
    if kind == ELASTICSEARCH:
        return ElasticsearchEngine(url)
    raise EngineError(f"Unknown search engine {kind!r}")
