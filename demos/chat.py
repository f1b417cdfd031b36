"""The agent chat tab: the steps stream in as they happen, and Stop really cancels the run."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from agentlib._optional import optional_imports

with optional_imports("demos", feature="the Gradio demos"):
    import gradio as gr

from agentlib import (
    Agent,
    AgentlibError,
    ApprovalRequestEvent,
    CancelToken,
    ErrorEvent,
    FinalAnswerEvent,
    Message,
    RunFinishedEvent,
    StepStartedEvent,
    TextEvent,
    ThoughtEvent,
    ToolCallEvent,
    ToolResultEvent,
    Toolset,
)
from agentlib.steps import HandoffEvent

from ._approval import PausedRun, decision, describe, panel_updates
from ._shared import (
    SMALL_MODEL_NOTE,
    ChatSession,
    ModelPool,
    SessionRegistry,
    close_session,
    importable,
)

ToolFactory = Callable[[ChatSession], Any]
_RESULT_PREVIEW = 1500
_MAX_TASK_CHARS = 4000
_TITLE_PREVIEW = 70
FINAL_ANSWER = "final_answer"
"""The step format's name for the answer branch (what the preview looks for)."""
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


def _fence(text: str, language: str = "") -> str:
    return f"```{language}\n{text.replace('```', '` ` `')}\n```"


def step_preview(text: str) -> tuple[str, str | None, str | None]:
    """What a step's partial JSON shows so far: the thought, the tool named, the answer text.

    Read leniently (`pydantic_core.from_json` with partial strings): a piece that does not parse
    yet shows nothing rather than an error.
    """
    from pydantic_core import from_json

    try:
        value = from_json(text, allow_partial="trailing-strings")
    except ValueError:
        return "", None, None
    if not isinstance(value, dict):
        return "", None, None
    thought = value.get("thought")
    action = value.get("action")
    if action is None and isinstance(value.get("actions"), list) and value["actions"]:
        action = value["actions"][0]
    tool = action.get("tool") if isinstance(action, dict) else None
    answer = action.get("answer") if isinstance(action, dict) else None
    return (
        thought if isinstance(thought, str) else "",
        tool if isinstance(tool, str) else None,
        answer if isinstance(answer, str) and tool == FINAL_ANSWER else None,
    )


def _shorten(text: str, limit: int = _TITLE_PREVIEW) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass
class LiveView:
    """The chat messages of one run, updated in place as its events arrive."""

    messages: list[gr.ChatMessage]
    status: str = "Starting…"
    began: dict[int, float] = field(default_factory=dict)
    text: dict[int, str] = field(default_factory=dict)
    attempts: dict[int, int] = field(default_factory=dict)
    step_message: dict[int, gr.ChatMessage] = field(default_factory=dict)
    answer: gr.ChatMessage | None = None
    first_text_at: float | None = None
    start: int = -1
    """Where this run's messages begin: earlier turns' are Gradio's dicts, and call ids
    (`call_1`, ...) start again in every run, so only this run's messages are searched."""

    def __post_init__(self) -> None:
        if self.start < 0:
            self.start = len(self.messages)

    def show(self, event: object) -> None:
        """Update the messages and the status line for one agent event."""
        now = time.perf_counter()
        if isinstance(event, StepStartedEvent):
            self.began[event.step] = now
            self.text[event.step] = ""
            message = gr.ChatMessage(
                content="",
                metadata={"title": f"Step {event.step} · thinking…", "status": "pending"},
            )
            self.step_message[event.step] = message
            self.messages.append(message)
            self.status = f"Step {event.step} · thinking…"
        elif isinstance(event, TextEvent):
            self._text(event, now)
        elif isinstance(event, ThoughtEvent):
            self._thought(event, now)
        elif isinstance(event, ToolCallEvent):
            self._call(event)
        elif isinstance(event, ToolResultEvent):
            self._result(event)
        elif isinstance(event, ApprovalRequestEvent):
            self._waiting(event)
        elif isinstance(event, HandoffEvent):
            self.messages.append(
                gr.ChatMessage(
                    content=f"**{event.from_agent}** handed the question to **{event.to_agent}**.",
                    metadata={
                        "title": f"Handoff · {event.from_agent} → {event.to_agent}",
                        "status": "done",
                    },
                )
            )
            self.status = f"Step {event.step} · {event.to_agent} takes over…"
        elif isinstance(event, ErrorEvent):
            note = "asking the model again" if event.will_retry else "giving up"
            self.messages.append(
                gr.ChatMessage(
                    content=event.message,
                    metadata={
                        "title": f"Step {event.step} · invalid step, {note}",
                        "status": "done",
                    },
                )
            )
        elif isinstance(event, FinalAnswerEvent):
            self._final(event)

    def _text(self, event: TextEvent, now: float) -> None:
        if self.first_text_at is None:
            self.first_text_at = now
        if self.attempts.get(event.step, 0) != event.attempt:  # a retry: preview afresh
            self.attempts[event.step] = event.attempt
            self.text[event.step] = ""
        so_far = self.text.get(event.step, "") + event.delta
        self.text[event.step] = so_far
        thought, tool, answer = step_preview(so_far)
        message = self.step_message.get(event.step)
        if message is None:
            return
        message.content = thought
        if tool == FINAL_ANSWER:
            message.metadata["title"] = f"Step {event.step} · writing the answer…"
            self.status = f"Step {event.step} · writing the answer…"
        elif tool:
            message.metadata["title"] = f"Step {event.step} · calling {tool}…"
            self.status = f"Step {event.step} · calling tool {tool}…"
        if answer is not None:
            if self.answer is None:
                self.answer = gr.ChatMessage(content="")
                self.messages.append(self.answer)
            self.answer.content = answer

    def _thought(self, event: ThoughtEvent, now: float) -> None:
        message = self.step_message.get(event.step)
        if message is None:
            return
        message.content = event.thought or "(no thought)"
        preview = _shorten(event.thought) if event.thought else "(no thought)"
        message.metadata["title"] = f"Step {event.step} · {preview}"
        message.metadata["status"] = "done"
        message.metadata["duration"] = round(now - self.began.get(event.step, now), 1)

    def _call_message(self, call_id: str) -> gr.ChatMessage | None:
        for message in reversed(self.messages[self.start :]):
            metadata = message.metadata
            if isinstance(metadata, dict) and metadata.get("id") == call_id:
                return message
        return None

    def _call(self, event: ToolCallEvent) -> None:
        arguments = json.dumps(dict(event.call.arguments), ensure_ascii=False, indent=1)
        title = f"Tool call · {event.call.tool_name} (running…)"
        message = self._call_message(event.call.id)  # shown already, waiting for approval
        if message is not None:
            message.content = _fence(arguments, "json")
            message.metadata["title"] = title
        else:
            self.messages.append(
                gr.ChatMessage(
                    content=_fence(arguments, "json"),
                    metadata={"title": title, "id": event.call.id, "status": "pending"},
                )
            )
        self.status = f"Step {event.step} · running tool {event.call.tool_name}…"

    def _waiting(self, event: ApprovalRequestEvent) -> None:
        call = event.request.call
        arguments = json.dumps(dict(call.arguments), ensure_ascii=False, indent=1)
        self.messages.append(
            gr.ChatMessage(
                content=_fence(arguments, "json"),
                metadata={
                    "title": f"Tool call · {call.tool_name} (waiting for your approval)",
                    "id": call.id,
                    "status": "pending",
                },
            )
        )
        self.status = f"Step {event.step} · {call.tool_name} waits for your approval…"

    def decided(self, call_id: str, text: str) -> None:
        """Note a person's decision on a waiting call's message."""
        message = self._call_message(call_id)
        if message is not None:
            message.content = f"{message.content}\n_{text}_"

    def _result(self, event: ToolResultEvent) -> None:
        observation = event.observation
        message = self._call_message(observation.call_id)
        if message is None:
            return
        text = observation.content
        if len(text) > _RESULT_PREVIEW:
            text = text[:_RESULT_PREVIEW] + f"\n… ({len(observation.content)} characters)"
        label = "Error" if observation.is_error else "Result"
        message.content = f"{message.content}\n**{label}**\n{_fence(text)}"
        metadata = message.metadata
        metadata["status"] = "done"
        metadata["duration"] = round(observation.duration, 2)
        failed = " failed" if observation.is_error else ""
        metadata["title"] = f"Tool call · {observation.tool_name}{failed} → {_shorten(text, 40)}"

    def _final(self, event: FinalAnswerEvent) -> None:
        output = event.output
        text = (
            output if isinstance(output, str) else _fence(json.dumps(output, default=str), "json")
        )
        if self.answer is None:
            self.answer = gr.ChatMessage(content="")
            self.messages.append(self.answer)
        self.answer.content = text or "(empty answer)"
        self.status = "✓ Answered."


def render_event(event: object, messages: list[gr.ChatMessage]) -> None:
    """Append (or update) the chat messages that show one agent event (no streaming state)."""
    LiveView(messages, start=0).show(event)


def _footer(event: RunFinishedEvent) -> gr.ChatMessage:
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
        "approval_required": "A tool call waits for your approval (below).",
    }
    error = "" if result.stop_reason == "approval_required" else result.error or ""
    text = f"{reasons.get(result.stop_reason, result.stop_reason)} {error}".strip()
    return gr.ChatMessage(content=f"_{text}_ ({summary})")


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
            footer = _footer(event)
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
