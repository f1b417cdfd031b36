"""The triage tab: one agent hands each question to the SQL agent or the docs agent.

The agents are the ones `docs/examples/multi_agent.py` builds, on the chosen model: a `sql`
agent with the sample music store (the catalogue's `sql` tool), a `docs` agent with search over
this project's documentation (the Docs tab's index), and a `triage` agent with no tools whose
step offers `transfer_to_sql`, `transfer_to_docs` and `final_answer` (`Agent(handoffs=...)`).
The handoff and the specialist's steps stream into the chat; the status says who answered.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from agentlib._optional import optional_imports

with optional_imports("demos", feature="the Gradio demos"):
    import gradio as gr

from agentlib import Agent, CancelToken, RunFinishedEvent, RunResult

from ._chat_view import LiveView
from ._shared import SMALL_MODEL_NOTE, ChatSession, ModelPool, SessionRegistry, close_session
from .chat import catalogue_tool, docs_search

EXAMPLES = [
    "Which genre has the most tracks?",
    "How do I deploy the demos to a Hugging Face Space?",
]
TRIAGE_INSTRUCTIONS = (
    "You route questions. Questions about the music store's data (artists, albums, tracks, "
    "genres, customers, sales) go to the sql agent; questions about agentlib, its tools, "
    "demos or documentation go to the docs agent. Hand each question over; do not answer it."
)
_MAX_QUESTION_CHARS = 2000


def make_triage(
    model: Any, session: ChatSession, embedder: str | None, *, max_steps: int, time_budget: float
) -> Agent[str]:
    """The triage agent and its two specialists, on one model (tools kept per session)."""
    from agentlib.catalogue import default_catalogue

    sql_tools = catalogue_tool(default_catalogue().tools["sql"])(session)
    sql_agent = Agent(
        model,
        tools=[sql_tools],
        name="sql",
        description="Answers questions about the music store's data (artists, tracks, sales).",
        max_steps=max_steps,
        time_budget=time_budget,
    )
    docs_agent = Agent(
        model,
        tools=[docs_search(embedder)(session)],
        name="docs",
        description="Answers questions about agentlib from its documentation.",
        max_steps=max_steps,
        time_budget=time_budget,
    )
    return Agent(
        model,
        name="triage",
        instructions=TRIAGE_INSTRUCTIONS,
        handoffs=[sql_agent, docs_agent],
        max_steps=3,
        time_budget=time_budget,
    )


def who_answered(result: RunResult[Any]) -> str:
    """The status line: which agent answered, through which handoffs, or why it stopped."""
    route = " → ".join(["triage", *(handoff.to_agent for handoff in result.handoffs)])
    if result.ok:
        return (
            f"✓ Answered by **{result.agent_name}** ({route}) in {result.duration:.1f} s, "
            f"{len(result.steps)} step(s)."
        )
    return f"■ Stopped ({result.stop_reason}) at **{result.agent_name}** ({route})."


def build_triage_tab(
    pool: ModelPool,
    sessions: SessionRegistry,
    *,
    embedder: str | None = None,
    max_steps: int = 6,
    time_budget: float = 120.0,
) -> None:
    """Lay out the triage tab inside the current `gr.Blocks`."""
    session_state = gr.State(lambda: ChatSession(), delete_callback=close_session)
    gr.Markdown(
        "A **triage** agent with no tools of its own hands each question to a specialist: "
        "the **sql** agent (the sample music store) or the **docs** agent (this project's "
        "documentation). Each handoff is a branch of the triage agent's step schema."
    )
    model_name = gr.Dropdown(pool.names, value=pool.names[0], label="Model (all three agents)")
    gr.Markdown(SMALL_MODEL_NOTE, elem_classes=["small-note"])
    status = gr.Markdown("", elem_id="triage-status")
    chatbot = gr.Chatbot(label="Agents", height=420, elem_id="triage-chat")
    with gr.Row():
        question = gr.Textbox(
            EXAMPLES[0],
            show_label=False,
            scale=5,
            max_length=_MAX_QUESTION_CHARS,
            elem_id="triage-question",
        )
        ask = gr.Button("Ask", variant="primary", scale=1, elem_id="triage-ask")
        stop = gr.Button("Stop", variant="stop", scale=1, elem_id="triage-stop")
    gr.Examples([[text] for text in EXAMPLES], [question], label="Examples")

    async def respond(
        text: str, session: ChatSession, model_choice: str, request: gr.Request
    ) -> AsyncIterator[tuple[list[gr.ChatMessage], str]]:
        text = (text or "").strip()
        if not text:
            yield [], "Type a question first."
            return
        sessions.touch(request.session_hash, session)
        view = LiveView([gr.ChatMessage(role="user", content=text)])
        session.cancel_token = CancelToken()
        yield view.messages, "Starting…"
        try:
            model = await asyncio.to_thread(pool.get, model_choice)
            triage = await asyncio.to_thread(
                make_triage,
                model,
                session,
                embedder,
                max_steps=max_steps,
                time_budget=time_budget,
            )
        except Exception as exc:  # a missing extra or an unreachable server: tell the user
            yield view.messages, f"✗ Cannot start the agents: {exc}"
            return
        async for event in triage.stream(text, cancel_token=session.cancel_token, text=True):
            if isinstance(event, RunFinishedEvent):
                view.status = who_answered(event.result)
            else:
                view.show(event)
            yield view.messages, view.status
        sessions.touch(request.session_hash, session)

    def press_stop(session: ChatSession) -> None:
        session.cancel_token.cancel()

    ask.click(respond, [question, session_state, model_name], [chatbot, status])
    question.submit(respond, [question, session_state, model_name], [chatbot, status])
    stop.click(press_stop, [session_state], None, queue=False)
