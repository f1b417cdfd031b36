"""The SQL explorer tab: a question in, the constructed SQL, its rows and an answer out.

The sample music-store database is created once per process in a temporary folder; each
browser session opens its own read-only `SQLDatabase` on it, or on a SQLite file it uploads
(copied into the session's own temporary folder, at most 20 MB).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import gradio as gr
from pydantic import BaseModel, Field

from agentlib import AgentlibError, Model, agenerate_result, fence_untrusted

from ._shared import (
    PATH_LABELS,
    SMALL_MODEL_NOTE,
    ModelPool,
    SessionRegistry,
    close_session,
    remove_directory,
    session_directory,
)

MAX_UPLOAD_BYTES = 20 * 1024 * 1024
MAX_QUESTION_CHARS = 1000
ROW_LIMIT = 100
ROWS_IN_PROMPT = 20
SQLITE_HEADER = b"SQLite format 3\x00"
SAMPLE_LABEL = "the sample music store"
EXAMPLE_QUESTIONS = [
    "Which genres have the most tracks?",
    "Which countries spent the most?",
    "How many customers are there?",
]
MODES: dict[str, Literal["structured", "sql"]] = {
    "Structured query (names are enums of the schema; best for small models)": "structured",
    "Free SQL (checked by the validator; for strong models)": "sql",
}

LIMIT_HINT = (
    "\n\nWith the embedded model this is usually the model's limit, not the database's: "
    "pick a stronger model in the menu (see the note above for how to add one)."
)


def open_sample() -> Any:
    """A new read-only `SQLDatabase` on the sample music store: the catalogue's `sql` tool."""
    from agentlib.catalogue import default_catalogue

    return default_catalogue().tool_spec("sql").factory(None)


def open_database(path: Path) -> Any:
    """A read-only `SQLDatabase` on a SQLite file, with the demo's row limit and timeout."""
    from agentlib.tools.sql import SQLDatabase

    return SQLDatabase(f"sqlite:///{path}", row_limit=ROW_LIMIT, timeout=5.0)


_NUMBER = re.compile(r"(?<![\w.])-?\d[\d,]*(?:\.\d+)?(?![\w])")


def _numbers(text: str) -> list[float]:
    values = []
    for match in _NUMBER.findall(text):
        try:
            values.append(float(match.replace(",", "")))
        except ValueError:
            continue
    return values


def _names_no_value(answer: str, result: Any) -> bool:
    """Whether the answer quotes no number and no text value of the rows at all."""
    if not result.rows or _numbers(answer):
        return False
    lowered = answer.lower()
    return not any(
        isinstance(cell, str) and len(cell) > 1 and cell.lower() in lowered
        for row in result.rows
        for cell in row
    )


def disagreement(answer: str, question: str, result: Any) -> str | None:
    """Why the answer does not match the rows, or `None` when every number in it is backed.

    A number in the answer must be the row count, a value in the rows (rounded as shown), or
    a number from the question itself; otherwise the model made it up or miscounted. An
    answer that quotes no value of the rows at all is flagged too.
    """
    known = {float(result.row_count), float(len(result.rows))}
    for row in result.rows:
        for cell in row:
            if isinstance(cell, bool):
                continue
            if isinstance(cell, (int, float)):
                known.add(float(cell))
            elif isinstance(cell, str):
                known.update(_numbers(cell))
    known.update(_numbers(question))
    unbacked = [
        value
        for value in _numbers(answer)
        if not any(abs(value - item) <= max(0.01, abs(item) * 0.005) for item in known)
    ]
    if not unbacked and not _names_no_value(answer, result):
        return None
    if not unbacked:
        return (
            f"The answer names no value from the {result.row_count} row(s): it may not have "
            "read them. Trust the rows, not the sentence."
        )
    shown = ", ".join(f"{value:g}" for value in unbacked[:3])
    return (
        f"The answer says {shown}, which is neither the row count ({result.row_count}) nor a "
        "value in the rows: trust the rows, not the sentence."
    )


class RowsAnswer(BaseModel):
    """The answer to a question, read from a query's rows."""

    answer: str = Field(max_length=400, description="One or two sentences answering the question")


@dataclass
class SQLSession:
    """One browser session's database: the sample, or the file it uploaded."""

    database: Any = None
    label: str = SAMPLE_LABEL
    directory: Path | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def current(self) -> Any:
        """The session's database, opening the sample on first use."""
        with self.lock:
            if self.database is None:
                self.database = open_sample()
                self.label = SAMPLE_LABEL
            return self.database

    def replace(self, database: Any, label: str) -> None:
        """Switch to another database, closing the previous one."""
        with self.lock:
            previous, self.database, self.label = self.database, database, label
        if previous is not None:
            previous.engine.dispose()

    def close(self) -> None:
        """Release the connection and delete the uploaded file."""
        self.replace(None, SAMPLE_LABEL)
        remove_directory(self.directory)
        self.directory = None


def check_sqlite_upload(path: Path) -> None:
    """Refuse a file that is too large or is not a SQLite database, saying which."""
    size = path.stat().st_size
    if size > MAX_UPLOAD_BYTES:
        raise ValueError(
            f"the file is {size / 1e6:.1f} MB; the limit is {MAX_UPLOAD_BYTES // 2**20} MB"
        )
    with path.open("rb") as file:
        header = file.read(len(SQLITE_HEADER))
    if header != SQLITE_HEADER:
        raise ValueError(
            "this is not a SQLite database (it does not start with 'SQLite format 3'); "
            "upload a .db/.sqlite file, or export your data to SQLite first"
        )


def _schema_markdown(database: Any, label: str) -> str:
    text = database.schema_text()
    return f"**Tables of {label}**\n\n```\n{text}\n```"


def _rows_prompt(question: str, result: Any) -> str:
    data = json.dumps(
        {"columns": result.columns, "rows": result.rows[:ROWS_IN_PROMPT]},
        ensure_ascii=False,
        default=str,
    )
    more = "" if result.row_count <= ROWS_IN_PROMPT else f" (first {ROWS_IN_PROMPT} shown)"
    return (
        f"Question: {question}\n\nThe query\n{result.sql}\nreturned {result.row_count} "
        f"row(s){more}:\n{fence_untrusted(data, source='query result')}"
    )


async def answer_from_rows(model: Model, question: str, result: Any) -> tuple[str, str]:
    """A short answer written by the model from the rows, and the path that produced it."""
    if not result.rows:
        return "The query returned no rows, so the database has no answer to this question.", ""
    generation = await agenerate_result(
        model,
        RowsAnswer,
        _rows_prompt(question, result),
        instructions=(
            "Answer the question in one or two sentences using only the query's rows. "
            "Name the values you rely on."
        ),
        retries=1,
        max_tokens=200,
    )
    return generation.output.answer, generation.path


def pretty_sql(sql: str, dialect: str) -> str:
    """The SQL laid out on several lines for reading (unchanged if sqlglot cannot parse it)."""
    import sqlglot

    try:
        return str(sqlglot.transpile(sql, read=dialect, write=dialect, pretty=True)[0])
    except sqlglot.errors.SqlglotError:
        return sql


def _table(result: Any) -> dict[str, Any]:
    # Gradio's table needs distinct headers; `SELECT a.name, b.name` gives two `name`s.
    headers: list[str] = []
    for name in result.columns:
        unique, number = name, 2
        while unique in headers:
            unique, number = f"{name} ({number})", number + 1
        headers.append(unique)
    return {"headers": headers, "data": result.rows}


_EMPTY_TABLE: dict[str, Any] = {"headers": ["(no rows)"], "data": []}


def use_sample_database(session: SQLSession) -> tuple[str, str]:
    """Switch the session to the sample database; its status line and schema."""
    try:
        if session.database is not None and session.label != SAMPLE_LABEL:
            session.replace(open_sample(), SAMPLE_LABEL)
        database = session.current()
    except AgentlibError as exc:
        return f"**Cannot open the sample database:** {exc}", ""
    return f"Asking {SAMPLE_LABEL}.", _schema_markdown(database, SAMPLE_LABEL)


def use_uploaded_file(path: str | None, session: SQLSession) -> tuple[str, str]:
    """Check an upload, copy it into the session's folder and open it read-only."""
    if not path:
        return use_sample_database(session)
    name = Path(path).name
    try:
        check_sqlite_upload(Path(path))
        if session.directory is None:
            session.directory = session_directory("sql")
        target = session.directory / "upload.db"
        session.replace(None, SAMPLE_LABEL)  # release the previous upload before replacing
        target.unlink(missing_ok=True)
        shutil.copyfile(path, target)
        os.chmod(target, 0o400)  # the connection is read-only; the file is too
        session.replace(open_database(target), f"`{name}`")
    except (ValueError, OSError, AgentlibError) as exc:
        return f"**Cannot use `{name}`:** {exc}", ""
    return f"Asking your file `{name}` (read-only).", _schema_markdown(
        session.current(), f"`{name}`"
    )


async def ask_database(
    pool: ModelPool, text: str, mode_label: str, model_choice: str, session: SQLSession
) -> tuple[str, str, str, dict[str, Any]]:
    """Answer one question: the report, the answer (with its row count), the SQL, the rows."""
    text = (text or "").strip()
    if not text:
        return "Type a question first.", "", "", _EMPTY_TABLE
    from agentlib.tools.sql import atext_to_sql

    try:
        model = pool.get(model_choice)
        database = await asyncio.to_thread(session.current)
        found = await atext_to_sql(model, database, text, mode=MODES[mode_label])
    except (AgentlibError, ValueError) as exc:
        return f"**Could not build a valid query:** {exc}{LIMIT_HINT}", "", "", _EMPTY_TABLE
    except Exception as exc:  # one failed request must not break the app: show it
        return f"**Failed:** {type(exc).__name__}: {exc}", "", "", _EMPTY_TABLE
    result = found.result
    how = PATH_LABELS.get(found.path, found.path)
    rows_text = f"{result.row_count} row(s)" + (
        " (cut at the row limit)" if result.reached_row_limit else ""
    )
    report = (
        f"Asked {session.label}. The query's shape was kept by **{how}** "
        f"({found.attempts} attempt(s)) and it passed the read-only validator; it returned "
        f"{rows_text}. A valid query can still ask the wrong thing: check the SQL."
    )
    try:
        reply, answer_path = await answer_from_rows(model, text, result)
    except Exception as exc:  # the rows are still worth showing
        reply, answer_path = f"_The model could not write an answer: {exc}_", ""
    answer = f"**Answer** (from the {rows_text} below): {reply}"
    if answer_path:
        warning = disagreement(reply, text, result)
        if warning:
            answer += f"\n\n⚠ {warning}"
    shown = pretty_sql(found.sql, database.dialect)
    return report, answer, shown, _table(result)


def build_sql_tab(pool: ModelPool, sessions: SessionRegistry) -> None:
    """Lay out the SQL explorer tab inside the current `gr.Blocks`."""
    session_state = gr.State(lambda: SQLSession(), delete_callback=close_session)
    with gr.Row():
        model_name = gr.Dropdown(pool.names, value=pool.names[0], label="Model", scale=2)
        mode = gr.Radio(list(MODES), value=next(iter(MODES)), label="Query construction", scale=3)
    gr.Markdown(
        SMALL_MODEL_NOTE
        + " A small model often picks the wrong column or join: the SQL is shown so you can "
        "check it, and it can only ever read.",
        elem_classes=["small-note"],
    )
    with gr.Row():
        upload = gr.File(
            label="Your own SQLite file (optional, at most 20 MB; opened read-only)",
            file_types=[".db", ".sqlite", ".sqlite3"],
            type="filepath",
            height=140,
            elem_id="sql-upload",
            scale=3,
        )
        use_sample = gr.Button("Use the sample music store", size="sm", scale=1)
    database_status = gr.Markdown(f"Asking {SAMPLE_LABEL}.", elem_id="sql-database")
    with gr.Accordion("Schema", open=False):
        schema = gr.Markdown(elem_id="sql-schema")
    with gr.Row():
        question = gr.Textbox(
            EXAMPLE_QUESTIONS[0],
            show_label=False,
            placeholder="Ask a question about the data",
            max_length=MAX_QUESTION_CHARS,
            scale=5,
            elem_id="sql-question",
        )
        ask = gr.Button("Ask", variant="primary", scale=1, elem_id="sql-ask")
    gr.Examples([[text] for text in EXAMPLE_QUESTIONS], [question], label="Examples")
    status = gr.Markdown(elem_id="sql-status")
    answer = gr.Markdown(elem_id="sql-answer")
    sql = gr.Code(language="sql", label="Constructed SQL", interactive=False, elem_id="sql-query")
    rows = gr.Dataframe(_EMPTY_TABLE, label="Rows", interactive=False, elem_id="sql-rows")

    async def respond(
        text: str, mode_label: str, model_choice: str, session: SQLSession, request: gr.Request
    ) -> tuple[str, str, str, dict[str, Any]]:
        sessions.touch(request.session_hash, session)
        return await ask_database(pool, text, mode_label, model_choice, session)

    def sample(session: SQLSession, request: gr.Request) -> tuple[str, str]:
        sessions.touch(request.session_hash, session)
        return use_sample_database(session)

    def uploaded(path: str | None, session: SQLSession, request: gr.Request) -> tuple[str, str]:
        sessions.touch(request.session_hash, session)
        return use_uploaded_file(path, session)

    use_sample.click(sample, [session_state], [database_status, schema])
    upload.change(uploaded, [upload, session_state], [database_status, schema])
    inputs = [question, mode, model_name, session_state]
    outputs = [status, answer, sql, rows]
    ask.click(respond, inputs, outputs)
    question.submit(respond, inputs, outputs)
