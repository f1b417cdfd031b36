"""The SQL validator: one read-only SELECT over known tables and columns, with a LIMIT.

`validate_sql` parses the query with sqlglot in the database's dialect and refuses, with a
message the model can act on: more or fewer than one statement; anything but SELECT (WITH …
SELECT and set operations included); data-modifying CTEs, SELECT INTO, row locks; ATTACH,
PRAGMA, COPY, CALL, SET and every other command; functions outside an allow-list (so file,
network, sleep and server-administration functions cannot run); table functions; tables outside
the introspected schema; columns that do not exist; bind parameters. It returns the query
regenerated from the checked syntax tree with a LIMIT of at most `row_limit`: what runs is what
was checked, comments and all other text dropped.

This is one of two layers. The connection itself is read-only too (see `_connection.py`), so
a query the parser misreads still cannot write.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping

import sqlglot
from sqlglot import exp
from sqlglot.errors import OptimizeError, ParseError, SqlglotError
from sqlglot.optimizer.qualify import qualify

from agentlib import ToolError

from ._schema import TableInfo

__all__ = ["ALLOWED_FUNCTIONS", "SQLGLOT_DIALECTS", "validate_sql"]

SQLGLOT_DIALECTS = {"sqlite": "sqlite", "postgresql": "postgres", "duckdb": "duckdb"}
"""SQLAlchemy dialect name → sqlglot dialect name, for the supported databases."""

# Names as sqlglot knows them: the canonical name of a parsed function class (`sql_name()`,
# e.g. STR_POSITION for instr/strpos) or, for functions sqlglot does not model, the name as
# written. Pure computations only: nothing reads files, sleeps, touches sequences, settings,
# other sessions or the network.
_FUNCTION_GROUPS = (
    # predicates sqlglot models as functions
    "and or xor not exists in between is any all",
    # aggregates
    "count count_if sum avg min max total group_concat string_agg array_agg listagg median "
    "quantile quantile_cont quantile_disc percentile_cont percentile_disc mode stddev "
    "stddev_pop stddev_samp variance var_pop var_samp corr covar_pop covar_samp bool_and "
    "bool_or logical_and logical_or every any_value first last arg_max arg_min "
    "approx_distinct approx_count_distinct",
    # window functions
    "row_number rank dense_rank ntile lag lead first_value last_value nth_value percent_rank "
    "cume_dist",
    # numbers
    "abs round ceil floor sqrt pow power exp ln log log2 log10 sign mod div pi cbrt trunc sin "
    "cos tan asin acos atan atan2 degrees radians greatest least safe_divide",
    # conditionals and casts
    "coalesce nullif ifnull nvl if case cast try_cast typeof iif",
    # strings
    "lower upper length char_length character_length octet_length bit_length substring substr "
    "left right trim ltrim rtrim replace concat concat_ws lpad rpad repeat reverse initcap "
    "str_position instr strpos position split_part split string_split starts_with ends_with "
    "contains like ilike regexp_like regexp_matches regexp_replace regexp_extract "
    "regexp_substr format printf to_char to_number hex unhex md5 chr ascii unicode char quote "
    "array_to_string array_length array_size unnest",
    # dates and times
    "date datetime time julianday strftime strptime time_to_str str_to_time str_to_date "
    "ts_or_ds_to_timestamp ts_or_ds_to_date ts_or_ds_add timestamp_trunc date_trunc datetrunc "
    "date_part datepart extract date_add date_sub date_diff datediff timestamp_diff age "
    "make_date make_timestamp to_date to_timestamp current_date current_time "
    "current_timestamp now year month day dayofweek dayofyear dayofmonth week quarter hour "
    "minute second epoch unix_to_time time_to_unix str_to_unix last_day date_from_parts "
    "timestamp_from_parts monthname dayname",
    # JSON and nested values
    "json_extract json_extract_scalar json_extract_path json_extract_path_text "
    "json_array_length json_type json_valid jsonb_extract_path jsonb_extract_path_text "
    "json_object json_array json_group_array json_group_object json_build_object "
    "struct_extract list_extract array list_value generate_date_array",
)
ALLOWED_FUNCTIONS = frozenset(name for group in _FUNCTION_GROUPS for name in group.split())
"""Functions a query may call (lower-case sqlglot names)."""

_FORBIDDEN_NAMES = (
    "Insert Update Delete Merge Create Drop Alter TruncateTable Command Pragma Set SetItem Copy "
    "Attach Detach Into Lock Use Transaction Commit Rollback Grant Revoke LoadData Install "
    "Describe Show Kill Analyze Cache Uncache Refresh Summarize Pivot Export Comment"
)
_FORBIDDEN_NODES: tuple[type[exp.Expr], ...] = tuple(
    klass
    for klass in (getattr(exp, name, None) for name in _FORBIDDEN_NAMES.split())
    if isinstance(klass, type)
)
_QUERY_ROOTS = (exp.Select, exp.SetOperation, exp.Subquery)


def _statement_name(node: exp.Expr) -> str:
    if isinstance(node, exp.Command):
        return str(node.this).upper()
    return node.key.upper()


def _parse_one(sql: str, dialect: str) -> exp.Expr:
    if not sql.strip():
        raise ToolError("the query is empty: send one SELECT statement")
    try:
        statements = [s for s in sqlglot.parse(sql, read=dialect) if s is not None]
    except ParseError as exc:
        first = exc.errors[0] if exc.errors else {}
        where = f" at line {first.get('line')}, column {first.get('col')}" if first else ""
        detail = first.get("description") or str(exc).splitlines()[0]
        raise ToolError(
            f"the query is not valid {dialect} SQL{where}: {detail}; fix the syntax and retry"
        ) from exc
    except SqlglotError as exc:
        raise ToolError(f"the query is not valid {dialect} SQL: {exc}") from exc
    if len(statements) != 1:
        raise ToolError(
            f"send exactly one statement; got {len(statements)}: remove the extra statements "
            "(and any ';' between them)"
        )
    return statements[0]


def _check_statement(tree: exp.Expr) -> None:
    if not isinstance(tree, _QUERY_ROOTS):
        raise ToolError(
            f"only SELECT queries are allowed (WITH … SELECT too); got {_statement_name(tree)}. "
            "The database is read-only: rewrite the request as one SELECT"
        )
    for node in tree.walk():
        if isinstance(node, _FORBIDDEN_NODES):
            what = "SELECT … INTO" if isinstance(node, exp.Into) else _statement_name(node)
            if isinstance(node, exp.Lock):
                what = "row locking (FOR UPDATE/FOR SHARE)"
            raise ToolError(
                f"{what} is not allowed: only plain read-only SELECT queries can run; "
                "remove it and send a SELECT"
            )
        if isinstance(node, (exp.Placeholder, exp.Parameter)):
            raise ToolError(
                f"bind parameters ({node.sql()}) are not supported: write the literal values "
                "into the query"
            )


def _function_name(node: exp.Func) -> str:
    if isinstance(node, exp.Anonymous):
        return str(node.name).lower()
    return node.sql_name().lower()


def _check_functions(tree: exp.Expr) -> None:
    for node in tree.find_all(exp.Func):
        name = _function_name(node)
        if isinstance(node.parent, exp.Table) and node.arg_key == "this":
            raise ToolError(
                f"table functions ({name}(…) in FROM) are not allowed: select from the "
                "database's tables"
            )
        if name not in ALLOWED_FUNCTIONS:
            raise ToolError(
                f"the function {name}() is not allowed: only computations on the query's "
                "data can run (aggregates, window, string, number and date functions); "
                "rewrite without it"
            )


def _resolve_tables(
    tree: exp.Expr, tables: Mapping[str, TableInfo], default_schemas: frozenset[str]
) -> None:
    cte_names = {str(cte.alias_or_name).lower() for cte in tree.find_all(exp.CTE)}
    by_lower = {name.lower(): name for name in tables}
    for table in tree.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier):
            continue  # a table function, refused by _check_functions
        name = table.name
        qualifier = ".".join(part for part in (table.catalog, table.db) if part)
        if qualifier and (table.catalog or table.db.lower() not in default_schemas):
            raise ToolError(
                f"the table {qualifier}.{name} is outside the connected schema; only these "
                f"tables can be queried: {', '.join(tables)}"
            )
        if not qualifier and name.lower() in cte_names:
            continue
        if name not in tables and name.lower() not in by_lower:
            close = difflib.get_close_matches(name, list(tables), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ToolError(f"unknown table {name!r}; {hint}the tables are: {', '.join(tables)}")


def _check_columns(tree: exp.Expr, tables: Mapping[str, TableInfo], dialect: str) -> None:
    schema: dict[str, object] = {
        name: {column: "TEXT" for column in info.column_names} for name, info in tables.items()
    }
    try:
        qualify(
            tree.copy(),
            schema=schema,
            dialect=dialect,
            validate_qualify_columns=True,
            quote_identifiers=False,
            identify=False,
        )
    except OptimizeError as exc:
        message = str(exc).split(". Line:")[0]
        used = sorted({t.name for t in tree.find_all(exp.Table) if t.name in tables})
        columns = "; ".join(f"{name}: {', '.join(tables[name].column_names)}" for name in used)
        hint = f" The columns are: {columns}." if columns else ""
        raise ToolError(f"{message}.{hint} Use only these columns.") from exc
    except SqlglotError as exc:
        raise ToolError(f"cannot resolve the query's columns: {exc}") from exc


def _limit_value(node: exp.Expr) -> int | None:
    limit = node.args.get("limit")
    if isinstance(limit, exp.Limit) and isinstance(limit.expression, exp.Literal):
        text = limit.expression.this
        if not limit.expression.is_string and str(text).isdigit():
            return int(text)
    return None


def _enforce_limit(tree: exp.Expr, row_limit: int) -> exp.Expr:
    while isinstance(tree, exp.Subquery) and not tree.args.get("limit"):
        tree = tree.this
    fetch = tree.args.get("fetch")
    if isinstance(fetch, exp.Fetch):
        count = fetch.args.get("count")
        wanted = int(count.this) if isinstance(count, exp.Literal) and count.is_int else None
        fetch.pop()
        if wanted is not None:
            tree.set("limit", exp.Limit(expression=exp.Literal.number(min(wanted, row_limit))))
    current = _limit_value(tree)
    if current is None or current > row_limit:
        assert isinstance(tree, exp.Query)
        limited: exp.Expr = tree.limit(row_limit, copy=False)
        return limited
    return tree


def validate_sql(
    sql: str,
    *,
    dialect: str,
    tables: Mapping[str, TableInfo],
    row_limit: int,
    default_schemas: frozenset[str] = frozenset({"main", "public"}),
) -> str:
    """Check that `sql` is one read-only SELECT over `tables` and return it with a LIMIT.

    Args:
        sql: The query, in `dialect`.
        dialect: The sqlglot dialect (`sqlite`, `postgres`, `duckdb`).
        tables: The tables the query may read.
        row_limit: The largest LIMIT allowed; a missing or larger LIMIT is replaced by it.
        default_schemas: Schema names a table may be qualified with.

    Returns:
        The query regenerated from its syntax tree, in `dialect`, with the LIMIT enforced.

    Raises:
        ToolError: The query is refused; the message says what to change.
    """
    tree = _parse_one(sql, dialect)
    _check_statement(tree)
    _check_functions(tree)
    _resolve_tables(tree, tables, default_schemas)
    _check_columns(tree, tables, dialect)
    return _enforce_limit(tree, row_limit).sql(dialect=dialect)
