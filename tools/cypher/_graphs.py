"""Graphs from records and edge lists, in the conventions the engines read; the sample graph."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from agentlib import ConfigurationError
from agentlib._optional import optional_imports

from ._schema import LABELS

with optional_imports("graph", feature="agentlib.tools.cypher"):
    import networkx as nx

__all__ = ["graph_from_edge_list", "graph_from_records", "load_sample_graph"]


def _labels(value: Any, where: str) -> set[str]:
    if value is None:
        return set()
    items = [value] if isinstance(value, str) else list(value)
    for item in items:
        if not isinstance(item, str) or not item:
            raise ConfigurationError(f"{where}: labels must be non-empty strings, got {item!r}")
    return set(items)


def _properties(record: Mapping[str, Any], reserved: Iterable[str]) -> dict[str, Any]:
    if "properties" in record:
        properties = record["properties"] or {}
        if not isinstance(properties, Mapping):
            raise ConfigurationError("'properties' must be a mapping of names to values")
        return {str(key): value for key, value in properties.items()}
    skip = set(reserved)
    return {str(key): value for key, value in record.items() if key not in skip}


def graph_from_records(
    nodes: Iterable[Mapping[str, Any]],
    relationships: Iterable[Mapping[str, Any]] = (),
) -> nx.MultiDiGraph:
    """Build a graph from node and relationship records, in grand-cypher's conventions.

    Args:
        nodes: Each `{"id": ..., "labels": [...] or "label": "...", "properties": {...}}`;
            without `properties`, every other key is a property.
        relationships: Each `{"source": id, "target": id, "type": "...", "properties": {...}}`
            (same rule for properties).

    Raises:
        ConfigurationError: A record lacks its id, type or endpoints, or names an unknown node.
    """
    graph = nx.MultiDiGraph()
    for position, record in enumerate(nodes):
        if "id" not in record:
            raise ConfigurationError(f"node record {position} has no 'id'")
        labels = _labels(record.get("labels", record.get("label")), f"node {record['id']!r}")
        properties = _properties(record, ("id", "labels", "label"))
        graph.add_node(record["id"], **{LABELS: labels}, **properties)
    for position, record in enumerate(relationships):
        missing = [key for key in ("source", "target", "type") if key not in record]
        if missing:
            raise ConfigurationError(f"relationship record {position} has no {missing[0]!r}")
        for end in ("source", "target"):
            if record[end] not in graph:
                raise ConfigurationError(
                    f"relationship record {position} refers to unknown node {record[end]!r}"
                )
        kind = _labels(record["type"], f"relationship {position}")
        properties = _properties(record, ("source", "target", "type"))
        graph.add_edge(record["source"], record["target"], **{LABELS: kind}, **properties)
    return graph


def _number_or_text(value: str) -> Any:
    for convert in (int, float):
        try:
            return convert(value)
        except ValueError:
            continue
    return value


def _read_edge_rows(source: str | Path | Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    if not isinstance(source, (str, Path)):
        return list(source)
    path = Path(source)
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8") as handle:
            return [
                {key: _number_or_text(value) for key, value in row.items() if value != ""}
                for row in csv.DictReader(handle)
            ]
    if path.suffix.lower() == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, list):
            raise ConfigurationError(f"{path} must hold a JSON list of edge objects")
        return data
    raise ConfigurationError(f"cannot read {path}: use a .csv or .json edge list")


def graph_from_edge_list(
    source: str | Path | Iterable[Mapping[str, Any]],
    *,
    relationship_type: str = "RELATED_TO",
    source_label: str = "Node",
    target_label: str | None = None,
    source_column: str = "source",
    target_column: str = "target",
    type_column: str = "type",
    node_property: str = "name",
) -> nx.MultiDiGraph:
    """Build a graph from an edge list: a CSV file, a JSON list of objects, or rows in memory.

    Each row is one relationship from `source_column` to `target_column`; the end nodes are
    made once per distinct value, stored in `node_property`. A `type_column` value sets the
    relationship type (else `relationship_type`); other columns become relationship
    properties (CSV numbers are converted to int or float).

    Args:
        source: The `.csv`/`.json` path, or an iterable of mappings.
        relationship_type: The type for rows without a `type_column` value.
        source_label: The label of source nodes.
        target_label: The label of target nodes; `source_label` when `None`.
        source_column: The column naming the source node.
        target_column: The column naming the target node.
        type_column: The optional column with each row's relationship type.
        node_property: The node property that holds the source/target value.

    Raises:
        ConfigurationError: A row lacks its source or target, or the file type is unknown.
    """
    target_label = target_label or source_label
    graph = nx.MultiDiGraph()
    reserved = {source_column, target_column, type_column}
    for position, row in enumerate(_read_edge_rows(source)):
        if source_column not in row or target_column not in row:
            raise ConfigurationError(
                f"edge row {position} needs '{source_column}' and '{target_column}' values"
            )
        ends = []
        for column, label in ((source_column, source_label), (target_column, target_label)):
            node = f"{label}:{row[column]}"
            if node not in graph:
                graph.add_node(node, **{LABELS: {label}, node_property: row[column]})
            else:
                graph.nodes[node][LABELS].add(label)
            ends.append(node)
        kind = str(row.get(type_column) or relationship_type)
        properties = {key: value for key, value in row.items() if key not in reserved}
        graph.add_edge(ends[0], ends[1], **{LABELS: {kind}}, **properties)
    return graph


def load_sample_graph() -> nx.MultiDiGraph:
    """The sample movies graph: 46 movies, 121 people, 13 genres and critics' reviews.

    Labels `Movie` (title, released, runtime), `Person` (name, born), `Genre` (name);
    relationships `ACTED_IN` (roles), `DIRECTED`, `IN_GENRE`, `REVIEWED` (rating, summary)
    and `FOLLOWS`. Generated by `tools/data/make_movies.py`.
    """
    text = resources.files("agentlib.tools").joinpath("data/movies.json").read_text("utf-8")
    data = json.loads(text)
    return graph_from_records(data["nodes"], data["relationships"])
