"""CPU time per loop step of this checkout against another one (a baseline), tracing off.

    git archive main | tar -x -C /tmp/baseline     # the code before the change
    python benchmarks/loop_overhead_ab.py --baseline /tmp/baseline --pairs 3

Each measurement is its own process, baseline and this checkout alternating, and counts CPU
time (`time.process_time`), which a shared machine disturbs far less than wall time. The same
agents as `loop_overhead.py`: `ScriptedModel`, two trivial tools, 30 runs of 100 steps.
"""

from __future__ import annotations

import argparse
import asyncio
import runpy
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]


def measure(checkout: Path) -> str:
    if checkout != HERE:  # import the baseline's agentlib, not this editable install
        sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f).lower()]
        sys.path.insert(0, str(checkout))
    import agentlib
    from agentlib import Agent, ScriptedModel

    assert Path(agentlib.__file__).is_relative_to(checkout), agentlib.__file__
    bench = runpy.run_path(str(checkout / "benchmarks" / "loop_overhead.py"), run_name="bench")

    async def one(steps: int) -> float:
        agent = Agent(
            ScriptedModel(bench["script"](steps), context_window=1_000_000),
            tools=[bench["add"], bench["echo"]],
            max_steps=steps,
            max_repeated_calls=steps,
        )
        began = time.process_time()
        result = await agent.arun("benchmark")
        assert result.ok
        return (time.process_time() - began) / steps

    asyncio.run(one(10))
    samples = [asyncio.run(one(100)) for _ in range(30)]
    return f"median {statistics.median(samples) * 1e6:.0f}, min {min(samples) * 1e6:.0f} µs/step"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--baseline", type=Path, required=True, help="a checkout to compare to")
    parser.add_argument("--pairs", type=int, default=3, help="alternating measurements each")
    parser.add_argument("--one", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:
        print(measure(args.one.resolve()))
        return
    for _ in range(args.pairs):
        for label, checkout in (("baseline", args.baseline.resolve()), ("this", HERE)):
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--baseline",
                    str(args.baseline),
                    "--one",
                    str(checkout),
                ],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            print(f"{label:9} CPU {out}", flush=True)


if __name__ == "__main__":
    main()
