"""Framework time per loop step, and `import agentlib` time.

Runs agents on `ScriptedModel` with two trivial tools, so nearly all the time measured is the
framework's own: prompt rendering, step validation, tool dispatch, bookkeeping.

    python benchmarks/loop_overhead.py [--steps 2000] [--runs 5] [--tracing]

Targets (issue 2): median <= 500 µs per step; import <= 150 ms. With `--tracing`, the same
runs are measured again with OpenTelemetry spans on (an SDK `TracerProvider` with a
`SimpleSpanProcessor` into an `InMemorySpanExporter`), interleaved with untraced runs and in
CPU time, so both see the same machine load (issue 18: tracing off must cost nothing
measurable).
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
from collections.abc import Callable
from typing import Any

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


async def measure_run(
    steps_per_run: int, tracing: Any = False, clock: Callable[[], float] = time.perf_counter
) -> float:
    agent = Agent(
        ScriptedModel(script(steps_per_run), context_window=1_000_000),
        tools=[add, echo],
        max_steps=steps_per_run,
        max_repeated_calls=steps_per_run,
        tracing=tracing,
    )
    began = clock()
    result = await agent.arun("benchmark")
    elapsed = clock() - began
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
    parser.add_argument(
        "--tracing", action="store_true", help="also measure with spans to an in-memory exporter"
    )
    args = parser.parse_args()
    per_run = max(2, args.steps // args.runs)
    asyncio.run(measure_run(10))  # warm caches (step schema, prompt template)
    if args.tracing:
        measure_tracing(per_run, args.runs)
    samples = [asyncio.run(measure_run(per_run)) for _ in range(args.runs)]
    median_us = statistics.median(samples) * 1e6
    print(
        f"python {platform.python_version()} on {platform.machine()}, {per_run * args.runs} steps"
    )
    print(f"loop overhead: median {median_us:.0f} µs/step over {args.runs} runs of {per_run} steps")
    print(f"  (min {min(samples) * 1e6:.0f}, max {max(samples) * 1e6:.0f} µs/step)")
    print(f"import agentlib: median {import_time_ms():.0f} ms (python -X importtime, 7 runs)")


def measure_tracing(per_run: int, runs: int) -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    provider = TracerProvider()
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    asyncio.run(measure_run(10, provider))  # warm the SDK
    off: list[float] = []
    on: list[float] = []
    spans = 0
    # CPU time of this process: on a shared machine, wall time mostly measures the neighbours.
    for _ in range(runs):
        off.append(asyncio.run(measure_run(per_run, clock=time.process_time)))
        exporter.clear()
        on.append(asyncio.run(measure_run(per_run, provider, clock=time.process_time)))
        spans = len(exporter.get_finished_spans())
    off_us, on_us = statistics.median(off) * 1e6, statistics.median(on) * 1e6
    print(f"tracing off: median {off_us:.0f} µs/step CPU (interleaved with the traced runs)")
    print(
        f"tracing on (in-memory exporter): median {on_us:.0f} µs/step CPU, "
        f"+{on_us - off_us:.0f} µs/step; {spans} spans per run of {per_run} steps"
    )


if __name__ == "__main__":
    main()
