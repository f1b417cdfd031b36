"""A few whole agent runs on the embedded model (SmolLM2-135M) with the calculator.

A sanity check of what a user sees, not an accuracy benchmark (that is
`benchmarks/tool_calling.py`): the README's task and a few simple ones, each run to its end,
with the answer, the stop reason, the steps and the seconds and generated tokens per step.

    python benchmarks/embedded_agent_tasks.py [--variant profile|cli-help] [--n-batch 512]

- `profile`: `Agent(model, tools=[calculator])`, everything else from the model's profile.
- `cli-help`: the help the CLI used to add by hand (the calculator's worked example as
  instructions, a 100-character thought, 200-character strings); with the same sampling.

The model is built as `LocalModel` builds it (the embedded GGUF on llama.cpp through
`OutlinesModel`, greedy, repeat_penalty 1.0, seed 0, 1 thread, 4096-token context), with one
extra knob: `--n-batch`, llama.cpp's prompt batch. On the 2026-12-03 machine
llama-cpp-python 0.3.36 crashed (SIGSEGV in `llama_decode`) evaluating any batch of more than
one token, so the results below use `--n-batch 1`; generation itself is token by token either
way, so the outputs are the same, only prompt evaluation is slower.
"""

from __future__ import annotations

import argparse
import time
import warnings

TASKS = [
    "What is 17 * 23?",
    "What is 6 * 7?",
    "What is 120 / 4?",
    "What is 2 + 2?",
    "What is the capital of France?",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", choices=["profile", "cli-help"], default="profile")
    parser.add_argument("--n-batch", type=int, default=512, help="llama.cpp's prompt batch")
    parser.add_argument("--max-steps", type=int, default=8)
    args = parser.parse_args()
    warnings.simplefilter("ignore")

    import outlines
    from llama_cpp import Llama

    from agentlib import Agent, OutlinesModel
    from agentlib.models.local import default_model_path
    from agentlib.tools.calculator import calculator

    llama = Llama(
        model_path=str(default_model_path()),
        n_threads=1,
        n_ctx=4096,
        seed=0,
        verbose=False,
        n_batch=args.n_batch,
        n_ubatch=args.n_batch,
    )
    model = OutlinesModel(
        outlines.from_llamacpp(llama),
        context_window=4096,
        name="local:SmolLM2-135M-Instruct",
        inference_kwargs={"temperature": 0.0, "repeat_penalty": 1.0, "seed": 0},
    )
    if args.variant == "cli-help":
        from agentlib.tools.calculator import EXAMPLE

        agent = Agent(
            model,
            tools=[calculator],
            max_steps=args.max_steps,
            instructions=EXAMPLE,
            max_thought_length=100,
            max_string_length=200,
        )
    else:
        agent = Agent(model, tools=[calculator], max_steps=args.max_steps)
    print(f"variant {args.variant}, n_batch {args.n_batch}")
    print("| task | answer | stop reason | steps | s/step | output tokens/step |")
    print("| --- | --- | --- | --- | --- | --- |")
    for task in TASKS:
        began = time.perf_counter()
        result = agent.run(task)
        seconds = time.perf_counter() - began
        steps = max(1, len(result.steps))
        tokens = result.usage.output_tokens / steps
        print(
            f"| {task} | {result.output!r} | {result.stop_reason} | {len(result.steps)} | "
            f"{seconds / steps:.2f} | {tokens:.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
