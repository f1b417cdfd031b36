"""Gold queries of a public text-to-SQL data set through the SQL tool, against plain sqlite3.

    python benchmarks/sql_gold_queries.py
    python benchmarks/sql_gold_queries.py --dataset geography.json --sqlite geography.sqlite

Each gold query (its variables filled with the data set's example values) runs twice: through
plain `sqlite3` on the same file, and through `SQLDatabase.run_sql` (validator + read-only
worker). A query counts as:

- `same rows`: both ran and returned the same rows (as multisets; in order when the query
  has an ORDER BY);
- `different rows`: both ran and disagree (a wrong answer: must be 0);
- `false rejection`: sqlite3 runs it and the tool refuses it (must be 0);
- `both refuse`: the gold query is broken (sqlite3 refuses it too).

The database file's checksum is compared before and after: no query may write.

The committed data (`benchmarks/data/advising_gold.json`) is a subset of the Advising data set
from the text2sql-data collection, CC BY 4.0; its database is not public, so the schema is
filled with generated rows (deterministic, values drawn from the literals the queries use, so
that filters and joins match). `--dataset` reads a text2sql-data JSON file of your own copy
(GeoQuery's `geography.json`, for instance, whose licence does not let us commit it) and runs
it against `--sqlite`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import sqlite3
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from agentlib import ToolError
from agentlib.tools.sql import SQLDatabase

DATA = Path(__file__).parent / "data" / "advising_gold.json"
ROWS_PER_TABLE = 200
_TYPES = {"int": "INTEGER", "float": "REAL", "varchar": "TEXT", "time": "TEXT"}


def load_queries(path: Path) -> tuple[list[str], dict[str, Any] | None]:
    """The instantiated gold queries of a data file, and its schema when it carries one."""
    document = json.loads(path.read_text("utf-8"))
    if isinstance(document, dict):
        entries = document["queries"]
        schema = document.get("tables")
    else:  # the text2sql-data format: a list of {"sql": [...], "variables": [...]}
        entries = [
            {
                "sql": sql,
                "variables": {item["name"]: item["example"] for item in entry["variables"]},
            }
            for entry in document
            for sql in entry["sql"]
        ]
        schema = None
    queries = []
    for entry in entries:
        sql = entry["sql"]
        for name, value in entry["variables"].items():
            sql = re.sub(rf"\b{re.escape(name)}\b", value, sql)
        queries.append(sql)
    return queries, schema


def _literals(queries: list[str]) -> tuple[list[str], list[int]]:
    strings = sorted({m for q in queries for m in re.findall(r'"%?([^"%]+)%?"', q)})
    numbers = sorted({int(m) for q in queries for m in re.findall(r"(?<![\w.])(\d+)(?![\w.])", q)})
    return strings, numbers


def _compared(queries: list[str]) -> dict[str, list[str]]:
    """Column name (lower case) -> the literal values the queries compare it with."""
    pattern = r'\.(\w+)\s*(?:=|<>|<|>=|LIKE)\s*(?:"%?([^"%]+)%?"|(\d+))'
    values: dict[str, set[str]] = {}
    for query in queries:
        for column, text, number in re.findall(pattern, query):
            values.setdefault(column.lower(), set()).add(text or number)
    return {column: sorted(found) for column, found in values.items()}


def build_database(path: Path, tables: dict[str, list[list[str]]], queries: list[str]) -> None:
    """Create the schema and fill it with deterministic rows drawn from the queries' literals.

    A column the queries compare with literals takes one of those values in most rows, so that
    their filters match; other columns take any literal of the right kind.
    """
    strings, numbers = _literals(queries)
    compared = _compared(queries)
    generator = random.Random(20181)
    connection = sqlite3.connect(path)
    for table, columns in tables.items():
        definition = ", ".join(
            f"{name} {_TYPES.get(kind.split('(')[0], 'TEXT')}" for name, kind in columns
        )
        connection.execute(f"CREATE TABLE {table} ({definition})")
        rows = []
        for _ in range(ROWS_PER_TABLE):
            row: list[object] = []
            for name, kind in columns:
                lowered = name.lower()
                known = [
                    value
                    for value in compared.get(lowered, [])
                    if value.isdigit() or not kind.startswith("int")
                ]
                if known and not lowered.endswith("id") and generator.random() < 0.7:
                    value = generator.choice(known)
                    row.append(int(value) if kind.startswith("int") else value)
                elif lowered.endswith("id") or lowered in ("semester", "offering_id"):
                    row.append(
                        generator.randint(1, 8)
                        if kind.startswith("int")
                        else generator.choice(strings)
                    )
                elif lowered == "year":
                    row.append(generator.choice([2016, 2017]))
                elif kind.startswith(("int", "float")):
                    row.append(generator.choice(numbers))
                elif lowered == "number":
                    row.append(str(generator.choice(numbers)))
                else:
                    row.append(generator.choice(strings))
            rows.append(tuple(row))
        marks = ", ".join("?" for _ in columns)
        connection.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)
    connection.commit()
    connection.close()


def _normal(value: Any) -> Any:
    return float(f"{value:.12g}") if isinstance(value, float) else value


def _rows(rows: list[Any], ordered: bool) -> list[Any]:
    normal = [tuple(_normal(v) for v in row) for row in rows]
    return normal if ordered else sorted(normal, key=repr)


def run(queries: list[str], database: Path) -> Counter[str]:
    """Classify every query; print the ones that are not `same rows` or `both refuse`."""
    checksum = hashlib.sha256(database.read_bytes()).hexdigest()
    plain = sqlite3.connect(database)
    tool = SQLDatabase(f"sqlite:///{database}", query_mode="sql", row_limit=100_000, timeout=30)
    outcomes: Counter[str] = Counter()
    try:
        for index, sql in enumerate(queries):
            try:
                expected: list[Any] | None = plain.execute(sql).fetchall()
            except sqlite3.Error:
                expected = None
            try:
                got: list[Any] | None = tool.run_sql(sql).rows
                refusal = ""
            except ToolError as error:
                got, refusal = None, str(error)
            ordered = "ORDER BY" in sql.upper()
            if expected is None:
                outcome = "both refuse" if got is None else "tool runs a query sqlite3 refuses"
            elif got is None:
                outcome = "false rejection"
            elif _rows(expected, ordered) == _rows([tuple(r) for r in got], ordered):
                outcome = "same rows" + (" (non-empty)" if expected else " (both empty)")
            else:
                outcome = "different rows"
            outcomes[outcome] += 1
            if not outcome.startswith(("same rows", "both refuse")):
                print(f"[{index}] {outcome}: {sql}\n    {refusal}")
    finally:
        tool.close()
        plain.close()
    unchanged = hashlib.sha256(database.read_bytes()).hexdigest() == checksum
    outcomes["database unchanged" if unchanged else "DATABASE CHANGED"] += 1
    return outcomes


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", type=Path, default=DATA)
    parser.add_argument("--sqlite", type=Path, help="the data set's SQLite database")
    arguments = parser.parse_args()
    queries, schema = load_queries(arguments.dataset)
    with tempfile.TemporaryDirectory() as directory:
        database = arguments.sqlite
        if database is None:
            if schema is None:
                parser.error("this data file has no schema: pass its database with --sqlite")
            database = Path(directory) / "gold.db"
            build_database(database, schema, queries)
        outcomes = run(queries, database)
    print(f"{len(queries)} gold queries from {arguments.dataset.name}:")
    for name, count in sorted(outcomes.items()):
        print(f"  {name}: {count}")


if __name__ == "__main__":
    main()
