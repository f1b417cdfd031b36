"""SQLDatabase: introspection per dialect, answers checked against hand-computed ones, structured
queries, text_to_sql and an agent run.

Expected answers are computed in Python from the generator's rows (`dataset()`), independently
of any SQL engine.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pydantic
import pytest
import sqlalchemy as sa
from inline_snapshot import snapshot

from agentlib import (
    Agent,
    ConfigurationError,
    FunctionModel,
    Message,
    OutputSchema,
    ScriptedModel,
    ToolError,
)
from agentlib.models.testing import call, final
from agentlib.tools.data.make_music_store import dataset
from agentlib.tools.sql import SQLDatabase, create_music_store, text_to_sql
from tests.tools._sql_databases import (
    duckdb_music_store,
    postgres_music_store,
    sqlite_music_store,
)

DATA = dataset()
TABLES = [
    "albums",
    "artists",
    "customers",
    "employees",
    "genres",
    "invoice_lines",
    "invoices",
    "tracks",
]
ALL_DIALECTS = ["sqlite", "duckdb", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(scope="module")
def music_urls(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str], str]:
    urls: dict[str, str] = {}

    def url_for(dialect: str) -> str:
        if dialect not in urls:
            directory = tmp_path_factory.mktemp(dialect)
            if dialect == "sqlite":
                urls[dialect] = sqlite_music_store(directory)
            elif dialect == "duckdb":
                urls[dialect] = duckdb_music_store(directory)
            else:
                server = request.getfixturevalue("postgres")
                urls[dialect] = postgres_music_store(server, "music_database")
        return urls[dialect]

    return url_for


@pytest.fixture(params=ALL_DIALECTS)
def db(request: pytest.FixtureRequest, music_urls: Callable[[str], str]) -> Iterator[SQLDatabase]:
    database = SQLDatabase(music_urls(request.param), query_mode="both")
    yield database
    database.close()


@pytest.fixture
def sqlite_db(music_urls: Callable[[str], str]) -> Iterator[SQLDatabase]:
    database = SQLDatabase(music_urls("sqlite"), query_mode="both")
    yield database
    database.close()


# Hand-computed answers ------------------------------------------------------------------------


def _tracks_per_genre() -> dict[str, int]:
    names = {row["genre_id"]: row["name"] for row in DATA["genres"]}
    return dict(Counter(names[row["genre_id"]] for row in DATA["tracks"]))


def _spend_per_customer() -> dict[int, Decimal]:
    spent: dict[int, Decimal] = defaultdict(Decimal)
    for row in DATA["invoices"]:
        spent[row["customer_id"]] += row["total"]
    return dict(spent)


def _revenue_per_country() -> dict[str, Decimal]:
    revenue: dict[str, Decimal] = defaultdict(Decimal)
    for row in DATA["invoices"]:
        revenue[row["billing_country"]] += row["total"]
    return dict(revenue)


# Introspection ---------------------------------------------------------------------------------


def test_introspection_reads_tables_columns_and_keys(db: SQLDatabase) -> None:
    assert list(db.tables) == TABLES
    tracks = db.tables["tracks"]
    assert tracks.column_names == [
        "track_id",
        "name",
        "album_id",
        "genre_id",
        "milliseconds",
        "unit_price",
    ]
    assert [c.name for c in tracks.columns if c.primary_key] == ["track_id"]
    referred = {(k.columns, k.referred_table, k.referred_columns) for k in tracks.foreign_keys}
    assert referred == {
        (("album_id",), "albums", ("album_id",)),
        (("genre_id",), "genres", ("genre_id",)),
    }
    employees = db.tables["employees"]
    assert [(k.columns, k.referred_table) for k in employees.foreign_keys] == [
        (("reports_to",), "employees")
    ]
    types = {c.name: c.type.upper() for c in tracks.columns}
    assert "INT" in types["milliseconds"]
    assert types["unit_price"].startswith(("NUMERIC", "DECIMAL"))
    assert not next(c for c in tracks.columns if c.name == "name").nullable


def test_describe_shows_keys_and_shortened_sample_rows(db: SQLDatabase) -> None:
    text = db.describe_tables.call({"tables": ["albums"]})
    first = DATA["albums"][0]
    assert "album_id" in text and "primary key" in text
    assert "artist_id" in text and "references artists.artist_id" in text
    assert f"1 | {first['title']} | {first['artist_id']} | {first['release_year']}" in text
    assert text.count("\n  ") >= 4 + 3  # four columns, three sample rows


def test_describing_an_unknown_table_suggests_the_closest(sqlite_db: SQLDatabase) -> None:
    with pytest.raises(ToolError, match=r"unknown table 'track'; did you mean 'tracks'\?"):
        sqlite_db.describe(["track"])


def test_list_tables_names_every_table_with_columns(db: SQLDatabase) -> None:
    lines = db.list_tables.call({}).splitlines()
    assert [line.split(":")[0] for line in lines] == TABLES
    assert "genres: genre_id, name" in lines


def test_include_tables_hides_the_rest_and_their_foreign_keys(
    music_urls: Callable[[str], str],
) -> None:
    database = SQLDatabase(music_urls("sqlite"), include_tables=["tracks", "genres"])
    assert list(database.tables) == ["genres", "tracks"]
    assert [k.referred_table for k in database.tables["tracks"].foreign_keys] == ["genres"]
    with pytest.raises(ToolError, match="unknown table 'albums'"):
        database.run_sql("SELECT * FROM albums")
    with pytest.raises(ConfigurationError, match="does not have: songs"):
        SQLDatabase(music_urls("sqlite"), include_tables=["songs"])
    database.close()


def test_in_memory_url_is_refused_with_what_to_do_instead() -> None:
    with pytest.raises(ConfigurationError, match="new, empty in-memory database"):
        SQLDatabase("sqlite://")


def test_an_in_memory_engine_is_used_as_given() -> None:
    engine = sa.create_engine("sqlite://", poolclass=sa.pool.StaticPool)
    create_music_store(engine)
    database = SQLDatabase(engine, query_mode="sql")
    assert database.run_sql("SELECT COUNT(*) FROM genres").rows == [[8]]
    with pytest.raises(ToolError, match="the database refused the query"):
        database.executor.execute("DELETE FROM genres", timeout=5, max_rows=1)
    with engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT COUNT(*) FROM genres").scalar() == 8


# Answers against hand-computed values -----------------------------------------------------------


def test_free_sql_answers_match_hand_computed_values(db: SQLDatabase) -> None:
    per_genre = db.run_sql(
        "SELECT g.name, COUNT(*) AS n FROM tracks t JOIN genres g ON g.genre_id = t.genre_id "
        "GROUP BY g.name"
    )
    assert {name: n for name, n in per_genre.rows} == _tracks_per_genre()

    spend = _spend_per_customer()
    best = max(spend, key=lambda customer: (spend[customer], -customer))
    top = db.run_sql(
        "SELECT c.customer_id, SUM(i.total) AS spent FROM customers c JOIN invoices i "
        "ON i.customer_id = c.customer_id GROUP BY c.customer_id "
        "ORDER BY spent DESC, c.customer_id LIMIT 1"
    )
    assert top.rows[0][0] == best
    assert top.rows[0][1] == pytest.approx(float(spend[best]))

    depth = db.run_sql(
        "WITH RECURSIVE chain(employee_id, depth) AS (SELECT employee_id, 0 FROM employees "
        "WHERE reports_to IS NULL UNION ALL SELECT e.employee_id, chain.depth + 1 "
        "FROM employees e JOIN chain ON e.reports_to = chain.employee_id) "
        "SELECT depth, COUNT(*) FROM chain GROUP BY depth ORDER BY depth"
    )
    # Andrew manages Nancy and Michael; they manage three agents and two IT staff.
    assert depth.rows == [[0, 1], [1, 2], [2, 5]]


def test_structured_query_answers_match_hand_computed_values(db: SQLDatabase) -> None:
    result = db.run_query(
        {
            "table": "invoices",
            "select": [
                {"column": "invoices.billing_country"},
                {"column": "invoices.total", "aggregate": "sum"},
                {"column": "*", "aggregate": "count"},
            ],
            "order_by": [{"column": "invoices.total", "aggregate": "sum", "direction": "desc"}],
        }
    )
    expected = _revenue_per_country()
    assert result.columns == ["invoices_billing_country", "sum_invoices_total", "count_all"]
    assert {row[0]: row[1] for row in result.rows} == pytest.approx(
        {country: float(total) for country, total in expected.items()}
    )
    assert result.rows[0][0] == max(expected, key=lambda country: expected[country])
    counts = Counter(row["billing_country"] for row in DATA["invoices"])
    assert {row[0]: row[2] for row in result.rows} == counts


def test_structured_query_joins_along_foreign_keys_with_bound_filters(db: SQLDatabase) -> None:
    query = {
        "table": "tracks",
        "joins": [
            {"on": "tracks.album_id = albums.album_id"},
            {"on": "albums.artist_id = artists.artist_id"},
        ],
        "select": [{"column": "artists.name"}, {"column": "tracks.track_id", "aggregate": "count"}],
        "filters": [{"column": "artists.country", "operator": "in", "value": ["Japan", "France"]}],
        "order_by": [{"column": "artists.name"}],
    }
    statement, sql = db.compile(query)
    assert "Japan" in sql
    assert "Japan" not in str(statement.compile(dialect=db.engine.dialect))  # a bound parameter
    result = db.run_query(query)
    artists = {row["artist_id"]: row for row in DATA["artists"]}
    albums = {row["album_id"]: row for row in DATA["albums"]}
    expected: Counter[str] = Counter()
    for track in DATA["tracks"]:
        artist = artists[albums[track["album_id"]]["artist_id"]]
        if artist["country"] in ("Japan", "France"):
            expected[artist["name"]] += 1
    assert result.rows == [[name, expected[name]] for name in sorted(expected)]


def test_structured_filter_values_cannot_inject_sql(sqlite_db: SQLDatabase) -> None:
    result = sqlite_db.run_query(
        {
            "table": "genres",
            "select": [{"column": "genres.name"}],
            "filters": [{"column": "genres.name", "operator": "=", "value": "x' OR '1'='1"}],
        }
    )
    assert result.rows == []
    assert sqlite_db.run_query(
        {
            "table": "genres",
            "select": [{"column": "genres.name"}],
            "filters": [{"column": "genres.name", "operator": "contains", "value": "HIP"}],
        }
    ).rows == [["Hip Hop"]]


# The structured query schema -------------------------------------------------------------------


def _enum_at(schema: dict[str, Any], *path: str) -> list[str]:
    node: Any = schema
    for key in path:
        node = node[key]
    return list(node["enum"])


def test_query_schema_names_only_real_tables_columns_and_joins(sqlite_db: SQLDatabase) -> None:
    run_query = next(t for t in sqlite_db.tools if t.name == "run_query")
    query = run_query.parameters["properties"]["query"]
    assert _enum_at(query, "properties", "table") == TABLES
    columns = _enum_at(query, "properties", "select", "items", "properties", "column")
    assert "tracks.unit_price" in columns and "*" in columns
    assert len(columns) == 1 + sum(len(info.columns) for info in sqlite_db.tables.values())
    joins = _enum_at(query, "properties", "joins", "items", "properties", "on")
    assert "tracks.album_id = albums.album_id" in joins
    assert all(not join.startswith("employees.reports_to") for join in joins)


def test_a_hallucinated_column_does_not_fit_the_schema(sqlite_db: SQLDatabase) -> None:
    with pytest.raises(pydantic.ValidationError, match=r"tracks\.rating"):
        sqlite_db.query_model.model_validate(
            {"table": "tracks", "select": [{"column": "tracks.rating"}]}
        )
    run_query = next(t for t in sqlite_db.tools if t.name == "run_query")
    with pytest.raises(ToolError, match="invalid arguments for tool 'run_query'"):
        run_query.validate({"query": {"table": "songs", "select": [{"column": "*"}]}})


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (
            {
                "table": "tracks",
                "joins": [{"on": "albums.artist_id = artists.artist_id"}],
                "select": [{"column": "*", "aggregate": "count"}],
            },
            "neither of its tables are in the query",
        ),
        (
            {"table": "tracks", "select": [{"column": "albums.title"}]},
            "add a join that reaches albums",
        ),
        (
            {"table": "tracks", "select": [{"column": "*", "aggregate": "sum"}]},
            "only be used with the count aggregate",
        ),
        (
            {
                "table": "tracks",
                "select": [{"column": "tracks.name"}],
                "filters": [{"column": "tracks.milliseconds", "operator": "between", "value": 5}],
            },
            "needs a list of two values",
        ),
    ],
)
def test_inconsistent_structured_query_is_refused_with_guidance(
    sqlite_db: SQLDatabase, query: dict[str, Any], message: str
) -> None:
    with pytest.raises(ToolError, match=message):
        sqlite_db.run_query(query)


# text_to_sql -------------------------------------------------------------------------------------

_GENRE_QUERY = {
    "table": "tracks",
    "joins": [{"on": "tracks.genre_id = genres.genre_id"}],
    "select": [{"column": "genres.name"}, {"column": "*", "aggregate": "count"}],
    "order_by": [{"column": "*", "aggregate": "count", "direction": "desc"}],
    "limit": 1,
}


def _top_genre() -> tuple[str, int]:
    counts = _tracks_per_genre()
    best = max(sorted(counts), key=lambda name: counts[name])
    return best, counts[best]


def test_text_to_sql_structured_with_a_scripted_model(db: SQLDatabase) -> None:
    model = ScriptedModel([_GENRE_QUERY])
    answer = text_to_sql(model, db, "Which genre has the most tracks?")
    assert answer.result is not None
    assert answer.result.rows == [list(_top_genre())]
    assert answer.sql.upper().startswith("SELECT")
    assert answer.path == "scripted"
    assert answer.attempts == 1
    schema = model.requests[0].output
    assert schema is not None
    assert set(schema.schema["properties"]["table"]["enum"]) <= set(TABLES)


def test_text_to_sql_retries_after_a_hallucinated_name(sqlite_db: SQLDatabase) -> None:
    replies = iter([{**_GENRE_QUERY, "table": "songs"}, _GENRE_QUERY])

    def respond(messages: Sequence[Message], output: OutputSchema | None) -> dict[str, Any]:
        return next(replies)

    model = FunctionModel(respond)
    answer = text_to_sql(model, sqlite_db, "Which genre has the most tracks?")
    assert answer.attempts == 2
    assert answer.result is not None and answer.result.rows == [list(_top_genre())]
    retry_prompt = model.requests[1].messages[-1].content
    assert "songs" in retry_prompt


def test_text_to_sql_free_sql_retries_after_a_refusal(sqlite_db: SQLDatabase) -> None:
    model = ScriptedModel([{"sql": "DELETE FROM tracks"}, {"sql": "SELECT COUNT(*) FROM tracks"}])
    answer = text_to_sql(model, sqlite_db, "How many tracks are there?", mode="sql")
    assert answer.attempts == 2
    assert answer.query is None
    assert answer.result is not None and answer.result.rows == [[len(DATA["tracks"])]]
    assert "only SELECT queries are allowed" in model.requests[1].messages[-1].content
    output = model.requests[0].output
    assert output is not None and list(output.schema["properties"]) == ["sql"]


def test_text_to_sql_gives_up_with_the_last_refusal(sqlite_db: SQLDatabase) -> None:
    model = ScriptedModel(
        [{"sql": "DROP TABLE tracks"}, {"sql": "DELETE FROM tracks"}, {"sql": "DROP TABLE songs"}]
    )
    with pytest.raises(ToolError, match="only SELECT queries are allowed"):
        text_to_sql(model, sqlite_db, "Remove the tracks", mode="sql", retries=2)
    assert model.remaining == 0


def test_text_to_sql_stops_when_the_model_repeats_a_refused_query(sqlite_db: SQLDatabase) -> None:
    # The same retry loop as the agent's: a word-for-word repeat cannot progress.
    model = ScriptedModel([{"sql": "DROP TABLE tracks"}] * 3)
    with pytest.raises(ToolError, match="only SELECT queries are allowed"):
        text_to_sql(model, sqlite_db, "Remove the tracks", mode="sql", retries=2)
    assert model.remaining == 1


def test_large_schema_is_trimmed_to_relevant_tables(tmp_path: Path) -> None:
    path = tmp_path / "big.db"
    create_music_store(path)
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as connection:
        for index in range(30):
            connection.exec_driver_sql(
                f"CREATE TABLE audit_log_{index} (entry_id INTEGER PRIMARY KEY, note TEXT)"
            )
    engine.dispose()
    database = SQLDatabase(f"sqlite:///{path}")
    assert len(database.tables) == 38
    model = ScriptedModel([_GENRE_QUERY])
    answer = text_to_sql(model, database, "Which genre has the most tracks?", max_tables=4)
    assert answer.result is not None and answer.result.rows == [list(_top_genre())]
    request = model.requests[0]
    system = request.messages[0].content
    assert "table genres(" in system and "table tracks(" in system
    assert "audit_log" not in system
    assert request.output is not None
    offered = request.output.schema["properties"]["table"]["enum"]
    assert {"genres", "tracks"} <= set(offered) and len(offered) <= 4
    database.close()


# An agent run --------------------------------------------------------------------------------


def test_agent_lists_describes_queries_and_answers(db: SQLDatabase) -> None:
    genre, count = _top_genre()
    model = ScriptedModel(
        [
            call("list_tables", "See what the database holds."),
            call("describe_tables", "Look at genres and tracks.", tables=["genres", "tracks"]),
            call("run_sql", "Try a write first.", sql="DROP TABLE tracks"),
            call("run_query", "Count tracks per genre.", query=_GENRE_QUERY),
            final(f"{genre} has the most tracks ({count})."),
        ]
    )
    agent = Agent(model, tools=[db], max_steps=6)
    result = agent.run("Which genre has the most tracks?")
    assert result.ok
    observations = [step.observations[0] for step in result.steps if step.observations]
    listed, described, refused, queried = observations
    assert "invoice_lines: invoice_line_id" in listed.content
    assert "references genres.genre_id" in described.content
    assert refused.is_error and "only SELECT queries are allowed" in refused.content
    assert queried.value.rows == [[genre, count]]
    assert json.loads(queried.content)["rows"] == [[genre, count]]


# Pinned tool schemas --------------------------------------------------------------------------


def _tiny_database(directory: Path) -> SQLDatabase:
    path = directory / "tiny.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE bands (band_id INTEGER PRIMARY KEY, name TEXT)")
        connection.exec_driver_sql(
            "CREATE TABLE songs (song_id INTEGER PRIMARY KEY, title TEXT, "
            "band_id INTEGER REFERENCES bands (band_id))"
        )
    engine.dispose()
    return SQLDatabase(f"sqlite:///{path}", query_mode="both")


def test_tool_schemas_are_pinned(tmp_path: Path) -> None:
    database = _tiny_database(tmp_path)
    schemas = {tool.name: tool.parameters for tool in database.tools}
    assert schemas == snapshot(
        {
            "list_tables": {"additionalProperties": False, "properties": {}, "type": "object"},
            "describe_tables": {
                "additionalProperties": False,
                "properties": {
                    "tables": {
                        "description": "The names of the tables to describe.",
                        "items": {"type": "string"},
                        "type": "array",
                    }
                },
                "required": ["tables"],
                "type": "object",
            },
            "run_query": {
                "additionalProperties": False,
                "properties": {
                    "query": {
                        "additionalProperties": False,
                        "description": "The query: the table, the selected columns (with optional aggregates), joins along foreign keys, filters, grouping, ordering and a limit.",  # noqa: E501
                        "properties": {
                            "table": {
                                "description": "The table to select from",
                                "enum": ["bands", "songs"],
                                "type": "string",
                            },
                            "select": {
                                "items": {
                                    "additionalProperties": False,
                                    "properties": {
                                        "column": {
                                            "description": "`table.column`, or `*` with count",
                                            "enum": [
                                                "*",
                                                "bands.band_id",
                                                "bands.name",
                                                "songs.song_id",
                                                "songs.title",
                                                "songs.band_id",
                                            ],
                                            "type": "string",
                                        },
                                        "aggregate": {
                                            "anyOf": [
                                                {
                                                    "enum": [
                                                        "count",
                                                        "count_distinct",
                                                        "sum",
                                                        "avg",
                                                        "min",
                                                        "max",
                                                    ],
                                                    "type": "string",
                                                },
                                                {"type": "null"},
                                            ],
                                            "default": None,
                                            "description": "Aggregate applied to the column",
                                        },
                                    },
                                    "required": ["column"],
                                    "type": "object",
                                },
                                "maxItems": 8,
                                "minItems": 1,
                                "type": "array",
                            },
                            "joins": {
                                "items": {
                                    "additionalProperties": False,
                                    "properties": {
                                        "on": {
                                            "const": "songs.band_id = bands.band_id",
                                            "description": "A foreign key to join along",
                                            "type": "string",
                                        },
                                        "type": {
                                            "default": "inner",
                                            "enum": ["inner", "left"],
                                            "type": "string",
                                        },
                                    },
                                    "required": ["on"],
                                    "type": "object",
                                },
                                "maxItems": 6,
                                "type": "array",
                            },
                            "filters": {
                                "items": {
                                    "additionalProperties": False,
                                    "properties": {
                                        "column": {
                                            "enum": [
                                                "bands.band_id",
                                                "bands.name",
                                                "songs.song_id",
                                                "songs.title",
                                                "songs.band_id",
                                            ],
                                            "type": "string",
                                        },
                                        "operator": {
                                            "enum": [
                                                "=",
                                                "!=",
                                                "<",
                                                "<=",
                                                ">",
                                                ">=",
                                                "like",
                                                "not_like",
                                                "contains",
                                                "in",
                                                "not_in",
                                                "between",
                                                "is_null",
                                                "is_not_null",
                                            ],
                                            "type": "string",
                                        },
                                        "value": {
                                            "anyOf": [
                                                {"maxLength": 200, "type": "string"},
                                                {"type": "integer"},
                                                {"type": "number"},
                                                {"type": "boolean"},
                                                {
                                                    "items": {
                                                        "anyOf": [
                                                            {"maxLength": 200, "type": "string"},
                                                            {"type": "integer"},
                                                            {"type": "number"},
                                                            {"type": "boolean"},
                                                        ]
                                                    },
                                                    "maxItems": 20,
                                                    "type": "array",
                                                },
                                                {"type": "null"},
                                            ],
                                            "default": None,
                                            "description": "A literal; a list for in/not_in/between; none for is_null",  # noqa: E501
                                        },
                                    },
                                    "required": ["column", "operator"],
                                    "type": "object",
                                },
                                "maxItems": 8,
                                "type": "array",
                            },
                            "group_by": {
                                "items": {
                                    "enum": [
                                        "bands.band_id",
                                        "bands.name",
                                        "songs.song_id",
                                        "songs.title",
                                        "songs.band_id",
                                    ],
                                    "type": "string",
                                },
                                "maxItems": 6,
                                "type": "array",
                            },
                            "having": {
                                "items": {
                                    "additionalProperties": False,
                                    "properties": {
                                        "column": {
                                            "enum": [
                                                "*",
                                                "bands.band_id",
                                                "bands.name",
                                                "songs.song_id",
                                                "songs.title",
                                                "songs.band_id",
                                            ],
                                            "type": "string",
                                        },
                                        "aggregate": {
                                            "enum": [
                                                "count",
                                                "count_distinct",
                                                "sum",
                                                "avg",
                                                "min",
                                                "max",
                                            ],
                                            "type": "string",
                                        },
                                        "operator": {
                                            "enum": ["=", "!=", "<", "<=", ">", ">="],
                                            "type": "string",
                                        },
                                        "value": {
                                            "anyOf": [{"type": "integer"}, {"type": "number"}]
                                        },
                                    },
                                    "required": ["column", "aggregate", "operator", "value"],
                                    "type": "object",
                                },
                                "maxItems": 4,
                                "type": "array",
                            },
                            "order_by": {
                                "items": {
                                    "additionalProperties": False,
                                    "properties": {
                                        "column": {
                                            "enum": [
                                                "*",
                                                "bands.band_id",
                                                "bands.name",
                                                "songs.song_id",
                                                "songs.title",
                                                "songs.band_id",
                                            ],
                                            "type": "string",
                                        },
                                        "aggregate": {
                                            "anyOf": [
                                                {
                                                    "enum": [
                                                        "count",
                                                        "count_distinct",
                                                        "sum",
                                                        "avg",
                                                        "min",
                                                        "max",
                                                    ],
                                                    "type": "string",
                                                },
                                                {"type": "null"},
                                            ],
                                            "default": None,
                                        },
                                        "direction": {
                                            "default": "asc",
                                            "enum": ["asc", "desc"],
                                            "type": "string",
                                        },
                                    },
                                    "required": ["column"],
                                    "type": "object",
                                },
                                "maxItems": 4,
                                "type": "array",
                            },
                            "limit": {
                                "anyOf": [{"minimum": 1, "type": "integer"}, {"type": "null"}],
                                "default": None,
                            },
                            "distinct": {"default": False, "type": "boolean"},
                        },
                        "required": ["table", "select"],
                        "type": "object",
                    }
                },
                "required": ["query"],
                "type": "object",
            },
            "run_sql": {
                "additionalProperties": False,
                "properties": {
                    "sql": {
                        "description": "One SELECT (WITH … SELECT allowed) over the database's tables; at most 100 rows are returned.",  # noqa: E501
                        "type": "string",
                    }
                },
                "required": ["sql"],
                "type": "object",
            },
        }
    )
    database.close()


def test_shipped_sample_script_matches_its_generator() -> None:
    from agentlib.tools.data.make_music_store import render_sql
    from agentlib.tools.sql import music_store_sql

    assert music_store_sql() == render_sql()


def test_a_database_without_tables_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    sqlite3.connect(path).close()
    with pytest.raises(ConfigurationError, match="no tables to query"):
        SQLDatabase(f"sqlite:///{path}")


def test_a_missing_sqlite_file_is_not_created(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        SQLDatabase(f"sqlite:///{tmp_path / 'absent.db'}")
    assert list(tmp_path.iterdir()) == []
