"""Structured graph patterns: a pydantic model a model fills in, compiled to Cypher here.

`pattern_model(schema)` returns a subclass of `GraphPattern` whose labels, relationship types
and property names are `Literal` enums of the real schema, so constrained decoding cannot name
anything that does not exist. `compile_pattern` renders it: values become parameters (`$p0`)
for engines that have them, and otherwise go through `quote_literal`, never raw text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ._render import quote_literal
from ._schema import GraphSchema

__all__ = [
    "CypherStatement",
    "GraphPattern",
    "PatternCondition",
    "PatternNode",
    "PatternOrder",
    "PatternReturn",
    "PatternStep",
    "compile_pattern",
    "pattern_model",
]

Scalar = str | int | float | bool
Operator = Literal[
    "=",
    "<>",
    "<",
    "<=",
    ">",
    ">=",
    "CONTAINS",
    "STARTS WITH",
    "ENDS WITH",
    "IN",
    "IS NULL",
    "IS NOT NULL",
]
Aggregate = Literal["count", "sum", "avg", "min", "max", "collect"]
_VARIABLE = r"^[a-z][a-z0-9_]{0,19}$"
_ALIAS = r"^[A-Za-z_][A-Za-z0-9_]{0,39}$"


@dataclass(frozen=True, slots=True, kw_only=True)
class CypherStatement:
    """A Cypher query ready to run: its text, its parameters, and the pattern it came from."""

    text: str
    """The query text."""
    parameters: dict[str, Any] = field(default_factory=dict)
    """Values referenced as `$name` in the text (empty for engines without parameters)."""
    pattern: GraphPattern | None = None
    """The structured pattern it was compiled from, if any."""
    columns: tuple[str, ...] | None = None
    """The column names as the query was written (openCypher names a column after the text
    of its expression); `None` to take them from `text`."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PatternNode(_Strict):
    """A node in the pattern: a variable name and, usually, a label."""

    variable: str = Field(pattern=_VARIABLE, description="A short lowercase name, like p or movie")
    label: str | None = Field(default=None, description="The node label")


class PatternStep(_Strict):
    """One hop: a relationship from the previous node to `node`."""

    relationship: str = Field(description="The relationship type")
    direction: Literal["out", "in"] = Field(
        description="out: (previous)-[:TYPE]->(node); in: (previous)<-[:TYPE]-(node)"
    )
    node: PatternNode
    variable: str | None = Field(
        default=None,
        pattern=_VARIABLE,
        description="Name the relationship to return its properties",
    )


class PatternCondition(_Strict):
    """A filter `variable.property operator value`; all conditions must hold (AND)."""

    variable: str = Field(pattern=_VARIABLE)
    property: str
    operator: Operator
    value: Scalar | list[Scalar] | None = Field(
        default=None, description="The value to compare with (a list for IN, none for IS NULL)"
    )


class PatternReturn(_Strict):
    """One returned column: a variable, or one of its properties, optionally aggregated."""

    variable: str = Field(pattern=_VARIABLE)
    property: str | None = None
    aggregate: Aggregate | None = None
    alias: str | None = Field(default=None, pattern=_ALIAS)


class PatternOrder(_Strict):
    """Sort by a variable's property, or by an aggregate that is also returned."""

    variable: str = Field(pattern=_VARIABLE)
    property: str | None = None
    aggregate: Aggregate | None = None
    descending: bool = False


class GraphPattern(_Strict):
    """A read query as data: a path pattern, AND-ed conditions, returned columns, order, limit."""

    start: PatternNode
    steps: list[PatternStep] = Field(default_factory=list, max_length=4)
    conditions: list[PatternCondition] = Field(default_factory=list, max_length=8)
    returns: list[PatternReturn] = Field(min_length=1, max_length=8)
    distinct: bool = False
    order_by: list[PatternOrder] = Field(default_factory=list, max_length=3)
    limit: int = Field(default=25, ge=1, le=1000)

    schema_: ClassVar[GraphSchema | None] = None

    @model_validator(mode="after")
    def _check_references(self) -> GraphPattern:
        nodes = {self.start.variable: self.start.label}
        relationships: dict[str, str] = {}
        for step in self.steps:
            reused = step.node.variable in nodes or step.node.variable in relationships
            if reused and nodes.get(step.node.variable) != step.node.label:
                raise ValueError(f"variable {step.node.variable!r} is used for two different nodes")
            nodes[step.node.variable] = step.node.label
            if step.variable:
                if step.variable in nodes or step.variable in relationships:
                    raise ValueError(f"variable {step.variable!r} is used twice")
                relationships[step.variable] = step.relationship
        known = {**nodes, **relationships}
        items: list[PatternCondition | PatternReturn | PatternOrder] = [
            *self.conditions,
            *self.returns,
            *self.order_by,
        ]
        for item in items:
            if item.variable not in known:
                raise ValueError(
                    f"variable {item.variable!r} is not in the pattern; use one of "
                    f"{', '.join(sorted(known))}"
                )
            prop = getattr(item, "property", None)
            owner = known[item.variable]
            if prop is not None and owner is not None and self.schema_ is not None:
                allowed = self.schema_.properties_of(owner)
                if prop not in allowed:
                    raise ValueError(
                        f"{owner} has no property {prop!r}; its properties are "
                        f"{', '.join(allowed) or '(none)'}"
                    )
        for condition in self.conditions:
            _check_condition_value(condition)
        return self


def _check_condition_value(condition: PatternCondition) -> None:
    if condition.operator in ("IS NULL", "IS NOT NULL"):
        return
    if condition.value is None:
        raise ValueError(
            f"the condition on {condition.variable}.{condition.property} needs a value"
        )
    if (condition.operator == "IN") != isinstance(condition.value, list):
        raise ValueError("use a list value with IN, and a single value with other operators")


def _literal(names: list[str]) -> Any:
    return Literal[tuple(names)] if names else str


def pattern_model(schema: GraphSchema) -> type[GraphPattern]:
    """A `GraphPattern` subclass whose names are enums of `schema`'s labels, types, properties."""
    label = _literal(schema.label_names)
    kind = _literal(schema.relationship_types)
    prop = _literal(schema.property_names)
    node = pydantic.create_model(
        "PatternNode",
        __base__=PatternNode,
        label=(label | None, None),
    )
    step = pydantic.create_model(
        "PatternStep", __base__=PatternStep, relationship=(kind, ...), node=(node, ...)
    )
    condition = pydantic.create_model(
        "PatternCondition", __base__=PatternCondition, property=(prop, ...)
    )
    returned = pydantic.create_model(
        "PatternReturn",
        __base__=PatternReturn,
        property=(prop | None, None),
    )
    order = pydantic.create_model(
        "PatternOrder",
        __base__=PatternOrder,
        property=(prop | None, None),
    )
    model = pydantic.create_model(
        "GraphPattern",
        __base__=GraphPattern,
        start=(node, ...),
        steps=(list[step], Field(default_factory=list, max_length=4)),  # type: ignore[valid-type]
        conditions=(list[condition], Field(default_factory=list, max_length=8)),  # type: ignore[valid-type]
        returns=(list[returned], Field(min_length=1, max_length=8)),  # type: ignore[valid-type]
        order_by=(list[order], Field(default_factory=list, max_length=3)),  # type: ignore[valid-type]
    )
    model.schema_ = schema
    return model


def _node_text(node: PatternNode) -> str:
    return f"({node.variable}:{node.label})" if node.label else f"({node.variable})"


def _expression(variable: str, prop: str | None, aggregate: str | None) -> str:
    text = f"{variable}.{prop}" if prop else variable
    return f"{aggregate.upper()}({text})" if aggregate else text


def compile_pattern(pattern: GraphPattern, *, parameters: bool) -> CypherStatement:
    """Render a pattern as Cypher.

    Args:
        pattern: The pattern (usually an instance of `pattern_model(schema)`).
        parameters: Put values in `$p0`, `$p1`... parameters (Neo4j) instead of quoting them
            into the text (grand-cypher, which has no parameters).
    """
    values: dict[str, Any] = {}

    def value_text(value: Any) -> str:
        if not parameters:
            return str(quote_literal(value))
        name = f"p{len(values)}"
        values[name] = value
        return f"${name}"

    path = _node_text(pattern.start)
    for step in pattern.steps:
        name = step.variable or ""
        relationship = f"[{name}:{step.relationship}]"
        arrow = f"-{relationship}->" if step.direction == "out" else f"<-{relationship}-"
        path += arrow + _node_text(step.node)
    parts = [f"MATCH {path}"]
    if pattern.conditions:
        conditions = []
        for condition in pattern.conditions:
            left = f"{condition.variable}.{condition.property}"
            if condition.operator in ("IS NULL", "IS NOT NULL"):
                conditions.append(f"{left} {condition.operator}")
            else:
                conditions.append(f"{left} {condition.operator} {value_text(condition.value)}")
        parts.append("WHERE " + " AND ".join(conditions))
    aliases: dict[str, str] = {}
    returned = []
    for item in pattern.returns:
        expression = _expression(item.variable, item.property, item.aggregate)
        if item.alias:
            aliases[expression] = item.alias
            expression += f" AS {item.alias}"
        returned.append(expression)
    parts.append(("RETURN DISTINCT " if pattern.distinct else "RETURN ") + ", ".join(returned))
    if pattern.order_by:
        keys = []
        for order in pattern.order_by:
            expression = _expression(order.variable, order.property, order.aggregate)
            keys.append(aliases.get(expression, expression) + (" DESC" if order.descending else ""))
        parts.append("ORDER BY " + ", ".join(keys))
    parts.append(f"LIMIT {pattern.limit}")
    return CypherStatement(text=" ".join(parts), parameters=values, pattern=pattern)
