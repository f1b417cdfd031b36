"""What conversations cost: per-step saving, concurrent writers, history selection.

    python benchmarks/memory_store.py [--steps 10] [--runs 20] [--writers 4] [--writes 100]

1. Loop time per step with and without a conversation in a SQLite file (each finished step
   is one transaction, so the difference is the price of "a crash loses at most one step").
2. Several processes appending turns to one SQLite file at once: writes per second, and a
   check that every write is there.
3. Choosing the history of a 1,000-turn conversation with the default `BudgetMemory`.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import tempfile
import time
from pathlib import Path

from agentlib import Agent, ScriptedModel, tool
from agentlib.memory import Conversation, SQLStore, Turn
from agentlib.models.testing import call, final


@tool
def lookup(key: str) -> str:
    """Look a key up.

    Args:
        key: The key.
    """
    return f"value of {key}"


async def per_step(steps: int, runs: int, url: str | None) -> float:
    """Median seconds per step over `runs` runs of `steps` steps."""
    store = SQLStore(url) if url else None
    timings = []
    for run in range(runs):
        script = [call("lookup", key=str(n)) for n in range(steps - 1)] + [final("done")]
        agent = Agent(ScriptedModel(script), tools=[lookup], max_steps=steps)
        conversation = Conversation(f"run-{run}", store=store) if store else None
        began = time.perf_counter()
        await agent.arun("benchmark", conversation=conversation)
        timings.append((time.perf_counter() - began) / steps)
    if store:
        store.close()
    return statistics.median(timings)


def writer(url: str, worker: int, writes: int) -> None:
    store = SQLStore(url)
    conversation = Conversation("shared", store=store)
    for number in range(writes):
        turn = Turn(
            task=f"worker {worker} write {number}", answer=number, stop_reason="final_answer"
        )
        store.save_turn(conversation, turn)
    store.close()


def concurrent_writers(url: str, writers: int, writes: int) -> tuple[float, int]:
    SQLStore(url).close()
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=writer, args=(url, w, writes)) for w in range(writers)]
    began = time.perf_counter()
    for process in processes:
        process.start()
    for process in processes:
        process.join()
    elapsed = time.perf_counter() - began
    store = SQLStore(url)
    loaded = store.load("shared")
    store.close()
    assert loaded is not None and not loaded.problems
    return elapsed, len(loaded.turns)


async def history_selection(turns: int) -> float:
    conversation = Conversation(
        turns=[
            Turn(task=f"question {n} " + "x" * 200, answer="y" * 300, stop_reason="final_answer")
            for n in range(turns)
        ]
    )
    model = ScriptedModel([])
    began = time.perf_counter()
    for _ in range(100):
        await conversation.ahistory(model, "next")
    return (time.perf_counter() - began) / 100


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--writes", type=int, default=100)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'chat.db'}"
        bare = asyncio.run(per_step(options.steps, options.runs, None))
        saved = asyncio.run(per_step(options.steps, options.runs, url))
        print(f"loop time per step, no conversation:         {bare * 1e6:8.0f} µs")
        print(f"loop time per step, conversation in SQLite:  {saved * 1e6:8.0f} µs")
        print(f"cost of saving each step:                    {(saved - bare) * 1e6:8.0f} µs")
        other = f"sqlite:///{Path(folder) / 'concurrent.db'}"
        elapsed, stored = concurrent_writers(other, options.writers, options.writes)
        expected = options.writers * options.writes
        print(
            f"{options.writers} processes x {options.writes} turns into one SQLite file: "
            f"{stored}/{expected} stored, {expected / elapsed:.0f} writes/s "
            f"({elapsed:.2f} s, process start-up included)"
        )
    selection = asyncio.run(history_selection(1000))
    print(f"BudgetMemory history of a 1,000-turn conversation: {selection * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
