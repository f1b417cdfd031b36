"""Cost of running Cypher queries in a killable worker process, and why it is needed.

    python benchmarks/cypher_worker.py [--engine embedded|grand-cypher]

Prints: worker start-up (spawn + import the engine + load the graph), per-query latency in
this process and through the worker on the sample graph, how a 3-hop pattern grows on complete
graphs (the blow-up the timeout guards against), and how soon a timed-out query returns control.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from typing import Any

from agentlib import ToolError
from agentlib.tools.cypher import (
    GrandCypherBackend,
    GraphDatabase,
    LadybugBackend,
    graph_from_records,
    load_sample_graph,
)

QUERY = (
    "MATCH (p:Person)-[:ACTED_IN]->(m:Movie)-[:IN_GENRE]->(g:Genre) "
    "WHERE g.name = 'Drama' RETURN p.name, COUNT(m) AS n ORDER BY n DESC LIMIT 5"
)


def timed(function, repeat: int = 5) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def dense(size: int):
    nodes = [{"id": i, "label": "N"} for i in range(size)]
    edges = [
        {"source": a, "target": b, "type": "TO"} for a in range(size) for b in range(size) if a != b
    ]
    return graph_from_records(nodes, edges)


ENGINE = "embedded"


def database_for(graph: Any, timeout: float | None) -> GraphDatabase:
    isolation = "process" if timeout is not None else "none"
    if ENGINE == "grand-cypher":
        return GraphDatabase(GrandCypherBackend(graph, isolation=isolation), timeout=timeout)
    return GraphDatabase(LadybugBackend(graph, isolation=isolation), timeout=timeout)


def main() -> None:
    global ENGINE
    parser = argparse.ArgumentParser()
    parser.add_argument("--engine", choices=["embedded", "grand-cypher"], default="embedded")
    ENGINE = parser.parse_args().engine
    print(f"engine: {ENGINE}")
    graph = load_sample_graph()
    in_process = database_for(graph, None)
    worker = database_for(graph, 30.0)
    start = time.perf_counter()
    worker.run("MATCH (g:Genre) RETURN g.name LIMIT 1")
    print(f"worker start-up + first query: {time.perf_counter() - start:.3f} s")
    local = timed(lambda: in_process.run(QUERY)) * 1000
    isolated = timed(lambda: worker.run(QUERY)) * 1000
    print(f"sample query, in process:   {local:.1f} ms (median of 5)")
    print(f"sample query, via worker:   {isolated:.1f} ms (median of 5)")
    worker.close()

    pattern = "MATCH (a:N)-[:TO]->(b:N)-[:TO]->(c:N)-[:TO]->(d:N) RETURN COUNT(a) AS n"
    for size in (6, 9, 12):
        database = database_for(dense(size), None)
        seconds = timed(lambda database=database: database.run(pattern), repeat=1)
        print(f"3-hop COUNT on a complete graph of {size:2d} nodes: {seconds:7.3f} s")

    guarded = database_for(dense(25), 2.0)
    guarded.run("MATCH (a:N) RETURN COUNT(a) AS n")  # start the worker first
    start = time.perf_counter()
    with contextlib.suppress(ToolError):
        guarded.run(pattern.replace("(d:N)", "(d:N)-[:TO]->(e:N)-[:TO]->(f:N)-[:TO]->(g:N)"))
    back = time.perf_counter() - start
    print(f"6-hop COUNT on 25 nodes with timeout=2.0: control back after {back:.3f} s")
    start = time.perf_counter()
    guarded.run("MATCH (a:N) RETURN COUNT(a) AS n")
    print(f"next query (fresh worker): {time.perf_counter() - start:.3f} s")
    guarded.close()


if __name__ == "__main__":
    main()
