"""What outlines-core's share of the step constraint costs: index build time on SmolLM2.

The outlines_core backend compiles `outlines_core_schema(output)`: the step schema with the
byte bound of free strings as one pattern and numbers' digit counts (issue 25). This times
outlines-core's regex conversion and index build (what `OutlinesModel(...,
backend="outlines_core")` does once per schema) for the step schema itself (what it compiled
before) and for that form, on SmolLM2-135M's real vocabulary (49,152 tokens), without the
model. Prints Markdown; committed results: `outlines_core_constraint.md`.

    nice -n 15 python benchmarks/outlines_core_constraint.py --repeats 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from _synthetic_tools import synthetic_tools
from step_constraint import smollm2_tokenizer

from agentlib.models._guides import _OUTLINES_CORE_WHITESPACE, outlines_core_schema
from agentlib.models.profiles import PROFILES
from agentlib.step_format import StepFormat
from agentlib.tools.calculator import calculator


def vocabulary(tokenizer: Any) -> Any:
    """SmolLM2's tokens as outlines-core takes them (bytes; special tokens left out)."""
    from outlines_core import Vocabulary

    tokens: dict[bytes, list[int]] = {}
    for token in range(tokenizer.vocab_size):
        if not tokenizer.is_special_token(token):
            tokens.setdefault(tokenizer.decode_bytes([token]), []).append(token)
    return Vocabulary(tokenizer.eos_token, tokens)


def measure(schema: Mapping[str, Any], words: Any, repeats: int) -> float:
    """Median seconds to convert `schema` to a regex and build its index."""
    from outlines_core import Index
    from outlines_core.json_schema import build_regex_from_schema

    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        Index(build_regex_from_schema(json.dumps(dict(schema)), _OUTLINES_CORE_WHITESPACE), words)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    arguments = parser.parse_args()
    tokenizer, llama = smollm2_tokenizer()
    words = vocabulary(tokenizer)
    options = PROFILES["smollm2"].step
    cases = [
        ("calculator, SmolLM2 profile", [calculator]),
        ("3 synthetic tools", synthetic_tools(3)),
    ]
    print("| toolset | schema compiled | index build (s) |")
    print("| --- | --- | --- |")
    for label, tools in cases:
        output = StepFormat.build(tools, str, options=options, max_tokens=512).output
        for kind, schema in (
            ("schema (before)", output.schema),
            ("outlines_core_schema", outlines_core_schema(output)),
        ):
            print(f"| {label} | {kind} | {measure(schema, words, arguments.repeats):.2f} |")
    llama.close()  # before interpreter shutdown, when llama.cpp's __del__ cannot run cleanly


if __name__ == "__main__":
    main()
