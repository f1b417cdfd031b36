"""Python sandbox latency: cold session start and warm snippet round trip.

Compared in the same run with plain `exec` in the host process (no isolation at all) and with
starting a bare interpreter (`python -I -S -c pass`), the floor for any one-process-per-session
design that execs a fresh Python.

    python benchmarks/python_sandbox.py [--runs 200]

Targets (issue 4): cold session start <= 50 ms, warm snippet <= 5 ms (medians).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import subprocess
import sys
import time

from agentlib.tools.python import PythonSession, SandboxLimits, SandboxPool

SNIPPET = "total = sum(range(100))\ntotal * 2"


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def percentile_ms(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000


async def cold_starts(pool: SandboxPool, runs: int, pause: float = 0.0) -> list[float]:
    """Time from a new session to the first result: sandbox setup and one snippet.

    With a pause between sessions the template has forked the next spare by the time it is
    needed (sessions that start at human or agent pace); without one, back-to-back starts also
    wait for part of that fork and mount work.
    """
    samples = []
    for _ in range(runs):
        await asyncio.sleep(pause)
        session = PythonSession(pool, limits=SandboxLimits())
        started = time.perf_counter()
        result = await session.arun(SNIPPET)
        samples.append(time.perf_counter() - started)
        assert result.value == "9900", result
        await session.aclose()
    return samples


async def warm_calls(pool: SandboxPool, runs: int) -> list[float]:
    session = PythonSession(pool, limits=SandboxLimits())
    await session.arun("1")
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        result = await session.arun(SNIPPET)
        samples.append(time.perf_counter() - started)
        assert result.value == "9900", result
    await session.aclose()
    return samples


def in_process_exec(runs: int) -> list[float]:
    samples = []
    namespace: dict[str, object] = {}
    for _ in range(runs):
        started = time.perf_counter()
        exec(compile(SNIPPET, "<snippet>", "exec"), namespace)
        samples.append(time.perf_counter() - started)
    return samples


def bare_interpreter(runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-I", "-S", "-c", "pass"], check=True)
        samples.append(time.perf_counter() - started)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200, help="samples per measurement")
    arguments = parser.parse_args()
    runs = arguments.runs

    pool = SandboxPool()
    started = time.perf_counter()
    warmup = PythonSession(pool)
    asyncio.run(warmup.arun("1"))
    template_start = time.perf_counter() - started
    protections = sorted(warmup.protections)
    asyncio.run(warmup.aclose())

    cold = asyncio.run(cold_starts(pool, runs))
    paced = asyncio.run(cold_starts(pool, runs, pause=0.1))
    warm = asyncio.run(warm_calls(pool, max(runs, 1000)))
    pool.close()
    plain = in_process_exec(max(runs, 1000))
    bare = bare_interpreter(runs)

    print(f"Python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs")
    print(f"preloaded in the template: {', '.join(pool.preload)}")
    print(f"protections in force: {', '.join(protections)}")
    print(f"template start (one-off, includes preloading): {template_start * 1000:.0f} ms")
    print()
    print("| measurement | runs | median | p90 |")
    print("|---|---|---|---|")
    rows = [
        ("cold session start + first snippet, back to back (sandbox)", cold),
        ("cold session start + first snippet, 100 ms apart (sandbox)", paced),
        ("warm snippet round trip (sandbox)", warm),
        ("plain `exec` in the host process", plain),
        ("`python -I -S -c pass` (fresh interpreter)", bare),
    ]
    for name, samples in rows:
        print(
            f"| {name} | {len(samples)} | {median_ms(samples):.3f} ms "
            f"| {percentile_ms(samples, 0.9):.3f} ms |"
        )
    print()
    verdict_cold = "meets" if median_ms(cold) <= 50 else "misses"
    verdict_warm = "meets" if median_ms(warm) <= 5 else "misses"
    print(f"cold start {verdict_cold} the 50 ms target; warm call {verdict_warm} the 5 ms target")


if __name__ == "__main__":
    main()
