"""Structured queries: a query object whose names are enums of the real schema, compiled to SQL.

`build_query_model(tables)` makes a pydantic model (so a JSON schema) in which every table name,
`table.column` name and join is a `Literal` of what the database really has: a model decoding
under that schema cannot produce a table or column that does not exist. Joins are chosen among
the foreign keys. `compile_query` turns a validated object into a SQLAlchemy Core SELECT with
every literal value as a bound parameter; the library writes the SQL, never the model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import pydantic
import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from agentlib import ConfigurationError, ToolError

from ._schema import TableInfo

__all__ = ["JoinEdge", "build_query_model", "compile_query", "join_edges"]

# Bounds keep a small model's constrained output finite: without them SmolLM2-135M kept
# appending list items or string characters until it ran out of tokens.
Text = Annotated[str, StringConstraints(max_length=200)]
Scalar = Text | int | float | bool
Aggregate = Literal["count", "count_distinct", "sum", "avg", "min", "max"]
Operator = Literal[
    "=", "!=", "<", "<=", ">", ">=", "like", "not_like", "contains", "in", "not_in",
    "between", "is_null", "is_not_null",
]  # fmt: skip
Comparison = Literal["=", "!=", "<", "<=", ">", ">="]
_CLOSED = ConfigDict(extra="forbid")


@dataclass(frozen=True, slots=True)
class JoinEdge:
    """A join along a foreign key: `left.left_columns = right.right_columns`."""

    left: str
    left_columns: tuple[str, ...]
    right: str
    right_columns: tuple[str, ...]

    @property
    def label(self) -> str:
        """How the edge is named in the schema: `albums.artist_id = artists.artist_id`."""
        return " and ".join(
            f"{self.left}.{a} = {self.right}.{b}"
            for a, b in zip(self.left_columns, self.right_columns, strict=True)
        )


def join_edges(tables: Mapping[str, TableInfo]) -> dict[str, JoinEdge]:
    """Every foreign key between two different tables of `tables`, keyed by its label."""
    edges: dict[str, JoinEdge] = {}
    for info in tables.values():
        for key in info.foreign_keys:
            if key.referred_table == info.name or key.referred_table not in tables:
                continue  # a self-reference needs table aliases, which structured queries lack
            edge = JoinEdge(info.name, key.columns, key.referred_table, key.referred_columns)
            edges[edge.label] = edge
    return edges


def _literal(values: Sequence[str]) -> Any:
    return Literal[tuple(values)]


def build_query_model(tables: Mapping[str, TableInfo]) -> type[BaseModel]:
    """Build the structured-query model for `tables`: names are `Literal`s of the schema.

    Raises:
        ConfigurationError: `tables` is empty.
    """
    if not tables:
        raise ConfigurationError("a structured query needs at least one table")
    table_name = _literal(list(tables))
    qualified = [
        f"{name}.{column}" for name, info in tables.items() for column in info.column_names
    ]
    plain_column = _literal(qualified)
    column_name = _literal(["*", *qualified])
    select_item = pydantic.create_model(
        "SelectItem",
        __config__=_CLOSED,
        column=(column_name, Field(description="`table.column`, or `*` with count")),
        aggregate=(Aggregate | None, Field(None, description="Aggregate applied to the column")),
    )
    condition = pydantic.create_model(
        "Filter",
        __config__=_CLOSED,
        column=(plain_column, ...),
        operator=(Operator, ...),
        value=(
            Scalar | Annotated[list[Scalar], Field(max_length=20)] | None,
            Field(None, description="A literal; a list for in/not_in/between; none for is_null"),
        ),
    )
    having = pydantic.create_model(
        "Having",
        __config__=_CLOSED,
        column=(column_name, ...),
        aggregate=(Aggregate, ...),
        operator=(Comparison, ...),
        value=(int | float, ...),
    )
    order_item = pydantic.create_model(
        "OrderItem",
        __config__=_CLOSED,
        column=(column_name, ...),
        aggregate=(Aggregate | None, None),
        direction=(_literal(["asc", "desc"]), "asc"),
    )
    fields: dict[str, Any] = {
        "table": (table_name, Field(description="The table to select from")),
        "select": (list[select_item], Field(min_length=1, max_length=8)),  # type: ignore[valid-type]
    }
    edges = join_edges(tables)
    if edges:
        join = pydantic.create_model(
            "Join",
            __config__=_CLOSED,
            on=(_literal(list(edges)), Field(description="A foreign key to join along")),
            type=(_literal(["inner", "left"]), "inner"),
        )
        fields["joins"] = (list[join], Field(default_factory=list, max_length=6))  # type: ignore[valid-type]
    fields.update(
        {
            "filters": (list[condition], Field(default_factory=list, max_length=8)),  # type: ignore[valid-type]
            "group_by": (list[plain_column], Field(default_factory=list, max_length=6)),  # type: ignore[valid-type]
            "having": (list[having], Field(default_factory=list, max_length=4)),  # type: ignore[valid-type]
            "order_by": (list[order_item], Field(default_factory=list, max_length=4)),  # type: ignore[valid-type]
            "limit": (int | None, Field(None, ge=1)),
            "distinct": (bool, False),
        }
    )
    model: type[BaseModel] = pydantic.create_model(
        "StructuredQuery",
        __config__=_CLOSED,
        __doc__="A read-only SELECT over the database's real tables and columns.",
        **fields,
    )
    return model


class _Compiler:
    def __init__(self, tables: Mapping[str, TableInfo]) -> None:
        self.tables = tables
        self.sql_tables = {
            name: sa.table(name, *(sa.column(column) for column in info.column_names))
            for name, info in tables.items()
        }
        self.edges = join_edges(tables)
        self.in_query: list[str] = []

    def from_clause(self, query: Any) -> sa.FromClause:
        self.in_query = [query.table]
        clause: sa.FromClause = self.sql_tables[query.table]
        for join in getattr(query, "joins", []):
            edge = self.edges[join.on]
            if edge.left in self.in_query and edge.right not in self.in_query:
                new = edge.right
            elif edge.right in self.in_query and edge.left not in self.in_query:
                new = edge.left
            else:
                state = "both already" if edge.left in self.in_query else "neither"
                raise ToolError(
                    f"the join {join.on!r} cannot be added: {state} of its tables are in the "
                    f"query ({', '.join(self.in_query)}); order joins so each one adds one new "
                    "table connected to the tables before it"
                )
            left, right = self.sql_tables[edge.left], self.sql_tables[edge.right]
            condition = sa.and_(
                *(
                    left.c[a] == right.c[b]
                    for a, b in zip(edge.left_columns, edge.right_columns, strict=True)
                )
            )
            clause = clause.join(self.sql_tables[new], condition, isouter=join.type == "left")
            self.in_query.append(new)
        return clause

    def column(self, name: str) -> sa.ColumnElement[Any]:
        table, _, column = name.partition(".")
        if table not in self.in_query:
            raise ToolError(
                f"the column {name!r} belongs to {table}, which is not in the query "
                f"({', '.join(self.in_query)}); add a join that reaches {table}"
            )
        return self.sql_tables[table].c[column]

    def expression(self, name: str, aggregate: str | None) -> sa.ColumnElement[Any]:
        if name == "*":
            if aggregate != "count":
                raise ToolError("`*` can only be used with the count aggregate")
            return sa.func.count()
        column = self.column(name)
        if aggregate is None:
            return column
        if aggregate == "count_distinct":
            return sa.func.count(sa.distinct(column))
        function: Any = getattr(sa.func, aggregate)
        result: sa.ColumnElement[Any] = function(column)
        return result

    def condition(self, item: Any) -> sa.ColumnElement[bool]:
        column = self.column(item.column)
        operator, value = item.operator, item.value
        if operator in ("is_null", "is_not_null") or value is None:
            if operator in ("=", "is_null"):
                return column.is_(None)
            if operator in ("!=", "is_not_null"):
                return column.is_not(None)
            raise ToolError(f"the filter on {item.column!r} with {operator!r} needs a value")
        values = value if isinstance(value, list) else [value]
        if operator in ("in", "not_in"):
            return column.in_(values) if operator == "in" else column.not_in(values)
        if operator == "between":
            if len(values) != 2:
                raise ToolError(f"between on {item.column!r} needs a list of two values")
            return column.between(values[0], values[1])
        if isinstance(value, list):
            raise ToolError(f"the operator {operator!r} on {item.column!r} takes one value")
        if operator == "contains":
            return sa.func.lower(column).contains(str(value).lower(), autoescape=True)
        if operator in ("like", "not_like"):
            return column.like(str(value)) if operator == "like" else column.not_like(str(value))
        return _compare(column, operator, value)


def _compare(left: sa.ColumnElement[Any], operator: str, value: Any) -> sa.ColumnElement[bool]:
    comparisons: dict[str, Any] = {
        "=": left.__eq__,
        "!=": left.__ne__,
        "<": left.__lt__,
        "<=": left.__le__,
        ">": left.__gt__,
        ">=": left.__ge__,
    }
    result: sa.ColumnElement[bool] = comparisons[operator](value)
    return result


def _label(name: str, aggregate: str | None) -> str:
    base = "all" if name == "*" else name.replace(".", "_")
    return f"{aggregate}_{base}" if aggregate else base


def _select_list(
    compiler: _Compiler, items: Sequence[Any]
) -> tuple[
    list[sa.ColumnElement[Any]],
    list[sa.ColumnElement[Any]],
    dict[tuple[str, str | None], sa.Label[Any]],
]:
    """The selected expressions, the plain (not aggregated) ones, and the labels by item."""
    selected: list[sa.ColumnElement[Any]] = []
    plain: list[sa.ColumnElement[Any]] = []
    labels: dict[tuple[str, str | None], sa.Label[Any]] = {}
    for item in items:
        if item.column == "*" and item.aggregate is None:
            for name in compiler.in_query:
                columns = list(compiler.sql_tables[name].c)
                selected.extend(columns)
                plain.extend(columns)
            continue
        if (item.column, item.aggregate) in labels:
            continue
        expression = compiler.expression(item.column, item.aggregate)
        labelled = expression.label(_label(item.column, item.aggregate))
        labels[(item.column, item.aggregate)] = labelled
        selected.append(labelled)
        if item.aggregate is None:
            plain.append(expression)
    return selected, plain, labels


def compile_query(
    query: BaseModel, tables: Mapping[str, TableInfo], *, row_limit: int
) -> sa.Select[Any]:
    """Compile a structured query into a SELECT whose LIMIT is at most `row_limit`.

    Without an explicit `group_by`, a query mixing aggregates and plain columns is grouped by
    the plain columns, which is what such a query means.

    Raises:
        ToolError: The query is inconsistent (a join that connects nothing, a column of a table
            not joined, an operator without its value); the message says what to change.
    """
    data: Any = query
    compiler = _Compiler(tables)
    clause = compiler.from_clause(data)
    selected, plain, labels = _select_list(compiler, data.select)
    statement = sa.select(*selected).select_from(clause)
    if data.distinct:
        statement = statement.distinct()
    conditions = [compiler.condition(item) for item in data.filters]
    if conditions:
        statement = statement.where(*conditions)
    group_by = [compiler.column(name) for name in data.group_by]
    has_aggregate = any(item.aggregate for item in data.select) or bool(data.having)
    if not group_by and has_aggregate and len(plain) < len(selected):
        group_by = plain
    if group_by:
        statement = statement.group_by(*group_by)
    for item in data.having:
        expression = compiler.expression(item.column, item.aggregate)
        statement = statement.having(_compare(expression, item.operator, item.value))
    for item in data.order_by:
        # An ORDER BY on a selected label renders as the label's name.
        key: Any = labels.get((item.column, item.aggregate))
        if key is None:
            key = compiler.expression(item.column, item.aggregate)
        statement = statement.order_by(key.desc() if item.direction == "desc" else key.asc())
    limit = min(data.limit or row_limit, row_limit)
    return statement.limit(limit)
