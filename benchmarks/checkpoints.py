"""Per-step cost of checkpointing a run (`Agent(checkpoints=...)`) against a plain run.

The agents of `loop_overhead.py` (`ScriptedModel`, two trivial tools), run with no store, an
`InMemoryStore`, and a `SQLStore` on a SQLite file (WAL, `synchronous=NORMAL`). Runs of the
three kinds alternate, so all see the same machine load; wall time per step, since the
checkpoint writes run in worker threads and wait on the disk.

    python benchmarks/checkpoints.py [--steps 50] [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import runpy
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from agentlib import Agent, ScriptedModel
from agentlib.memory import InMemoryStore, SQLStore

BENCH = runpy.run_path(str(Path(__file__).with_name("loop_overhead.py")), run_name="bench")


async def per_step(steps: int, store: Any) -> float:
    agent = Agent(
        ScriptedModel(BENCH["script"](steps), context_window=1_000_000),
        tools=[BENCH["add"], BENCH["echo"]],
        max_steps=steps,
        max_repeated_calls=steps,
        checkpoints=store,
    )
    began = time.perf_counter()
    result = await agent.arun("benchmark")
    elapsed = time.perf_counter() - began
    assert result.ok, result.stop_reason
    return elapsed / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=50, help="steps per run")
    parser.add_argument("--runs", type=int, default=5, help="runs of each kind")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        stores: dict[str, Any] = {
            "no store": None,
            "InMemoryStore": InMemoryStore(),
            "SQLStore (SQLite file)": SQLStore(f"sqlite:///{folder}/runs.db"),
        }
        samples: dict[str, list[float]] = {name: [] for name in stores}
        asyncio.run(per_step(10, None))  # warm caches
        for _ in range(args.runs):
            for name, store in stores.items():
                samples[name].append(asyncio.run(per_step(args.steps, store)))
        print(
            f"python {platform.python_version()} on {platform.machine()}, "
            f"{args.runs} runs of {args.steps} steps each"
        )
        plain = statistics.median(samples["no store"]) * 1e6
        for name, values in samples.items():
            median = statistics.median(values) * 1e6
            print(f"{name:24} median {median:7.0f} µs/step  (+{median - plain:.0f})")


if __name__ == "__main__":
    main()
