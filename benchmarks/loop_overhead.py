"""Framework time per loop step, and `import agentlib` time.

Runs agents on `ScriptedModel` with two trivial tools, so nearly all the time measured is the
framework's own: prompt rendering, step validation, tool dispatch, bookkeeping.

    python benchmarks/loop_overhead.py [--steps 2000] [--runs 5]

Targets (issue 2): median <= 500 µs per step; import <= 150 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import re
import statistics
import subprocess
import sys
import time

from agentlib import Agent, ScriptedModel, tool
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
async def echo(text: str) -> str:
    """Echo the text.

    Args:
        text: What to echo.
    """
    return text


def script(steps: int) -> list[dict[str, object]]:
    replies: list[dict[str, object]] = []
    for index in range(steps - 1):
        if index % 2:
            replies.append(call("add", "adding", a=index, b=1))
        else:
            replies.append(call("echo", "echoing", text=f"step {index}"))
    replies.append(final("done"))
    return replies


async def measure_run(steps_per_run: int) -> float:
    agent = Agent(
        ScriptedModel(script(steps_per_run), context_window=1_000_000),
        tools=[add, echo],
        max_steps=steps_per_run,
        max_repeated_calls=steps_per_run,
    )
    began = time.perf_counter()
    result = await agent.arun("benchmark")
    elapsed = time.perf_counter() - began
    assert result.ok, result.stop_reason
    return elapsed / steps_per_run


def import_time_ms(repeats: int = 7) -> float:
    totals = []
    for _ in range(repeats):
        stderr = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", "import agentlib"],
            capture_output=True,
            text=True,
            check=True,
        ).stderr
        line = [row for row in stderr.splitlines() if re.search(r"\|\s+agentlib$", row)][-1]
        totals.append(int(line.split("|")[1]) / 1000)
    return statistics.median(totals)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=2000, help="steps in total")
    parser.add_argument("--runs", type=int, default=20, help="agent runs the steps are split into")
    args = parser.parse_args()
    per_run = max(2, args.steps // args.runs)
    asyncio.run(measure_run(10))  # warm caches (step schema, prompt template)
    samples = [asyncio.run(measure_run(per_run)) for _ in range(args.runs)]
    median_us = statistics.median(samples) * 1e6
    print(
        f"python {platform.python_version()} on {platform.machine()}, {per_run * args.runs} steps"
    )
    print(f"loop overhead: median {median_us:.0f} µs/step over {args.runs} runs of {per_run} steps")
    print(f"  (min {min(samples) * 1e6:.0f}, max {max(samples) * 1e6:.0f} µs/step)")
    print(f"import agentlib: median {import_time_ms():.0f} ms (python -X importtime, 7 runs)")


if __name__ == "__main__":
    main()
