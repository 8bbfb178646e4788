"""Tenant schemas are cloned from a pre-migrated template, not migrated one by one.

The clone is rebuilt from the template's catalog in one round trip: tables (`LIKE ...
INCLUDING` defaults, generated columns, storage, compression, comments), their rows,
identity columns with their sequences' names, options and positions, then constraints,
indexes, functions and triggers under their original names (later migrations drop
them by name). Reading the catalog takes ~50 ms; the rest is the server creating a
couple of hundred relations (0.4-0.9 s on the 2-core development machine, loaded).

django-tenants' `clone_schema()` plpgsql (thousands of lines, re-created on every call,
serialising concurrent signups on its `DROP TYPE ... CASCADE`) took 6 to 38 s per
tenant there, growing with every schema, and renamed multi-column unique constraints
and their indexes. It remains the fallback, installed once, for templates holding
objects the catalog clone does not copy (views, standalone sequences, types, policies,
privileges...). `schema_fingerprint` tells whether a clone equals its template.
"""

import hashlib
import logging
import re
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import connection
from django_tenants.utils import schema_exists

from saas.tenancy import public_schema_set

logger = logging.getLogger(__name__)


def template_schema_name() -> str:
    return settings.TENANT_TEMPLATE_SCHEMA


def template_schema_sync(*, verbosity: int = 0) -> None:
    """Create the template schema if needed and bring it to the latest migrations."""
    name = template_schema_name()
    if not schema_exists(name):
        with connection.cursor() as cursor:
            cursor.execute(f'CREATE SCHEMA "{name}"')
    call_command(
        "migrate_schemas", schema_name=name, tenant=True, interactive=False, verbosity=verbosity
    )
    public_schema_set()


def schema_clone_from_template(*, schema_name: str) -> None:
    """Copy the template's tables, sequences, constraints, functions, triggers and seed
    rows (including its `django_migrations`) into a new schema, inside the caller's
    transaction."""
    template = template_schema_name()
    public_schema_set()
    if schema_exists(schema_name, case_sensitive=False):
        raise ValidationError("New schema name already exists")
    plan = clone_plan_build(source=template)
    if plan.unsupported:
        logger.warning(
            "template %s holds %s: cloning with django-tenants' clone_schema()",
            template,
            ", ".join(plan.unsupported),
        )
        clone_function_ensure()
        with connection.cursor() as cursor:
            cursor.execute("SELECT public.clone_schema(%s, %s, 'DATA')", [template, schema_name])
        return
    with connection.cursor() as cursor:
        cursor.execute(plan.sql(target=schema_name))


# -- the catalog clone -----------------------------------------------------------------

# Every query starts from the schema's own objects, found through their dependency on the
# namespace (an index lookup): filtering pg_class by namespace would scan a catalog that
# grows by a few hundred rows with every tenant.
_OBJECTS = """
SELECT d.classid::regclass::text, d.objid FROM pg_depend d
 WHERE d.refclassid = 'pg_namespace'::regclass AND d.refobjid = %(ns)s
"""

_UNSUPPORTED = """
SELECT 'relation kind ' || c.relkind::text || ' (' || c.relname || ')' FROM pg_class c
 WHERE c.oid = ANY(%(rels)s::oid[]) AND c.relkind NOT IN ('r', 'S')
UNION ALL
SELECT 'standalone or serial sequence ' || c.relname FROM pg_class c
 WHERE c.oid = ANY(%(rels)s::oid[]) AND c.relkind = 'S' AND NOT EXISTS (
   SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
      AND d.deptype = 'i')
UNION ALL
SELECT 'table option on ' || c.relname FROM pg_class c
 WHERE c.oid = ANY(%(tables)s::oid[]) AND (
   c.relacl IS NOT NULL OR c.reloptions IS NOT NULL OR c.relrowsecurity
   OR c.relpersistence <> 'p' OR c.relispartition OR c.relhassubclass
   OR EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = c.oid))
UNION ALL
SELECT 'routine kind ' || p.prokind::text || ' (' || p.proname || ')' FROM pg_proc p
 WHERE p.oid = ANY(%(procs)s::oid[]) AND (p.prokind NOT IN ('f', 'p') OR p.proacl IS NOT NULL)
UNION ALL
SELECT 'policy ' || pol.polname FROM pg_policy pol WHERE pol.polrelid = ANY(%(tables)s::oid[])
UNION ALL
SELECT 'rule ' || r.rulename FROM pg_rewrite r WHERE r.ev_class = ANY(%(tables)s::oid[])
UNION ALL
SELECT 'extended statistics ' || s.stxname FROM pg_statistic_ext s
 WHERE s.stxrelid = ANY(%(tables)s::oid[])
UNION ALL
SELECT 'constraint trigger or disabled trigger ' || tg.tgname
  FROM unnest(%(tables)s::oid[]) AS t(oid) JOIN pg_trigger tg ON tg.tgrelid = t.oid
 WHERE NOT tg.tgisinternal AND (tg.tgconstraint <> 0 OR tg.tgenabled <> 'O')
UNION ALL
SELECT 'default or generated expression naming the schema on ' || ad.adrelid::regclass::text
  FROM pg_attrdef ad
 WHERE ad.adrelid = ANY(%(tables)s::oid[]) AND pg_get_expr(ad.adbin, ad.adrelid) ~ %(schema_ref)s
UNION ALL
SELECT 'column privileges on ' || a.attrelid::regclass::text FROM pg_attribute a
 WHERE a.attrelid = ANY(%(tables)s::oid[]) AND a.attacl IS NOT NULL
UNION ALL
SELECT 'default privileges' FROM pg_default_acl WHERE defaclnamespace = %(ns)s
"""

_TABLES = """
SELECT c.relname, obj_description(c.oid, 'pg_class'),
       array_agg(quote_ident(a.attname) ORDER BY a.attnum)
         FILTER (WHERE a.attgenerated = '')
  FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
 WHERE c.oid = ANY(%(tables)s::oid[]) AND a.attnum > 0 AND NOT a.attisdropped
 GROUP BY c.oid, c.relname ORDER BY c.relname
"""

_IDENTITY_SEQUENCES = """
SELECT tbl.relname, a.attname, seq.relname, a.attidentity,
       pg_sequence_last_value(seq.oid) IS NOT NULL,
       sq.seqstart, sq.seqincrement, sq.seqmin, sq.seqmax, sq.seqcache, sq.seqcycle
  FROM pg_depend d
  JOIN pg_class seq ON seq.oid = d.objid AND seq.relkind = 'S'
  JOIN pg_sequence sq ON sq.seqrelid = seq.oid
  JOIN pg_class tbl ON tbl.oid = d.refobjid
  JOIN pg_attribute a ON a.attrelid = tbl.oid AND a.attnum = d.refobjsubid
 WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = ANY(%(tables)s::oid[])
   AND d.classid = 'pg_class'::regclass AND d.deptype = 'i'
 ORDER BY 1, 2
"""

# Primary keys and unique/exclusion constraints first (foreign keys need them).
_CONSTRAINTS = """
SELECT c.relname, co.conname, pg_get_constraintdef(co.oid)
  FROM pg_constraint co JOIN pg_class c ON c.oid = co.conrelid
 WHERE co.conrelid = ANY(%(tables)s::oid[]) AND co.contype IN ('p', 'u', 'x', 'c', 'f')
 ORDER BY array_position(ARRAY['p', 'u', 'x', 'c', 'f'], co.contype::text),
          c.relname, co.conname
"""

_INDEXES = """
SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i
 WHERE i.indrelid = ANY(%(tables)s::oid[]) AND NOT EXISTS (
   SELECT 1 FROM pg_constraint co WHERE co.conindid = i.indexrelid
      AND co.conrelid = i.indrelid AND co.contype IN ('p', 'u', 'x'))
 ORDER BY 1
"""

_FUNCTIONS = """
SELECT pg_get_functiondef(p.oid) FROM pg_proc p
 WHERE p.oid = ANY(%(procs)s::oid[]) ORDER BY p.proname, p.oid
"""

_TRIGGERS = """
SELECT pg_get_triggerdef(tg.oid)
  FROM unnest(%(tables)s::oid[]) AS t(oid) JOIN pg_trigger tg ON tg.tgrelid = t.oid
 WHERE NOT tg.tgisinternal ORDER BY tg.tgrelid::regclass::text, tg.tgname
"""


def _catalog_params(cursor: Any, schema: str) -> dict[str, Any] | None:
    """The schema's oid, its tables, relations and routines, and what else it holds."""
    cursor.execute("SELECT oid FROM pg_namespace WHERE nspname = %s", [schema])
    row = cursor.fetchone()
    if row is None:
        return None
    ns = row[0]
    cursor.execute(_OBJECTS, {"ns": ns})
    objects = cursor.fetchall()
    rels = [oid for kind, oid in objects if kind == "pg_class"]
    cursor.execute("SELECT oid FROM pg_class WHERE oid = ANY(%s::oid[]) AND relkind = 'r'", [rels])
    return {
        "ns": ns,
        "rels": rels,
        "tables": [r[0] for r in cursor.fetchall()],
        "procs": [oid for kind, oid in objects if kind == "pg_proc"],
        "others": sorted({kind for kind, _oid in objects if kind not in ("pg_class", "pg_proc")}),
        "schema_ref": rf'(^|[^\w$"]){re.escape(schema)}\.|"{re.escape(schema)}"\.',
    }


_TARGET = "\x00target\x00"  # stands for the quoted new schema name in the plan


@dataclass
class ClonePlan:
    """The statements that rebuild `source` under another name (built from its catalog)."""

    source: str
    unsupported: list[str] = field(default_factory=list)
    statements: list[str] = field(default_factory=list)

    def sql(self, *, target: str) -> str:
        quoted = connection.ops.quote_name(target)
        return ";\n".join(s.replace(_TARGET, quoted) for s in self.statements) + ";"


def _literal(cursor: Any, value: str) -> str:
    """`value` as an SQL string literal, quoted by the server."""
    cursor.execute("SELECT quote_literal(%s)", [value])
    return str(cursor.fetchone()[0])


def _schema_reference(schema: str) -> re.Pattern[str]:
    """`schema.` as a qualifier, bare or quoted, not as the tail of another name."""
    return re.compile(rf'(?<![\w$"]){re.escape(schema)}\.|"{re.escape(schema)}"\.')


def clone_plan_build(*, source: str) -> ClonePlan:
    qn = connection.ops.quote_name
    plan = ClonePlan(source=source)
    reference = _schema_reference(source)

    def retarget(definition: str) -> str:
        return reference.sub(lambda _m: f"{_TARGET}.", definition)

    with connection.cursor() as cursor:
        params = _catalog_params(cursor, source)
        if params is None:
            raise ValidationError(f"Template schema {source!r} does not exist")
        plan.unsupported = [f"objects in {kind}" for kind in params["others"]]
        cursor.execute(_UNSUPPORTED, params)
        plan.unsupported += [r[0] for r in cursor.fetchall()]
        if plan.unsupported:
            return plan

        src = qn(source)
        plan.statements.append(f"CREATE SCHEMA {_TARGET}")
        # Function bodies may name tables that do not exist yet.
        plan.statements.append("SET LOCAL check_function_bodies = off")
        cursor.execute(_FUNCTIONS, params)
        plan.statements += [retarget(r[0]).strip().rstrip(";") for r in cursor.fetchall()]
        cursor.execute(_TABLES, params)
        tables = cursor.fetchall()
        for table, comment, _columns in tables:
            plan.statements.append(
                f"CREATE TABLE {_TARGET}.{qn(table)} (LIKE {src}.{qn(table)} INCLUDING DEFAULTS"
                " INCLUDING GENERATED INCLUDING STORAGE INCLUDING COMPRESSION"
                " INCLUDING COMMENTS)"
            )
            if comment is not None:
                plan.statements.append(
                    f"COMMENT ON TABLE {_TARGET}.{qn(table)} IS {_literal(cursor, comment)}"
                )
        # Rows before constraints and indexes: nothing to check twice, no ordering by FK.
        for table, _comment, columns in tables:
            column_list = ", ".join(columns)
            plan.statements.append(
                f"INSERT INTO {_TARGET}.{qn(table)} ({column_list})"  # noqa: S608
                f" SELECT {column_list} FROM {src}.{qn(table)}"
            )
        # Identity columns with their sequences' names, options and positions (the type is
        # the column's, as in the template); only sequences the template used need moving.
        cursor.execute(_IDENTITY_SEQUENCES, params)
        for table, column, seq, kind, used, *options in cursor.fetchall():
            start, step, low, high, cache = (int(v) for v in options[:5])
            generated = "ALWAYS" if kind == "a" else "BY DEFAULT"
            plan.statements.append(
                f"ALTER TABLE {_TARGET}.{qn(table)} ALTER COLUMN {qn(column)}"
                f" ADD GENERATED {generated} AS IDENTITY (SEQUENCE NAME {_TARGET}.{qn(seq)}"
                f" START WITH {start} INCREMENT BY {step} MINVALUE {low} MAXVALUE {high}"
                f" CACHE {cache} {'CYCLE' if options[5] else 'NO CYCLE'})"
            )
            if used:
                plan.statements.append(
                    f"SELECT setval('{_TARGET}.{qn(seq)}', s.last_value, s.is_called)"  # noqa: S608
                    f" FROM {src}.{qn(seq)} s"
                )
        cursor.execute(_CONSTRAINTS, params)
        plan.statements += [
            f"ALTER TABLE {_TARGET}.{qn(table)} ADD CONSTRAINT {qn(name)} {retarget(definition)}"
            for table, name, definition in cursor.fetchall()
        ]
        cursor.execute(_INDEXES, params)
        plan.statements += [retarget(r[0]) for r in cursor.fetchall()]
        cursor.execute(_TRIGGERS, params)
        plan.statements += [retarget(r[0]) for r in cursor.fetchall()]
        plan.statements.append("SET LOCAL check_function_bodies = on")
    return plan


# -- the fallback: django-tenants' clone_schema(), installed once ----------------------


def _clone_function_sql() -> str:
    from django_tenants.clone import CLONE_SCHEMA_FUNCTION

    db_user = settings.DATABASES["default"].get("USER") or "postgres"
    return CLONE_SCHEMA_FUNCTION.format(db_user=db_user)


def clone_function_ensure() -> None:
    """Install django-tenants' clone_schema() unless this version is installed already
    (marked by a comment carrying the hash of its source)."""
    source = _clone_function_sql()
    marker = f"django-tenants clone_schema {hashlib.sha256(source.encode()).hexdigest()[:16]}"
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
            " WHERE n.nspname = 'public' AND p.proname = 'clone_schema'"
            " AND obj_description(p.oid, 'pg_proc') = %s",
            [marker],
        )
        if cursor.fetchone():
            return
        cursor.execute(source)
        cursor.execute(
            "COMMENT ON FUNCTION public.clone_schema(text, text, public.cloneparms[]) IS %s",
            [marker],
        )


# -- verification ------------------------------------------------------------------------

_FINGERPRINT = {
    "columns": """
        SELECT c.relname, row_number() OVER (PARTITION BY c.oid ORDER BY a.attnum), a.attname,
               format_type(a.atttypid, a.atttypmod),
               a.attnotnull, pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated,
               co.collname, col_description(c.oid, a.attnum), obj_description(c.oid, 'pg_class')
          FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
          LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
          LEFT JOIN pg_collation co ON co.oid = a.attcollation
         WHERE c.relnamespace = %(ns)s AND c.relkind = 'r' AND a.attnum > 0
           AND NOT a.attisdropped ORDER BY 1, 2""",
    "constraints": """
        SELECT c.relname, co.conname, co.contype, pg_get_constraintdef(co.oid)
          FROM pg_constraint co JOIN pg_class c ON c.oid = co.conrelid
         WHERE c.relnamespace = %(ns)s ORDER BY 1, 2""",
    "indexes": """
        SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i
          JOIN pg_class c ON c.oid = i.indrelid WHERE c.relnamespace = %(ns)s ORDER BY 1, 2""",
    "triggers": """
        SELECT pg_get_triggerdef(tg.oid) FROM pg_trigger tg JOIN pg_class c ON c.oid = tg.tgrelid
         WHERE c.relnamespace = %(ns)s AND NOT tg.tgisinternal ORDER BY 1""",
    "functions": "SELECT pg_get_functiondef(p.oid) FROM pg_proc p"
    " WHERE p.pronamespace = %(ns)s ORDER BY 1",
    "sequences": """
        SELECT c.relname, s.seqtypid::regtype, s.seqstart, s.seqincrement, s.seqmax, s.seqmin,
               s.seqcache, s.seqcycle
          FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid
         WHERE c.relnamespace = %(ns)s ORDER BY 1""",
}


def schema_fingerprint(schema: str) -> dict[str, list[tuple[object, ...]]]:
    """Everything the clone must preserve, with the schema's own name blanked out: two
    schemas are clones of each other when their fingerprints are equal."""
    reference = _schema_reference(schema)
    qn = connection.ops.quote_name

    def rows_of(cursor: Any, query: str, params: object = None) -> list[tuple[object, ...]]:
        cursor.execute(query, params)
        return [
            tuple(reference.sub("<schema>.", v) if isinstance(v, str) else v for v in row)
            for row in cursor.fetchall()
        ]

    with connection.cursor() as cursor:
        params = _catalog_params(cursor, schema)
        result = {name: rows_of(cursor, query, params) for name, query in _FINGERPRINT.items()}
        # Where each identity sequence stands, and how many rows each table holds.
        positions = []
        for table, column, sequence, *_options in rows_of(cursor, _IDENTITY_SEQUENCES, params):
            relation = f"{qn(schema)}.{qn(str(sequence))}"
            (position,) = rows_of(cursor, "SELECT last_value, is_called FROM " + relation)  # noqa: S608
            positions.append((table, column, sequence, *position))
        counts = []
        for table, *_rest in rows_of(cursor, _TABLES, params):
            relation = f"{qn(schema)}.{qn(str(table))}"
            (count,) = rows_of(cursor, "SELECT count(*) FROM " + relation)  # noqa: S608
            counts.append((table, *count))
        result["sequence_positions"] = positions
        result["rows"] = counts
    return result
