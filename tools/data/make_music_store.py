"""Generate `music_store.sql`, the sample database of `agentlib.tools.sql`.

A small music store: genres, artists, albums, tracks, employees, customers, invoices and invoice
lines, with foreign keys between them and a few hundred rows. The rows come from a seeded
random generator, so running this script again writes the same file byte for byte:

    python tools/data/make_music_store.py

The SQL is portable: the same script loads into SQLite, PostgreSQL and DuckDB. `dataset()` is
importable so tests can compute expected answers in Python, independently of any SQL engine.
"""

from __future__ import annotations

import datetime
import random
from decimal import Decimal
from pathlib import Path
from typing import Any

SEED = 20240501

SCHEMA = """\
CREATE TABLE genres (
    genre_id INTEGER PRIMARY KEY,
    name VARCHAR(60) NOT NULL
);
CREATE TABLE artists (
    artist_id INTEGER PRIMARY KEY,
    name VARCHAR(120) NOT NULL,
    country VARCHAR(60) NOT NULL
);
CREATE TABLE albums (
    album_id INTEGER PRIMARY KEY,
    title VARCHAR(160) NOT NULL,
    artist_id INTEGER NOT NULL REFERENCES artists (artist_id),
    release_year INTEGER NOT NULL
);
CREATE TABLE tracks (
    track_id INTEGER PRIMARY KEY,
    name VARCHAR(200) NOT NULL,
    album_id INTEGER NOT NULL REFERENCES albums (album_id),
    genre_id INTEGER NOT NULL REFERENCES genres (genre_id),
    milliseconds INTEGER NOT NULL,
    unit_price NUMERIC(5, 2) NOT NULL
);
CREATE TABLE employees (
    employee_id INTEGER PRIMARY KEY,
    first_name VARCHAR(40) NOT NULL,
    last_name VARCHAR(40) NOT NULL,
    title VARCHAR(60) NOT NULL,
    reports_to INTEGER REFERENCES employees (employee_id),
    hire_date DATE NOT NULL
);
CREATE TABLE customers (
    customer_id INTEGER PRIMARY KEY,
    first_name VARCHAR(40) NOT NULL,
    last_name VARCHAR(40) NOT NULL,
    email VARCHAR(120) NOT NULL,
    city VARCHAR(60) NOT NULL,
    country VARCHAR(60) NOT NULL,
    support_rep_id INTEGER REFERENCES employees (employee_id)
);
CREATE TABLE invoices (
    invoice_id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers (customer_id),
    invoice_date DATE NOT NULL,
    billing_country VARCHAR(60) NOT NULL,
    total NUMERIC(10, 2) NOT NULL
);
CREATE TABLE invoice_lines (
    invoice_line_id INTEGER PRIMARY KEY,
    invoice_id INTEGER NOT NULL REFERENCES invoices (invoice_id),
    track_id INTEGER NOT NULL REFERENCES tracks (track_id),
    unit_price NUMERIC(5, 2) NOT NULL,
    quantity INTEGER NOT NULL
);
"""

GENRES = ["Rock", "Jazz", "Blues", "Classical", "Electronic", "Hip Hop", "Folk", "Latin"]
COUNTRIES = {
    "Brazil": ["São Paulo", "Rio de Janeiro"],
    "Canada": ["Toronto", "Montréal", "Vancouver"],
    "France": ["Paris", "Lyon"],
    "Germany": ["Berlin", "Hamburg"],
    "India": ["Mumbai", "Bangalore"],
    "Japan": ["Tokyo", "Osaka"],
    "United Kingdom": ["London", "Manchester"],
    "USA": ["New York", "Chicago", "Austin"],
}
FIRST_NAMES = [
    "Ana", "Ben", "Chloé", "Dev", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Kofi",
    "Lena", "Marco", "Nadia", "Omar", "Priya", "Quinn", "Rosa", "Sven", "Tara", "Umar", "Vera",
    "Wei", "Yuki", "Zoe",
]  # fmt: skip
LAST_NAMES = [
    "Almeida", "Bauer", "Chen", "Dubois", "Eriksen", "Fischer", "García", "Hughes", "Ito",
    "Jensen", "Kumar", "Lopez", "Martin", "Nakamura", "Okafor", "Patel", "Rossi", "Silva",
    "Tanaka", "Weber",
]  # fmt: skip
WORDS = [
    "Midnight", "Electric", "Silver", "River", "Paper", "Golden", "Broken", "Velvet", "Neon",
    "Quiet", "Wild", "Northern", "Crystal", "Hollow", "Burning", "Distant", "Summer", "Iron",
    "Blue", "Falling", "Glass", "Echo", "Lonely", "Shadow", "Ocean", "Thunder", "Morning",
    "Secret", "Paradise", "Highway",
]  # fmt: skip
NOUNS = [
    "Heart", "Road", "Dreams", "Lights", "Garden", "Skies", "Waves", "Fire", "City", "Rain",
    "Moon", "Train", "Letters", "Mirror", "Storm", "Horizon", "Roses", "Stars", "Machine",
    "Island",
]  # fmt: skip
ARTIST_SUFFIXES = ["Band", "Collective", "Quartet", "Trio", "Orchestra", "Project", "Crew"]


def _title(rng: random.Random) -> str:
    return f"{rng.choice(WORDS)} {rng.choice(NOUNS)}"


def _employees() -> list[dict[str, Any]]:
    rows = [
        (1, "Andrew", "Adams", "General Manager", None, "2019-08-14"),
        (2, "Nancy", "Edwards", "Sales Manager", 1, "2019-05-01"),
        (3, "Jane", "Peacock", "Sales Support Agent", 2, "2020-04-01"),
        (4, "Margaret", "Park", "Sales Support Agent", 2, "2020-05-03"),
        (5, "Steve", "Johnson", "Sales Support Agent", 2, "2021-10-17"),
        (6, "Michael", "Mitchell", "IT Manager", 1, "2021-10-17"),
        (7, "Robert", "King", "IT Staff", 6, "2022-01-02"),
        (8, "Laura", "Callahan", "IT Staff", 6, "2022-03-04"),
    ]
    keys = ("employee_id", "first_name", "last_name", "title", "reports_to", "hire_date")
    return [dict(zip(keys, row, strict=True)) for row in rows]


def _catalogue(rng: random.Random) -> dict[str, list[dict[str, Any]]]:
    genres = [{"genre_id": i, "name": name} for i, name in enumerate(GENRES, start=1)]
    artists: list[dict[str, Any]] = []
    names: set[str] = set()
    while len(artists) < 20:
        name = f"The {rng.choice(WORDS)} {rng.choice(ARTIST_SUFFIXES)}"
        if name not in names:
            names.add(name)
            country = rng.choice(sorted(COUNTRIES))
            artists.append({"artist_id": len(artists) + 1, "name": name, "country": country})
    albums = [
        {
            "album_id": i,
            "title": _title(rng),
            "artist_id": 1 + (i - 1) % 20 if i <= 20 else rng.randint(1, 20),
            "release_year": rng.randint(1965, 2023),
        }
        for i in range(1, 41)
    ]
    tracks: list[dict[str, Any]] = []
    for album in albums:
        genre_id = rng.randint(1, len(GENRES))
        for _ in range(rng.randint(3, 7)):
            tracks.append(
                {
                    "track_id": len(tracks) + 1,
                    "name": _title(rng),
                    "album_id": album["album_id"],
                    "genre_id": genre_id if rng.random() < 0.8 else rng.randint(1, len(GENRES)),
                    "milliseconds": rng.randint(95_000, 420_000),
                    "unit_price": Decimal("1.29") if rng.random() < 0.25 else Decimal("0.99"),
                }
            )
    return {"genres": genres, "artists": artists, "albums": albums, "tracks": tracks}


def _sales(rng: random.Random, tracks: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    customers: list[dict[str, Any]] = []
    for i in range(1, 51):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        country = rng.choice(sorted(COUNTRIES))
        customers.append(
            {
                "customer_id": i,
                "first_name": first,
                "last_name": last,
                "email": f"{first.lower()}.{last.lower()}{i}@example.com",
                "city": rng.choice(COUNTRIES[country]),
                "country": country,
                "support_rep_id": rng.choice([3, 4, 5]),
            }
        )
    invoices: list[dict[str, Any]] = []
    lines: list[dict[str, Any]] = []
    start = datetime.date(2023, 1, 1)
    for i in range(1, 151):
        customer = rng.choice(customers)
        total = Decimal("0.00")
        for track in rng.sample(tracks, rng.randint(1, 5)):
            quantity = 1 if rng.random() < 0.85 else 2
            lines.append(
                {
                    "invoice_line_id": len(lines) + 1,
                    "invoice_id": i,
                    "track_id": track["track_id"],
                    "unit_price": track["unit_price"],
                    "quantity": quantity,
                }
            )
            total += track["unit_price"] * quantity
        invoices.append(
            {
                "invoice_id": i,
                "customer_id": customer["customer_id"],
                "invoice_date": (start + datetime.timedelta(days=rng.randint(0, 729))).isoformat(),
                "billing_country": customer["country"],
                "total": total,
            }
        )
    invoices.sort(key=lambda row: (row["invoice_date"], row["invoice_id"]))
    return {"customers": customers, "invoices": invoices, "invoice_lines": lines}


def dataset() -> dict[str, list[dict[str, Any]]]:
    """Every table's rows, in insertion order (parents before children)."""
    rng = random.Random(SEED)
    catalogue = _catalogue(rng)
    sales = _sales(rng, catalogue["tracks"])
    return {**catalogue, "employees": _employees(), **sales}


def _literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, (int, Decimal)):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


def render_sql() -> str:
    """The whole script: the schema, then one INSERT per table and batch of 100 rows.

    `employees` refers to itself, so it gets one INSERT per row: DuckDB checks a foreign key
    against the rows committed before the statement, not against the rest of the same batch.
    """
    parts = ["-- The agentlib music-store sample database. Generated by make_music_store.py.\n"]
    parts.append(SCHEMA)
    for table, rows in dataset().items():
        columns = ", ".join(rows[0])
        batch = 1 if table == "employees" else 100
        for start in range(0, len(rows), batch):
            values = ",\n".join(
                "    (" + ", ".join(_literal(value) for value in row.values()) + ")"
                for row in rows[start : start + batch]
            )
            parts.append(f"INSERT INTO {table} ({columns}) VALUES\n{values};\n")
    return "".join(parts)


if __name__ == "__main__":
    target = Path(__file__).with_name("music_store.sql")
    target.write_text(render_sql(), encoding="utf-8")
    print(f"wrote {target}")
