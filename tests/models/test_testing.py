from __future__ import annotations

import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from agentlib import Agent, ScriptedModel, Toolset, generate, tool
from agentlib.models.testing import TestModel, call, final, parallel


class Booking(BaseModel):
    city: str
    nights: int = Field(ge=1, le=14)
    when: datetime.date
    kind: Literal["hotel", "hostel"]


class Inventory(Toolset):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, object]] = []

    @tool
    def count(self, item: str, minimum: Annotated[int, Field(ge=0)] = 0) -> int:
        """Count an item.

        Args:
            item: The item.
            minimum: The smallest count.
        """
        self.seen.append(("count", item))
        return 3

    @tool
    def book(self, booking: Booking, tags: list[str]) -> str:
        """Book a stay.

        Args:
            booking: The stay.
            tags: Labels.
        """
        self.seen.append(("book", booking))
        return "booked"


def test_test_model_calls_every_tool_with_valid_arguments_then_answers() -> None:
    inventory = Inventory()
    result = Agent(TestModel(), tools=[inventory], output_type=Booking).run("plan")
    assert result.ok and isinstance(result.output, Booking)
    assert [name for name, _ in inventory.seen] == ["count", "book"]
    assert all(not o.is_error for step in result.steps for o in step.observations)
    assert isinstance(inventory.seen[1][1], Booking)


def test_test_model_groups_calls_when_a_step_holds_several() -> None:
    inventory = Inventory()
    result = Agent(TestModel(), tools=[inventory], parallel_calls=2).run("plan")
    assert result.ok and len(result.steps) == 2
    assert [c.tool_name for c in result.steps[0].calls] == ["count", "book"]


def test_test_model_takes_the_tools_to_call_and_the_answer() -> None:
    inventory = Inventory()
    model = TestModel(call_tools=["book"], answer="done")
    result = Agent(model, tools=[inventory]).run("plan")
    assert result.output == "done" and [n for n, _ in inventory.seen] == ["book"]


def test_test_model_generates_structured_output() -> None:
    value = generate(TestModel(), Booking, "book something")
    assert isinstance(value, Booking) and 1 <= value.nights <= 14


def test_call_and_final_write_the_requested_step_shape() -> None:
    @tool
    def add(a: int, b: int) -> int:
        """Add.

        Args:
            a: A.
            b: B.
        """
        return a + b

    script = [parallel(call("add", a=1, b=2), call("add", a=3, b=4), thought="both"), final(10)]
    result = Agent(ScriptedModel(script), tools=[add], output_type=int, parallel_calls=2).run("go")
    assert result.output == 10
    assert [o.content for o in result.steps[0].observations] == ["3", "7"]


def test_a_step_reply_is_also_the_default_shape_dict() -> None:
    assert call("add", "t", a=1) == {
        "thought": "t",
        "action": {"tool": "add", "arguments": {"a": 1}},
    }
    assert final(3) == {"thought": "", "action": {"tool": "final_answer", "answer": 3}}
