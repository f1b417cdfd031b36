"""Many concurrent agent runs in one process against a model with simulated latency.

Each run takes 3 steps (two tool calls and an answer) against a `FunctionModel` that sleeps
`--latency` seconds per call, like a remote server would. The target (issue 10): 1,000
concurrent runs finish within 3x the time of a single run. Event-loop lag is measured by a
ticker that asks to wake every 10 ms and records how late it wakes.

    python benchmarks/concurrency.py [--runs 1000] [--latency 0.1]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Sequence

from agentlib import Agent, FunctionModel, Message, OutputSchema, tool
from agentlib.models.testing import call, final


@tool
def add(a: int, b: int) -> int:
    """Add two integers.

    Args:
        a: The first number.
        b: The second number.
    """
    return a + b


@tool
async def lookup(key: str) -> str:
    """Look a key up.

    Args:
        key: The key.
    """
    return key.upper()


def make_agent(latency: float) -> Agent[str]:
    async def respond(messages: Sequence[Message], output: OutputSchema | None) -> object:
        await asyncio.sleep(latency)
        steps = sum(1 for message in messages if message.role == "assistant")
        if steps == 0:
            return call("lookup", "look it up", key="x")
        if steps == 1:
            return call("add", "add", a=1, b=2)
        return final("done")

    return Agent(FunctionModel(respond), tools=[add, lookup])


async def lag_monitor(stop: asyncio.Event, lags: list[float], interval: float = 0.01) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        expected = loop.time() + interval
        await asyncio.sleep(interval)
        lags.append(max(0.0, loop.time() - expected))


async def measure(runs: int, latency: float) -> tuple[float, list[float]]:
    agent = make_agent(latency)
    stop = asyncio.Event()
    lags: list[float] = []
    monitor = asyncio.create_task(lag_monitor(stop, lags))
    began = time.perf_counter()
    results = await asyncio.gather(*(agent.arun(f"task {i}") for i in range(runs)))
    elapsed = time.perf_counter() - began
    stop.set()
    await monitor
    assert all(result.ok for result in results)
    return elapsed, lags


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.1)
    args = parser.parse_args()
    single, _ = asyncio.run(measure(1, args.latency))
    total, lags = asyncio.run(measure(args.runs, args.latency))
    lags_ms = sorted(lag * 1000 for lag in lags)
    p99 = lags_ms[int(len(lags_ms) * 0.99) - 1] if lags_ms else 0.0
    print(
        f"single run: {single:.3f} s "
        f"({args.latency * 1000:.0f} ms simulated model latency, 3 steps)"
    )
    print(
        f"{args.runs} concurrent runs: {total:.3f} s = {total / single:.2f}x a single run "
        "(target <= 3x)"
    )
    print(
        f"event-loop lag: median {statistics.median(lags_ms):.1f} ms, p99 {p99:.1f} ms, "
        f"max {lags_ms[-1]:.1f} ms over {len(lags_ms)} ticks"
    )


if __name__ == "__main__":
    main()
