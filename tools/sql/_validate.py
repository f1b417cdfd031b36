"""The SQL validator: one read-only SELECT over known tables and columns, with a LIMIT.

`validate_sql` parses the query with sqlglot in the database's dialect and refuses, with a
message the model can act on: more or fewer than one statement; anything but SELECT (WITH …
SELECT and set operations included); data-modifying CTEs, SELECT INTO, row locks; ATTACH,
PRAGMA, COPY, CALL, SET and every other command; functions outside an allow-list (so file,
network, sleep, catalog and server-administration functions cannot run); table functions;
casts to catalog-object or user-defined types (PostgreSQL, DuckDB); tables outside the
introspected schema; columns that do not exist; bind parameters. Read-only dialect syntax is
accepted: COLLATE, unnest, DuckDB's COLUMNS(…), and SQLite's double-quoted strings, resolved
as SQLite resolves them (`_sqlite_double_quoted_strings`). It returns the query regenerated
from the checked syntax tree with a LIMIT of at most `row_limit`: what runs is what was
checked, comments and all other text dropped.

This is one of two layers. The connection itself is read-only too (see `_connection.py`), so
a query the parser misreads still cannot write.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping

import sqlglot
from sqlglot import exp
from sqlglot.errors import OptimizeError, ParseError, SqlglotError
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import Scope, ScopeType, traverse_scope

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
    "and or xor not exists in between is any all collate",
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
    "cos tan asin acos atan atan2 degrees radians greatest least safe_divide rand random "
    "width_bucket generate_series exploding_generate_series",
    # conditionals and casts
    "coalesce nullif ifnull nvl if case cast try_cast typeof iif",
    # strings
    "lower upper length char_length character_length octet_length bit_length substring substr "
    "left right trim ltrim rtrim replace concat concat_ws lpad rpad repeat reverse initcap "
    "str_position instr strpos position split_part split string_split starts_with ends_with "
    "contains like ilike regexp_like regexp_matches regexp_replace regexp_extract "
    "regexp_substr format printf to_char to_number hex unhex md5 chr ascii unicode char quote "
    "array_to_string array_length array_size unnest explode columns pad regexp_i_like "
    "string_to_array",
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
    "struct_extract list_extract array list_value generate_date_array struct map to_map",
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


def _check_types(tree: exp.Expr, dialect: str, value_types: frozenset[str]) -> None:
    """Refuse casts, on PostgreSQL, to types that would reveal whether a table exists.

    Every PostgreSQL table is also a type, and `'name'::regclass` resolves a table's name:
    a cast to either would tell whether a table hidden by `include_tables` exists. So the
    object-identifier types are refused, and a type sqlglot does not know is allowed only when
    it is one of the schema's own value types (`value_types`: enums, domains, ranges,
    extension types). SQLite has no type catalog and DuckDB's types are not tables: exempt.
    """
    if dialect != "postgres":
        return
    for node in tree.find_all(exp.ObjectIdentifier, exp.DataType):
        if isinstance(node, exp.ObjectIdentifier):
            raise ToolError(
                f"casts to {node.name.lower()} (a database-object identifier type) are not "
                "allowed: they look up the catalog; compare the data's own values instead"
            )
        if node.this != exp.DataType.Type.USERDEFINED:
            continue
        kind = node.args.get("kind")
        name = kind.name if isinstance(kind, (exp.Identifier, exp.Dot)) else ""
        qualified = isinstance(kind, exp.Dot)
        if qualified or name.lower() not in value_types:
            raise ToolError(
                f"the type {node.sql(dialect=dialect)} is not a built-in type or one of the "
                "schema's own value types: cast only to those (integer, numeric, text, date, "
                "timestamp, boolean, …)"
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


def _source_columns(source: exp.Table | Scope, tables: Mapping[str, TableInfo]) -> set[str]:
    """The lower-case column names a FROM source exposes."""
    if isinstance(source, Scope):
        query = source.expression
        names = source.outer_columns or (
            query.named_selects if isinstance(query, exp.Query) else []
        )
        return {name.lower() for name in names}
    alias = source.args.get("alias")
    if isinstance(alias, exp.TableAlias) and alias.columns:
        return {column.name.lower() for column in alias.columns}
    by_lower = {name.lower(): info for name, info in tables.items()}
    info = tables.get(source.name) or by_lower.get(source.name.lower())
    return {name.lower() for name in _schema_columns(info, "sqlite")} if info else set()


def _visible_names(scope: Scope, tables: Mapping[str, TableInfo], column: exp.Column) -> set[str]:
    """What the unqualified `column` in `scope` can refer to, the way SQLite's resolver looks.

    The scope's FROM sources; its result-column aliases, except from inside the result
    columns themselves (SQLite lets WHERE, GROUP BY, HAVING and ORDER BY name an alias, not
    another result column); then, for a subquery in an expression (a correlated one), the same
    in each enclosing query. A FROM-clause subquery or a CTE sees only itself.
    """
    names: set[str] = set()
    current: Scope | None = scope
    while current is not None:
        for source in current.sources.values():
            if isinstance(source, (exp.Table, Scope)):
                names |= _source_columns(source, tables)
        select = current.expression
        if isinstance(select, exp.Select) and not _inside_result_columns(column, select):
            names |= {
                item.alias.lower() for item in select.expressions if isinstance(item, exp.Alias)
            }
        current = current.parent if current.scope_type == ScopeType.SUBQUERY else None
    return names


def _inside_result_columns(node: exp.Expr, select: exp.Select) -> bool:
    while node.parent is not None and node.parent is not select:
        node = node.parent
    return node.parent is select and node.arg_key == "expressions"


def _sqlite_double_quoted_strings(tree: exp.Expr, tables: Mapping[str, TableInfo]) -> None:
    """Turn double-quoted names that are no column into strings, exactly as SQLite does.

    SQLite reads `"arizona"` as an identifier, and only when no column of that name is in
    scope does it fall back to the string literal 'arizona' (the "double-quoted string
    literal" misfeature, on by default). A qualified name (`t."x"`) never falls back. The
    rewritten tree is what runs, so the query that runs means what was checked.
    """
    seen: set[int] = set()
    for scope in traverse_scope(tree):  # innermost scopes first
        for column in scope.columns:
            if id(column) in seen:
                continue
            seen.add(id(column))
            identifier = column.this
            if column.table or not isinstance(identifier, exp.Identifier):
                continue
            if not identifier.quoted:
                continue
            if identifier.name.lower() not in _visible_names(scope, tables, column):
                column.replace(exp.Literal.string(identifier.name))


_UNRESOLVED = re.compile(r"Column '([^']+)' could not be resolved|Unknown column: (\S+)")


def _double_quote_hint(tree: exp.Expr, message: str, dialect: str) -> str:
    match = _UNRESOLVED.search(message)
    name = (match.group(1) or match.group(2)) if match else None
    quoted = [
        column.name
        for column in tree.find_all(exp.Column)
        if isinstance(column.this, exp.Identifier)
        and column.this.quoted
        and column.name.lower() == (name or "").lower()
    ]
    if not quoted:
        return ""
    name = quoted[0]
    where = "" if dialect == "sqlite" else f" in {dialect}"
    return (
        f" Double quotes mark a column or table name{where}, not a value: to compare with "
        f"the text {name}, write it in single quotes ('{name}')."
    )


def _keep_comma_joins(tree: exp.Expr) -> None:
    """Write `FROM a, b` back as a comma join, not `CROSS JOIN`, for SQLite.

    sqlglot parses SQLite's comma join as a CROSS join, and in SQLite `CROSS JOIN` tells the
    planner not to reorder the tables: regenerated as such, a fast gold query could run its
    tables in a slow order (and pick different rows for bare columns of a GROUP BY). A comma
    join is the only join sqlglot builds with no `pivots` argument.
    """
    for join in tree.find_all(exp.Join):
        bare = not join.args.get("on") and not join.args.get("using")
        if bare and join.kind == "CROSS" and "pivots" not in join.args:
            join.set("kind", None)


# SQLite gives every ordinary table these names for its rowid, unless a column takes them.
_SQLITE_ROWID = ("rowid", "oid", "_rowid_")


def _schema_columns(info: TableInfo, dialect: str) -> list[str]:
    names = info.column_names
    if dialect == "sqlite" and not info.is_view:
        taken = {name.lower() for name in names}
        names = [*names, *(alias for alias in _SQLITE_ROWID if alias not in taken)]
    return names


def _check_columns(tree: exp.Expr, tables: Mapping[str, TableInfo], dialect: str) -> None:
    schema: dict[str, object] = {
        name: {column: "TEXT" for column in _schema_columns(info, dialect)}
        for name, info in tables.items()
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
        quotes = _double_quote_hint(tree, message, dialect)
        raise ToolError(f"{message}.{quotes}{hint} Use only these columns.") from exc
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
    value_types: frozenset[str] = frozenset(),
) -> str:
    """Check that `sql` is one read-only SELECT over `tables` and return it with a LIMIT.

    Args:
        sql: The query, in `dialect`.
        dialect: The sqlglot dialect (`sqlite`, `postgres`, `duckdb`).
        tables: The tables the query may read.
        row_limit: The largest LIMIT allowed; a missing or larger LIMIT is replaced by it.
        default_schemas: Schema names a table may be qualified with.
        value_types: User-defined type names a PostgreSQL query may cast to (lower case).

    Returns:
        The query regenerated from its syntax tree, in `dialect`, with the LIMIT enforced.

    Raises:
        ToolError: The query is refused; the message says what to change.
    """
    tree = _parse_one(sql, dialect)
    _check_statement(tree)
    _check_functions(tree)
    _check_types(tree, dialect, value_types)
    _resolve_tables(tree, tables, default_schemas)
    if dialect == "sqlite":
        _sqlite_double_quoted_strings(tree, tables)
        _keep_comma_joins(tree)
    _check_columns(tree, tables, dialect)
    return _enforce_limit(tree, row_limit).sql(dialect=dialect)
