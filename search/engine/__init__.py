"""The Elasticsearch / OpenSearch search backend: one index per tenant behind an
alias, fed from the outbox; the JQL AST compiled to the query DSL (compile_dsl)."""
