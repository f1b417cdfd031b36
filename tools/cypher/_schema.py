"""The graph schema of `agentlib.tools.cypher`: extraction from NetworkX, and its description.

The NetworkX conventions (grand-cypher's) are handled here so users need not know them: a
node's labels and an edge's type live in the `__labels__` attribute (a set), every other
attribute is a property.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from agentlib import ConfigurationError

__all__ = [
    "GraphSchema",
    "LabelInfo",
    "PropertyInfo",
    "RelationshipInfo",
    "labels_of",
    "schema_from_networkx",
    "type_name",
]

LABELS = "__labels__"
_EXAMPLES = 3
_TYPE_NAMES = {bool: "BOOLEAN", int: "INTEGER", float: "FLOAT", str: "STRING", list: "LIST"}


@dataclass(frozen=True, slots=True, kw_only=True)
class PropertyInfo:
    """One property of a node label or relationship type."""

    name: str
    """The property name."""
    types: tuple[str, ...]
    """Cypher type names seen (`STRING`, `INTEGER`, `FLOAT`, `BOOLEAN`, `LIST`, ...)."""
    count: int
    """How many nodes or relationships have it."""
    examples: tuple[Any, ...] = ()
    """A few distinct example values, in graph order."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LabelInfo:
    """A node label: how many nodes carry it, and their properties."""

    name: str
    """The label."""
    count: int
    """Nodes with this label."""
    properties: tuple[PropertyInfo, ...] = ()
    """Their properties, by name."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RelationshipInfo:
    """A relationship type between two labels, in its direction: `(:source)-[:type]->(:target)`."""

    type: str
    """The relationship type."""
    source: str
    """The label of the start node."""
    target: str
    """The label of the end node."""
    count: int
    """Relationships of this type between nodes with these labels."""
    properties: tuple[PropertyInfo, ...] = ()
    """Their properties, by name."""


@dataclass(frozen=True, slots=True, kw_only=True)
class GraphSchema:
    """What a graph holds: labels, relationship types with directions, properties, counts."""

    labels: tuple[LabelInfo, ...]
    """Node labels, by name."""
    relationships: tuple[RelationshipInfo, ...]
    """Relationship types with their start and end labels."""
    node_count: int
    """All nodes."""
    relationship_count: int
    """All relationships."""
    unlabelled_nodes: int = 0
    """Nodes without a label."""
    unlabelled_properties: tuple[PropertyInfo, ...] = ()
    """The properties of nodes without a label."""

    @property
    def label_names(self) -> list[str]:
        """The node labels, sorted."""
        return sorted(label.name for label in self.labels)

    @property
    def relationship_types(self) -> list[str]:
        """The relationship types, sorted, each once."""
        return sorted({relationship.type for relationship in self.relationships})

    @property
    def property_names(self) -> list[str]:
        """Every property name of nodes and relationships, sorted."""
        names = {p.name for label in self.labels for p in label.properties}
        names.update(p.name for r in self.relationships for p in r.properties)
        names.update(p.name for p in self.unlabelled_properties)
        return sorted(names)

    def properties_of(self, label_or_type: str) -> list[str]:
        """The property names of a node label or a relationship type."""
        names = {
            p.name for label in self.labels if label.name == label_or_type for p in label.properties
        }
        names.update(
            p.name for r in self.relationships if r.type == label_or_type for p in r.properties
        )
        return sorted(names)

    def directions(self) -> dict[str, str]:
        """For messages: each relationship type and the directions it has, as pattern text."""
        found: dict[str, list[str]] = {}
        for relationship in self.relationships:
            found.setdefault(relationship.type, []).append(
                f"(:{relationship.source})-[:{relationship.type}]->(:{relationship.target})"
            )
        return {name: ", ".join(patterns) for name, patterns in found.items()}

    def describe(self) -> str:
        """The schema as compact text for a model (or a person) to write queries from."""
        lines = [
            f"Graph with {self.node_count} nodes and {self.relationship_count} relationships.",
            "Node labels (count) and properties (type, examples):",
        ]
        for label in self.labels:
            lines.append(f"- :{label.name} ({label.count})")
            lines.extend(f"    {_describe_property(p)}" for p in label.properties)
        if self.unlabelled_nodes:
            lines.append(f"- ({self.unlabelled_nodes} nodes without a label)")
            lines.extend(f"    {_describe_property(p)}" for p in self.unlabelled_properties)
        lines.append("Relationship types (count), always in this direction:")
        for relationship in self.relationships:
            lines.append(
                f"- (:{relationship.source})-[:{relationship.type}]->(:{relationship.target}) "
                f"({relationship.count})"
            )
            lines.extend(f"    {_describe_property(p)}" for p in relationship.properties)
        return "\n".join(lines)


def _describe_property(info: PropertyInfo) -> str:
    examples = ", ".join(_short(value) for value in info.examples)
    types = "|".join(info.types)
    return f".{info.name}: {types}" + (f", e.g. {examples}" if examples else "")


def _short(value: Any) -> str:
    text = repr(value) if not isinstance(value, str) else '"' + value.replace('"', "'") + '"'
    return text if len(text) <= 40 else text[:37] + "..."


def type_name(value: Any) -> str:
    """The Cypher type name of a Python value (`STRING`, `INTEGER`, `FLOAT`, `LIST`, ...)."""
    return _TYPE_NAMES.get(type(value), type(value).__name__.upper())


def labels_of(data: Mapping[str, Any]) -> list[str]:
    """The labels (or relationship type) stored on a node or edge, sorted."""
    value = data.get(LABELS)
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return sorted(str(item) for item in value)


class _PropertyTally:
    def __init__(self) -> None:
        self.types: dict[str, None] = {}
        self.count = 0
        self.examples: list[Any] = []

    def add(self, value: Any) -> None:
        self.count += 1
        self.types[type_name(value)] = None
        if len(self.examples) < _EXAMPLES and value not in self.examples:
            self.examples.append(value)

    def info(self, name: str) -> PropertyInfo:
        return PropertyInfo(
            name=name, types=tuple(self.types), count=self.count, examples=tuple(self.examples)
        )


def _tally(items: Iterable[Mapping[str, Any]]) -> tuple[PropertyInfo, ...]:
    tallies: dict[str, _PropertyTally] = {}
    for data in items:
        for key, value in data.items():
            if key != LABELS and value is not None:
                tallies.setdefault(str(key), _PropertyTally()).add(value)
    return tuple(tallies[name].info(name) for name in sorted(tallies))


def schema_from_networkx(graph: Any) -> GraphSchema:
    """Extract the schema of a NetworkX DiGraph or MultiDiGraph using grand-cypher's conventions.

    Raises:
        ConfigurationError: The graph is not directed, or no node has a label.
    """
    if not graph.is_directed():
        raise ConfigurationError(
            "the graph is undirected; Cypher relationships have a direction: pass "
            "graph.to_directed(), or build the graph with graph_from_records"
        )
    by_label: dict[str, list[Mapping[str, Any]]] = {}
    unlabelled = 0
    unlabelled_items: list[Mapping[str, Any]] = []
    node_labels: dict[Any, list[str]] = {}
    for node, data in graph.nodes(data=True):
        labels = labels_of(data)
        node_labels[node] = labels or ["(no label)"]
        if not labels:
            unlabelled += 1
            unlabelled_items.append(data)
        for label in labels:
            by_label.setdefault(label, []).append(data)
    if graph.number_of_nodes() and not any(LABELS in data for _, data in graph.nodes(data=True)):
        raise ConfigurationError(
            f"no node has a label: store labels in the '{LABELS}' node attribute (a set of "
            "strings), or build the graph with graph_from_records / graph_from_edge_list"
        )
    by_triple: dict[tuple[str, str, str], list[Mapping[str, Any]]] = {}
    for source, target, data in graph.edges(data=True):
        for kind in labels_of(data) or ["(no type)"]:
            for source_label in node_labels[source]:
                for target_label in node_labels[target]:
                    by_triple.setdefault((source_label, kind, target_label), []).append(data)
    label_infos = tuple(
        LabelInfo(name=name, count=len(items), properties=_tally(items))
        for name, items in sorted(by_label.items())
    )
    relationships = tuple(
        RelationshipInfo(
            type=kind, source=source, target=target, count=len(items), properties=_tally(items)
        )
        for (source, kind, target), items in sorted(
            by_triple.items(), key=lambda i: (i[0][1], i[0])
        )
    )
    return GraphSchema(
        labels=label_infos,
        relationships=relationships,
        node_count=graph.number_of_nodes(),
        relationship_count=graph.number_of_edges(),
        unlabelled_nodes=unlabelled,
        unlabelled_properties=_tally(unlabelled_items),
    )
