"""The openCypher TCK's read-only scenarios through the Cypher tool, per feature file.

Each scenario's set-up (`CREATE ...`) is built into a NetworkX graph (the user's format), the
query goes through the tool's path (`GraphDatabase(graph).run(query)`: validator, then the
engine), and the rows are compared with the expected table: in any order unless the scenario
says "in order", lists compared element by element unless it says "ignoring element order".
A scenario that expects an error passes when the tool refuses the query.

Outcomes: `pass` (expected rows, or an expected refusal), `refused` (the tool said no, with a
message, where the TCK expects rows: no wrong answer), `WRONG` (rows that differ from the
expected ones, or rows where the TCK expects an error). Scenarios that write, whose set-up is
more than CREATE patterns, or that need the TCK's side-effect bookkeeping are left out and
counted as `skipped`.

The feature files are in benchmarks/data/tck/ (openCypher TCK, Apache-2.0; see README there).

Run:  python benchmarks/cypher_tck.py [--engine embedded|grand-cypher] [--markdown FILE] [FILES]
"""

from __future__ import annotations

import argparse
import math
import re
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx

from agentlib import ConfigurationError, ToolError
from agentlib.tools.cypher import GrandCypherBackend, GraphDatabase, quote_literal
from agentlib.tools.cypher._syntax import Token, tokenize

DATA = Path(__file__).parent / "data" / "tck"
WRITES = re.compile(r"\b(CREATE|MERGE|SET|DELETE|REMOVE|FOREACH|CALL)\b", re.IGNORECASE)


@dataclass
class Scenario:
    feature: str
    name: str
    setup: list[str] = field(default_factory=list)
    parameters: dict[str, str] = field(default_factory=dict)
    query: str = ""
    expect: str = ""  # "rows", "ordered", "error", "empty", or "" (not a read scenario)
    lists_unordered: bool = False
    header: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    side_effects: bool = False


# ---- feature files --------------------------------------------------------------------------


def _table_row(line: str) -> list[str]:
    cells = line.strip()[1:-1].split("|")
    return [cell.strip() for cell in cells]


def _docstring(lines: list[str], index: int) -> tuple[str, int]:
    assert lines[index].strip() == '"""', lines[index]
    body: list[str] = []
    index += 1
    while lines[index].strip() != '"""':
        body.append(lines[index].strip())
        index += 1
    return "\n".join(body), index + 1


def _table(lines: list[str], index: int) -> tuple[list[list[str]], int]:
    rows: list[list[str]] = []
    while index < len(lines) and lines[index].strip().startswith("|"):
        rows.append(_table_row(lines[index]))
        index += 1
    return rows, index


def _expand(template: Scenario, examples: list[list[str]]) -> Iterator[Scenario]:
    header, *values = examples
    for number, row in enumerate(values, 1):
        mapping = dict(zip(header, row, strict=True))

        def fill(text: str, mapping: dict[str, str] = mapping) -> str:
            return re.sub(r"<(\w+)>", lambda m: mapping.get(m.group(1), m.group(0)), text)

        yield Scenario(
            feature=template.feature,
            name=f"{template.name} #{number}",
            setup=[fill(text) for text in template.setup],
            parameters={key: fill(value) for key, value in template.parameters.items()},
            query=fill(template.query),
            expect=template.expect,
            lists_unordered=template.lists_unordered,
            header=[fill(cell) for cell in template.header],
            rows=[[fill(cell) for cell in r] for r in template.rows],
            side_effects=template.side_effects,
        )


def parse_feature(path: Path) -> list[Scenario]:  # noqa: C901 - one pass over the steps
    lines = path.read_text(encoding="utf-8").splitlines()
    scenarios: list[Scenario] = []
    current: Scenario | None = None
    background: list[str] = []  # a Background's set-up runs before every scenario's own
    outline = False
    index = 0
    while index < len(lines):
        line = lines[index].strip()
        index += 1
        if line.startswith(("Scenario:", "Scenario Outline:")):
            outline = line.startswith("Scenario Outline:")
            current = Scenario(feature=path.stem, name=line.split(":", 1)[1].strip())
            current.setup.extend(background)
            if not outline:
                scenarios.append(current)
        elif line == "Background:":
            current = Scenario(feature=path.stem, name="Background")
        elif current is None:
            continue
        elif line in ("And having executed:", "Given having executed:"):
            text, index = _docstring(lines, index)
            current.setup.append(text)
            if current.name == "Background":
                background.append(text)
        elif line == "And parameters are:":
            table, index = _table(lines, index)
            current.parameters.update({row[0]: row[1] for row in table})
        elif line.startswith("When executing query:"):
            current.query, index = _docstring(lines, index)
        elif line.startswith("When executing control query:"):
            current.side_effects = True
            _, index = _docstring(lines, index)
        elif line.startswith(
            (
                "Then the result should be, in any order",
                "Then the result should be, in order",
                "Then the result should be (ignoring element order for lists)",
            )
        ):
            current.expect = "ordered" if ", in order" in line else "rows"
            current.lists_unordered = "ignoring element order for lists" in line
            table, index = _table(lines, index)
            current.header, current.rows = table[0], table[1:]
        elif line == "Then the result should be empty":
            current.expect = "empty"
        elif line.startswith("Then a ") or line.startswith("Then an "):
            current.expect = "error"
        elif line == "And the side effects should be:":
            current.side_effects = True
            _, index = _table(lines, index)
        elif line == "Examples:" and outline:
            table, index = _table(lines, index)
            scenarios.extend(_expand(current, table))
    return scenarios


# ---- values: the TCK's notation and the tool's results ---------------------------------------


class _Values:
    """Parses the TCK's value notation: null, numbers, 'strings', lists, maps, nodes, rels."""

    def __init__(self, text: str) -> None:
        self.text, self.index = text, 0

    def parse(self) -> Any:
        value = self.value()
        self.space()
        if self.index != len(self.text):
            raise ValueError(f"trailing text in {self.text!r}")
        return value

    def space(self) -> None:
        while self.index < len(self.text) and self.text[self.index].isspace():
            self.index += 1

    def peek(self) -> str:
        self.space()
        return self.text[self.index : self.index + 1]

    def take(self, expected: str) -> None:
        if self.peek() != expected:
            raise ValueError(f"expected {expected!r} at {self.index} in {self.text!r}")
        self.index += 1

    def name(self) -> str:
        self.space()
        if self.text[self.index] == "`":
            end = self.text.index("`", self.index + 1)
            name, self.index = self.text[self.index + 1 : end], end + 1
            return name
        match = re.compile(r"\w+").match(self.text, self.index)
        assert match, self.text
        self.index = match.end()
        return match.group()

    def properties(self) -> tuple[tuple[str, Any], ...]:
        if self.peek() != "{":
            return ()
        return tuple(sorted(self.map_items()))

    def map_items(self) -> list[tuple[str, Any]]:
        self.take("{")
        items: list[tuple[str, Any]] = []
        while self.peek() != "}":
            key = self.name()
            self.take(":")
            items.append((key, self.value()))
            if self.peek() == ",":
                self.index += 1
        self.take("}")
        return items

    def node(self) -> Any:
        self.take("(")
        labels = []
        while self.peek() == ":":
            self.index += 1
            labels.append(self.name())
        properties = self.properties()
        self.take(")")
        return ("node", frozenset(labels), properties)

    def relationship(self) -> Any:
        self.take("[")
        self.take(":")
        kind = self.name()
        properties = self.properties()
        self.take("]")
        return ("rel", kind, properties)

    def path(self) -> Any:
        self.take("<")
        nodes, relationships = [self.node()], []
        while self.peek() in ("-", "<"):
            if self.peek() == "<":
                self.index += 1
            self.take("-")
            relationships.append(self.relationship())
            self.take("-")
            if self.peek() == ">":
                self.index += 1
            nodes.append(self.node())
        self.take(">")
        return ("path", tuple(nodes), tuple(relationships))

    def value(self) -> Any:  # noqa: C901 - one branch per notation
        first = self.peek()
        if first == "(":
            return self.node()
        if first == "<":
            return self.path()
        if first == "[":
            start = self.index
            self.index += 1
            if self.peek() == ":":
                self.index = start
                return self.relationship()
            items = []
            while self.peek() != "]":
                items.append(self.value())
                if self.peek() == ",":
                    self.index += 1
            self.take("]")
            return ("list", tuple(items))
        if first == "{":
            return ("map", tuple(sorted(self.map_items())))
        if first == "'":
            end = self.index + 1
            parts = []
            while self.text[end] != "'":
                if self.text[end] == "\\":
                    end += 1
                parts.append(self.text[end])
                end += 1
            self.index = end + 1
            return ("string", "".join(parts))
        match = re.compile(r"-?(?:Infinity|NaN|\d+\.\d*(?:e-?\d+)?|\.\d+|\d+(?:e-?\d+)?)").match(
            self.text, self.index
        )
        if match:
            self.index = match.end()
            number = match.group()
            if number in ("NaN", "-NaN"):
                return ("float", "NaN")
            if "Infinity" in number:
                return ("float", float(number.replace("Infinity", "inf")))
            if re.fullmatch(r"-?\d+", number):
                return ("int", int(number))
            return ("float", float(number))
        word = self.name()
        if word == "null":
            return ("null",)
        if word in ("true", "false"):
            return ("bool", word == "true")
        raise ValueError(f"unknown value {word!r} in {self.text!r}")


def tck_value(text: str) -> Any:
    return _Values(text).parse()


def result_value(value: Any, lists_unordered: bool = False) -> Any:
    """The tool's value in the same normal form as `tck_value`."""
    if value is None:
        return ("null",)
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int):
        return ("int", value)
    if isinstance(value, float):
        return ("float", "NaN") if math.isnan(value) else ("float", value)
    if isinstance(value, str):
        return ("string", value)
    if isinstance(value, dict):
        keys = set(value)
        if keys == {"labels", "properties"}:
            return ("node", frozenset(value["labels"]), _properties(value["properties"]))
        if keys == {"type", "properties"}:
            return ("rel", value["type"], _properties(value["properties"]))
        if keys == {"nodes", "relationships"}:
            nodes = tuple(result_value(node) for node in value["nodes"])
            relationships = tuple(result_value(item) for item in value["relationships"])
            return ("path", nodes, relationships)
        return ("map", tuple(sorted((str(k), result_value(v)) for k, v in value.items())))
    if isinstance(value, (list, tuple)):
        items = tuple(result_value(item, lists_unordered) for item in value)
        return ("list", tuple(sorted(items, key=repr)) if lists_unordered else items)
    return ("unknown", repr(value))


def _properties(properties: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted((k, result_value(v)) for k, v in properties.items() if v is not None))


def _unordered_lists(value: Any) -> Any:
    if isinstance(value, tuple) and value and value[0] == "list":
        return ("list", tuple(sorted((_unordered_lists(item) for item in value[1]), key=repr)))
    return value


# ---- set-up: CREATE patterns into a NetworkX graph ------------------------------------------


class SetupNotSupported(Exception):
    """The set-up is more than CREATE patterns of literals."""


class _Create:
    def __init__(self, graph: nx.MultiDiGraph, tokens: Sequence[Token]) -> None:
        self.graph, self.tokens, self.index = graph, list(tokens), 0
        self.variables: dict[str, Any] = {}

    def peek(self, offset: int = 0) -> Token | None:
        position = self.index + offset
        return self.tokens[position] if position < len(self.tokens) else None

    def take(self, symbol: str | None = None) -> Token:
        token = self.peek()
        if token is None or (symbol is not None and not token.is_symbol(symbol)):
            raise SetupNotSupported(f"expected {symbol!r} at {token}")
        self.index += 1
        return token

    def run(self) -> None:
        while self.peek() is not None:
            word = self.take()
            if word.upper != "CREATE":
                raise SetupNotSupported(f"set-up clause {word.text!r}")
            self.pattern()
            while self.peek() is not None and self.peek().is_symbol(","):  # type: ignore[union-attr]
                self.take(",")
                self.pattern()

    def literal(self) -> Any:
        token = self.take()
        if token.is_symbol("-"):
            return -self.literal()
        if token.kind == "number":
            return float(token.text) if any(c in token.text for c in ".eE") else int(token.text)
        if token.kind == "string":
            return token.text
        if token.upper in ("TRUE", "FALSE"):
            return token.upper == "TRUE"
        if token.upper == "NULL":
            return None
        if token.is_symbol("["):
            items = []
            while not self.peek().is_symbol("]"):  # type: ignore[union-attr]
                items.append(self.literal())
                if self.peek().is_symbol(","):  # type: ignore[union-attr]
                    self.take(",")
            self.take("]")
            return items
        raise SetupNotSupported(f"value {token.text!r}")

    def properties(self) -> dict[str, Any]:
        if not self.peek() or not self.peek().is_symbol("{"):  # type: ignore[union-attr]
            return {}
        self.take("{")
        found: dict[str, Any] = {}
        while not self.peek().is_symbol("}"):  # type: ignore[union-attr]
            key = self.take().text
            self.take(":")
            value = self.literal()
            if value is not None:
                found[key] = value
            if self.peek().is_symbol(","):  # type: ignore[union-attr]
                self.take(",")
        self.take("}")
        return found

    def labels(self) -> set[str]:
        labels = set()
        while self.peek() is not None and self.peek().is_symbol(":"):  # type: ignore[union-attr]
            self.take(":")
            labels.add(self.take().text)
        return labels

    def node(self) -> Any:
        self.take("(")
        variable = None
        if self.peek() is not None and self.peek().kind in ("word", "name"):  # type: ignore[union-attr]
            variable = self.take().text
        labels = self.labels()
        properties = self.properties()
        self.take(")")
        if variable is not None and variable in self.variables:
            if labels or properties:
                raise SetupNotSupported("a bound node with new labels or properties")
            return self.variables[variable]
        node = self.graph.number_of_nodes()
        self.graph.add_node(node, __labels__=labels, **properties)
        if variable is not None:
            self.variables[variable] = node
        return node

    def pattern(self) -> None:
        if self.peek(1) is not None and self.peek(1).is_symbol("="):  # type: ignore[union-attr]
            raise SetupNotSupported("named paths")
        left = self.node()
        while self.peek() is not None and self.peek().is_symbol("-", "<"):  # type: ignore[union-attr]
            incoming = self.peek().is_symbol("<")  # type: ignore[union-attr]
            if incoming:
                self.take("<")
            self.take("-")
            self.take("[")
            if self.peek().kind in ("word", "name"):  # type: ignore[union-attr]
                self.variables[self.take().text] = None
            kind = self.labels()
            properties = self.properties()
            self.take("]")
            self.take("-")
            if not incoming:
                self.take(">")
            right = self.node()
            source, target = (right, left) if incoming else (left, right)
            self.graph.add_edge(source, target, __labels__=kind, **properties)
            left = right


def build_graph(setup: list[str]) -> nx.MultiDiGraph:
    graph = nx.MultiDiGraph()
    for text in setup:
        _Create(graph, tokenize(text)).run()
    return graph


# ---- running ---------------------------------------------------------------------------------


def _substitute(query: str, parameters: dict[str, str]) -> str:
    for name, text in parameters.items():
        value = _python(tck_value(text))
        query = re.sub(rf"\${name}\b", lambda _m, v=value: quote_literal(v), query)
    return query


def _python(value: Any) -> Any:
    kind = value[0]
    if kind == "null":
        return None
    if kind == "list":
        return [_python(item) for item in value[1]]
    if kind in ("map", "node", "rel", "path"):
        raise SetupNotSupported("a map, node or path parameter")
    return value[1]


def _backend(engine: str, graph: nx.MultiDiGraph) -> Any:
    if engine == "grand-cypher":
        return GrandCypherBackend(graph, isolation="none")
    return graph


def run_scenario(scenario: Scenario, engine: str) -> tuple[str, str]:
    if not scenario.expect or scenario.side_effects or WRITES.search(scenario.query):
        return "skipped", "writes or has side effects"
    try:
        graph = build_graph(scenario.setup)
        query = _substitute(scenario.query, scenario.parameters)
    except SetupNotSupported as exc:
        return "skipped", f"set-up: {exc}"
    database = None
    try:
        database = GraphDatabase(_backend(engine, graph), timeout=20.0, max_rows=1000)
        result = database.run(query)
    except (ToolError, ConfigurationError) as exc:
        if scenario.expect == "error":
            return "refused as expected", ""
        return "refused", str(exc).splitlines()[0][:160]
    finally:
        if database is not None:
            database.close()
    if scenario.expect == "error":
        return "WRONG", f"answered {result.rows[:3]} where an error is expected"
    expected = [
        tuple(
            _unordered_lists(tck_value(cell)) if scenario.lists_unordered else tck_value(cell)
            for cell in row
        )
        for row in scenario.rows
    ]
    if scenario.expect != "empty" and result.columns != scenario.header:
        return "WRONG", f"columns {result.columns} where {scenario.header} are expected"
    got = [
        tuple(result_value(row.get(column), scenario.lists_unordered) for column in result.columns)
        for row in result.rows
    ]
    same = got == expected if scenario.expect == "ordered" else Counter(got) == Counter(expected)
    if same:
        return "pass", ""
    return "WRONG", f"got {got[:4]} expected {expected[:4]}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=["embedded", "grand-cypher"], default="embedded")
    parser.add_argument("--markdown", type=Path, help="write the per-feature table here")
    parser.add_argument("--verbose", action="store_true", help="print every non-pass")
    parser.add_argument("features", nargs="*", type=Path)
    arguments = parser.parse_args(argv)
    paths = arguments.features or sorted(DATA.glob("*.feature"))
    started = time.perf_counter()
    table: list[tuple[str, Counter[str]]] = []
    details: list[str] = []
    for path in paths:
        counts: Counter[str] = Counter()
        for scenario in parse_feature(path):
            outcome, reason = run_scenario(scenario, arguments.engine)
            counts[outcome] += 1
            if outcome in ("refused", "WRONG"):
                details.append(f"{path.stem} {scenario.name}: {outcome}: {reason}")
            elif arguments.verbose and outcome == "skipped":
                details.append(f"{path.stem} {scenario.name}: skipped: {reason}")
        table.append((path.stem, counts))
    elapsed = time.perf_counter() - started
    lines = _markdown(table, arguments.engine, elapsed)
    print("\n".join(lines))
    if arguments.verbose:
        print("\n".join(details))
    if arguments.markdown:
        arguments.markdown.write_text("\n".join(lines) + "\n\n" + _details(details), "utf-8")
    return 0


def _markdown(table: list[tuple[str, Counter[str]]], engine: str, elapsed: float) -> list[str]:
    lines = [
        f"Engine: {engine}; {elapsed:.1f} s.",
        "",
        "| feature | run | answered right | answered WRONG | refused (rows expected) "
        "| refused (error expected) | skipped | right of answered |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, counts in [*table, ("**all**", sum((c for _, c in table), Counter()))]:
        run = sum(counts[key] for key in ("pass", "WRONG", "refused", "refused as expected"))
        answered = counts["pass"] + counts["WRONG"]
        share = f"{100 * counts['pass'] / answered:.1f} %" if answered else "-"
        lines.append(
            f"| {name} | {run} | {counts['pass']} | {counts['WRONG']} | {counts['refused']} "
            f"| {counts['refused as expected']} | {counts['skipped']} | {share} |"
        )
    return lines


def _details(details: list[str]) -> str:
    if not details:
        return ""
    return "Every scenario that did not pass:\n\n" + "\n".join(f"- {d}" for d in details) + "\n"


if __name__ == "__main__":
    sys.exit(main())
