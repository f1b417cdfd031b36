"""What the step's stricter constraint costs: compile time and per-token mask time.

`OutputSchema.constraint` adds patterns to free strings (no placeholder arguments, at most a
quarter wide characters, excluded values on a retry). This compares compiling and masking the
step schema itself (`schema`, what was enforced before) with the stricter one (`enforced`), on
SmolLM2-135M's real vocabulary, without the model: llguidance's matcher alone, over the
canonical tokens of a valid step, filling the next-token bitmask at every token (what
generation does per token). Prints Markdown; committed results: `step_constraint.md`.

    nice -n 15 python benchmarks/step_constraint.py --repeats 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from _synthetic_tools import synthetic_tools

from agentlib.models.outlines import llguidance_grammar
from agentlib.models.profiles import PROFILES
from agentlib.step_format import StepFormat
from agentlib.tools.calculator import calculator


def smollm2_tokenizer() -> tuple[Any, Any]:
    import llama_cpp
    from llguidance.llamacpp import lltokenizer_from_vocab

    from agentlib.models.local import default_model_path

    llama = llama_cpp.Llama(model_path=str(default_model_path()), vocab_only=True, verbose=False)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "llama_token_get_attr", DeprecationWarning)
        tokenizer = lltokenizer_from_vocab(llama_cpp.llama_model_get_vocab(llama.model))
    return tokenizer, llama


def measure(
    schema: Mapping[str, Any], text: str, tokenizer: Any, repeats: int
) -> tuple[float, float]:
    """(compile ms, mask µs per token), medians over `repeats`."""
    import llguidance.numpy
    from llguidance import LLMatcher

    tokens = tokenizer.tokenize_str(text)
    compiles, masks = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        matcher = LLMatcher(tokenizer, llguidance_grammar(schema), log_level=0)
        compiles.append(time.perf_counter() - started)
        assert not matcher.is_error(), matcher.get_error()
        bitmask = llguidance.numpy.allocate_token_bitmask(1, tokenizer.vocab_size)
        started = time.perf_counter()
        for token in tokens:
            llguidance.numpy.fill_next_token_bitmask(matcher, bitmask, 0)
            assert matcher.consume_token(token), matcher.get_error()
        masks.append((time.perf_counter() - started) / len(tokens))
    return statistics.median(compiles) * 1e3, statistics.median(masks) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    arguments = parser.parse_args()
    tokenizer, llama = smollm2_tokenizer()
    options = PROFILES["smollm2"].step
    cases = [
        ("calculator, SmolLM2 profile", [calculator], "expression", "6 + 4"),
        ("10 synthetic tools", synthetic_tools(10), "key", "the capital of France"),
    ]
    print("| toolset | constraint | compile (ms) | mask per token (µs) |")
    print("| --- | --- | --- | --- |")
    for label, tools, argument, value in cases:
        step_format = StepFormat.build(tools, str, options=options, max_tokens=512)
        name = step_format.tool_names[0]
        action = step_format.call_action(name, {argument: value})
        text = json.dumps(
            step_format.step("I use the tool to find it.", [action]),
            separators=(", ", ": "),
        )
        narrowed = step_format.excluding([(name, (argument,), "Paris")])
        for kind, schema in (
            ("schema (before)", step_format.output.schema),
            ("enforced", step_format.output.enforced),
            ("enforced, one value excluded", narrowed.output.enforced),
        ):
            compile_ms, mask_us = measure(schema, text, tokenizer, arguments.repeats)
            print(f"| {label} | {kind} | {compile_ms:.1f} | {mask_us:.0f} |")
    llama.close()  # before interpreter shutdown, when llama.cpp's __del__ cannot run cleanly


if __name__ == "__main__":
    main()
