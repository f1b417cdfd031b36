"""`SQLStore`: conversations and run checkpoints in any SQL database SQLAlchemy reaches.

A SQLite file by default; PostgreSQL and any other SQLAlchemy URL work the same.

Re-exported as `agentlib.memory.SQLStore`, which loads this module on first use, so sqlalchemy
is imported only when a store is made. SQLAlchemy's errors stop here: a transaction that still
fails after its retries raises `StoreError`.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from agentlib._optional import optional_imports
from agentlib.errors import ConfigurationError, StoreError

from ._format import LoadProblem, Turn
from .conversation import Conversation
from .stores import ConversationInfo

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine
    from sqlalchemy.exc import DBAPIError

__all__ = ["SQLStore"]

# The logger of `agentlib.memory`, where `SQLStore` is documented and imported from.
logger = logging.getLogger("agentlib.memory")

T = TypeVar("T")


def _import_sqlalchemy() -> None:
    with optional_imports("sql", feature="SQLStore (conversations in a database)"):
        import sqlalchemy  # noqa: F401


def _is_transient(exc: DBAPIError) -> bool:
    """Whether a database error may pass if the transaction is tried again."""
    from sqlalchemy import exc as sa_exc

    if isinstance(exc, sa_exc.IntegrityError):
        return True  # two writers inserted the same new conversation or position at once
    if isinstance(exc, sa_exc.OperationalError):
        text = str(exc.orig).lower()
        sqlstate = getattr(exc.orig, "sqlstate", None)
        return "locked" in text or "busy" in text or sqlstate in ("40001", "40P01")
    return False


class SQLStore:
    """Conversations and run checkpoints in any SQL database SQLAlchemy reaches (SQLite default).

    Each turn is one row holding its JSON document, rewritten in one transaction as each step
    finishes, so a crash loses at most the step in flight. Writers may be many threads and
    processes: SQLite runs in WAL mode with `BEGIN IMMEDIATE` transactions and a busy timeout,
    and transactions that meet a lock or a concurrent insert are retried with backoff.
    PostgreSQL (`postgresql+psycopg://...`) serves many processes and machines.

    Args:
        url: A SQLAlchemy URL (`sqlite:///chat.db`, `postgresql+psycopg://user@host/db`) or
            the path of a SQLite file; or an existing `sqlalchemy.Engine` to use as it is.
        table_prefix: Prefix of the three tables (`<prefix>conversations`, `<prefix>turns`,
            and `<prefix>runs` for run checkpoints).
        max_retries: How many times a transaction that met a lock (after SQLite's own 10 s
            busy timeout) or a concurrent insert is tried again.

    Raises:
        MissingExtraError: SQLAlchemy is not installed (`pip install "agentlib-typed[sql]"`).
        StoreError: The database failed (unreachable, unwritable, or still locked after
            `max_retries`); every method raises it the same way.
    """

    def __init__(
        self,
        url: str | Engine,
        *,
        table_prefix: str = "agentlib_",
        max_retries: int = 5,
    ) -> None:
        _import_sqlalchemy()
        import sqlalchemy as sa

        if isinstance(url, sa.Engine):
            self.engine = url
            self._owns_engine = False
        else:
            self.engine = _create_engine(url)
            self._owns_engine = True
        self.max_retries = max_retries
        metadata = sa.MetaData()
        self._conversations = sa.Table(
            f"{table_prefix}conversations",
            metadata,
            sa.Column("id", sa.String(128), primary_key=True),
            sa.Column("title", sa.String(200), nullable=False),
            sa.Column("created_at", sa.Float, nullable=False),
            sa.Column("updated_at", sa.Float, nullable=False),
            sa.Column("data", sa.Text, nullable=False),
        )
        self._turns = sa.Table(
            f"{table_prefix}turns",
            metadata,
            sa.Column("id", sa.String(64), primary_key=True),
            sa.Column(
                "conversation_id",
                sa.String(128),
                sa.ForeignKey(f"{table_prefix}conversations.id", ondelete="CASCADE"),
                nullable=False,
            ),
            sa.Column("position", sa.Integer, nullable=False),
            sa.Column("updated_at", sa.Float, nullable=False),
            sa.Column("data", sa.Text, nullable=False),
            sa.UniqueConstraint("conversation_id", "position"),
        )
        self._runs = sa.Table(
            f"{table_prefix}runs",
            metadata,
            sa.Column("id", sa.String(128), primary_key=True),
            sa.Column("status", sa.String(16), nullable=False),
            sa.Column("updated_at", sa.Float, nullable=False),
            sa.Column("data", sa.Text, nullable=False),
        )
        self._transact(lambda connection: metadata.create_all(connection), "create its tables")

    def __repr__(self) -> str:
        return f"SQLStore({self.engine.url.render_as_string(hide_password=True)!r})"

    def close(self) -> None:
        """Close the connections (of an engine the store created)."""
        if self._owns_engine:
            self.engine.dispose()

    def _transact(self, work: Callable[[Connection], T], what: str, *, read: bool = False) -> T:
        from sqlalchemy.exc import DBAPIError

        delay = 0.005
        for attempt in range(self.max_retries + 1):
            try:
                with self.engine.connect() as connection:
                    if read:
                        connection = connection.execution_options(agentlib_read=True)
                    with connection.begin():
                        return work(connection)
            except DBAPIError as exc:
                if attempt == self.max_retries or not _is_transient(exc):
                    raise self._store_error(exc, what, attempts=attempt + 1) from exc
                logger.debug("retrying a conversation store transaction after: %s", exc)
                time.sleep(delay * (1 + random.random()))
                delay = min(delay * 2, 0.5)
        raise AssertionError("unreachable")  # pragma: no cover

    def _store_error(self, exc: DBAPIError, what: str, *, attempts: int) -> StoreError:
        url = self.engine.url.render_as_string(hide_password=True)
        reason = " ".join(str(exc.orig if exc.orig is not None else exc).split())
        if _is_transient(exc):
            advice = (
                f"it was still locked or conflicting after {attempts} attempts; "
                f"try again, use fewer concurrent writers or a larger max_retries "
                f"(now {self.max_retries})"
            )
        else:
            advice = (
                "check that the database exists, is reachable and that this process may "
                "read and write it (for SQLite: the file and its folder)"
            )
        return StoreError(f"conversation store {url} could not {what}: {reason}; {advice}", url=url)

    def save(self, conversation: Conversation) -> None:
        """Write the conversation's metadata and every turn, in one transaction."""
        turns = conversation.turns

        def work(connection: Connection) -> None:
            self._write_header(connection, conversation)
            for turn in turns:
                self._write_turn(connection, conversation.id, turn)

        self._transact(work, f"save conversation {conversation.id!r}")

    def save_turn(self, conversation: Conversation, turn: Turn) -> None:
        """Write one turn and the conversation's metadata, in one transaction."""

        def work(connection: Connection) -> None:
            self._write_header(connection, conversation)
            self._write_turn(connection, conversation.id, turn)

        self._transact(work, f"save a turn of conversation {conversation.id!r}")

    def _write_header(self, connection: Connection, conversation: Conversation) -> None:
        # The UPDATE comes first: it locks the conversation's row (PostgreSQL), so concurrent
        # writers to one conversation take turns and positions stay unique.
        table = self._conversations
        now = time.time()
        values = {
            "title": conversation.title[:200],
            "updated_at": now,
            "data": json.dumps(conversation.header(), ensure_ascii=False),
        }
        updated = connection.execute(
            table.update().where(table.c.id == conversation.id).values(**values)
        )
        if updated.rowcount == 0:
            connection.execute(
                table.insert().values(
                    id=conversation.id, created_at=conversation.created_at.timestamp(), **values
                )
            )

    def _write_turn(self, connection: Connection, conversation_id: str, turn: Turn) -> None:
        import sqlalchemy as sa

        table = self._turns
        if not 0 < len(turn.id) <= 64:
            raise ConfigurationError(f"a turn id must be 1-64 characters, got {turn.id!r}")
        data = json.dumps(turn.to_dict(), ensure_ascii=False)
        owner = connection.execute(
            sa.select(table.c.conversation_id).where(table.c.id == turn.id)
        ).scalar_one_or_none()
        if owner is not None:
            if owner != conversation_id:
                raise ConfigurationError(
                    f"turn {turn.id!r} is stored in conversation {owner!r}, not "
                    f"{conversation_id!r}; give each turn its own id"
                )
            connection.execute(
                table.update()
                .where(table.c.id == turn.id)
                .values(data=data, updated_at=time.time())
            )
            return
        last = connection.execute(
            sa.select(sa.func.max(table.c.position)).where(
                table.c.conversation_id == conversation_id
            )
        ).scalar_one_or_none()
        connection.execute(
            table.insert().values(
                id=turn.id,
                conversation_id=conversation_id,
                position=0 if last is None else last + 1,
                updated_at=time.time(),
                data=data,
            )
        )

    def load(self, conversation_id: str) -> Conversation | None:
        """The stored conversation, or `None`; unreadable turn rows go to `problems`."""
        import sqlalchemy as sa

        def work(connection: Connection) -> tuple[Any, list[Any]]:
            header = connection.execute(
                sa.select(self._conversations).where(self._conversations.c.id == conversation_id)
            ).first()
            rows = connection.execute(
                sa.select(self._turns.c.id, self._turns.c.data)
                .where(self._turns.c.conversation_id == conversation_id)
                .order_by(self._turns.c.position)
            ).all()
            return header, list(rows)

        header, rows = self._transact(work, f"load conversation {conversation_id!r}", read=True)
        if header is None:
            return None
        problems: list[LoadProblem] = []
        conversation = self._read_header(header, problems)
        turns: list[Turn] = []
        for row in rows:
            try:
                turns.append(_read_turn(row.id, row.data))
            except ConfigurationError as exc:
                problems.append(LoadProblem(row_id=row.id, kind="turn", message=str(exc)))
        conversation.load_turns(turns, problems)
        return conversation

    def _read_header(self, header: Any, problems: list[LoadProblem]) -> Conversation:
        created_at = datetime.fromtimestamp(header.created_at, UTC)
        try:
            data = json.loads(header.data)
            if not isinstance(data, dict):
                raise ConfigurationError(f"its data is a JSON {type(data).__name__}, not an object")
            document = Conversation.from_dict(
                {"id": header.id, "created_at": created_at.isoformat(), **data, "turns": []},
                store=self,
            )
        except (json.JSONDecodeError, ConfigurationError) as exc:
            message = (
                f"its data is not valid JSON: {exc}"
                if isinstance(exc, json.JSONDecodeError)
                else str(exc)
            )
            problems.append(LoadProblem(row_id=header.id, kind="conversation", message=message))
            return Conversation(header.id, store=self, created_at=created_at)
        document.id = header.id  # the row's key wins over the document
        return document

    def list_conversations(self) -> list[ConversationInfo]:
        """Every stored conversation, most recently updated first."""
        import sqlalchemy as sa

        counts = (
            sa.select(self._turns.c.conversation_id, sa.func.count().label("turns"))
            .group_by(self._turns.c.conversation_id)
            .subquery()
        )
        table = self._conversations
        query = (
            sa.select(
                table.c.id, table.c.title, table.c.created_at, table.c.updated_at, counts.c.turns
            )
            .outerjoin(counts, counts.c.conversation_id == table.c.id)
            .order_by(table.c.updated_at.desc(), table.c.id)
        )
        rows = self._transact(
            lambda connection: connection.execute(query).all(), "list conversations", read=True
        )
        return [
            ConversationInfo(
                id=row.id,
                title=row.title,
                turns=row.turns or 0,
                created_at=datetime.fromtimestamp(row.created_at, UTC),
                updated_at=datetime.fromtimestamp(row.updated_at, UTC),
            )
            for row in rows
        ]

    def delete(self, conversation_id: str) -> bool:
        """Remove the conversation and its turns; whether it existed."""

        def work(connection: Connection) -> bool:
            connection.execute(
                self._turns.delete().where(self._turns.c.conversation_id == conversation_id)
            )
            deleted = connection.execute(
                self._conversations.delete().where(self._conversations.c.id == conversation_id)
            )
            return bool(deleted.rowcount)

        return self._transact(work, f"delete conversation {conversation_id!r}")

    def save_checkpoint(self, run_id: str, checkpoint: Mapping[str, Any]) -> None:
        """Write the run's checkpoint (one row per run, replaced), in one transaction."""
        if not 0 < len(run_id) <= 128:
            raise ConfigurationError(f"a run id must be 1-128 characters, got {run_id!r}")
        table = self._runs
        values = {
            "status": str(checkpoint.get("status", "")),
            "updated_at": time.time(),
            "data": json.dumps(checkpoint, ensure_ascii=False),
        }

        def work(connection: Connection) -> None:
            updated = connection.execute(
                table.update().where(table.c.id == run_id).values(**values)
            )
            if updated.rowcount == 0:
                connection.execute(table.insert().values(id=run_id, **values))

        self._transact(work, f"save the checkpoint of run {run_id!r}")

    def load_checkpoint(self, run_id: str) -> dict[str, Any] | None:
        """The run's latest checkpoint, or `None` when there is no run with this id."""
        import sqlalchemy as sa

        query = sa.select(self._runs.c.data).where(self._runs.c.id == run_id)
        text = self._transact(
            lambda connection: connection.execute(query).scalar_one_or_none(),
            f"load the checkpoint of run {run_id!r}",
            read=True,
        )
        if text is None:
            return None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigurationError(
                f"the checkpoint of run {run_id!r} is not JSON: {exc}"
            ) from None
        if not isinstance(data, dict):
            raise ConfigurationError(f"the checkpoint of run {run_id!r} is not a JSON object")
        return data


def _read_turn(row_id: str, text: str) -> Turn:
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, TypeError) as exc:
        raise ConfigurationError(f"its data is not valid JSON: {exc}") from None
    turn = Turn.from_dict(data, what="the row")
    if turn.id != row_id:
        raise ConfigurationError(f"the row holds turn {turn.id!r}, which belongs elsewhere")
    return turn


def _create_engine(url: str) -> Engine:
    import sqlalchemy as sa

    if "://" not in url:
        url = f"sqlite:///{url}"
    parsed = sa.make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return sa.create_engine(url, pool_pre_ping=True)
    in_memory = parsed.database in (None, "", ":memory:")
    options: dict[str, Any] = {"connect_args": {"timeout": 10, "check_same_thread": False}}
    if in_memory:
        options["poolclass"] = sa.StaticPool  # one shared connection, or each thread sees its own
    engine = sa.create_engine(url, **options)
    _configure_sqlite(engine, wal=not in_memory)
    return engine


def _configure_sqlite(engine: Engine, *, wal: bool) -> None:
    """WAL (readers never block the writer), a busy timeout, and `BEGIN IMMEDIATE`.

    `BEGIN IMMEDIATE` takes the write lock when the transaction starts, so two writers cannot
    both read and then fail to upgrade to a write (the classic source of "database is locked"
    that no busy timeout resolves).
    """
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout = 10000")
        if wal:
            cursor.execute("PRAGMA journal_mode = WAL")
            # Commits survive a crash of the process; only an OS crash or power cut may undo
            # the last ones (never corrupting the file). FULL costs an fsync per step: 16 ms
            # per step and 30 writes/s for four writers on the benchmark machine.
            cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Readers need no lock in WAL mode: a deferred BEGIN reads a consistent snapshot.
        read = connection.get_execution_options().get("agentlib_read", False)
        connection.exec_driver_sql("BEGIN" if read else "BEGIN IMMEDIATE")
