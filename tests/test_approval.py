"""Human approval: pausing on a risky call, resuming with decisions, approvers and timeouts."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from agentlib import (
    Agent,
    ApprovalRequest,
    ApprovalRequestEvent,
    Approve,
    ConfigurationError,
    Deny,
    RunFinishedEvent,
    ScriptedModel,
    ToolResultEvent,
    tool,
)
from agentlib.models.testing import call, final, parallel

ROOT = Path(__file__).resolve().parents[1]


def file_tools(folder: Path) -> tuple[Any, Any, Any]:
    """Real tools that change the file system, so a test sees what really ran."""

    @tool(requires_approval=True)
    def delete(name: str) -> str:
        """Delete a file.

        Args:
            name: The file name.
        """
        (folder / name).unlink()
        return f"deleted {name}"

    @tool
    def listing() -> list[str]:
        """List the files."""
        return sorted(p.name for p in folder.iterdir())

    @tool(requires_approval=lambda arguments: arguments["amount"] > 100)
    def pay(amount: int) -> str:
        """Pay an amount.

        Args:
            amount: In euros.
        """
        (folder / f"paid-{amount}").write_text("ok")
        return f"paid {amount}"

    return delete, listing, pay


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    for name in ("a.log", "b.log", "c.log"):
        (tmp_path / name).write_text("x")
    return tmp_path


def last_observation_text(model: ScriptedModel) -> str:
    return model.requests[-1].messages[-1].content


def test_risky_call_pauses_with_pending_calls_and_runs_only_after_approval(folder: Path) -> None:
    delete, listing, pay = file_tools(folder)
    model = ScriptedModel([call("delete", "Remove a.", name="a.log"), final("done")])
    agent = Agent(model, tools=[delete, listing, pay])

    paused = agent.run("delete a.log")

    assert paused.stop_reason == "approval_required"
    assert not paused.ok and paused.output is None
    [request] = paused.pending
    assert (request.call.tool_name, dict(request.call.arguments)) == ("delete", {"name": "a.log"})
    assert request.call.id == "call_1" and request.step == 1
    assert request.description == "Delete a file."
    assert (folder / "a.log").exists()  # nothing ran
    assert paused.steps[-1].calls == (request.call,) and paused.steps[-1].observations == ()
    json.dumps(paused.checkpoint)  # plain JSON, ready to store

    resumed = agent.resume(paused, {"call_1": Approve()})

    assert resumed.ok and resumed.output == "done"
    assert not (folder / "a.log").exists()
    assert resumed.steps[0].observations[0].content == "deleted a.log"
    assert [step.index for step in resumed.steps] == [1, 2]
    assert resumed.usage.requests == 2


def test_denial_reason_is_the_observation_the_model_sees(folder: Path) -> None:
    delete, listing, pay = file_tools(folder)
    model = ScriptedModel([call("delete", "", name="a.log"), final("kept")])
    agent = Agent(model, tools=[delete, listing, pay])

    paused = agent.run("delete a.log")
    result = agent.resume(paused, {"call_1": Deny("logs are kept for 30 days")})

    assert result.ok and (folder / "a.log").exists()
    observation = result.steps[0].observations[0]
    assert observation.is_error and observation.error_type == "ApprovalDenied"
    assert "logs are kept for 30 days" in last_observation_text(model)


def test_edited_arguments_run_instead_and_the_model_is_told(folder: Path) -> None:
    delete, listing, pay = file_tools(folder)
    model = ScriptedModel([call("delete", "", name="a.log"), final("done")])
    agent = Agent(model, tools=[delete, listing, pay])

    paused = agent.run("delete a.log")
    result = agent.resume(paused, {"call_1": Approve(arguments={"name": "b.log"})})

    assert (folder / "a.log").exists() and not (folder / "b.log").exists()
    assert dict(result.steps[0].calls[0].arguments) == {"name": "b.log"}
    seen = last_observation_text(model)
    assert '{"name": "b.log"}' in seen and "deleted b.log" in seen


def test_invalid_edit_and_missing_or_unknown_decisions_are_refused_before_anything_runs(
    folder: Path,
) -> None:
    delete, listing, pay = file_tools(folder)
    agent = Agent(ScriptedModel([call("delete", "", name="a.log")]), tools=[delete, listing, pay])
    paused = agent.run("delete a.log")

    with pytest.raises(ConfigurationError, match="argument 'name'"):
        agent.resume(paused, {"call_1": Approve(arguments={"name": 3})})
    with pytest.raises(ConfigurationError, match=r"no decision for call_1 \(delete\)"):
        agent.resume(paused, {})
    with pytest.raises(ConfigurationError, match="do not wait for approval: call_9"):
        agent.resume(paused, {"call_1": Approve(), "call_9": Approve()})
    assert (folder / "a.log").exists()


def test_resuming_what_did_not_pause_or_a_newer_checkpoint_is_a_clear_error(
    folder: Path,
) -> None:
    delete, listing, pay = file_tools(folder)
    agent = Agent(ScriptedModel([final("hi")]), tools=[delete, listing, pay])
    done = agent.run("hello")
    with pytest.raises(ConfigurationError, match="nothing to resume"):
        agent.resume(done, {})
    with pytest.raises(ConfigurationError, match="newer than this agentlib reads"):
        agent.resume({"version": 99, "kind": "paused_run"}, {})
    with pytest.raises(ConfigurationError, match="not a run's checkpoint"):
        agent.resume({"version": 1}, {})


def test_several_calls_in_one_step_with_mixed_decisions(folder: Path) -> None:
    delete, listing, pay = file_tools(folder)
    model = ScriptedModel(
        [
            parallel(
                call("delete", name="a.log"),
                call("listing"),
                call("delete", name="b.log"),
                call("pay", amount=500),
            ),
            final("done"),
        ]
    )
    agent = Agent(model, tools=[delete, listing, pay], parallel_calls=4)

    paused = agent.run("clean up and pay")
    # `listing` needs no approval; every other call does (the payment is over 100)
    assert [r.call.id for r in paused.pending] == ["call_1", "call_3", "call_4"]
    assert len(list(folder.iterdir())) == 3

    result = agent.resume(
        paused,
        {"call_1": Approve(), "call_3": Deny("b.log is still needed"), "call_4": Approve()},
    )

    contents = [o.content for o in result.steps[0].observations]
    assert contents[0] == "deleted a.log"
    assert "b.log" in json.loads(contents[1])  # ran with the others (concurrently)
    assert "b.log is still needed" in contents[2] and result.steps[0].observations[2].is_error
    assert contents[3] == "paid 500"
    assert sorted(p.name for p in folder.iterdir()) == ["b.log", "c.log", "paid-500"]


def test_a_policy_on_the_arguments_decides_which_calls_wait(folder: Path) -> None:
    delete, listing, pay = file_tools(folder)
    model = ScriptedModel([call("pay", amount=20), call("pay", amount=2000), final("done")])
    agent = Agent(model, tools=[delete, listing, pay])

    paused = agent.run("pay twice")

    assert (folder / "paid-20").exists()  # under the limit: ran without asking
    assert [dict(r.call.arguments) for r in paused.pending] == [{"amount": 2000}]
    assert paused.pending[0].step == 2


def test_stream_emits_an_approval_request_event_then_the_paused_result(folder: Path) -> None:
    delete, listing, pay = file_tools(folder)
    agent = Agent(ScriptedModel([call("delete", name="a.log")]), tools=[delete, listing, pay])

    async def collect() -> list[object]:
        return [event async for event in agent.stream("delete a.log")]

    events = asyncio.run(collect())
    requests = [e for e in events if isinstance(e, ApprovalRequestEvent)]
    assert len(requests) == 1 and requests[0].request.call.tool_name == "delete"
    assert not any(isinstance(e, ToolResultEvent) for e in events)
    finished = events[-1]
    assert isinstance(finished, RunFinishedEvent)
    assert finished.result.stop_reason == "approval_required"


def test_an_approver_decides_in_the_run_without_pausing(folder: Path) -> None:
    delete, listing, pay = file_tools(folder)
    asked: list[ApprovalRequest] = []

    async def approver(request: ApprovalRequest) -> Approve | Deny:
        asked.append(request)
        return Approve() if request.call.arguments["name"] == "a.log" else Deny("not that one")

    model = ScriptedModel(
        [call("delete", name="a.log"), call("delete", name="b.log"), final("done")]
    )
    result = Agent(model, tools=[delete, listing, pay]).run("delete", approver=approver)

    assert result.ok and [r.call.id for r in asked] == ["call_1", "call_2"]
    assert sorted(p.name for p in folder.iterdir()) == ["b.log", "c.log"]
    assert "not that one" in result.steps[1].observations[0].content


def test_an_approver_that_returns_none_pauses_the_run(folder: Path) -> None:
    delete, listing, pay = file_tools(folder)
    agent = Agent(ScriptedModel([call("delete", name="a.log")]), tools=[delete, listing, pay])
    result = agent.run("delete", approver=lambda request: None)
    assert result.stop_reason == "approval_required" and (folder / "a.log").exists()


def test_timeout_denies_a_call_the_approver_does_not_answer(folder: Path) -> None:
    delete, listing, pay = file_tools(folder)
    never = threading.Event()

    def blocking_approver(request: ApprovalRequest) -> Approve:
        never.wait()  # a person who never answers the terminal prompt
        return Approve()

    model = ScriptedModel([call("delete", name="a.log"), final("gave up")])
    agent = Agent(model, tools=[delete, listing, pay], approval_timeout=0.3)
    result = agent.run("delete", approver=blocking_approver)

    assert result.ok and result.output == "gave up"
    assert (folder / "a.log").exists()
    observation = result.steps[0].observations[0]
    assert observation.is_error and "no decision within 0.3 s" in observation.content
    never.set()


def test_timeout_denies_a_paused_call_resumed_too_late(folder: Path) -> None:
    delete, listing, pay = file_tools(folder)
    model = ScriptedModel([call("delete", name="a.log"), final("ok")])
    agent = Agent(model, tools=[delete, listing, pay], approval_timeout=0.2)
    paused = agent.run("delete")
    time.sleep(0.3)

    result = agent.resume(paused, {"call_1": Approve()})

    assert (folder / "a.log").exists()
    assert "no decision within 0.2 s" in result.steps[0].observations[0].content


def test_a_failing_policy_asks_instead_of_running(folder: Path) -> None:
    @tool(requires_approval=lambda arguments: arguments["missing"])
    def risky(value: int) -> int:
        """Do something.

        Args:
            value: A value.
        """
        return value

    result = Agent(ScriptedModel([call("risky", value=1)]), tools=[risky]).run("go")
    assert result.stop_reason == "approval_required"


RESUME_SCRIPT = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    from agentlib import Agent, Approve, Conversation, Deny, ScriptedModel, tool
    from agentlib.memory import SQLStore
    from agentlib.models.testing import call, final, parallel

    folder, database, phase = Path(sys.argv[1]), sys.argv[2], sys.argv[3]

    @tool(requires_approval=True)
    def delete(name: str) -> str:
        '''Delete a file.

        Args:
            name: The file name.
        '''
        (folder / name).unlink()
        return f"deleted {name}"

    store = SQLStore(database)
    conversation = Conversation.open(store, "ops")
    if phase == "start":
        model = ScriptedModel(
            [parallel(call("delete", name="a.log"), call("delete", name="b.log"))]
        )
        agent = Agent(model, tools=[delete], parallel_calls=2)
        result = agent.run("clean the logs", conversation=conversation)
        print(result.stop_reason, ",".join(r.call.id for r in result.pending))
    else:
        agent = Agent(ScriptedModel([final("cleaned a.log")]), tools=[delete], parallel_calls=2)
        checkpoint = conversation.checkpoint
        result = agent.resume(
            checkpoint,
            {"call_1": Approve(), "call_2": Deny("b.log is in use")},
            conversation=conversation,
        )
        print(result.stop_reason, result.output)
    """
)


def test_resume_in_another_process_from_a_sqlite_store(folder: Path, tmp_path: Path) -> None:
    script = tmp_path / "ops.py"
    script.write_text(RESUME_SCRIPT)
    database = str(tmp_path / "runs.db")

    def run(phase: str) -> str:
        done = subprocess.run(
            [sys.executable, str(script), str(folder), database, phase],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    assert run("start") == "approval_required call_1,call_2"
    assert (folder / "a.log").exists() and (folder / "b.log").exists()

    from agentlib import Conversation
    from agentlib.memory import SQLStore

    stored = Conversation.open(SQLStore(database), "ops")
    assert stored.turns[-1].stop_reason == "approval_required"
    assert stored.checkpoint is not None and stored.checkpoint["version"] == 2

    assert run("resume") == "final_answer cleaned a.log"
    assert not (folder / "a.log").exists() and (folder / "b.log").exists()

    after = Conversation.open(SQLStore(database), "ops")
    [turn] = after.turns  # the resumed run completed the paused turn
    assert turn.stop_reason == "final_answer" and turn.checkpoint is None
    assert [s.index for s in turn.steps] == [1, 2]
    assert "b.log is in use" in turn.steps[0].observations[1].content


def _calculator_server_reply(body: dict[str, Any]) -> Any:
    from .models._openai_server import chat

    last = body["messages"][-1]["content"]
    if last.startswith("Observation"):
        answer = last.rsplit("\n", 1)[-1]
        return chat({"thought": "Done.", "action": {"tool": "final_answer", "answer": answer}})
    return chat(
        {
            "thought": "Use the calculator.",
            "action": {"tool": "calculator", "arguments": {"expression": "17 * 23"}},
        }
    )


@pytest.mark.parametrize(
    ("answers", "printed"),
    [("y\n", "391"), ('e\n{"expression": "2 * 3"}\n', "6"), ("n\nuse mental arithmetic\n", None)],
    ids=["yes", "edit", "no"],
)
def test_cli_asks_at_the_terminal(
    answers: str,
    printed: str | None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import io

    from agentlib.cli import main

    from .models._openai_server import run_server

    monkeypatch.setattr("sys.stdin", io.StringIO(answers))
    with run_server(_calculator_server_reply) as server:
        code = main(
            [
                "run",
                "What is 17 * 23?",
                "--model",
                f"openai-compatible:{server.base_url}#test-model",
                "--tools",
                "calculator",
                "--approve",
                "calculator",
            ]
        )
        seen = server.chat_requests[-1]["messages"][-1]["content"]
    captured = capsys.readouterr()
    assert code == 0
    assert "[step 1] calculator needs approval" in captured.err
    assert 'approve calculator({"expression": "17 * 23"}) [call_1]?' in captured.err
    if printed is not None:
        assert captured.out.strip() == printed
    else:
        assert "use mental arithmetic" in seen


def test_cancelling_while_the_approver_waits_stops_the_run(folder: Path) -> None:
    from agentlib import CancelToken

    delete, listing, pay = file_tools(folder)
    token = CancelToken()

    async def slow_approver(request: ApprovalRequest) -> Approve:
        token.cancel()
        await asyncio.sleep(30)
        return Approve()

    agent = Agent(ScriptedModel([call("delete", name="a.log")]), tools=[delete, listing, pay])
    result = agent.run("delete", approver=slow_approver, cancel_token=token)
    assert result.stop_reason == "cancelled" and (folder / "a.log").exists()
