"""Tool calls by the embedded 135M model: constrained (step schema) vs prompted JSON.

60 fixed one-step tasks over four simple tools (calculator, capital look-up, length
conversion, weather from a table). Each task is one step with the real Agent prompt and step
schema (`Agent._system_prompt`, `Agent.step_schema`): the same messages go to the model
constrained by the step schema (`path="constrained"`) and unconstrained (`path="prompted"`,
the JSON format only described in the prompt). Counted per mode: steps that parse and
validate (`agentlib.actions.parse_step`), steps that name the right tool, and steps with the
right tool and the right arguments.

    /work/venv/bin/python benchmarks/small_model_tool_calls.py
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from agentlib import Agent, Message, ModelOutputError, tool
from agentlib.actions import parse_step
from agentlib.models.local import LocalModel
from agentlib.models.outlines import OutlinesModel
from agentlib.tools.calculator import calculator, evaluate

CAPITALS = {"france": "Paris", "japan": "Tokyo", "italy": "Rome", "spain": "Madrid"}
WEATHER = {"paris": "sunny, 21 °C", "london": "rain, 14 °C", "tokyo": "cloudy, 18 °C"}
Unit = Literal["m", "km", "mi", "ft", "cm", "in"]


@tool
def capital_of(country: str) -> str:
    """Look up the capital city of a country.

    Args:
        country: The country's English name, like France.
    """
    return CAPITALS.get(country.lower(), "unknown")


@tool
def convert_length(value: float, from_unit: Unit, to_unit: Unit) -> float:
    """Convert a length from one unit to another.

    Args:
        value: The length to convert.
        from_unit: The unit of `value`.
        to_unit: The unit to convert to.
    """
    return value


@tool
def weather(city: str) -> str:
    """Get today's weather in a city.

    Args:
        city: The city's name, like Paris.
    """
    return WEATHER.get(city.lower(), "unknown")


TOOLS = [calculator, capital_of, convert_length, weather]


COUNTRIES = "France Japan Italy Spain Germany Canada Brazil Egypt Kenya Norway Peru India Chile "
COUNTRIES += "Greece Mexico"
CITIES = "Paris London Tokyo Berlin Madrid Rome Oslo Lima Cairo Delhi Athens Toronto Nairobi "
CITIES += "Santiago Lisbon"


@dataclass(frozen=True)
class Task:
    prompt: str
    tool: str
    arguments: dict[str, Any]


def _tasks() -> list[Task]:
    tasks: list[Task] = []
    for a, op, b in [
        (17, "*", 23), (128, "+", 256), (1000, "-", 1), (81, "/", 9), (12, "*", 12),
        (345, "+", 678), (99, "*", 3), (7, "*", 8), (2048, "/", 16), (15, "-", 27),
        (3.5, "*", 4), (250, "+", 750), (64, "*", 64), (9, "-", 4), (1234, "*", 5),
    ]:  # fmt: skip
        tasks.append(Task(f"What is {a} {op} {b}?", "calculator", {"expression": f"{a}{op}{b}"}))
    for country in COUNTRIES.split():
        tasks.append(Task(f"What is the capital of {country}?", "capital_of", {"country": country}))
    for value, source, target in [
        (5, "km", "m"), (10, "mi", "km"), (3, "ft", "m"), (100, "cm", "in"), (2, "m", "ft"),
        (42, "km", "mi"), (12, "in", "cm"), (7, "m", "cm"), (1, "mi", "ft"), (250, "cm", "m"),
        (6, "ft", "in"), (0.5, "km", "m"), (20, "m", "km"), (8, "in", "ft"), (3, "km", "mi"),
    ]:  # fmt: skip
        names = {"m": "metres", "km": "kilometres", "mi": "miles", "ft": "feet",
                 "cm": "centimetres", "in": "inches"}  # fmt: skip
        tasks.append(
            Task(
                f"Convert {value} {names[source]} to {names[target]}.",
                "convert_length",
                {"value": value, "from_unit": source, "to_unit": target},
            )
        )
    for city in CITIES.split():
        tasks.append(Task(f"What is the weather like in {city} today?", "weather", {"city": city}))
    return tasks


TASKS = _tasks()


def _same_value(expected: Any, actual: Any) -> bool:
    if isinstance(expected, (int, float)) and isinstance(actual, (int, float)):
        return math.isclose(expected, actual, rel_tol=1e-9)
    if isinstance(expected, str) and isinstance(actual, str):
        return expected.strip().lower() == actual.strip().lower()
    return bool(expected == actual)


def right_arguments(task: Task, arguments: dict[str, Any]) -> bool:
    if task.tool == "calculator":
        try:
            return math.isclose(
                evaluate(arguments["expression"]), evaluate(task.arguments["expression"])
            )
        except Exception:  # an expression the calculator rejects is simply wrong
            return False
    return set(arguments) == set(task.arguments) and all(
        _same_value(value, arguments[key]) for key, value in task.arguments.items()
    )


@dataclass
class Tally:
    valid: int = 0
    right_tool: int = 0
    right_call: int = 0
    final_answers: int = 0
    truncated: int = 0
    tokens: list[int] | None = None
    seconds: float = 0.0


async def run_mode(
    model: OutlinesModel, agent: Agent[str], constrained: bool, max_tokens: int
) -> Tally:
    tally = Tally(tokens=[])
    tools = {item.name: item for item in agent.tools}
    started = time.perf_counter()
    for task in TASKS:
        messages = [
            Message(role="system", content=agent._system_prompt),
            Message(role="user", content=task.prompt),
        ]
        response = await model.agenerate(
            messages, output=agent.step_schema.output if constrained else None,
            max_tokens=max_tokens,
        )  # fmt: skip
        assert tally.tokens is not None
        tally.tokens.append(response.output_tokens)
        try:
            step = parse_step(response.text, agent.step_schema, tools)
        except ModelOutputError:
            tally.truncated += response.finish_reason == "length"
            continue
        tally.valid += 1
        if step.is_final:
            tally.final_answers += 1
            continue
        name, arguments = step.calls[0]
        if name == task.tool:
            tally.right_tool += 1
            tally.right_call += right_arguments(task, arguments)
    tally.seconds = time.perf_counter() - started
    return tally


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1)
    arguments = parser.parse_args()
    local = LocalModel(n_threads=arguments.threads)
    outlines_model = local.outlines_model.outlines_model
    git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    print(f"- machine: {platform.platform()}; {os.cpu_count()} cores; Python "
          f"{platform.python_version()}; commit {git.stdout.strip()}")  # fmt: skip
    print(f"- load average at start: {os.getloadavg()[0]:.1f}; tasks: {len(TASKS)}; "
          f"max_tokens per step: {arguments.max_tokens}; greedy decoding")  # fmt: skip
    modes: list[tuple[str, bool, float]] = [
        ("constrained (llguidance), repeat_penalty 1.0", True, 1.0),
        ("constrained (llguidance), repeat_penalty 1.1", True, 1.1),
        ("prompted JSON (unconstrained), repeat_penalty 1.0", False, 1.0),
        ("prompted JSON (unconstrained), repeat_penalty 1.1", False, 1.1),
    ]
    make: Callable[[float], OutlinesModel] = lambda penalty: OutlinesModel(  # noqa: E731
        outlines_model, inference_kwargs={"temperature": 0.0, "repeat_penalty": penalty}
    )
    print(
        "\n| mode | parse and validate | right tool | right tool and arguments | final answer "
        "instead | invalid: cut at max_tokens | median tokens | seconds/step |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    total = len(TASKS)
    for label, constrained, penalty in modes:
        model = make(penalty)
        agent: Agent[str] = Agent(model, tools=TOOLS)
        tally = asyncio.run(run_mode(model, agent, constrained, arguments.max_tokens))
        assert tally.tokens is not None
        print(
            f"| {label} | {tally.valid}/{total} | {tally.right_tool}/{total} | "
            f"{tally.right_call}/{total} | {tally.final_answers}/{total} | {tally.truncated} | "
            f"{statistics.median(tally.tokens):.0f} | {tally.seconds / total:.1f} |",
            flush=True,
        )
    print(f"\n- load average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
