"""Run every benchmark and write benchmarks/RESULTS.md with the machine, the date and outputs.

    python benchmarks/run_all.py [--only NAME ...] [--skip NAME ...]

Each benchmark is a script in this folder run as its own process (so one cannot warm another's
caches); its printed report goes into RESULTS.md verbatim, under the exact command.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# name -> (script and arguments, what it is measured against)
BENCHMARKS: dict[str, tuple[list[str], str]] = {
    "constrained_decoding": (
        ["constrained_decoding.py", "--repeats", "3", "--tokens", "64", "--outlines-core-sizes"],
        "constrained ≥ 90% of unconstrained tokens/s; warm compile ≤ 1 ms; "
        "cold compile for 10 tools ≤ 50 ms",
    ),
    "strict_schemas": (
        ["strict_schemas.py", "--per-schema", "3", "--seconds", "1.5"],
        "0 schemas sent that break strict mode's rules, 0 valid replies rejected, 0 returned "
        "changed, 0 invalid replies accepted (JSON-Schema-Test-Suite, SchemaStore)",
    ),
    "llama_threads": (["llama_threads.py"], "none set: picks LocalModel's default thread count"),
    "tool_construction": (
        ["tool_construction.py"],
        "tools + step schema for 300 MCP-like tools <= 50 ms cold",
    ),
    "small_model_tool_calls": (
        ["small_model_tool_calls.py"],
        "none set: share of valid steps and right calls, constrained vs prompted",
    ),
    "retrieval_quality": (
        ["retrieval.py", "quality"],
        "nDCG@10 and recall@10 for BM25, dense, hybrid; hybrid ≥ the better of the two",
    ),
    "retrieval_speed": (
        ["retrieval.py", "speed"],
        "exact search ≤ 10 ms per query at 100k 384-d vectors",
    ),
    "retrieval_ann_1m": (
        ["retrieval.py", "ann-1m"],
        "ANN recall@10 ≥ 0.95 at 1M vectors",
    ),
    "loop_overhead": (
        ["loop_overhead.py", "--steps", "2000", "--runs", "20"],
        "≤ 500 µs framework time per step; ≤ 150 ms `import agentlib`",
    ),
    "concurrency": (
        ["concurrency.py", "--runs", "1000", "--latency", "0.1"],
        "1,000 concurrent runs ≤ 3× a single run's time; event-loop lag reported",
    ),
    "python_sandbox": (
        ["python_sandbox.py", "--runs", "200"],
        "cold session start ≤ 50 ms; warm snippet ≤ 5 ms (median)",
    ),
    "sql_tool": (
        ["sql_tool.py", "--runs", "100"],
        "none set: validation and execution overhead per query",
    ),
    "cypher_worker": (
        ["cypher_worker.py"],
        "none set: worker start-up, query latency, timeout enforcement",
    ),
    "web_fetch": (
        ["web_fetch.py", "--runs", "30"],
        "none set: fetch_page cost (check, download, decode, extract) on loopback",
    ),
    "memory_store": (
        ["memory_store.py", "--steps", "10", "--runs", "20", "--writers", "4", "--writes", "100"],
        "saving a step ≤ 5 ms; no lost writes with 4 processes on one SQLite file",
    ),
}


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kib / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return (
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores ({cpu}){memory}, "
        f"Python {platform.python_version()}"
    )


def run(name: str, arguments: list[str]) -> tuple[str, float, int]:
    began = time.perf_counter()
    result = subprocess.run(
        [sys.executable, *arguments], cwd=HERE, capture_output=True, text=True, check=False
    )
    output = result.stdout.strip()
    if result.returncode != 0:
        output += f"\n(exit code {result.returncode})\n{result.stderr.strip()[-2000:]}"
    return output, time.perf_counter() - began, result.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", nargs="*", default=None, help="run only these benchmarks")
    parser.add_argument("--skip", nargs="*", default=[], help="benchmarks to leave out")
    parser.add_argument("--output", type=Path, default=HERE / "RESULTS.md")
    args = parser.parse_args()
    names = [n for n in BENCHMARKS if (args.only is None or n in args.only) and n not in args.skip]
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    sections = [
        "# Benchmark results",
        "",
        f"Written by `python benchmarks/run_all.py` on {now}.",
        f"Machine: {machine()}. These machines are shared: numbers vary from run to run.",
        "",
    ]
    failures = 0
    skipped = [n for n in BENCHMARKS if n not in names]
    for name in names:
        arguments, target = BENCHMARKS[name]
        print(f"running {name} ...", flush=True)
        output, seconds, code = run(name, arguments)
        failures += code != 0
        sections += [
            f"## {name}",
            "",
            f"Target: {target}.",
            "",
            f"`python benchmarks/{' '.join(arguments)}` ({seconds:.0f} s)",
            "",
            "```",
            output,
            "```",
            "",
        ]
    if skipped:
        sections += [
            "## Not re-run in this pass",
            "",
            "Their last committed results, with the machine and command, are in the detailed",
            "reports beside the scripts (`benchmarks/*.md`):",
            "",
        ]
        sections += [
            f"- {name}: `python benchmarks/{' '.join(BENCHMARKS[name][0])}`"
            f" (target: {BENCHMARKS[name][1]})"
            for name in skipped
        ]
        sections.append("")
    args.output.write_text("\n".join(sections))
    print(f"wrote {args.output}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
