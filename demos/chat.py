"""The agent chat tab: the steps stream in as they happen, and Stop really cancels the run."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

from agentlib._optional import available, optional_imports

with optional_imports("demos", feature="the Gradio demos"):
    import gradio as gr

from agentlib import (
    Agent,
    CancelToken,
    ErrorEvent,
    FinalAnswerEvent,
    Message,
    RunFinishedEvent,
    ThoughtEvent,
    ToolCallEvent,
    ToolResultEvent,
)

from ._shared import (
    SMALL_MODEL_NOTE,
    ChatSession,
    ModelPool,
    close_session,
    importable,
)

ToolFactory = Callable[[ChatSession], Any]
_RESULT_PREVIEW = 1500
_MAX_TASK_CHARS = 4000


def _calculator(session: ChatSession) -> Any:
    from agentlib.tools.calculator import calculator

    return calculator


def _python(session: ChatSession) -> Any:
    # One sandbox session per browser session, kept across turns and closed with the session.
    if "python" not in session.toolsets:
        from agentlib.tools.python import PythonInterpreter

        session.toolsets["python"] = PythonInterpreter()
    return session.toolsets["python"]


def _sql(session: ChatSession) -> Any:
    # A per-session read-only connection to the sample database (created once per process).
    if "sql" not in session.toolsets:
        from .sql_explorer import open_database, sample_database

        session.toolsets["sql"] = open_database(sample_database())
    return session.toolsets["sql"]


_graph_lock = threading.Lock()
_graph: list[Any] = []


def _sample_graph() -> Any:
    with _graph_lock:
        if not _graph:
            from agentlib.tools.cypher import load_sample_graph

            _graph.append(load_sample_graph())
        return _graph[0]


def _movies(session: ChatSession) -> Any:
    # Per session: its queries run in its own worker process, killed on timeout, closed with it.
    if "graph" not in session.toolsets:
        from agentlib.tools.cypher import GraphDatabase

        session.toolsets["graph"] = GraphDatabase(_sample_graph(), max_rows=50, timeout=10.0)
    return session.toolsets["graph"]


def _docs_search(embedder: str | None) -> ToolFactory:
    def factory(session: ChatSession) -> Any:
        from agentlib.tools.retrieval import RetrievalTool

        from .docs_qa import embedder_name, project_docs

        return RetrievalTool(project_docs(embedder_name(embedder)), k=4, max_k=8)

    return factory


def tool_choices(*, embedder: str | None = None) -> dict[str, ToolFactory]:
    """The tools offered in the picker, for the modules that import (their extras installed).

    Args:
        embedder: The docs search embedder (`minilm` or `hashing`); default from the env.
    """
    choices: dict[str, ToolFactory] = {"calculator": _calculator}
    if available("agentlib.tools.python"):
        choices["python (sandboxed)"] = _python
    if importable("agentlib.tools.sql"):
        choices["SQL (sample music store)"] = _sql
    if importable("agentlib.tools.cypher"):
        choices["graph (sample movies)"] = _movies
    if importable("agentlib.tools.retrieval.collection"):
        choices["docs search"] = _docs_search(embedder)
    return choices


def _fence(text: str, language: str = "") -> str:
    return f"```{language}\n{text.replace('```', '` ` `')}\n```"


def render_event(event: object, messages: list[gr.ChatMessage]) -> None:
    """Append (or update) the chat messages that show one agent event."""
    if isinstance(event, ThoughtEvent) and event.thought:
        messages.append(
            gr.ChatMessage(
                content=event.thought,
                metadata={"title": f"Step {event.step} · thought", "status": "done"},
            )
        )
    elif isinstance(event, ToolCallEvent):
        arguments = json.dumps(dict(event.call.arguments), ensure_ascii=False, indent=1)
        messages.append(
            gr.ChatMessage(
                content=_fence(arguments, "json"),
                metadata={
                    "title": f"Tool call · {event.call.tool_name}",
                    "id": event.call.id,
                    "status": "pending",
                },
            )
        )
    elif isinstance(event, ToolResultEvent):
        observation = event.observation
        for message in reversed(messages):
            if (
                isinstance(message.metadata, dict)
                and message.metadata.get("id") == observation.call_id
            ):
                text = observation.content
                if len(text) > _RESULT_PREVIEW:
                    text = text[:_RESULT_PREVIEW] + f"\n… ({len(observation.content)} characters)"
                label = "Error" if observation.is_error else "Result"
                message.content = f"{message.content}\n**{label}**\n{_fence(text)}"
                message.metadata["status"] = "done"
                message.metadata["duration"] = round(observation.duration, 2)
                if observation.is_error:
                    message.metadata["title"] = f"Tool call · {observation.tool_name} failed"
                break
    elif isinstance(event, ErrorEvent):
        note = "asking the model again" if event.will_retry else "giving up"
        messages.append(
            gr.ChatMessage(
                content=event.message,
                metadata={"title": f"Step {event.step} · invalid step, {note}", "status": "done"},
            )
        )
    elif isinstance(event, FinalAnswerEvent):
        output = event.output
        text = (
            output if isinstance(output, str) else _fence(json.dumps(output, default=str), "json")
        )
        messages.append(gr.ChatMessage(content=text or "(empty answer)"))


def _footer(event: RunFinishedEvent) -> gr.ChatMessage | None:
    result = event.result
    paths = ", ".join(result.generation_paths) or "none"
    summary = (
        f"{len(result.steps)} step(s) · {result.duration:.1f} s · "
        f"{result.usage.total_tokens} tokens · generation: {paths}"
    )
    if result.ok:
        return gr.ChatMessage(content=summary, metadata={"title": "Run details", "status": "done"})
    reasons = {
        "cancelled": "Stopped.",
        "max_steps": "The agent ran out of steps without an answer.",
        "time_budget": "The agent ran out of time.",
        "invalid_output": "The model kept producing invalid steps.",
        "model_error": "The model failed.",
        "repeated_call": "The agent was repeating itself, so it was stopped.",
        "token_budget": "The agent used up its token budget.",
    }
    text = f"{reasons.get(result.stop_reason, result.stop_reason)} {result.error or ''}".strip()
    return gr.ChatMessage(content=f"_{text}_ ({summary})")


def build_chat_tab(
    pool: ModelPool,
    *,
    max_steps: int = 6,
    time_budget: float = 120.0,
    embedder: str | None = None,
) -> None:
    """Lay out the chat tab inside the current `gr.Blocks`."""
    choices = tool_choices(embedder=embedder)
    session_state = gr.State(lambda: ChatSession(), delete_callback=close_session)
    with gr.Row():
        model_name = gr.Dropdown(pool.names, value=pool.names[0], label="Model", scale=2)
        tools = gr.CheckboxGroup(
            list(choices),
            value=list(choices)[:1],
            label="Tools the agent may use",
            scale=3,
            elem_id="chat-tools",
        )
    gr.Markdown(SMALL_MODEL_NOTE, elem_classes=["small-note"])
    chatbot = gr.Chatbot(label="Agent", height=460, elem_id="agent-chat")
    with gr.Row():
        task_box = gr.Textbox(
            placeholder="Ask something, e.g. What is 17 * 23?",
            show_label=False,
            scale=5,
            max_length=_MAX_TASK_CHARS,
            elem_id="chat-input",
        )
        send = gr.Button("Send", variant="primary", scale=1, elem_id="chat-send")
        stop = gr.Button("Stop", variant="stop", scale=1, elem_id="chat-stop")
    clear = gr.Button("New conversation", size="sm")

    async def respond(
        task: str,
        messages: list[gr.ChatMessage],
        session: ChatSession,
        model_choice: str,
        tool_names: list[str],
    ) -> AsyncIterator[tuple[list[gr.ChatMessage], str]]:
        task = (task or "").strip()
        if not task:
            yield messages, ""
            return
        messages = [*messages, gr.ChatMessage(role="user", content=task)]
        session.cancel_token = CancelToken()
        yield messages, ""
        try:
            model = pool.get(model_choice)
            # Opening a tool may build an index or connect: keep it off the event loop.
            toolsets = await asyncio.to_thread(
                lambda: [choices[name](session) for name in tool_names if name in choices]
            )
            agent: Agent[str] = Agent(
                model,
                tools=toolsets,
                max_steps=max_steps,
                time_budget=time_budget,
            )
        except Exception as exc:  # a missing extra or an unreachable server: tell the user
            messages.append(gr.ChatMessage(content=f"_Cannot start the agent: {exc}_"))
            yield messages, ""
            return
        async for event in agent.stream(
            task, history=session.history, cancel_token=session.cancel_token
        ):
            if isinstance(event, RunFinishedEvent):
                footer = _footer(event)
                if footer is not None:
                    messages.append(footer)
                answer = str(event.result.output) if event.result.ok else ""
                session.history += [
                    Message(role="user", content=task),
                    Message(role="assistant", content=answer or "(no answer)"),
                ]
            else:
                render_event(event, messages)
            yield messages, ""

    def press_stop(session: ChatSession) -> None:
        session.cancel_token.cancel()

    def reset(session: ChatSession) -> tuple[list[gr.ChatMessage], ChatSession]:
        session.cancel_token.cancel()
        session.history.clear()
        return [], session

    inputs = [task_box, chatbot, session_state, model_name, tools]
    submit_event = send.click(respond, inputs, [chatbot, task_box])
    enter_event = task_box.submit(respond, inputs, [chatbot, task_box])
    stop.click(press_stop, [session_state], None, queue=False)
    clear.click(reset, [session_state], [chatbot, session_state], queue=False)
    del submit_event, enter_event
