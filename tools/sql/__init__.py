"""SQL over SQLite, PostgreSQL and DuckDB: schema introspection, query construction, read-only runs.

`SQLDatabase(url_or_engine)` is a `Toolset` for agents: `list_tables`, `describe_tables` and one
query tool, either `run_query` (a structured query whose table and column names are enums of the
real schema, compiled to SQL by the library) or `run_sql` (free SQL for strong models), or both.
`text_to_sql(model, db, question)` does the same construction outside an agent.

Every query is checked by one validator (one read-only SELECT over known tables and columns,
allow-listed functions, a LIMIT) and runs on a read-only connection with a timeout; see
`_validate.py` and `_connection.py` for exactly what is refused and how. Needs the `sql`
extra: `pip install "agentlib-typed[sql]"`.
"""

from __future__ import annotations

import asyncio
import datetime
import decimal
import difflib
import functools
import os
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from string import Template
from typing import Any, Literal

from pydantic import BaseModel, Field

from agentlib import (
    ConfigurationError,
    Model,
    Tool,
    ToolError,
    Toolset,
    agenerate_result,
    tool,
)
from agentlib._optional import optional_imports

with optional_imports("sql", feature="agentlib.tools.sql"):
    import sqlalchemy as sa
    import sqlglot  # noqa: F401  (imported here so a missing extra fails at import)

from ._connection import ReadOnlyDatabase, open_read_only
from ._schema import (
    ColumnInfo,
    ForeignKeyInfo,
    TableInfo,
    introspect,
    relevant_tables,
    render_schema,
    render_table,
    value_types,
)
from ._structured import build_query_model, compile_query
from ._validate import SQLGLOT_DIALECTS, validate_sql

__all__ = [
    "ColumnInfo",
    "ForeignKeyInfo",
    "QueryMode",
    "QueryResult",
    "SQLAnswer",
    "SQLDatabase",
    "SQLDraft",
    "TableInfo",
    "atext_to_sql",
    "create_music_store",
    "music_store_sql",
    "text_to_sql",
]

QueryMode = Literal["structured", "sql", "both"]
"""Which query tool `SQLDatabase` offers: `run_query` (structured), `run_sql` (free SQL), both."""

_DEFAULT_SCHEMAS = {"sqlite": "main", "postgresql": "public", "duckdb": "main"}


class QueryResult(BaseModel):
    """The rows a query returned, as JSON-able values."""

    sql: str
    """The SQL that ran (bound values shown inline)."""
    columns: list[str]
    """The result's column names."""
    rows: list[list[Any]]
    """The rows; numbers, strings, booleans, nulls, dates as ISO text."""
    row_count: int
    """How many rows are shown."""
    reached_row_limit: bool = False
    """True when the result was cut at the row limit: more rows may exist."""


class SQLDraft(BaseModel):
    """A free-SQL answer: one SELECT statement."""

    sql: str = Field(description="One read-only SELECT statement in the database's dialect")


@dataclass(frozen=True, slots=True, kw_only=True)
class SQLAnswer:
    """What `text_to_sql` produced: the query, how it was obtained, and its rows."""

    question: str
    """The question asked."""
    sql: str
    """The validated SQL."""
    query: BaseModel | None
    """The structured query object, in structured mode; `None` in free-SQL mode."""
    result: QueryResult | None
    """The rows, when the query was executed."""
    path: str
    """The generation path of the accepted output (`constrained`, `prompted`, ...)."""
    attempts: int
    """Generations tried, counting retries after refused queries."""


def _jsonable(value: Any) -> Any:
    if isinstance(value, float):
        # SQLite sums NUMERIC as binary floats (87.47999999999996); 12 digits hide that noise.
        return float(f"{value:.12g}")
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, decimal.Decimal):
        return (
            int(value) if value == value.to_integral_value() and value.is_finite() else float(value)
        )
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"<{len(bytes(value))} bytes>"
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    return str(value)


@functools.cache
def _prompt(name: str) -> Template:
    text = resources.files("agentlib.tools.sql").joinpath("prompts.md").read_text("utf-8")
    sections = {
        block.split("\n", 1)[0].strip(): block.split("\n", 1)[1]
        for block in text.split("\n## ")[1:]
    }
    return Template(sections[name].strip())


class SQLDatabase(Toolset):
    """A database as agent tools: list tables, describe them, run one read-only query.

    Args:
        url_or_engine: A SQLAlchemy URL (`sqlite:///music.db`, `postgresql+psycopg://…`,
            `duckdb:///data.duckdb`) or an `Engine`. SQLite and DuckDB files are reopened
            read-only; give a read-only role for PostgreSQL where you can.
        include_tables: Only these tables are visible (and queryable); default all.
        sample_rows: Rows shown per table by `describe_tables`.
        row_limit: The most rows a query returns; larger or missing LIMITs are replaced.
        timeout: Seconds a query may run before it is stopped.
        memory_mb: The memory a SQLite or DuckDB query may use, in MiB: the address-space cap
            of the worker process the queries run in.
        query_mode: `structured` offers `run_query` (constrained query object), `sql` offers
            `run_sql` (free SQL), `both` offers both.
        schema: The database schema to introspect (PostgreSQL); default the connection's.

    Raises:
        ConfigurationError: The database is unsupported, cannot be opened read-only, or has no
            (included) tables.
    """

    def __init__(
        self,
        url_or_engine: str | sa.URL | sa.Engine,
        *,
        include_tables: Iterable[str] | None = None,
        sample_rows: int = 3,
        row_limit: int = 100,
        timeout: float = 10.0,
        query_mode: QueryMode = "structured",
        schema: str | None = None,
        memory_mb: int = 1024,
    ) -> None:
        if row_limit < 1 or timeout <= 0 or sample_rows < 0 or memory_mb < 256:
            raise ConfigurationError(
                "row_limit must be at least 1, timeout above 0, sample_rows 0 or more and "
                "memory_mb at least 256"
            )
        if query_mode not in ("structured", "sql", "both"):
            raise ConfigurationError(
                f"query_mode must be 'structured', 'sql' or 'both', not {query_mode!r}"
            )
        self.executor: ReadOnlyDatabase = open_read_only(url_or_engine, memory_mb=memory_mb)
        """Runs SQL read-only with the timeout; `executor.execute` bypasses the validator."""
        self.engine = self.executor.engine
        """The engine used for introspection."""
        self.backend = self.engine.dialect.name
        """The SQLAlchemy dialect name: `sqlite`, `postgresql` or `duckdb`."""
        self.dialect = SQLGLOT_DIALECTS[self.backend]
        """The sqlglot dialect queries are validated in."""
        self.sample_rows = sample_rows
        """Rows shown per table by `describe_tables`."""
        self.row_limit = row_limit
        """The most rows a query returns."""
        self.timeout = timeout
        """Seconds a query may run."""
        self.query_mode: QueryMode = query_mode
        """Which query tools are offered."""
        self.tables: dict[str, TableInfo] = self._introspect(include_tables, schema)
        """The visible tables, by name."""
        self._schemas = frozenset({(schema or _DEFAULT_SCHEMAS[self.backend]).lower()})
        try:
            self._value_types = value_types(self.engine, schema)
        except sa.exc.DBAPIError:  # no catalog access: no user-defined casts (fails closed)
            self._value_types = frozenset()
        self.query_model = build_query_model(self.tables)
        """The structured-query pydantic model for all visible tables."""
        super().__init__(self._query_tools())

    def _introspect(
        self, include_tables: Iterable[str] | None, schema: str | None
    ) -> dict[str, TableInfo]:
        try:
            tables = introspect(self.engine, include_tables=include_tables, schema=schema)
            if not tables:
                raise ConfigurationError("the database has no tables to query; create some first")
        except sa.exc.DBAPIError as error:
            self._dispose()
            raise ConfigurationError(f"cannot read the database schema: {error.orig}") from error
        except ConfigurationError:
            self._dispose()
            raise
        return tables

    def _query_tools(self) -> list[Tool]:
        tools: list[Tool] = []
        if self.query_mode in ("structured", "both"):

            def run_query(query: Any) -> QueryResult:
                """Run one read-only query, described as a structured object, and return its rows.

                Args:
                    query: The query: the table, the selected columns (with optional aggregates),
                        joins along foreign keys, filters, grouping, ordering and a limit.
                """
                return self.run_query(query)

            run_query.__annotations__ = {"query": self.query_model, "return": QueryResult}
            tools.append(Tool(run_query))
        if self.query_mode in ("sql", "both"):
            dialect = self.dialect

            def run_sql(sql: str) -> QueryResult:
                return self.run_sql(sql)

            run_sql.__doc__ = (
                f"Run one read-only SELECT statement ({dialect} dialect) and return its rows.\n\n"
                "Args:\n"
                f"    sql: One SELECT (WITH … SELECT allowed) over the database's tables; at most "
                f"{self.row_limit} rows are returned.\n"
            )
            tools.append(Tool(run_sql))
        return tools

    def __repr__(self) -> str:
        return f"SQLDatabase({self.engine.url.render_as_string()!r}, tables={len(self.tables)})"

    # Tools ------------------------------------------------------------------------------------

    @tool
    def list_tables(self) -> str:
        """List the database's tables with their column names."""
        return "\n".join(
            f"{name}: {', '.join(info.column_names)}" for name, info in self.tables.items()
        )

    @tool
    def describe_tables(self, tables: list[str]) -> str:
        """Describe tables: columns, types, primary and foreign keys, and a few sample rows.

        Args:
            tables: The names of the tables to describe.
        """
        return self.describe(tables)

    # Python API -------------------------------------------------------------------------------

    def _known(self, name: str) -> TableInfo:
        if name in self.tables:
            return self.tables[name]
        close = difflib.get_close_matches(name, list(self.tables), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ToolError(f"unknown table {name!r}; {hint}the tables are: {', '.join(self.tables)}")

    def describe(self, tables: Sequence[str] | None = None) -> str:
        """Describe `tables` (default all) with sample rows, as the `describe_tables` tool does.

        Raises:
            ToolError: A table does not exist; the message lists the tables.
        """
        infos = [self._known(name) for name in (tables if tables is not None else self.tables)]
        if not infos:
            raise ToolError("name at least one table to describe")
        blocks = []
        for info in infos:
            samples: list[tuple[Any, ...]] = []
            if self.sample_rows:
                table = sa.table(info.name, *(sa.column(name) for name in info.column_names))
                statement = sa.select(table).limit(self.sample_rows)
                samples = self.executor.execute(
                    statement, timeout=self.timeout, max_rows=self.sample_rows
                ).rows
            blocks.append(render_table(info, samples))
        return "\n\n".join(blocks)

    def schema_text(self, tables: Iterable[str] | None = None) -> str:
        """The schema of `tables` (default all) as compact text for a prompt, without samples."""
        chosen = self.tables if tables is None else {n: self._known(n) for n in tables}
        return render_schema(chosen)

    def validate(self, sql: str) -> str:
        """Check one SQL query and return what would run (with the LIMIT enforced).

        Raises:
            ToolError: The query is refused; the message says what to change.
        """
        return validate_sql(
            sql,
            dialect=self.dialect,
            tables=self.tables,
            row_limit=self.row_limit,
            default_schemas=self._schemas,
            value_types=self._value_types,
        )

    def compile(self, query: BaseModel | Mapping[str, Any]) -> tuple[sa.Select[Any], str]:
        """Compile a structured query: the statement (bound parameters) and its SQL text.

        The text, with values inline, goes through the same validator as free SQL.

        Raises:
            ToolError: The query is inconsistent or refused.
        """
        model = query if isinstance(query, BaseModel) else self.query_model.model_validate(query)
        statement = compile_query(model, self.tables, row_limit=self.row_limit)
        text = str(
            statement.compile(dialect=self.engine.dialect, compile_kwargs={"literal_binds": True})
        )
        return statement, self.validate(text)

    def run_sql(self, sql: str) -> QueryResult:
        """Validate and run one SQL query; return its rows.

        Raises:
            ToolError: The query was refused, timed out or failed.
        """
        checked = self.validate(sql)
        return self._result(checked, checked)

    def run_query(self, query: BaseModel | Mapping[str, Any]) -> QueryResult:
        """Compile, validate and run one structured query; return its rows.

        Raises:
            ToolError: The query was inconsistent, refused, timed out or failed.
        """
        statement, text = self.compile(query)
        return self._result(statement, text)

    def _result(self, statement: str | sa.Executable, text: str) -> QueryResult:
        rows = self.executor.execute(statement, timeout=self.timeout, max_rows=self.row_limit)
        return QueryResult(
            sql=text,
            columns=rows.columns,
            rows=[[_jsonable(value) for value in row] for row in rows.rows],
            row_count=len(rows.rows),
            reached_row_limit=rows.truncated or len(rows.rows) >= self.row_limit,
        )

    def _dispose(self) -> None:
        self.executor.close()

    async def aclose(self) -> None:
        """Stop the query workers and dispose of the engine when this toolset opened it."""
        self._dispose()


async def atext_to_sql(
    model: Model,
    db: SQLDatabase,
    question: str,
    *,
    mode: Literal["structured", "sql"] = "structured",
    execute: bool = True,
    max_tables: int = 8,
    retries: int = 2,
    max_tokens: int | None = 512,
) -> SQLAnswer:
    """Turn `question` into a validated query over `db` (and run it), without an agent.

    In `structured` mode the model fills a query object whose names are enums of the schema
    (constrained decoding where the model supports JSON schemas) and the library writes the SQL;
    in `sql` mode it writes SQL, which the validator checks. The prompt carries the schema of the
    `max_tables` tables most relevant to the question (by shared words, plus link tables).

    Args:
        model: Any `Model`.
        db: The database.
        question: The question, in natural language.
        mode: `structured` or `sql`.
        execute: Run the query and put its rows in the answer.
        max_tables: The most tables whose schema goes into the prompt.
        retries: Further attempts after an invalid or refused output.
        max_tokens: The generation limit per attempt.

    Raises:
        ToolError: Every attempt produced a refused query; the message is the last refusal.
        ModelOutputError: The model's output never fitted the schema.
        ModelError: The backend failed.
    """
    if mode not in ("structured", "sql"):
        raise ConfigurationError(f"mode must be 'structured' or 'sql', not {mode!r}")
    tables = relevant_tables(db.tables, question, limit=max_tables)
    instructions = _prompt(mode).substitute(dialect=db.dialect, schema=render_schema(tables))
    output_type: type[BaseModel] = build_query_model(tables) if mode == "structured" else SQLDraft
    compiled: dict[str, Any] = {}

    async def run(output: Any) -> None:
        # A refused query (ToolError) is an invalid attempt: the model sees the refusal.
        if mode == "structured":
            statement, sql = db.compile(output)
            runnable: str | sa.Executable = statement
        else:
            sql = runnable = db.validate(output.sql)
        compiled["sql"] = sql
        compiled["result"] = await asyncio.to_thread(db._result, runnable, sql) if execute else None

    generation = await agenerate_result(
        model,
        output_type,
        question,
        instructions=instructions,
        retries=retries,
        max_tokens=max_tokens,
        check=run,
    )
    return SQLAnswer(
        question=question,
        sql=compiled["sql"],
        query=generation.output if mode == "structured" else None,
        result=compiled["result"],
        path=generation.path,
        attempts=generation.attempts,
    )


def text_to_sql(
    model: Model,
    db: SQLDatabase,
    question: str,
    *,
    mode: Literal["structured", "sql"] = "structured",
    execute: bool = True,
    max_tables: int = 8,
    retries: int = 2,
    max_tokens: int | None = 512,
) -> SQLAnswer:
    """Synchronous `atext_to_sql`."""
    return asyncio.run(
        atext_to_sql(
            model,
            db,
            question,
            mode=mode,
            execute=execute,
            max_tables=max_tables,
            retries=retries,
            max_tokens=max_tokens,
        )
    )


_MUSIC_STORE_TABLES = frozenset(
    {"albums", "artists", "customers", "employees", "genres", "invoice_lines", "invoices", "tracks"}
)


def music_store_sql() -> str:
    """The SQL script of the sample music-store database (portable across the three databases)."""
    return resources.files("agentlib.tools").joinpath("data", "music_store.sql").read_text("utf-8")


def create_music_store(target: str | os.PathLike[str] | sa.Engine) -> None:
    """Create the sample music-store database (8 tables, ~900 rows) in `target`.

    Args:
        target: A SQLite file path, a SQLAlchemy URL, or an engine, writable and without these
            tables yet.

    Raises:
        ConfigurationError: The database already has some of the sample's tables.
    """
    if isinstance(target, sa.Engine):
        engine, owned = target, False
    else:
        text = os.fspath(target)
        url = text if "://" in text else f"sqlite:///{os.path.abspath(text)}"
        engine, owned = sa.create_engine(url), True
    try:
        existing = set(sa.inspect(engine).get_table_names()) & _MUSIC_STORE_TABLES
        if existing:
            raise ConfigurationError(
                f"the database already has music-store tables ({', '.join(sorted(existing))}); "
                "create the sample in a new file or database"
            )
        statements = [part.strip() for part in music_store_sql().split(";\n") if part.strip()]
        with engine.begin() as connection:
            for statement in statements:
                lines = [line for line in statement.splitlines() if not line.startswith("--")]
                connection.exec_driver_sql("\n".join(lines))
    finally:
        if owned:
            engine.dispose()
