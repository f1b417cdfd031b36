"""Conversations, memory strategies and stores: real SQLite files, real processes, and the loop
driven by ScriptedModel / FunctionModel."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import sqlite3
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from agentlib import (
    Agent,
    CancelToken,
    ConfigurationError,
    FunctionModel,
    Message,
    MissingExtraError,
    ModelError,
    OutputSchema,
    RunFinishedEvent,
    ScriptedModel,
    StepStartedEvent,
    StoreError,
    tool,
)
from agentlib.agent import ConversationLike
from agentlib.memory import (
    FORMAT_VERSION,
    BudgetMemory,
    Conversation,
    ConversationStore,
    InMemoryStore,
    KeywordIndex,
    RetrievalMemory,
    SQLStore,
    SummaryMemory,
    Turn,
    WindowMemory,
)
from agentlib.models.testing import call, final

FIXTURE = Path(__file__).parent / "data" / "conversation_v1.json"


@tool
def lookup(key: str) -> str:
    """Look a key up.

    Args:
        key: The key to look up.
    """
    return f"value of {key}"


def _contents(messages: Sequence[Message]) -> list[str]:
    return [message.content for message in messages]


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SQLStore]:
    store = SQLStore(f"sqlite:///{tmp_path / 'chat.db'}")
    yield store
    store.close()


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ConversationStore]:
    if request.param == "memory":
        yield InMemoryStore()
        return
    sql = SQLStore(str(tmp_path / "chat.db"))  # a bare path means a SQLite file
    yield sql
    sql.close()


# -- multi-turn runs ------------------------------------------------------------------------


def test_second_run_sees_the_first_turn() -> None:
    model = ScriptedModel([final("Nice to meet you, Ada."), final("Your name is Ada.")])
    agent = Agent(model)
    conversation = Conversation()
    first = agent.run("My name is Ada.", conversation=conversation)
    second = agent.run("What is my name?", conversation=conversation)
    assert first.ok and second.ok
    sent = _contents(model.requests[1].messages)
    assert sent[1:] == ["My name is Ada.", "Nice to meet you, Ada.", "What is my name?"]
    assert [turn.task for turn in conversation.turns] == ["My name is Ada.", "What is my name?"]
    assert conversation.turns[1].answer == "Your name is Ada."


def test_run_result_becomes_the_next_runs_history() -> None:
    model = ScriptedModel([call("lookup", "look", key="x"), final("x is known")])
    result = Agent(model, tools=[lookup]).run("What is x?")
    turn = Turn.from_result(result)
    assert _contents(turn.messages()) == ["What is x?", "x is known"]
    with_steps = turn.messages(include_steps=True)[1].content
    assert 'lookup({"key": "x"}) -> value of x' in with_steps
    assert with_steps.endswith("Answer: x is known")


class City(BaseModel):
    name: str
    population: int


def test_structured_answer_is_stored_as_json_and_shown_to_the_next_run() -> None:
    model = ScriptedModel([final({"name": "Oslo", "population": 700000}), final("done")])
    conversation = Conversation()
    Agent(model, output_type=City).run("Biggest city in Norway?", conversation=conversation)
    Agent(model).run("Thanks", conversation=conversation)
    assert conversation.turns[0].answer == {"name": "Oslo", "population": 700000}
    assert '{"name": "Oslo", "population": 700000}' in _contents(model.requests[1].messages)


async def test_stored_conversation_continues_in_a_new_process_view(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'chat.db'}"
    writer = SQLStore(url)
    model = ScriptedModel([call("lookup", "need it", key="colour"), final("blue")])
    conversation = Conversation("support-42", store=writer)
    await Agent(model, tools=[lookup]).arun("Favourite colour?", conversation=conversation)
    writer.close()

    reader = SQLStore(url)
    loaded = Conversation.open(reader, "support-42")
    assert loaded.problems == ()
    (turn,) = loaded.turns
    assert turn.task == "Favourite colour?" and turn.answer == "blue" and turn.ok
    first = turn.steps[0]
    assert first.thought == "need it"
    assert first.calls[0].tool_name == "lookup" and dict(first.calls[0].arguments) == {
        "key": "colour"
    }
    assert first.observations[0].content == "value of colour"
    assert turn.steps[1].is_final and turn.steps[1].final_answer == "blue"
    assert turn.usage.requests == 2

    follow_up = ScriptedModel([final("Still blue.")])
    await Agent(follow_up).arun("And now?", conversation=loaded)
    assert "blue" in _contents(follow_up.requests[0].messages)
    assert [t.task for t in reader.load("support-42").turns] == [  # type: ignore[union-attr]
        "Favourite colour?",
        "And now?",
    ]
    reader.close()


def test_stopped_run_is_recorded_with_its_reason() -> None:
    model = ScriptedModel([call("lookup", key="a"), call("lookup", key="b")])
    conversation = Conversation()
    result = Agent(model, tools=[lookup], max_steps=2).run("Loop", conversation=conversation)
    (turn,) = conversation.turns
    assert result.stop_reason == "max_steps" and turn.stop_reason == "max_steps"
    assert len(turn.steps) == 2 and turn.answer is None
    assert "stopped with max_steps" in turn.messages()[1].content


async def test_abandoned_stream_leaves_an_interrupted_turn_and_the_next_run_starts_fresh() -> None:
    model = ScriptedModel([call("lookup", key="a"), call("lookup", key="b"), final("fresh answer")])
    agent = Agent(model, tools=[lookup])
    conversation = Conversation()
    stream = agent.stream("first task", conversation=conversation)
    async for event in stream:
        if isinstance(event, StepStartedEvent) and event.step == 2:
            break
    await stream.aclose()  # type: ignore[attr-defined]
    model2 = ScriptedModel([final("fresh answer")])
    result = await Agent(model2).arun("second task", conversation=conversation)
    assert result.ok
    first, second = conversation.turns
    assert first.task == "first task" and first.stop_reason is None and len(first.steps) == 1
    assert "(no answer: the run was interrupted)" in _contents(model2.requests[0].messages)
    assert second.task == "second task" and second.ok


def test_record_appends_a_run_without_an_agent_loop(store: ConversationStore) -> None:
    result = Agent(ScriptedModel([final("42")])).run("The answer?")
    conversation = Conversation("c1", store=store)
    turn = conversation.record("The answer?", result)
    loaded = store.load("c1")
    assert loaded is not None and [t.id for t in loaded.turns] == [turn.id]
    assert loaded.turns[0].answer == "42"


# -- stores ---------------------------------------------------------------------------------


def test_store_lists_and_deletes_conversations(store: ConversationStore) -> None:
    assert isinstance(store, ConversationStore)
    assert isinstance(Conversation(), ConversationLike)
    for name, task in (("a", "first question"), ("b", "another one")):
        conversation = Conversation(name, store=store, metadata={"owner": name})
        conversation.record(task, Agent(ScriptedModel([final("ok")])).run(task))
    listed = {info.id: info for info in store.list_conversations()}
    assert set(listed) == {"a", "b"}
    assert listed["a"].title == "first question" and listed["a"].turns == 1
    assert store.load("a").metadata == {"owner": "a"}  # type: ignore[union-attr]
    assert store.delete("a") is True
    assert store.delete("a") is False
    assert store.load("a") is None
    assert [info.id for info in store.list_conversations()] == ["b"]


def test_save_writes_metadata_and_every_turn(store: ConversationStore) -> None:
    conversation = Conversation(
        "saved",
        store=store,
        metadata={"title": "Trip planning"},
        turns=[Turn(task="Where to?", answer="Bergen", stop_reason="final_answer")],
    )
    conversation.memory_state["note"] = "kept"
    conversation.save()
    loaded = store.load("saved")
    assert loaded is not None
    assert loaded.title == "Trip planning" and loaded.memory_state == {"note": "kept"}
    assert loaded.turns[0].answer == "Bergen"
    assert store.list_conversations()[0].title == "Trip planning"


def test_save_without_a_store_says_how_to_fix_it() -> None:
    with pytest.raises(ConfigurationError, match=r"has no store; create it with"):
        Conversation("x").save()


def test_sqlite_store_uses_wal(sqlite_store: SQLStore) -> None:
    with sqlite_store.engine.connect() as connection:
        mode = connection.exec_driver_sql("PRAGMA journal_mode").scalar()
    assert mode == "wal"


def test_importing_memory_does_not_import_sqlalchemy() -> None:
    code = "import sys, agentlib, agentlib.memory; print('sqlalchemy' in sys.modules)"
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert output.strip() == "False"


def test_sql_store_without_sqlalchemy_names_the_extra() -> None:
    code = textwrap.dedent(
        """
        import sys
        sys.modules["sqlalchemy"] = None  # as if it were not installed
        from agentlib import MissingExtraError
        from agentlib.memory import SQLStore
        try:
            SQLStore("chat.db")
        except MissingExtraError as exc:
            print(exc.package, exc.extra, exc)
        """
    )
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert output.startswith("sqlalchemy sql ")
    assert 'pip install "agentlib-typed[sql]"' in output
    assert issubclass(MissingExtraError, ImportError)


def test_unwritable_sqlite_path_raises_store_error_naming_the_url(tmp_path: Path) -> None:
    from sqlalchemy.exc import OperationalError

    path = tmp_path / "no-such-folder" / "chat.db"
    with pytest.raises(StoreError) as raised:
        SQLStore(path.as_posix())
    error = raised.value
    assert error.url == f"sqlite:///{path.as_posix()}"
    assert str(error).startswith(f"conversation store {error.url} could not create its tables: ")
    assert "unable to open database file" in str(error)
    assert "check that the database exists, is reachable" in str(error)
    assert isinstance(error.__cause__, OperationalError)


def test_store_whose_tables_disappeared_raises_store_error(sqlite_store: SQLStore) -> None:
    Conversation("kept", store=sqlite_store).save()
    with sqlite_store.engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE agentlib_turns")
    with pytest.raises(StoreError, match=r"could not load conversation 'kept': no such table"):
        sqlite_store.load("kept")


def test_store_still_locked_after_retries_raises_store_error(tmp_path: Path) -> None:
    import sqlalchemy as sa

    path = tmp_path / "chat.db"
    # A user's engine without a busy timeout, so a held lock fails at once instead of in 10 s.
    engine = sa.create_engine(f"sqlite:///{path}", connect_args={"timeout": 0})
    store = SQLStore(engine, max_retries=2)
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        with pytest.raises(StoreError) as raised:
            Conversation("busy", store=store).save()
    finally:
        holder.close()
        engine.dispose()
    message = str(raised.value)
    assert "could not save conversation 'busy': database is locked" in message
    assert "after 3 attempts" in message and "max_retries (now 2)" in message


# -- the JSON format --------------------------------------------------------------------------


def test_the_written_format_is_the_committed_version_1_fixture() -> None:
    # Pins the format byte for byte: what `to_dict` writes (through the pydantic records) is
    # exactly what the committed fixture holds, key order included.
    text = FIXTURE.read_text("utf-8")
    written = Conversation.from_json(text).to_dict()
    assert json.dumps(written) == json.dumps(json.loads(text))


def test_committed_version_1_fixture_keeps_loading() -> None:
    text = FIXTURE.read_text("utf-8")
    conversation = Conversation.from_json(text)
    assert conversation.problems == ()
    assert conversation.id == "fixture-conversation"
    assert conversation.metadata == {"title": "Weather and maths", "user": "ada"}
    weather, maths, interrupted = conversation.turns
    assert weather.task == "What is the weather in Oslo?" and weather.ok
    assert weather.steps[0].calls[0].tool_name == "weather"
    assert weather.steps[0].observations[0].content == "light rain, 7 °C"
    assert weather.answer == {"city": "Oslo", "summary": "light rain", "celsius": 7}
    assert maths.steps[0].observations[0].is_error
    assert maths.steps[0].observations[0].error_type == "ZeroDivisionError"
    assert interrupted.stop_reason is None and len(interrupted.steps) == 1
    assert conversation.memory_state["summary"]["turns"] == 1
    # Stable: writing it again gives the same document.
    assert conversation.to_dict() == json.loads(text)


def test_newer_format_version_is_refused_with_a_clear_message() -> None:
    data = json.loads(FIXTURE.read_text("utf-8"))
    data["version"] = FORMAT_VERSION + 1
    with pytest.raises(ConfigurationError, match=r"format version 2, newer .* upgrade agentlib"):
        Conversation.from_dict(data)


def test_bad_turn_in_a_json_document_is_skipped_and_named() -> None:
    data = json.loads(FIXTURE.read_text("utf-8"))
    data["turns"][1] = {"version": 1, "id": "t", "task": 5}
    conversation = Conversation.from_dict(data)
    assert len(conversation.turns) == 2
    (problem,) = conversation.problems
    assert problem.row_id == "turns[1]" and problem.kind == "turn"
    assert "task" in problem.message and "created_at" in problem.message


def test_invalid_json_text_is_reported_as_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="not valid JSON"):
        Conversation.from_json("{nope")


# -- robustness -------------------------------------------------------------------------------


def _raw_turn_row(
    store: SQLStore, row_id: str, conversation_id: str, position: int, data: str
) -> None:
    import sqlalchemy as sa

    with store.engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO agentlib_turns (id, conversation_id, position, updated_at, data) "
                "VALUES (:id, :conversation, :position, 0, :data)"
            ),
            {"id": row_id, "conversation": conversation_id, "position": position, "data": data},
        )


def test_corrupt_and_foreign_rows_are_reported_and_the_others_load(
    sqlite_store: SQLStore,
) -> None:
    conversation = Conversation("mixed", store=sqlite_store)
    for task in ("one", "two"):
        conversation.record(task, Agent(ScriptedModel([final(task.upper())])).run(task))
    good = Turn(task="three", answer="THREE", stop_reason="final_answer")
    _raw_turn_row(sqlite_store, "broken-json", "mixed", 10, "{this is not json")
    _raw_turn_row(sqlite_store, "foreign", "mixed", 11, json.dumps({"role": "user", "text": "hi"}))
    newer = {**good.to_dict(), "id": "from-the-future", "version": 7}
    _raw_turn_row(sqlite_store, "from-the-future", "mixed", 12, json.dumps(newer))
    _raw_turn_row(sqlite_store, "misfiled", "mixed", 13, json.dumps(good.to_dict()))
    _raw_turn_row(sqlite_store, good.id, "mixed", 14, json.dumps(good.to_dict()))

    loaded = sqlite_store.load("mixed")
    assert loaded is not None
    assert [turn.task for turn in loaded.turns] == ["one", "two", "three"]
    problems = {problem.row_id: problem.message for problem in loaded.problems}
    assert set(problems) == {"broken-json", "foreign", "from-the-future", "misfiled"}
    assert "not valid JSON" in problems["broken-json"]
    assert "no 'version' field" in problems["foreign"]
    assert "format version 7" in problems["from-the-future"]
    assert "belongs elsewhere" in problems["misfiled"]
    assert "'broken-json' was skipped" in str(loaded.problems[0])


@pytest.mark.parametrize(
    ("data", "message"),
    [("[1, 2", "not valid JSON"), ("[1, 2]", "JSON list, not an object"), ("{}", "'version'")],
)
def test_corrupt_conversation_row_still_loads_its_turns(
    sqlite_store: SQLStore, data: str, message: str
) -> None:
    import sqlalchemy as sa

    conversation = Conversation("damaged", store=sqlite_store, metadata={"title": "x"})
    conversation.record("hello", Agent(ScriptedModel([final("hi")])).run("hello"))
    with sqlite_store.engine.begin() as connection:
        connection.execute(
            sa.text("UPDATE agentlib_conversations SET data = :data"), {"data": data}
        )
    loaded = sqlite_store.load("damaged")
    assert loaded is not None and [turn.answer for turn in loaded.turns] == ["hi"]
    (problem,) = loaded.problems
    assert problem.kind == "conversation" and problem.row_id == "damaged"
    assert message in problem.message


async def test_cancelled_run_is_saved_as_cancelled_with_its_finished_steps(
    sqlite_store: SQLStore,
) -> None:
    token = CancelToken()

    @tool
    async def slow(key: str) -> str:
        """Take a long time.

        Args:
            key: Anything.
        """
        if key == "stop":
            token.cancel()
            await asyncio.sleep(60)
        return "fast"

    model = ScriptedModel([call("slow", key="go"), call("slow", key="stop"), final("never")])
    conversation = Conversation("cancel", store=sqlite_store)
    result = await Agent(model, tools=[slow]).arun(
        "cancel me", conversation=conversation, cancel_token=token
    )
    assert result.stop_reason == "cancelled"
    loaded = sqlite_store.load("cancel")
    assert loaded is not None
    (turn,) = loaded.turns
    assert turn.stop_reason == "cancelled"
    assert turn.steps[0].observations[0].content == "fast"


def test_crash_mid_run_keeps_every_finished_step(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'chat.db'}"
    script = textwrap.dedent(
        """
        import os, sys
        from agentlib import Agent, ScriptedModel, tool
        from agentlib.memory import Conversation, SQLStore
        from agentlib.models.testing import call, final

        @tool
        def lookup(key: str) -> str:
            '''Look a key up.

            Args:
                key: The key.
            '''
            if key == "crash":
                os._exit(3)  # the process dies mid-step, no cleanup runs
            return f"value of {key}"

        conversation = Conversation("crashy", store=SQLStore(sys.argv[1]))
        model = ScriptedModel([
            call("lookup", "first", key="a"),
            call("lookup", "second", key="b"),
            call("lookup", "third", key="crash"),
            final("never reached"),
        ])
        Agent(model, tools=[lookup]).run("look things up", conversation=conversation)
        """
    )
    crashed = subprocess.run([sys.executable, "-c", script, url], capture_output=True, text=True)
    assert crashed.returncode == 3, crashed.stderr

    store = SQLStore(url)
    conversation = store.load("crashy")
    assert conversation is not None
    (turn,) = conversation.turns
    assert turn.task == "look things up" and turn.stop_reason is None
    assert [step.thought for step in turn.steps] == ["first", "second"]
    assert [step.observations[0].content for step in turn.steps] == ["value of a", "value of b"]
    store.close()


def _append_turns(url: str, worker: int, count: int) -> None:
    store = SQLStore(url)
    for number in range(count):
        for conversation_id in ("shared", f"own-{worker}"):
            conversation = Conversation(conversation_id, store=store)
            turn = Turn(
                task=f"worker {worker} turn {number}", answer=number, stop_reason="final_answer"
            )
            store.save_turn(conversation, turn)
    store.close()


def _check_concurrent_result(store: SQLStore, workers: int, count: int) -> None:
    shared = store.load("shared")
    assert shared is not None and shared.problems == ()
    tasks = sorted(turn.task for turn in shared.turns)
    assert tasks == sorted(f"worker {w} turn {n}" for w in range(workers) for n in range(count))
    for worker in range(workers):
        own = store.load(f"own-{worker}")
        assert own is not None
        # Each writer's own turns come back in the order it wrote them.
        assert [turn.answer for turn in own.turns] == list(range(count))
    assert {info.id: info.turns for info in store.list_conversations()}["shared"] == workers * count


def test_write_waits_for_another_connections_lock_instead_of_failing(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "chat.db"
    store = SQLStore(str(path))
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")  # another process's write transaction holds the lock
    locked = threading.Event()

    def commit() -> None:
        holder.execute("COMMIT")
        locked.set()

    release = threading.Timer(0.3, commit)
    release.start()
    store.save_turn(Conversation("waits", store=store), Turn(task="queued", answer=1))
    release.join()
    holder.close()
    assert locked.is_set()
    loaded = store.load("waits")
    assert loaded is not None and [turn.task for turn in loaded.turns] == ["queued"]
    store.close()


def test_concurrent_threads_do_not_corrupt_a_sqlite_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'chat.db'}"
    SQLStore(url).close()
    threads = [threading.Thread(target=_append_turns, args=(url, w, 15)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    store = SQLStore(url)
    _check_concurrent_result(store, 4, 15)
    store.close()


def test_concurrent_processes_do_not_corrupt_a_sqlite_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'chat.db'}"
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_append_turns, args=(url, w, 10)) for w in range(3)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    assert [process.exitcode for process in processes] == [0, 0, 0]
    store = SQLStore(url)
    _check_concurrent_result(store, 3, 10)
    store.close()


@pytest.mark.postgres
def test_postgres_store_serves_concurrent_writers(postgres_url: str) -> None:
    import uuid

    prefix = f"memory_{uuid.uuid4().hex[:8]}_"
    store = SQLStore(postgres_url, table_prefix=prefix)
    try:
        threads = [threading.Thread(target=_append_with, args=(store, w, 8)) for w in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        _check_concurrent_result(store, 4, 8)
        model = ScriptedModel([call("lookup", key="pg"), final("stored in postgres")])
        conversation = Conversation("pg-run", store=store)
        Agent(model, tools=[lookup]).run("Where is it stored?", conversation=conversation)
        loaded = store.load("pg-run")
        assert loaded is not None
        assert loaded.turns[0].steps[0].observations[0].content == "value of pg"
        assert store.delete("pg-run") and store.load("pg-run") is None
    finally:
        import sqlalchemy as sa

        with store.engine.begin() as connection:
            connection.execute(sa.text(f"DROP TABLE {prefix}turns, {prefix}conversations"))
        store.close()


def _append_with(store: SQLStore, worker: int, count: int) -> None:
    for number in range(count):
        for conversation_id in ("shared", f"own-{worker}"):
            conversation = Conversation(conversation_id, store=store)
            turn = Turn(
                task=f"worker {worker} turn {number}", answer=number, stop_reason="final_answer"
            )
            store.save_turn(conversation, turn)


# -- memory strategies ------------------------------------------------------------------------


def _conversation_with(count: int, *, size: int = 10) -> Conversation:
    return Conversation(
        turns=[
            Turn(
                task=f"question {n} " + "x" * size, answer=f"answer {n}", stop_reason="final_answer"
            )
            for n in range(count)
        ]
    )


async def test_window_memory_shows_only_the_last_turns() -> None:
    conversation = _conversation_with(6)
    conversation.memory = WindowMemory(turns=2)
    history = await conversation.ahistory(ScriptedModel([]), "next")
    assert _contents(history) == [
        "question 4 xxxxxxxxxx",
        "answer 4",
        "question 5 xxxxxxxxxx",
        "answer 5",
    ]


async def test_default_memory_keeps_within_the_context_budget() -> None:
    conversation = _conversation_with(200, size=400)
    model = ScriptedModel([final("ok")], context_window=2048)
    history = await conversation.ahistory(model, "next")
    assert isinstance(conversation.memory, BudgetMemory)
    assert sum(len(m.content) for m in history) <= 2048 * 4 // 2
    assert history[-1].content == "answer 199" and len(history) < 400
    result = await Agent(model).arun("next", conversation=conversation)
    assert result.ok
    sent = model.requests[0].messages
    assert sum(len(m.content) for m in sent) <= 2048 * 4


async def test_budget_memory_shortens_a_single_huge_turn_visibly() -> None:
    conversation = Conversation(
        turns=[Turn(task="paste", answer="y" * 100_000, stop_reason="final_answer")]
    )
    history = await conversation.ahistory(ScriptedModel([], context_window=1024), "next")
    assert sum(len(m.content) for m in history) <= 1024 * 4 // 2
    assert "shortened to fit the context: 100000 characters" in history[1].content


def _summariser(calls: list[list[Message]]) -> FunctionModel:
    def summarise(messages: Sequence[Message], output: OutputSchema | None) -> str:
        calls.append(list(messages))
        prompt = messages[-1].content
        mentioned = sorted(set(__import__("re").findall(r"question \d+", prompt)))
        return "Earlier the user asked: " + ", ".join(mentioned)

    return FunctionModel(summarise, name="summariser")


async def test_summary_memory_folds_older_turns_into_a_running_summary(tmp_path: Path) -> None:
    calls: list[list[Message]] = []
    store = SQLStore(str(tmp_path / "chat.db"))
    memory = SummaryMemory(_summariser(calls), recent=2)
    conversation = Conversation("long", store=store, memory=memory)
    for number in range(4):
        result = await Agent(ScriptedModel([final(f"answer {number}")])).arun(f"question {number}")
        conversation.record(f"question {number}", result)
    model = ScriptedModel([final("first"), final("second")])
    await Agent(model).arun("question 4", conversation=conversation)

    (summary_request,) = calls
    assert "question 0" in summary_request[-1].content and "answer 1" in summary_request[-1].content
    sent = _contents(model.requests[0].messages)
    assert (
        sent[1]
        == "Summary of the earlier conversation:\nEarlier the user asked: question 0, question 1"
    )
    assert model.requests[0].messages[1].role == "system"
    assert sent[2:] == ["question 2", "answer 2", "question 3", "answer 3", "question 4"]

    # The summary is stored with the conversation: a reload does not summarise again, and the
    # next turn that leaves the window is merged into it.
    reloaded = Conversation.open(store, "long", memory=SummaryMemory(_summariser(calls), recent=2))
    assert reloaded.memory_state["summary"]["turns"] == 2
    await Agent(model).arun("question 5", conversation=reloaded)
    assert len(calls) == 2
    assert "Earlier the user asked: question 0, question 1" in calls[1][-1].content
    assert (
        "question 2" in calls[1][-1].content
        and "question 0" not in calls[1][-1].content.split("New turns:")[1]
    )
    store.close()


async def test_summary_memory_uses_the_agents_model_by_default() -> None:
    def brain(messages: Sequence[Message], output: OutputSchema | None) -> Any:
        if output is None:  # the summary request asks for free text
            return "The user likes tea."
        return final("noted")

    model = FunctionModel(brain)
    conversation = _conversation_with(3)
    conversation.memory = SummaryMemory(recent=1)
    await Agent(model).arun("What do I like?", conversation=conversation)
    assert model.requests[0].output is None
    assert "The user likes tea." in model.requests[1].messages[1].content


async def test_failed_summary_keeps_the_previous_one() -> None:
    def broken(messages: Sequence[Message], output: OutputSchema | None) -> Any:
        return ModelError("summariser unreachable")

    conversation = _conversation_with(3)
    conversation.memory_state["summary"] = {
        "text": "old summary",
        "turns": 1,
        "through": conversation.turns[0].id,
    }
    conversation.memory = SummaryMemory(FunctionModel(broken), recent=1)
    history = await conversation.ahistory(ScriptedModel([]), "next")
    assert history[0].content == "Summary of the earlier conversation:\nold summary"
    assert _contents(history[1:]) == ["question 2 xxxxxxxxxx", "answer 2"]


async def test_retrieval_memory_brings_back_relevant_old_turns() -> None:
    topics = ["the garden shed", "invoice number 7731", "the dentist on Friday", "pasta recipe"]
    conversation = Conversation(
        memory=RetrievalMemory(k=1, recent=1),
        turns=[
            Turn(task=f"Remember {topic}.", answer=f"Noted: {topic}.", stop_reason="final_answer")
            for topic in topics
        ],
    )
    model = ScriptedModel([final("7731")])
    await Agent(model).arun("Which invoice number did I mention?", conversation=conversation)
    sent = _contents(model.requests[0].messages)
    assert sent[1:5] == [
        "Remember invoice number 7731.",
        "Noted: invoice number 7731.",
        "Remember pasta recipe.",
        "Noted: pasta recipe.",
    ]
    assert not any("garden" in text for text in sent)


async def test_retrieval_memory_with_a_shared_index_keeps_conversations_apart() -> None:
    index = KeywordIndex()
    memory = RetrievalMemory(index, k=2, recent=0)
    alice = Conversation(
        "alice", memory=memory, turns=[Turn(task="my cat is Tom", stop_reason="final_answer")]
    )
    bob = Conversation(
        "bob", memory=memory, turns=[Turn(task="my cat is Felix", stop_reason="final_answer")]
    )
    await alice.ahistory(ScriptedModel([]), "cat")
    history = await bob.ahistory(ScriptedModel([]), "what is my cat called")
    assert len(index) == 2
    assert _contents(history)[0] == "my cat is Felix"
    assert not any("Tom" in text for text in _contents(history))


def test_keyword_index_ranks_rare_words_higher_and_is_deterministic() -> None:
    index = KeywordIndex()
    index.add(
        ["the report about python", "the report about sqlite", "the python report again"],
        [{"n": 0}, {"n": 1}, {"n": 2}],
    )
    hits = index.search("sqlite report", 2)
    assert [hit.metadata["n"] for hit in hits] == [1, 0]
    assert index.search("nothing matches", 3) == []
    with pytest.raises(ConfigurationError, match="one per text"):
        index.add(["a"], [])


def test_memory_options_are_checked() -> None:
    with pytest.raises(ConfigurationError, match="share"):
        BudgetMemory(share=1.5)
    with pytest.raises(ConfigurationError, match="turns"):
        WindowMemory(turns=-1)
    with pytest.raises(ConfigurationError, match="recent"):
        SummaryMemory(recent=-1)
    with pytest.raises(ConfigurationError, match="k must be"):
        RetrievalMemory(k=0)


async def test_streamed_run_records_the_turn_before_the_last_event() -> None:
    conversation = Conversation()
    async for event in Agent(ScriptedModel([final("hi")])).stream(
        "hello", conversation=conversation
    ):
        if isinstance(event, RunFinishedEvent):
            assert [turn.answer for turn in conversation.turns] == ["hi"]
