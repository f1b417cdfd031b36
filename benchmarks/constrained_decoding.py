"""Constrained decoding on the embedded model: speed per backend, compile times, overhead.

Measures, on SmolLM2-135M-Instruct (llama.cpp, the thread count given):

1. decode speed (tokens/s): unconstrained; unconstrained with a pass-through Python logits
   processor (the cost of the callback alone); constrained with llguidance; constrained with
   outlines_core. Modes are interleaved and repeated; the median is reported.
2. per-token overhead of each constraint, measured without the model: the processor's
   mask-and-apply on a real logits-sized array, over the tokens of a valid step.
3. step-schema compile time for 1, 10 and 50 tools: cold (a schema not seen before) and warm
   (the cached guide: look-up plus a fresh matcher), per backend.

Prints Markdown tables; the committed results are in `benchmarks/constrained_decoding.md`.

    /work/venv/bin/python benchmarks/constrained_decoding.py --repeats 3 --tokens 64
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
from importlib import metadata
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from _synthetic_tools import synthetic_tools

from agentlib import Message, OutputSchema
from agentlib.actions import build_step_schema
from agentlib.models._guides import Metered
from agentlib.models.local import LocalModel
from agentlib.models.outlines import OutlinesModel

PROMPT = [
    Message(role="system", content="You are a travel writer."),
    Message(
        role="user",
        content="Describe Paris in detail: its history, its food, its museums and its streets.",
    ),
]
LONG_TEXT = OutputSchema(
    "description",
    {
        "type": "object",
        # Unbounded: outlines_core cannot compile long bounded strings in reasonable time.
        "properties": {"description": {"type": "string"}},
        "required": ["description"],
        "additionalProperties": False,
    },
)
# outlines_core compiles in a child process under these bounds: it needed more than 3.3 GB and
# 2 minutes for the 1-tool step schema in a first trial, and cannot be interrupted in-process.
OUTLINES_CORE_TIMEOUT = 120.0
OUTLINES_CORE_MEMORY_MB = 6144


def machine() -> str:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    versions = ", ".join(
        f"{name} {metadata.version(name)}"
        for name in ("outlines", "llguidance", "outlines_core", "llama_cpp_python")
    )
    return (
        f"{platform.platform()}; {cpu}; {os.cpu_count()} cores; Python "
        f"{platform.python_version()}; {versions}"
    )


def load() -> str:
    return " / ".join(f"{value:.1f}" for value in os.getloadavg())


def decode_speed(local: LocalModel, repeats: int, tokens: int) -> list[tuple[str, float, int]]:
    base = local.outlines_model
    llama = base.outlines_model.model
    core = OutlinesModel(
        base.outlines_model, backend="outlines_core", inference_kwargs={"temperature": 0.0}
    )
    from llama_cpp import LogitsProcessorList

    messages = [{"role": m.role, "content": m.content} for m in PROMPT]

    def passthrough() -> tuple[float, int]:
        meter = Metered(None, "numpy")
        started = time.perf_counter()
        completion = llama.create_chat_completion(
            messages=messages,
            logits_processor=LogitsProcessorList([meter.processor]),
            max_tokens=tokens,
            temperature=0.0,
        )
        return time.perf_counter() - started, completion["usage"]["completion_tokens"]

    def through(model: OutlinesModel, output: OutputSchema | None) -> tuple[float, int]:
        started = time.perf_counter()
        response = asyncio.run(model.agenerate(PROMPT, output=output, max_tokens=tokens))
        return time.perf_counter() - started, response.output_tokens

    modes = {
        "unconstrained (llama.cpp sampling only)": lambda: through(base, None),
        "unconstrained + pass-through Python processor": passthrough,
        "constrained, llguidance": lambda: through(base, LONG_TEXT),
        "constrained, outlines_core": lambda: through(core, LONG_TEXT),
    }
    for run in modes.values():  # warm-up: prompt in the KV cache, guides compiled
        run()
    samples: dict[str, list[tuple[float, int]]] = {name: [] for name in modes}
    for _ in range(repeats):
        for name, run in modes.items():
            samples[name].append(run())
    results = []
    for name, runs in samples.items():
        rates = [count / seconds for seconds, count in runs]
        results.append((name, statistics.median(rates), int(statistics.median(c for _, c in runs))))
    return results


def per_token_overhead(local: LocalModel, backends: dict[str, OutlinesModel]) -> dict[str, float]:
    llama = local.outlines_model.outlines_model.model
    document = '{"description": "Paris is the capital of France, on the Seine."}'
    tokens = llama.tokenize(document.encode(), add_bos=False, special=False)
    vocabulary = llama.n_vocab()
    rng = np.random.default_rng(0)
    results = {}
    for name, model in backends.items():
        timings = []
        for _ in range(5):
            meter = model._guide(LONG_TEXT).start()
            # Inputs prepared outside the timed loop: logits as llama.cpp hands them over.
            inputs = [
                (
                    np.array([1, *tokens[:index]], dtype=np.intc),
                    rng.standard_normal(vocabulary).astype(np.float32),
                )
                for index in range(len(tokens))
            ]
            started = time.perf_counter()
            for ids, logits in inputs:
                meter.processor(ids, logits)
            timings.append((time.perf_counter() - started) / len(tokens))
        results[name] = statistics.median(timings)
    return results


def compile_times(model: OutlinesModel, sizes: tuple[int, ...]) -> list[tuple[int, float, float]]:
    """Cold (median of 3 new schemas) and warm (cached guide, fresh matcher) per size."""
    rows = []
    for size in sizes:
        tools = synthetic_tools(size)
        colds = []
        for variant in range(3):
            # A different thought bound gives a schema (and cache key) not seen before.
            output = build_step_schema(tools, max_thought_length=500 + variant).output
            started = time.perf_counter()
            model.compile(output)
            colds.append(time.perf_counter() - started)
        warm_runs = 1000
        started = time.perf_counter()
        for _ in range(warm_runs):
            model._guide(output).start()
        rows.append((size, statistics.median(colds), (time.perf_counter() - started) / warm_runs))
    return rows


def outlines_core_compile(size: int, threads: int) -> str:
    """Compile the step schema for `size` tools with outlines_core in a bounded child."""
    code = (
        "import resource, sys, time\n"
        f"resource.setrlimit(resource.RLIMIT_AS, ({OUTLINES_CORE_MEMORY_MB} << 20,) * 2)\n"
        f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "from _synthetic_tools import synthetic_tools\n"
        "from agentlib.actions import build_step_schema\n"
        "from agentlib.models.local import LocalModel\n"
        "from agentlib.models.outlines import OutlinesModel\n"
        f"local = LocalModel(n_threads={threads})\n"
        "model = OutlinesModel(local.outlines_model.outlines_model, backend='outlines_core')\n"
        f"output = build_step_schema(synthetic_tools({size})).output\n"
        "started = time.perf_counter()\n"
        "model.compile(output)\n"
        "print(f'{(time.perf_counter() - started) * 1e3:.0f} ms')\n"
    )
    started = time.perf_counter()
    try:
        child = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True,
            timeout=OUTLINES_CORE_TIMEOUT,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return f"did not finish in {OUTLINES_CORE_TIMEOUT:.0f} s"
    if child.returncode != 0:
        return (
            f"failed after {time.perf_counter() - started:.0f} s "
            f"(over {OUTLINES_CORE_MEMORY_MB} MB address space: exit {child.returncode})"
        )
    return child.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--outlines-core-sizes", type=int, nargs="*", default=[1])
    arguments = parser.parse_args()
    git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    print(f"- machine: {machine()}")
    print(f"- commit: {git.stdout.strip()}; threads: {arguments.threads}")
    print(f"- load average (1/5/15 min) at start: {load()}")
    local = LocalModel(n_threads=arguments.threads)
    started = time.perf_counter()
    core = OutlinesModel(local.outlines_model.outlines_model, backend="outlines_core")
    core_setup = time.perf_counter() - started
    backends = {"llguidance": local.outlines_model, "outlines_core": core}

    print("\n### Step-schema compile time, llguidance\n")
    print("| tools | cold compile | warm (cached guide + fresh matcher) |")
    print("|---:|---:|---:|")
    for size, cold, warm in compile_times(local.outlines_model, (1, 10, 50)):
        print(f"| {size} | {cold * 1e3:.1f} ms | {warm * 1e6:.1f} µs |")
    print("\n### Step-schema compile time, outlines_core (child process, bounded)\n")
    print("| tools | cold compile |")
    print("|---:|---:|")
    for size in arguments.outlines_core_sizes:
        print(f"| {size} | {outlines_core_compile(size, arguments.threads)} |", flush=True)
    print(f"\n(outlines_core vocabulary set-up, once per model: {core_setup:.2f} s)")

    print("\n### Per-token overhead of the constraint (no model; 49,152-token vocabulary)\n")
    print("| backend | per token |")
    print("|---|---:|")
    for name, seconds in per_token_overhead(local, backends).items():
        print(f"| {name} | {seconds * 1e3:.3f} ms |")

    print(f"\n### Decode speed ({arguments.tokens} tokens max, median of {arguments.repeats})\n")
    print("| mode | tokens/s | tokens | vs unconstrained |")
    print("|---|---:|---:|---:|")
    speeds = decode_speed(local, arguments.repeats, arguments.tokens)
    baseline = speeds[0][1]
    for name, rate, count in speeds:
        print(f"| {name} | {rate:.1f} | {count} | {rate / baseline:.0%} |")
    print(f"\n- load average (1/5/15 min) at end: {load()}")


if __name__ == "__main__":
    main()
