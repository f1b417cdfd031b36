"""Database schema for the SQL tool: introspection, rendering for the prompt, relevance.

`introspect` reads tables, columns, primary keys and foreign keys through SQLAlchemy's
inspector, except on DuckDB, whose SQLAlchemy dialect (duckdb-engine 0.17 on SQLAlchemy 2.1)
fails on PostgreSQL catalog queries DuckDB does not implement; there the `duckdb_columns()` and
`duckdb_constraints()` table functions are read directly.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from agentlib import ConfigurationError

__all__ = [
    "ColumnInfo",
    "ForeignKeyInfo",
    "TableInfo",
    "introspect",
    "relevant_tables",
    "render_schema",
    "value_types",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class ColumnInfo:
    """One column of a table."""

    name: str
    """The column name as the database spells it."""
    type: str
    """The declared type, as SQL text (`INTEGER`, `VARCHAR(60)`, `NUMERIC(10, 2)`)."""
    nullable: bool = True
    """Whether NULL is allowed."""
    primary_key: bool = False
    """Whether the column is part of the primary key."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ForeignKeyInfo:
    """A foreign key: `columns` of this table refer to `referred_columns` of `referred_table`."""

    columns: tuple[str, ...]
    """The referring columns, in this table."""
    referred_table: str
    """The table referred to."""
    referred_columns: tuple[str, ...]
    """The referred columns, in the same order as `columns`."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TableInfo:
    """A table (or view) with its columns and foreign keys."""

    name: str
    """The table name."""
    columns: tuple[ColumnInfo, ...]
    """The columns, in declaration order."""
    foreign_keys: tuple[ForeignKeyInfo, ...] = field(default=())
    """The foreign keys from this table to others."""
    is_view: bool = False
    """Whether this is a view rather than a table."""

    @property
    def column_names(self) -> list[str]:
        """The column names, in declaration order."""
        return [column.name for column in self.columns]


def _type_text(value: Any) -> str:
    try:
        return str(value)
    except Exception:  # some dialect types cannot render without a dialect
        return type(value).__name__.upper()


def _inspect_generic(engine: sa.Engine, schema: str | None) -> dict[str, TableInfo]:
    inspector = sa.inspect(engine)
    names = [(name, False) for name in inspector.get_table_names(schema=schema)]
    names += [(name, True) for name in inspector.get_view_names(schema=schema)]
    tables: dict[str, TableInfo] = {}
    for name, is_view in names:
        primary = set(
            (inspector.get_pk_constraint(name, schema=schema) or {}).get("constrained_columns")
            or ()
        )
        columns = tuple(
            ColumnInfo(
                name=column["name"],
                type=_type_text(column["type"]),
                nullable=bool(column.get("nullable", True)),
                primary_key=column["name"] in primary,
            )
            for column in inspector.get_columns(name, schema=schema)
        )
        foreign_keys = tuple(
            ForeignKeyInfo(
                columns=tuple(key["constrained_columns"]),
                referred_table=key["referred_table"],
                referred_columns=tuple(key["referred_columns"]),
            )
            for key in ([] if is_view else inspector.get_foreign_keys(name, schema=schema))
            if key.get("referred_schema") in (None, schema)
        )
        tables[name] = TableInfo(
            name=name, columns=columns, foreign_keys=foreign_keys, is_view=is_view
        )
    return tables


_DUCKDB_COLUMNS = """
SELECT c.table_name, c.column_name, c.data_type, c.is_nullable, t.table_type
FROM duckdb_columns() AS c
JOIN information_schema.tables AS t
  ON t.table_schema = c.schema_name AND t.table_name = c.table_name
 AND t.table_catalog = c.database_name
WHERE c.schema_name = ? AND c.database_name = current_database()
ORDER BY c.table_name, c.column_index
"""
_DUCKDB_CONSTRAINTS = """
SELECT table_name, constraint_type, constraint_column_names, referenced_table,
       referenced_column_names
FROM duckdb_constraints()
WHERE schema_name = ? AND database_name = current_database()
  AND constraint_type IN ('PRIMARY KEY', 'FOREIGN KEY')
ORDER BY table_name, constraint_index
"""


def _inspect_duckdb(engine: sa.Engine, schema: str | None) -> dict[str, TableInfo]:
    schema = schema or "main"
    with engine.connect() as connection:
        column_rows = connection.exec_driver_sql(_DUCKDB_COLUMNS, (schema,)).all()
        constraint_rows = connection.exec_driver_sql(_DUCKDB_CONSTRAINTS, (schema,)).all()
    primary: dict[str, set[str]] = {}
    foreign: dict[str, list[ForeignKeyInfo]] = {}
    for table, kind, columns, referred_table, referred_columns in constraint_rows:
        if kind == "PRIMARY KEY":
            primary.setdefault(table, set()).update(columns)
        else:
            foreign.setdefault(table, []).append(
                ForeignKeyInfo(
                    columns=tuple(columns),
                    referred_table=referred_table,
                    referred_columns=tuple(referred_columns),
                )
            )
    grouped: dict[str, list[ColumnInfo]] = {}
    views: set[str] = set()
    for table, column, data_type, nullable, table_type in column_rows:
        if table_type == "VIEW":
            views.add(table)
        grouped.setdefault(table, []).append(
            ColumnInfo(
                name=column,
                type=data_type,
                nullable=bool(nullable),
                primary_key=column in primary.get(table, set()),
            )
        )
    return {
        table: TableInfo(
            name=table,
            columns=tuple(columns),
            foreign_keys=tuple(foreign.get(table, ())),
            is_view=table in views,
        )
        for table, columns in grouped.items()
    }


def introspect(
    engine: sa.Engine, *, include_tables: Iterable[str] | None = None, schema: str | None = None
) -> dict[str, TableInfo]:
    """Read the tables of `engine`'s database (or of `schema` in it), sorted by name.

    Foreign keys to tables left out by `include_tables` are dropped, so a join is only ever
    offered between tables the model can see.

    Raises:
        ConfigurationError: `include_tables` names a table the database does not have.
    """
    if engine.dialect.name == "duckdb":
        tables = _inspect_duckdb(engine, schema)
    else:
        tables = _inspect_generic(engine, schema)
    if include_tables is not None:
        wanted = list(include_tables)
        missing = [name for name in wanted if name not in tables]
        if missing:
            raise ConfigurationError(
                f"include_tables names tables the database does not have: {', '.join(missing)}; "
                f"known tables: {', '.join(sorted(tables))}"
            )
        tables = {name: tables[name] for name in wanted}
    kept = set(tables)
    return {
        name: TableInfo(
            name=info.name,
            columns=info.columns,
            foreign_keys=tuple(k for k in info.foreign_keys if k.referred_table in kept),
            is_view=info.is_view,
        )
        for name, info in sorted(tables.items())
    }


# The schema's own value types (enums, domains, ranges, extension base types) and their arrays;
# never a table's row type, a composite type or an array of one: a cast to those would tell
# whether a table exists.
_POSTGRES_VALUE_TYPES = """
SELECT t.typname FROM pg_catalog.pg_type AS t
JOIN pg_catalog.pg_namespace AS n ON n.oid = t.typnamespace
LEFT JOIN pg_catalog.pg_type AS element ON element.oid = t.typelem
WHERE n.nspname = COALESCE(:schema, current_schema())
  AND t.typrelid = 0 AND t.typtype IN ('b', 'd', 'e', 'r', 'm')
  AND (element.oid IS NULL OR element.typrelid = 0)
"""


def value_types(engine: sa.Engine, schema: str | None = None) -> frozenset[str]:
    """The user-defined value types a PostgreSQL query may cast to, lower case; else none."""
    if engine.dialect.name != "postgresql":
        return frozenset()
    with engine.connect() as connection:
        rows = connection.execute(sa.text(_POSTGRES_VALUE_TYPES), {"schema": schema})
        return frozenset(str(row[0]).lower() for row in rows)


def _shorten(value: object, width: int = 40) -> str:
    text = "NULL" if value is None else str(value)
    text = text.replace("\n", " ")
    return text if len(text) <= width else text[: width - 1] + "…"


def render_table(info: TableInfo, samples: Sequence[Sequence[object]] = ()) -> str:
    """Describe one table as compact text: columns with types and keys, then sample rows."""
    kind = "view" if info.is_view else "table"
    lines = [f"{kind} {info.name}("]
    for column in info.columns:
        flags = []
        if column.primary_key:
            flags.append("primary key")
        if not column.nullable and not column.primary_key:
            flags.append("not null")
        for key in info.foreign_keys:
            if column.name in key.columns:
                referred = key.referred_columns[key.columns.index(column.name)]
                flags.append(f"references {key.referred_table}.{referred}")
        suffix = f" -- {', '.join(flags)}" if flags else ""
        lines.append(f"  {column.name} {column.type}{suffix}")
    lines.append(")")
    if samples:
        lines.append(f"sample rows ({' | '.join(info.column_names)}):")
        lines.extend("  " + " | ".join(_shorten(value) for value in row) for row in samples)
    return "\n".join(lines)


def render_schema(tables: Mapping[str, TableInfo]) -> str:
    """Describe several tables for a prompt, one block each."""
    return "\n\n".join(render_table(info) for info in tables.values())


_WORD = re.compile(r"[a-z0-9]+")


def _stems(text: str) -> set[str]:
    """Lower-case words of `text` (split on `_` and case changes), each also without a plural."""
    spaced = re.sub(r"([a-z])([A-Z])", r"\1 \2", text).lower()
    stems: set[str] = set()
    for word in _WORD.findall(spaced):
        stems.add(word)
        for suffix in ("ies", "es", "s"):
            if word.endswith(suffix) and len(word) > len(suffix) + 2:
                stems.add(word[: -len(suffix)] + ("y" if suffix == "ies" else ""))
                break
    return stems


def relevant_tables(
    tables: Mapping[str, TableInfo], question: str, *, limit: int
) -> dict[str, TableInfo]:
    """Keep the `limit` tables that share the most words with `question`, plus link tables.

    A table scores 3 for each question word in its name and 1 for each in its column names.
    The best-scoring tables are kept (ties by name); then tables whose foreign keys connect two
    kept tables are added, so joins through a link table (`invoice_lines` between `invoices`
    and `tracks`) stay possible. With `limit` tables or fewer, all are kept.
    """
    if len(tables) <= limit:
        return dict(tables)
    words = _stems(question)

    def score(info: TableInfo) -> int:
        name_hits = len(words & _stems(info.name))
        column_hits = sum(len(words & _stems(name)) for name in info.column_names)
        return 3 * name_hits + column_hits

    ranked = sorted(tables.values(), key=lambda info: (-score(info), info.name))
    kept = {info.name for info in ranked[:limit]}
    for info in ranked[limit:]:
        referred = {key.referred_table for key in info.foreign_keys} & kept
        if len(referred) >= 2:
            kept.add(info.name)
    return {name: info for name, info in tables.items() if name in kept}
