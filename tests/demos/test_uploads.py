"""Uploads in the SQL and docs tabs: limits, confinement to the session's folder, cleanup."""

from __future__ import annotations

import asyncio
import re
import sqlite3
import time
from pathlib import Path

import pytest

pytest.importorskip("gradio")

from demos._shared import close_session
from demos.docs_qa import (
    MAX_FILES,
    DocsSession,
    index_uploads,
    shared_embedder,
)
from demos.sql_explorer import SQLSession, use_uploaded_file


def _garden(path: Path) -> Path:
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE plants (plant_id INTEGER PRIMARY KEY, name TEXT)")
        connection.executemany("INSERT INTO plants (name) VALUES (?)", [("fern",), ("ivy",)])
    connection.close()
    return path


def _wait_until_gone(path: Path) -> None:
    deadline = time.monotonic() + 30
    while path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)


def test_sqlite_upload_is_copied_into_the_session_folder_and_opened_read_only(
    tmp_path: Path,
) -> None:
    original = _garden(tmp_path / "garden.db")
    session = SQLSession()
    status, schema = use_uploaded_file(str(original), session)
    try:
        assert "Asking your file `garden.db`" in status
        assert "plants" in schema
        assert session.directory is not None and session.directory != tmp_path
        copied = session.directory / "upload.db"
        assert copied.is_file() and not copied.stat().st_mode & 0o222
        assert session.database.run_sql("SELECT COUNT(*) AS n FROM plants").rows == [[2]]
    finally:
        session.close()
    assert not copied.exists()
    assert original.is_file()


def test_sqlite_upload_refuses_other_files_and_files_over_the_limit(tmp_path: Path) -> None:
    text = tmp_path / "notes.db"
    text.write_text("name,age\nAda,36\n")
    huge = tmp_path / "huge.db"
    with huge.open("wb") as file:
        file.write(b"SQLite format 3\x00")
        file.truncate(21 * 1024 * 1024)  # sparse: no 21 MB written
    session = SQLSession()
    try:
        status, schema = use_uploaded_file(str(text), session)
        assert "not a SQLite database" in status and schema == ""
        status, _ = use_uploaded_file(str(huge), session)
        assert "the limit is 20 MB" in status
        assert session.database is None  # nothing was opened
    finally:
        session.close()


def test_docs_upload_refuses_too_many_unsupported_or_large_files(tmp_path: Path) -> None:
    embedder = shared_embedder("hashing")
    notes = [tmp_path / f"note{number}.txt" for number in range(MAX_FILES + 1)]
    for note in notes:
        note.write_text("a note")
    program = tmp_path / "setup.exe"
    program.write_bytes(b"MZ")
    big = tmp_path / "big.txt"
    with big.open("wb") as file:
        file.truncate(11 * 1024 * 1024)
    session = DocsSession()
    with pytest.raises(ValueError, match=f"at most {MAX_FILES}"):
        index_uploads([str(note) for note in notes], session, embedder)
    with pytest.raises(ValueError, match=re.escape("setup.exe: unsupported file type")):
        index_uploads([str(notes[0]), str(program)], session, embedder)
    with pytest.raises(ValueError, match=re.escape("big.txt is 11.5 MB; the limit is 10 MB")):
        index_uploads([str(big)], session, embedder)
    assert session.collection is None


def test_docs_upload_cites_files_by_their_uploaded_names(tmp_path: Path) -> None:
    pump = tmp_path / "pump.md"
    pump.write_text("# Pump\n\n## Care\n\nReplace the filter every six months.\n")
    session = DocsSession()
    try:
        count = index_uploads([str(pump)], session, shared_embedder("hashing"))
        hits = session.collection.search("how often should the filter be replaced", k=1)
        assert count == 2
        assert hits[0].chunk.citation() == "pump.md, Pump > Care"
    finally:
        session.close()


def test_session_cleanup_works_from_gradios_event_loop(tmp_path: Path) -> None:
    # Gradio calls delete callbacks inside its event loop, where asyncio.run() cannot run.
    pump = tmp_path / "pump.md"
    pump.write_text("# Pump\n\nReplace the filter every six months.\n")
    docs = DocsSession()
    index_uploads([str(pump)], docs, shared_embedder("hashing"))
    sql = SQLSession()
    use_uploaded_file(str(_garden(tmp_path / "garden.db")), sql)
    folders = [docs.directory, sql.directory]
    assert all(folder is not None and folder.is_dir() for folder in folders)

    async def expire() -> None:
        close_session(docs)
        close_session(sql)

    asyncio.run(expire())
    for folder in folders:
        assert folder is not None
        _wait_until_gone(folder)
        assert not folder.exists()
