"""The agent chat tab: the steps stream in as they happen, and Stop really cancels the run.

How the events show in the chat (`LiveView`) lives in `_chat_view.py`; this module holds the
tool picker, the tab's layout and its handlers (a run, approval decisions, Stop, New).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from agentlib._optional import optional_imports

with optional_imports("demos", feature="the Gradio demos"):
    import gradio as gr

from agentlib import Agent, AgentlibError, CancelToken, Message, RunFinishedEvent, Toolset

from ._approval import PausedRun, decision, describe, panel_updates
from ._chat_view import FINAL_ANSWER as FINAL_ANSWER  # re-exported: the tab's earlier names
from ._chat_view import LiveView, run_footer
from ._chat_view import render_event as render_event
from ._chat_view import step_preview as step_preview
from ._shared import (
    SMALL_MODEL_NOTE,
    ChatSession,
    ModelPool,
    SessionRegistry,
    close_session,
    importable,
)

ToolFactory = Callable[[ChatSession], Any]
_MAX_TASK_CHARS = 4000
EXAMPLE_TASKS = ["What is 17 * 23?", "What is 1234 + 4321?"]

PICKER_LABELS = {
    "calculator": "calculator",
    "python": "python (sandboxed)",
    "sql": "SQL (sample music store)",
    "cypher": "graph (sample movies)",
    "web": "web search",
}
"""Picker labels of the built-in tools; a plugin's tool shows under its catalogue name."""


@dataclass(frozen=True, slots=True)
class ToolChoice:
    """One entry of the tool picker: builds (or reuses) the session's instance."""

    build: ToolFactory
    spec: Any = None
    """The catalogue's `ToolSpec`, or `None` for the demo's own docs search."""


def catalogue_tool(spec: Any) -> ToolFactory:
    """A picker entry's factory for a catalogue tool (`ToolSpec`)."""

    # One instance per browser session, kept across turns (the sandbox keeps its variables)
    # and closed with the session.
    def build(session: ChatSession) -> Any:
        if spec.name not in session.toolsets:
            session.toolsets[spec.name] = spec.factory(None)
        return session.toolsets[spec.name]

    return build


def docs_search(embedder: str | None) -> ToolFactory:
    """A factory of search over the project's docs (the index the Docs tab uses)."""

    def factory(session: ChatSession) -> Any:
        from agentlib.tools.retrieval import RetrievalTool

        from .docs_qa import embedder_name, project_docs

        return RetrievalTool(project_docs(embedder_name(embedder)), k=4, max_k=8)

    return factory


def _shared_toolset(toolset: Toolset) -> ToolFactory:
    # An MCP server is connected once per process (`--mcp`) and shared by every session:
    # its tools hold no conversation state, and a stdio server per session would be a
    # process per visitor. The app closes it on exit, not the session.
    return lambda session: toolset


def tool_choices(
    *, embedder: str | None = None, mcp: Sequence[Toolset] = ()
) -> dict[str, ToolChoice]:
    """The picker: every catalogue tool whose dependencies are installed (plugins' included),
    search over this project's docs (the index the Docs tab uses), and one entry per MCP server.

    Args:
        embedder: The docs search embedder (`minilm` or `hashing`); default from the env.
        mcp: Connected MCP servers (`MCPToolset`s) whose tools the agent may use.
    """
    from agentlib.catalogue import default_catalogue

    choices: dict[str, ToolChoice] = {}
    for spec in default_catalogue().tools.values():
        if spec.available():
            label = PICKER_LABELS.get(spec.name, spec.name)
            choices[label] = ToolChoice(catalogue_tool(spec), spec)
    if importable("agentlib.tools.retrieval.collection"):
        choices["docs search"] = ToolChoice(docs_search(embedder))
    for server in mcp:
        label = getattr(server, "label", type(server).__name__)
        choices[f"MCP: {label} ({len(server.tools)} tools)"] = ToolChoice(_shared_toolset(server))
    return choices


@dataclass(frozen=True, slots=True)
class RunLimits:
    """What bounds each chat run."""

    max_steps: int = 6
    time_budget: float = 120.0
    max_tools: int | None = None
    """Offer at most this many tools per run, the most relevant to the task."""


Update = tuple[Any, ...]
"""One yield of a chat handler: chatbot, task box, status, then the approval panel's four."""


def build_chat_tab(
    pool: ModelPool,
    sessions: SessionRegistry,
    *,
    max_steps: int = 6,
    time_budget: float = 120.0,
    embedder: str | None = None,
    mcp: Sequence[Toolset] = (),
    max_tools: int | None = None,
) -> None:
    """Lay out the chat tab inside the current `gr.Blocks`.

    Args:
        pool: The model menu.
        sessions: Tracks and closes sessions' resources.
        max_steps: The step limit per run.
        time_budget: The time limit per run, in seconds.
        embedder: The docs search embedder.
        mcp: Connected MCP servers, offered in the tool picker (shared by all sessions).
        max_tools: Offer at most this many tools per run, chosen by relevance to the task.
    """
    choices = tool_choices(embedder=embedder, mcp=mcp)
    limits = RunLimits(max_steps, time_budget, max_tools)
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
    ask = gr.Checkbox(
        False,
        label="Ask me before each tool call runs (tools that require approval always ask)",
        elem_id="chat-ask",
    )
    gr.Markdown(SMALL_MODEL_NOTE, elem_classes=["small-note"])
    status = gr.Markdown("", elem_id="chat-status")
    chatbot = gr.Chatbot(label="Agent", height=460, elem_id="agent-chat")
    with gr.Group(visible=False, elem_id="chat-approval") as panel:
        pending = gr.Markdown("", elem_id="chat-pending")
        arguments = gr.Textbox(
            label="Arguments (JSON; edit them to run the call with others)",
            lines=3,
            elem_id="chat-arguments",
        )
        reason = gr.Textbox(
            label="Reason, if you deny (the model reads it)",
            placeholder="the user denied this call",
            elem_id="chat-reason",
        )
        with gr.Row():
            approve = gr.Button("Approve", variant="primary", elem_id="chat-approve")
            deny = gr.Button("Deny", variant="stop", elem_id="chat-deny")
    with gr.Row():
        task_box = gr.Textbox(
            placeholder=f"Ask something, e.g. {EXAMPLE_TASKS[0]}",
            show_label=False,
            scale=5,
            max_length=_MAX_TASK_CHARS,
            elem_id="chat-input",
        )
        send = gr.Button("Send", variant="primary", scale=1, elem_id="chat-send")
        stop = gr.Button("Stop", variant="stop", scale=1, elem_id="chat-stop")
    gr.Examples([[task] for task in EXAMPLE_TASKS], [task_box], label="Examples")
    clear = gr.Button("New conversation", size="sm")

    handlers = _ChatHandlers(pool, sessions, choices, limits)
    approval = [panel, pending, arguments, reason]
    outputs = [chatbot, task_box, status, *approval]
    inputs = [task_box, chatbot, session_state, model_name, tools, ask]
    # A message sent while a run finishes is not dropped: it runs once the run has ended.
    send.click(handlers.respond, inputs, outputs, trigger_mode="always_last")
    task_box.submit(handlers.respond, inputs, outputs, trigger_mode="always_last")
    decision_inputs = [arguments, reason, chatbot, session_state]
    approve.click(handlers.approve, decision_inputs, outputs)
    deny.click(handlers.deny, decision_inputs, outputs)
    stop.click(handlers.stop, [session_state], None, queue=False)
    clear.click(
        handlers.reset, [session_state], [chatbot, session_state, status, *approval], queue=False
    )


class _ChatHandlers:
    """The chat tab's event handlers: a run, its approval decisions, Stop and New."""

    def __init__(
        self,
        pool: ModelPool,
        sessions: SessionRegistry,
        choices: dict[str, ToolChoice],
        limits: RunLimits,
    ) -> None:
        self.pool = pool
        self.sessions = sessions
        self.choices = choices
        self.limits = limits

    async def respond(
        self,
        task: str,
        messages: list[gr.ChatMessage],
        session: ChatSession,
        model_choice: str,
        tool_names: list[str],
        ask_first: bool,
        request: gr.Request,
    ) -> AsyncIterator[Update]:
        task = (task or "").strip()
        if not task:
            yield messages, "", "", *panel_updates(session.paused)
            return
        session.paused = None  # a new message leaves a waiting call undecided: it never runs
        self.sessions.touch(request.session_hash, session)
        view = LiveView([*messages, gr.ChatMessage(role="user", content=task)])
        session.cancel_token = CancelToken()
        yield view.messages, "", view.status, *panel_updates(None)
        try:
            agent = await asyncio.to_thread(
                _make_agent,
                self.pool,
                session,
                model_choice,
                tool_names,
                self.choices,
                self.limits,
                ask_first,
            )
        except Exception as exc:  # a missing extra or an unreachable server: tell the user
            view.messages.append(gr.ChatMessage(content=f"_Cannot start the agent: {exc}_"))
            yield view.messages, gr.skip(), "✗ Cannot start the agent.", *panel_updates(None)
            return
        events = agent.stream(
            task, history=session.history, cancel_token=session.cancel_token, text=True
        )
        async for update in _relay(events, view, session, agent, task):
            yield update
        self.sessions.touch(request.session_hash, session)

    async def _decide(
        self,
        approved: bool,
        edited: str,
        why: str,
        messages: list[gr.ChatMessage],
        session: ChatSession,
        request: gr.Request,
    ) -> AsyncIterator[Update]:
        paused = session.paused
        waiting = paused.waiting if paused is not None else None
        if paused is None or waiting is None:
            yield messages, gr.skip(), "Nothing waits for approval.", *panel_updates(None)
            return
        self.sessions.touch(request.session_hash, session)
        keep = (gr.skip(),) * 4
        try:
            chosen = decision(waiting, approved, edited, why)
        except ValueError as exc:
            yield paused.view.messages, gr.skip(), f"✗ {exc}", *keep
            return
        paused.decisions[waiting.call.id] = chosen
        paused.view.decided(waiting.call.id, describe(chosen))
        if paused.waiting is not None:  # more calls of the same step wait
            yield paused.view.messages, gr.skip(), paused.view.status, *panel_updates(paused)
            return
        session.cancel_token = CancelToken()
        try:
            events = paused.agent.stream_resume(
                paused.result, paused.decisions, cancel_token=session.cancel_token
            )
        except AgentlibError as exc:  # edited arguments the tool rejects: decide again
            paused.decisions.clear()
            yield paused.view.messages, gr.skip(), f"✗ {exc}", *panel_updates(paused)
            return
        session.paused = None
        paused.note.content = "_Decided: the run goes on._"
        paused.view.status = "Resuming…"
        yield paused.view.messages, gr.skip(), paused.view.status, *panel_updates(None)
        async for update in _relay(events, paused.view, session, paused.agent, paused.task):
            yield update
        self.sessions.touch(request.session_hash, session)

    async def approve(
        self,
        edited: str,
        why: str,
        messages: list[gr.ChatMessage],
        session: ChatSession,
        request: gr.Request,
    ) -> AsyncIterator[Update]:
        async for update in self._decide(True, edited, why, messages, session, request):
            yield update

    async def deny(
        self,
        edited: str,
        why: str,
        messages: list[gr.ChatMessage],
        session: ChatSession,
        request: gr.Request,
    ) -> AsyncIterator[Update]:
        async for update in self._decide(False, edited, why, messages, session, request):
            yield update

    def stop(self, session: ChatSession) -> None:
        session.cancel_token.cancel()

    def reset(self, session: ChatSession) -> Update:
        session.cancel_token.cancel()
        session.history.clear()
        session.paused = None
        return [], session, "", *panel_updates(None)


async def _relay(
    events: AsyncIterator[Any], view: LiveView, session: ChatSession, agent: Agent[Any], task: str
) -> AsyncIterator[Update]:
    """Show a run's events as they come; keep a run that paused for approval in the session."""
    async for event in events:
        if isinstance(event, RunFinishedEvent):
            footer = run_footer(event)
            view.messages.append(footer)
            view.status = _finished_status(event)
            result = event.result
            if result.stop_reason == "approval_required":
                session.paused = PausedRun(agent, result, task, view, footer)
                yield view.messages, gr.skip(), view.status, *panel_updates(session.paused)
                return
            answer = str(result.output) if result.ok else ""
            session.history += [
                Message(role="user", content=task),
                Message(role="assistant", content=answer or "(no answer)"),
            ]
        else:
            view.show(event)
        yield view.messages, gr.skip(), view.status, *panel_updates(None)


def _make_agent(
    pool: ModelPool,
    session: ChatSession,
    model_choice: str,
    tool_names: list[str],
    choices: dict[str, ToolChoice],
    limits: RunLimits,
    ask_first: bool = False,
) -> Agent[str]:
    """The agent the CLI builds for this model and these tools: `Agent(model, tools=...)`, with
    what the model needs (worked examples, bounds) taken from its own `profile`.

    `ask_first` makes every offered tool require approval (`require_approval=`); a tool made
    with `requires_approval` asks either way.
    """
    model = pool.get(model_choice)
    picked = [choices[name] for name in tool_names if name in choices]
    toolsets = [choice.build(session) for choice in picked]  # may connect or index: a thread
    names = [
        item.name
        for source in toolsets
        for item in (source.tools if isinstance(source, Toolset) else [source])
    ]
    return Agent(
        model,
        tools=toolsets,
        max_steps=limits.max_steps,
        time_budget=limits.time_budget,
        max_tools=limits.max_tools,
        require_approval=names if ask_first else (),
    )


def _finished_status(event: RunFinishedEvent) -> str:
    result = event.result
    if result.ok:
        return f"✓ Answered in {result.duration:.1f} s ({len(result.steps)} step(s))."
    if result.stop_reason == "approval_required":
        return "⏸ Waiting for your decision: Approve or Deny below."
    return f"■ Stopped ({result.stop_reason}) after {result.duration:.1f} s."
