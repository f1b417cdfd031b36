from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from collections.abc import Sequence
from typing import Annotated, Any, ClassVar

import pytest
from pydantic import AfterValidator, BaseModel

from agentlib import (
    Agent,
    CancelToken,
    ConfigurationError,
    ErrorEvent,
    FinalAnswerEvent,
    FunctionModel,
    Message,
    ModelError,
    ModelOutputError,
    OutputSchema,
    RunFinishedEvent,
    ScriptedModel,
    StepStartedEvent,
    ThoughtEvent,
    ToolCallEvent,
    ToolError,
    ToolResultEvent,
    Toolset,
    tool,
)
from agentlib.models.base import ModelCapabilities, ModelResponse, Sampling
from agentlib.models.profiles import DEFAULT_PROFILE, DEFAULT_RETRY_TEMPERATURE
from agentlib.models.testing import call, final
from tests._constraint import SmolLM2Constraint, as_generated


@tool
def add(a: int, b: int) -> int:
    """Add two integers.

    Args:
        a: The first number.
        b: The second number.
    """
    return a + b


@tool
def explode(reason: str) -> str:
    """Fail on purpose.

    Args:
        reason: Why.
    """
    raise RuntimeError(f"boom: {reason}")


@tool
def refuse(item: str) -> str:
    """Refuse politely.

    Args:
        item: What to refuse.
    """
    raise ToolError(f"{item} is not available; try another item")


def test_run_reaches_a_final_answer_through_a_tool() -> None:
    model = ScriptedModel([call("add", "adding", a=17, b=23), final("40", "done")])
    result = Agent(model, tools=[add]).run("What is 17 + 23?")
    assert result.ok and result.stop_reason == "final_answer"
    assert result.output == "40"
    first = result.steps[0]
    assert first.thought == "adding"
    assert first.calls[0].tool_name == "add" and dict(first.calls[0].arguments) == {
        "a": 17,
        "b": 23,
    }
    assert first.observations[0].content == "40" and first.observations[0].value == 40
    assert result.usage.requests == 2
    assert result.generation_paths == ("scripted",)
    assert result.error is None


def test_the_model_sees_the_observation_in_the_next_request() -> None:
    model = ScriptedModel([call("add", a=2, b=3), final("5")])
    Agent(model, tools=[add]).run("2+3?")
    second_request = model.requests[1].messages
    assert second_request[-1].role == "user"
    assert "Observation (add result):\n5" in second_request[-1].content
    assert model.requests[0].output is not None
    assert model.requests[0].output.name == "agent_step"


class City(BaseModel):
    name: str
    population: int


def test_typed_output_is_validated_into_the_output_type() -> None:
    model = ScriptedModel([final({"name": "Oslo", "population": "709000"})])
    result = Agent(model, output_type=City).run("Biggest city in Norway?")
    assert result.output == City(name="Oslo", population=709_000)


def test_a_tool_that_raises_becomes_an_observation_and_the_run_goes_on() -> None:
    model = ScriptedModel([call("explode", reason="test"), call("refuse", item="tea"), final("ok")])
    result = Agent(model, tools=[explode, refuse]).run("try")
    assert result.output == "ok"
    crash, refusal = result.steps[0].observations[0], result.steps[1].observations[0]
    assert crash.is_error and crash.error_type == "RuntimeError"
    assert crash.content == "RuntimeError: boom: test"
    assert refusal.is_error and refusal.content == "error: tea is not available; try another item"


def test_invalid_steps_are_retried_with_the_exact_error() -> None:
    model = ScriptedModel(
        [
            "this is not JSON",
            call("serach", query="x"),
            call("add", a="seventeen", b=1),
            final("done"),
        ]
    )
    result = Agent(model, tools=[add], max_retries=3).run("go")
    assert result.ok and result.steps[0].retries == 3
    retry_prompts = [request.messages[-1].content for request in model.requests[1:]]
    assert "the output is not valid JSON" in retry_prompts[0]
    assert "unknown tool 'serach'; known tools: add, final_answer" in retry_prompts[1]
    assert "argument 'a'" in retry_prompts[2] and "seventeen" in retry_prompts[2]


def test_retries_do_not_stay_in_the_history() -> None:
    model = ScriptedModel(["nope", call("add", a=1, b=1), final("2")])
    Agent(model, tools=[add]).run("1+1")
    last = model.requests[-1].messages
    assert all("nope" not in message.content for message in last)


def test_still_invalid_after_retries_stops_with_invalid_output() -> None:
    model = ScriptedModel(["bad", "worse", "worst"])
    result = Agent(model, max_retries=2).run("go")
    assert result.stop_reason == "invalid_output"
    assert result.output is None and not result.ok
    assert "still invalid after 3 attempt(s)" in (result.error or "")


def test_max_steps_stops_the_run() -> None:
    model = ScriptedModel([call("add", a=i, b=1) for i in range(5)])
    result = Agent(model, tools=[add], max_steps=3).run("count")
    assert result.stop_reason == "max_steps"
    assert len(result.steps) == 3
    assert result.error == "no final answer within max_steps=3"


def test_repeating_the_same_call_without_progress_stops_the_run() -> None:
    model = ScriptedModel([call("add", a=1, b=1)] * 5)
    result = Agent(model, tools=[add], max_repeated_calls=3).run("loop")
    assert result.stop_reason == "repeated_call"
    assert len(result.steps) == 3
    assert "called add with the same arguments 3 times in a row" in (result.error or "")


def test_a_repeated_call_is_pointed_out_to_the_model() -> None:
    model = ScriptedModel([call("add", a=1, b=1), call("add", a=1, b=1), final("2")])
    Agent(model, tools=[add]).run("1+1")
    first_observation = model.requests[1].messages[-1].content
    second_observation = model.requests[2].messages[-1].content
    assert "already made this exact call" not in first_observation
    assert "You already made this exact call and got this result" in second_observation


def test_same_call_with_changing_results_is_progress() -> None:
    counter = {"n": 0}

    @tool
    def tick() -> int:
        """Count up."""
        counter["n"] += 1
        return counter["n"]

    model = ScriptedModel([call("tick")] * 4 + [final("4")])
    result = Agent(model, tools=[tick], max_repeated_calls=2).run("tick")
    assert result.ok


def test_token_budget_stops_the_run() -> None:
    model = ScriptedModel([call("add", a=1, b=1), call("add", a=2, b=2), final("x")])
    result = Agent(model, tools=[add], token_budget=10).run("go")
    assert result.stop_reason == "token_budget"
    assert result.usage.total_tokens >= 10
    assert len(result.steps) == 1


def test_model_failure_stops_with_model_error() -> None:
    model = ScriptedModel([ModelError("server unreachable at http://127.0.0.1:9", retryable=True)])
    result = Agent(model).run("go")
    assert result.stop_reason == "model_error"
    assert "server unreachable" in (result.error or "")


def test_time_budget_cancels_a_slow_tool() -> None:
    finished = threading.Event()

    @tool
    async def wait_long() -> str:
        """Wait a long time."""
        await asyncio.sleep(30)
        finished.set()
        return "late"

    model = ScriptedModel([call("wait_long"), final("x")])
    result = Agent(model, tools=[wait_long], time_budget=0.3).run("wait")
    assert result.stop_reason == "time_budget"
    assert not finished.is_set()
    assert result.duration < 10


def test_time_budget_cancels_a_slow_model() -> None:
    async def slow(messages: Sequence[Message], output: OutputSchema | None) -> str:
        await asyncio.sleep(30)
        return "{}"

    result = Agent(FunctionModel(slow), time_budget=0.2).run("wait")
    assert result.stop_reason == "time_budget"


def test_cancel_token_stops_a_run_from_another_thread() -> None:
    token = CancelToken()
    started = threading.Event()

    @tool
    async def wait_long() -> str:
        """Wait."""
        started.set()
        await asyncio.sleep(30)
        return "late"

    def press_stop() -> None:
        started.wait(5)
        token.cancel()

    threading.Thread(target=press_stop).start()
    model = ScriptedModel([call("wait_long"), final("x")])
    result = Agent(model, tools=[wait_long]).run("wait", cancel_token=token)
    assert result.stop_reason == "cancelled"
    assert result.steps[0].calls[0].tool_name == "wait_long"


def test_a_cancelled_token_stops_before_the_first_step() -> None:
    token = CancelToken()
    token.cancel()
    model = ScriptedModel([final("x")])
    result = Agent(model).run("go", cancel_token=token)
    assert result.stop_reason == "cancelled" and model.requests == []


async def test_cancelling_the_task_returns_a_cancelled_result() -> None:
    entered = asyncio.Event()

    @tool
    async def wait_long() -> str:
        """Wait."""
        entered.set()
        await asyncio.sleep(30)
        return "late"

    agent = Agent(ScriptedModel([call("wait_long"), final("x")]), tools=[wait_long])
    task = asyncio.create_task(agent.arun("wait"))
    await entered.wait()
    task.cancel()
    result = await task
    assert result.stop_reason == "cancelled"


async def test_several_calls_in_one_step_run_concurrently() -> None:
    both_running = asyncio.Event()
    running = 0

    @tool
    async def rendezvous(name: str) -> str:
        """Wait for the other call.

        Args:
            name: Who arrives.
        """
        nonlocal running
        running += 1
        if running == 2:
            both_running.set()
        await asyncio.wait_for(both_running.wait(), timeout=5)
        return f"{name} met"

    step = {
        "thought": "both at once",
        "actions": [
            {"tool": "rendezvous", "arguments": {"name": "a"}},
            {"tool": "rendezvous", "arguments": {"name": "b"}},
        ],
    }
    final_step = {"thought": "", "actions": [{"tool": "final_answer", "answer": "met"}]}
    agent = Agent(ScriptedModel([step, final_step]), tools=[rendezvous], parallel_calls=2)
    result = await agent.arun("meet")
    assert result.ok
    assert [o.content for o in result.steps[0].observations] == ["a met", "b met"]
    assert [c.id for c in result.steps[0].calls] == ["call_1", "call_2"]


def test_sync_tools_run_concurrently_in_worker_threads() -> None:
    barrier = threading.Barrier(2, timeout=5)

    @tool
    def meet(name: str) -> str:
        """Wait at the barrier.

        Args:
            name: Who arrives.
        """
        barrier.wait()
        return name

    step = {"thought": "", "actions": [{"tool": "meet", "arguments": {"name": n}} for n in "ab"]}
    done = {"thought": "", "actions": [{"tool": "final_answer", "answer": "ok"}]}
    result = Agent(ScriptedModel([step, done]), tools=[meet], parallel_calls=2).run("go")
    assert result.ok and not any(o.is_error for o in result.steps[0].observations)


async def test_stream_yields_typed_events_in_order() -> None:
    agent = Agent(ScriptedModel(["oops", call("add", "sum", a=1, b=2), final("3")]), tools=[add])
    events = [event async for event in agent.stream("1+2")]
    kinds = [type(event).__name__ for event in events]
    assert kinds == [
        "StepStartedEvent",
        "ErrorEvent",
        "ThoughtEvent",
        "ToolCallEvent",
        "ToolResultEvent",
        "StepStartedEvent",
        "ThoughtEvent",
        "FinalAnswerEvent",
        "RunFinishedEvent",
    ]
    assert isinstance(events[1], ErrorEvent) and events[1].will_retry
    assert isinstance(events[2], ThoughtEvent) and events[2].thought == "sum"
    assert isinstance(events[3], ToolCallEvent) and events[3].call.tool_name == "add"
    assert isinstance(events[4], ToolResultEvent) and events[4].observation.content == "3"
    assert isinstance(events[7], FinalAnswerEvent) and events[7].output == "3"
    assert isinstance(events[-1], RunFinishedEvent) and events[-1].result.output == "3"
    assert isinstance(events[0], StepStartedEvent) and events[0].step == 1


class Session(Toolset):
    opened: ClassVar[list[Session]] = []

    def __init__(self) -> None:
        super().__init__()
        self.closed = False
        self.values: list[int] = []

    def for_run(self) -> Session:
        session = Session()
        Session.opened.append(session)
        return session

    @tool
    def remember(self, value: int) -> list[int]:
        """Remember a value.

        Args:
            value: The value.
        """
        self.values.append(value)
        return self.values

    async def aclose(self) -> None:
        self.closed = True


async def test_each_run_gets_its_own_toolset_session_and_it_is_closed() -> None:
    Session.opened.clear()
    shared = Session()
    agent = Agent(
        FunctionModel(
            lambda messages, output: (
                call("remember", value=len(messages)) if len(messages) < 4 else final("done")
            )
        ),
        tools=[shared],
    )
    first, second = await asyncio.gather(agent.arun("a"), agent.arun("b"))
    assert first.ok and second.ok
    assert len(Session.opened) == 2 and all(session.closed for session in Session.opened)
    assert shared.values == [] and [s.values for s in Session.opened] == [[2], [2]]


async def test_breaking_out_of_a_stream_closes_run_toolsets() -> None:
    Session.opened.clear()
    agent = Agent(ScriptedModel([call("remember", value=1), final("x")]), tools=[Session()])
    async with asyncio.timeout(5):
        stream = agent.stream("go")
        async for event in stream:
            if isinstance(event, ToolResultEvent):
                break
        await stream.aclose()  # type: ignore[attr-defined]
    assert Session.opened and Session.opened[0].closed


def test_old_observations_are_shortened_to_fit_the_context() -> None:
    @tool
    def page(number: int) -> str:
        """Read a long page.

        Args:
            number: Which page.
        """
        return f"page {number} " + "lorem ipsum " * 300

    seen: list[int] = []

    def decide(messages: Sequence[Message], output: OutputSchema | None) -> dict[str, Any]:
        seen.append(sum(len(m.content) for m in messages))
        step = len(seen)
        return call("page", number=step) if step < 6 else final("read")

    model = FunctionModel(decide, context_window=2048)
    result = Agent(model, tools=[page], max_tokens_per_step=256).run("read all pages")
    assert result.ok
    budget_chars = (2048 - 256 - 64) * 4
    assert max(seen) <= budget_chars
    last_prompt = model.requests[-1].messages
    assert any("shortened to fit the context" in m.content for m in last_prompt)
    assert "page 5" in last_prompt[-1].content  # the newest observation is intact


def test_history_and_task_are_never_shortened() -> None:
    @tool
    def page(number: int) -> str:
        """Read a long page.

        Args:
            number: Which page.
        """
        return f"page {number} " + "lorem ipsum " * 300

    def decide(messages: Sequence[Message], output: OutputSchema | None) -> dict[str, Any]:
        done = sum(1 for m in messages if m.role == "assistant") - 1  # minus the history's
        return call("page", number=done + 1) if done < 4 else final("read")

    earlier = "an earlier question " * 100
    task = "read the pages " + "carefully " * 100
    model = FunctionModel(decide, context_window=2048)
    history = [Message(role="user", content=earlier), Message(role="assistant", content="ok")]
    result = Agent(model, tools=[page], max_tokens_per_step=256).run(task, history=history)
    assert result.ok
    last = model.requests[-1].messages
    assert last[1].content == earlier and last[3].content == task
    assert any("shortened to fit the context" in m.content for m in last[4:])


@pytest.mark.parametrize(
    "kwargs",
    [{"max_steps": 0}, {"parallel_calls": 0}, {"max_retries": -1}, {"max_repeated_calls": 0}],
)
def test_invalid_limits_are_configuration_errors(kwargs: dict[str, int]) -> None:
    with pytest.raises(ConfigurationError):
        Agent(ScriptedModel([]), **kwargs)  # type: ignore[arg-type]


def test_duplicate_tool_names_fail_at_construction() -> None:
    with pytest.raises(ConfigurationError, match="duplicated: add"):
        Agent(ScriptedModel([]), tools=[add, add])


def test_system_prompt_lists_tools_and_the_step_format() -> None:
    model = ScriptedModel([final("x")])
    Agent(model, tools=[add], instructions="Be terse.").run("go")
    system = model.requests[0].messages[0]
    assert system.role == "system"
    assert "Be terse." in system.content
    assert "- add: Add two integers." in system.content
    assert '"action"' in system.content


def test_run_timings_are_recorded() -> None:
    @tool
    def nap() -> str:
        """Sleep briefly."""
        time.sleep(0.05)
        return "rested"

    result = Agent(ScriptedModel([call("nap"), final("x")]), tools=[nap]).run("go")
    assert result.steps[0].tool_seconds >= 0.05
    assert result.duration >= result.steps[0].tool_seconds


# -- the step format, retries, plan mode and bad tasks ---------------------------------------


def test_an_identical_invalid_reply_stops_the_retries_at_once() -> None:
    model = ScriptedModel(["not json", "not json", final("never reached")])
    result = Agent(model, max_retries=5).run("go")
    assert result.stop_reason == "invalid_output"
    assert "after 2 attempt(s)" in (result.error or "")
    assert "repeated an invalid reply word for word" in (result.error or "")
    assert model.remaining == 1 and result.usage.requests == 2


def test_the_retry_shows_the_error_last_and_narrows_a_reply_cut_by_the_token_limit() -> None:
    def cut_then_answer(messages: Sequence[Message], output: OutputSchema | None) -> Any:
        if len(messages) == 2:  # the first attempt: cut short by max_tokens
            return '{"thought": "I am thinking about'
        return final("42")

    class Cut(FunctionModel):
        async def agenerate(self, messages: Sequence[Message], **kwargs: Any) -> Any:
            response = await super().agenerate(messages, **kwargs)
            if len(messages) == 2:
                return dataclasses.replace(response, finish_reason="length")
            return response

    model = Cut(cut_then_answer)
    result = Agent(model, max_tokens_per_step=400).run("go")
    assert result.ok and result.steps[0].retries == 1
    first, second = (request.output for request in model.requests)
    assert first is not None and second is not None
    bound = first.schema["properties"]["thought"]["maxLength"]
    assert second.schema["properties"]["thought"]["maxLength"] == bound // 2
    assert model.requests[1].messages[-1].content.startswith("Your last reply was invalid:")


class Point(BaseModel):
    x: int
    y: int


def test_a_tool_receives_the_values_validated_once() -> None:
    validations: list[str] = []
    received: list[Point] = []

    @tool
    def plot(point: Point) -> str:
        """Plot a point.

        Args:
            point: Where.
        """
        received.append(point)
        return "ok"

    original = plot.validate

    def counting(arguments: Any) -> dict[str, Any]:
        validations.append("validated")
        return original(arguments)

    plot.validate = counting  # type: ignore[method-assign]
    model = ScriptedModel([call("plot", point={"x": "1", "y": 2}), final("done")])
    assert Agent(model, tools=[plot]).run("plot").ok
    assert received == [Point(x=1, y=2)] and validations == ["validated"]


def test_usage_counts_every_request_once() -> None:
    model = ScriptedModel(["bad", call("add", a=1, b=2), final("3")])
    result = Agent(model, tools=[add]).run("1+2")
    assert result.usage.requests == 3
    assert sum(step.usage.requests for step in result.steps) == 3
    assert result.usage.input_tokens == sum(step.usage.input_tokens for step in result.steps)


def test_plan_returns_the_next_step_without_running_tools() -> None:
    ran: list[int] = []

    @tool
    def launch(code: int) -> str:
        """Launch.

        Args:
            code: The code.
        """
        ran.append(code)
        return "launched"

    model = ScriptedModel([call("launch", "go", code="7")])
    step = Agent(model, tools=[launch]).plan("launch with code 7")
    assert ran == [] and not step.is_final and step.observations == ()
    assert [(c.tool_name, dict(c.arguments)) for c in step.calls] == [("launch", {"code": "7"})]
    answer = Agent(ScriptedModel([final({"name": "Oslo", "population": "1"})]), output_type=City)
    planned = answer.plan("Oslo?")
    assert planned.is_final and planned.final_answer == City(name="Oslo", population=1)


def test_plan_raises_when_the_step_stays_invalid() -> None:
    with pytest.raises(ModelOutputError, match="still invalid") as caught:
        Agent(ScriptedModel(["bad", "worse"]), max_retries=1).plan("go")
    assert caught.value.raw_output == "worse"


async def test_aplan_is_the_async_twin() -> None:
    step = await Agent(ScriptedModel([call("add", a=1, b=2)]), tools=[add]).aplan("1+2")
    assert step.calls[0].tool_name == "add"


@pytest.mark.parametrize("task", ["", "   ", "\n\t"])
def test_an_empty_task_is_a_configuration_error(task: str) -> None:
    model = ScriptedModel([final("17")])
    with pytest.raises(ConfigurationError, match="the task is empty"):
        Agent(model).run(task)
    assert model.requests == []


def test_a_task_longer_than_the_context_is_refused_before_the_model_runs() -> None:
    model = ScriptedModel([final("x")], context_window=2048)
    with pytest.raises(ConfigurationError) as caught:
        Agent(model, max_tokens_per_step=256).run("word " * 4000)
    message = str(caught.value)
    assert message.startswith("the task is 5000 tokens long but at most ")
    assert "context window of 2048 tokens" in message and "\n" not in message
    assert model.requests == []


def test_the_task_length_is_counted_with_the_model_tokenizer_when_it_has_one() -> None:
    class Counting(ScriptedModel):
        def count_tokens(self, text: str) -> int:
            return len(text.split())

    model = Counting([final("x")], context_window=2048)
    with pytest.raises(ConfigurationError, match="the task is 4000 tokens long"):
        Agent(model, max_tokens_per_step=256).run("word " * 4000)


def test_the_profile_of_a_model_shapes_the_prompt_and_the_step() -> None:
    from agentlib.models.profiles import PROFILES
    from agentlib.tools.calculator import calculator

    model = FunctionModel(lambda messages, output: final("4"), name="local:SmolLM2-135M-Instruct")
    agent = Agent(model, tools=[calculator])
    assert agent.profile is PROFILES["smollm2"]
    assert "Task: What is 6 + 4?" in agent._system_prompt
    unfitted = Agent(model, tools=[calculator], max_tokens_per_step=None)  # no budget to fit
    thought = unfitted.step_format.output.schema["properties"]["thought"]
    assert thought["maxLength"] == PROFILES["smollm2"].step.max_thought_length
    plain = Agent(FunctionModel(lambda messages, output: final("4")), tools=[calculator])
    assert "Task: What is 6 + 4?" not in plain._system_prompt
    assert Agent(model, tools=[add]).profile.examples  # shown only with its tool:
    assert "Task: What is 6 + 4?" not in Agent(model, tools=[add])._system_prompt


def _known_city(city: str) -> str:
    if city not in ("Paris", "Oslo"):
        raise ValueError(f"no flights to {city}; we fly to Paris and Oslo")
    return city


@tool
def book(city: Annotated[str, AfterValidator(_known_city)]) -> str:
    """Book a flight.

    Args:
        city: Where to.
    """
    return f"booked {city}"


class _SamplingModel:
    """A user's own model (no agentlib base class) that takes `sampling=`; records requests."""

    name = "sampling-test"
    capabilities = ModelCapabilities(supports_sampling=True)

    def __init__(self, replies: list[str]) -> None:
        self.replies = replies
        self.requests: list[tuple[OutputSchema | None, Sampling | None, list[Message]]] = []

    async def agenerate(
        self,
        messages: Sequence[Message],
        *,
        output: OutputSchema | None = None,
        max_tokens: int | None = None,
        sampling: Sampling | None = None,
    ) -> ModelResponse:
        self.requests.append((output, sampling, list(messages)))
        return ModelResponse(text=self.replies.pop(0), path="scripted")


def _step_text(agent: Agent[Any], city: str) -> str:
    step_format = agent.step_format
    return as_generated(
        step_format.step("I book it.", [step_format.call_action("book", {"city": city})])
    )


def _final_text(agent: Agent[Any]) -> str:
    return as_generated(agent.step_format.step("Done.", [agent.step_format.final_action("done")]))


@pytest.mark.parametrize("failed", ["Parsi", "{{city}}"])
def test_a_retry_after_a_refused_value_excludes_it_and_is_sampled(failed: str) -> None:
    pytest.importorskip("llama_cpp")
    model = _SamplingModel([])
    agent = Agent(model, tools=[book], max_tokens_per_step=400)
    model.replies = [_step_text(agent, failed), _step_text(agent, "Paris"), _final_text(agent)]
    result = agent.run("Fly me to Paris")
    assert result.ok and result.steps[0].retries == 1
    (first, first_sampling, _), (second, second_sampling, messages), _ = model.requests
    assert first is not None and second is not None
    assert first_sampling is None  # the first attempt decodes as the model is set up
    assert second_sampling == Sampling(temperature=DEFAULT_RETRY_TEMPERATURE, seed=1)
    assert second.schema == first.schema  # what servers and prompts see is unchanged
    assert failed in messages[-1].content  # the error, last, names the refused value
    if failed == "Parsi":  # the placeholder is refused by every constraint already
        assert SmolLM2Constraint(first.enforced).accepts(_step_text(agent, failed))
    assert not SmolLM2Constraint(second.enforced).accepts(_step_text(agent, failed))
    assert SmolLM2Constraint(second.enforced).accepts(_step_text(agent, "Paris"))


def test_retries_stay_greedy_when_the_profile_says_so_or_the_model_cannot_sample() -> None:
    model = _SamplingModel([])
    profile = dataclasses.replace(DEFAULT_PROFILE, retry_temperature=None)
    agent = Agent(model, tools=[book], profile=profile)
    model.replies = [_step_text(agent, "Parsi"), _final_text(agent)]
    assert agent.run("go").ok
    assert [sampling for _, sampling, _ in model.requests] == [None, None]
    # ScriptedModel does not take `sampling=`: the retry must not pass it.
    scripted = ScriptedModel([call("book", city="Parsi"), final("done")])
    assert Agent(scripted, tools=[book]).run("go").ok


_FLIGHTS: list[str] = []


def _refuse_the_first(city: str) -> str:
    _FLIGHTS.append(city)
    if len(_FLIGHTS) == 1:
        raise ValueError(f"no flights to {city} today; pick another city")
    return city


@tool
def fly(city: Annotated[str, AfterValidator(_refuse_the_first)]) -> str:
    """Book a flight to a city.

    Args:
        city: The destination city.
    """
    return f"booked a flight to {city}"


@pytest.mark.slow
def test_the_embedded_model_s_retry_cannot_repeat_a_refused_argument() -> None:
    """Real SmolLM2, greedy: the first city it writes is refused; the retry must differ."""
    from agentlib import LocalModel

    _FLIGHTS.clear()
    # The task names the tool: asked "Book me a flight to Paris." the 135M model may answer
    # without calling (the prompt shows a final answer too), and this test is about retries.
    task = "Call fly to book a flight to Paris."
    result = Agent(LocalModel(), tools=[fly], max_steps=2).run(task)
    assert len(_FLIGHTS) >= 2, (result.stop_reason, result.error)
    assert _FLIGHTS[1] != _FLIGHTS[0]  # excluded under constraint (and sampled), not repeated
    assert result.stop_reason != "invalid_output", result.error
