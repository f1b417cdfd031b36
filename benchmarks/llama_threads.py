"""llama.cpp thread count on this machine: decode speed with 1..N threads, alone and contended.

For each thread count, the embedded model (SmolLM2-135M-Instruct, Q4_1) decodes 64 tokens
greedily, three times (median reported): once as the machine is, and once with one extra
busy process per core competing for the CPU (what a test suite, a build or a browser does).
Picks the default of `LocalModel(n_threads=None)`.

    /work/venv/bin/python benchmarks/llama_threads.py
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time

from llama_cpp import Llama

from agentlib.models.local import default_model_path

MESSAGES = [{"role": "user", "content": "Write a long story about a cat who learns to sail."}]
BUSY = "while True: pass"


def tokens_per_second(threads: int, runs: int = 3) -> float:
    llama = Llama(
        model_path=str(default_model_path()), n_threads=threads, n_ctx=1024, verbose=False
    )
    rates = []
    for _ in range(runs):
        llama.reset()  # measure decode including the short prompt, the same way every run
        started = time.perf_counter()
        completion = llama.create_chat_completion(MESSAGES, max_tokens=64, temperature=0.0)
        rates.append(completion["usage"]["completion_tokens"] / (time.perf_counter() - started))
    return statistics.median(rates)


def main() -> None:
    cores = os.cpu_count() or 1
    print(f"- {cores} cores; load average at start: {os.getloadavg()[0]:.1f}")
    print("\n| threads | tokens/s as is | tokens/s with a busy process per core |")
    print("|---:|---:|---:|")
    for threads in range(1, cores + 1):
        alone = tokens_per_second(threads)
        busy = [subprocess.Popen([sys.executable, "-c", BUSY]) for _ in range(cores)]
        try:
            contended = tokens_per_second(threads)
        finally:
            for process in busy:
                process.kill()
                process.wait()
        print(f"| {threads} | {alone:.1f} | {contended:.1f} |", flush=True)
    print(f"\n- load average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
