"""text_to_sql with the embedded model (SmolLM2-135M through Outlines): constrained end to end."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentlib.models.local import LocalModel
from agentlib.tools.sql import SQLDatabase, create_music_store, text_to_sql


@pytest.mark.slow
def test_embedded_model_builds_a_query_that_names_only_real_columns(tmp_path: Path) -> None:
    create_music_store(tmp_path / "music.db")
    db = SQLDatabase(f"sqlite:///{tmp_path / 'music.db'}", include_tables=["genres", "tracks"])
    answer = text_to_sql(LocalModel(n_threads=1), db, "How many tracks are there?", retries=1)
    # Decoding was constrained to the schema built from the database: whatever the tiny model
    # chose, every name in it is real, and the library compiled and ran it.
    assert answer.path == "constrained"
    assert answer.query is not None
    names = answer.query.model_dump_json()
    assert "tracks." in names
    assert answer.sql.upper().startswith("SELECT")
    assert answer.result is not None and answer.result.columns
    db.close()
