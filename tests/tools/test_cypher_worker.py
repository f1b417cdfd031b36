"""Queries run in a child process that is killed on timeout, so a blow-up cannot hang the host."""

from __future__ import annotations

import os
from pathlib import Path

import networkx as nx
import pytest

from agentlib import ToolError
from agentlib.tools.cypher import (
    GraphDatabase,
    LadybugBackend,
    graph_from_records,
    load_sample_graph,
)


def _worker_children() -> list[int]:
    """Child processes of this test process that run the Cypher worker (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == os.getpid() and b"cypher/_worker" in command:
            found.append(int(entry.name))
    return found


def _dense_graph(size: int) -> nx.MultiDiGraph:
    nodes = [{"id": index, "label": "N", "index": index} for index in range(size)]
    edges = [
        {"source": a, "target": b, "type": "TO"} for a in range(size) for b in range(size) if a != b
    ]
    return graph_from_records(nodes, edges)


needs_proc = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")


@needs_proc
def test_a_blow_up_pattern_is_stopped_and_the_worker_replaced() -> None:
    # 25 * 24 ** 6 = 4.8 billion paths before COUNT can answer: minutes of work on either
    # embedded engine.
    # Whichever bound comes first stops it: the timeout (the worker is killed) or, on a fast
    # machine, the engine's memory cap (ladybug's buffer pool fills within the 2 s).
    database = GraphDatabase(_dense_graph(25), timeout=2.0)
    try:
        with pytest.raises(
            ToolError, match=r"took longer than 2 s and was stopped|buffer pool"
        ) as info:
            database.run(
                "MATCH (a:N)-[:TO]->(b:N)-[:TO]->(c:N)-[:TO]->(d:N)-[:TO]->(e:N)-[:TO]->(f:N)"
                "-[:TO]->(g:N) RETURN COUNT(a)"
            )
        if "took longer" in str(info.value):
            assert _worker_children() == []  # killed, not left running in the background
        result = database.run("MATCH (a:N)-[:TO]->(b:N) WHERE a.index = 0 RETURN COUNT(b) AS n")
        assert result.rows == [{"n": 24}]
        assert len(_worker_children()) == 1
    finally:
        database.close()
    assert _worker_children() == []


def test_worker_answers_match_in_process_answers() -> None:
    query = (
        "MATCH (p:Person)-[:DIRECTED]->(m:Movie)-[:IN_GENRE]->(g:Genre) "
        "WHERE g.name = 'Crime' RETURN p.name, COUNT(m) AS n ORDER BY n DESC, p.name"
    )
    graph = load_sample_graph()
    isolated = GraphDatabase(graph, timeout=30.0)
    try:
        assert isolated.run(query) == GraphDatabase(graph, timeout=None).run(query)
    finally:
        isolated.close()


async def test_agent_close_stops_the_worker() -> None:
    database = GraphDatabase(load_sample_graph(), timeout=30.0)
    result = await database.arun("MATCH (g:Genre) RETURN COUNT(g) AS n")
    assert result.rows == [{"n": 13}]
    await database.aclose()
    if Path("/proc/self/stat").exists():
        assert _worker_children() == []


def test_the_engine_memory_is_bounded() -> None:
    # 121 ** 3 = 1.8 million strings collected into one list: more than a 64 MiB buffer pool.
    database = GraphDatabase(LadybugBackend(load_sample_graph(), memory_limit=64 << 20), timeout=60)
    try:
        with pytest.raises(ToolError, match="buffer pool is full"):
            database.run(
                "MATCH (a:Person), (b:Person), (c:Person) "
                "RETURN collect(a.name + b.name + c.name) AS names"
            )
        assert database.run("MATCH (g:Genre) RETURN count(g) AS n").rows == [{"n": 13}]
    finally:
        database.close()
