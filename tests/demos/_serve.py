"""Serve the demo app with a deterministic model: `python -m tests.demos._serve PORT`."""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import Sequence
from typing import Any

from agentlib import FunctionModel, Message, OutputSchema
from agentlib.models.testing import call, final
from demos.app import CSS, build_app


async def demo_brain(messages: Sequence[Message], output: OutputSchema | None) -> Any:
    """A deterministic model for the demos: arithmetic through the calculator, slow on demand."""
    task = next(
        m.content
        for m in reversed(messages)
        if m.role == "user" and not m.content.startswith("Observation")
    )
    last = messages[-1].content
    if output is not None and output.name != "agent_step":  # structured extraction
        return {"name": "Maria Svensson", "age": 34, "city": "Gothenburg"}
    if "slowly" in task:
        await asyncio.sleep(60)
    if last.startswith("Observation"):
        value = last.rsplit("\n", 1)[-1]
        return final(f"The answer is {value}.", "I have the result.")
    if "remember" in task.lower():
        turns = sum(1 for m in messages if m.role == "assistant")
        return final(f"I see {turns} earlier answer(s) in this conversation.")
    match = re.search(r"(\d+)\s*\*\s*(\d+)", task)
    if match:
        return call("calculator", "Multiply with the calculator.", expression=match.group(0))
    return final("I can only multiply.")


def main() -> None:
    port = int(sys.argv[1])
    app = build_app({"Deterministic test model": lambda: FunctionModel(demo_brain)})
    app.launch(server_name="127.0.0.1", server_port=port, quiet=True, css=CSS, share=False)


if __name__ == "__main__":
    main()
