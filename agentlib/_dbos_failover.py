"""Which DBOS workers are alive, and recovery of the runs of those that are not.

DBOS tags each workflow with the executor id of the process running it, and a process recovers
at launch only the pending workflows tagged with its own id: without DBOS Conductor, nothing
moves a dead worker's workflows to a live one. This module is that missing piece, for workers
that share one PostgreSQL database and nothing else:

- each worker holds a session-level PostgreSQL advisory lock named after its executor id for
  as long as it lives, on a connection of its own, and lists itself in a small table;
- PostgreSQL releases the lock the moment the worker's connection ends (the process exited or
  was killed: the kernel closes its socket; a lost machine: when the session's TCP keepalive,
  set to about 25 s, gives up);
- every worker periodically tries the locks of the other listed executors: a lock it can take
  belongs to a dead worker, whose pending workflows it hands back to their queue
  (`DBOS.resume_workflow`) while holding that lock, so only one worker recovers them and a
  restarted worker with the same id waits until that is done.

The detector has no timeout to tune and cannot mistake a slow worker for a dead one. If a
worker is declared dead while still running (its connection was cut but the process lives),
DBOS's ownership check fences it: its next checkpoint fails, and the workflow continues
elsewhere from its last checkpoint.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from agentlib._optional import optional_imports
from agentlib.errors import ConfigurationError

with optional_imports("durable", feature="agentlib.durable"):
    import sqlalchemy as sa
    from dbos import DBOS

__all__ = ["Liveness", "engine_url"]

logger = logging.getLogger(__name__)

TABLE = "agentlib_dbos_executors"
"""The workers that hold (or held) a liveness lock, in the DBOS system database."""

_CREATE = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    executor_id text PRIMARY KEY,
    application_name text NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now()
)
"""
# hashtextextended: a 64-bit key from the id; the prefix keeps clear of other advisory locks.
_KEY = "hashtextextended('agentlib.dbos:' || :executor_id, 0)"


def engine_url(url: str) -> str:
    """The SQLAlchemy form of a DBOS system database URL (psycopg 3, as DBOS itself uses)."""
    parsed = sa.make_url(url)
    if not parsed.drivername.startswith("postgresql"):
        raise ConfigurationError(
            f"distributed runs need a PostgreSQL system database, not {parsed.drivername!r}: "
            "a SQLite file cannot be shared by workers; set system_database_url to "
            "postgresql://user:password@host:port/database"
        )
    return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


@dataclass
class Liveness:
    """One worker's liveness lock, and the sweep that recovers dead workers' runs.

    Args:
        url: The DBOS system database (PostgreSQL).
        executor_id: This worker's DBOS executor id, unique among live workers.
        application_name: The DBOS application; only its executors are swept.
    """

    url: str
    executor_id: str
    application_name: str
    _engine: sa.Engine | None = field(default=None, init=False, repr=False)
    _connection: sa.Connection | None = field(default=None, init=False, repr=False)
    _stop: threading.Event = field(default_factory=threading.Event, init=False, repr=False)
    _thread: threading.Thread | None = field(default=None, init=False, repr=False)

    def hold(self, *, timeout: float = 30.0) -> None:
        """Take this worker's lock, waiting while a recovery of the same id is in progress.

        Raises:
            ConfigurationError: A live worker already holds the id after `timeout` seconds.
        """
        # Two connections: the lock's (idle for the worker's life) and the sweep's.
        self._engine = sa.create_engine(
            engine_url(self.url), pool_size=1, max_overflow=0, isolation_level="AUTOCOMMIT"
        )
        self._connection = sa.create_engine(
            engine_url(self.url), poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT"
        ).connect()
        # A lost machine sends no FIN: the server's TCP keepalive on this session drops the
        # connection, and so the lock, after about 10 + 3 x 5 s of silence (not 2 hours).
        for setting, value in (("idle", 10), ("interval", 5), ("count", 3)):
            self._connection.execute(sa.text(f"SET tcp_keepalives_{setting} = {value}"))
        self._connection.execute(sa.text(_CREATE))
        deadline = time.monotonic() + timeout
        while not self._try_lock(self._connection, self.executor_id):
            if time.monotonic() > deadline:
                self.release()
                raise ConfigurationError(
                    f"executor id {self.executor_id!r} is held by a live worker; give each "
                    "worker its own executor_id (or DBOS__VMID), or leave both unset"
                )
            time.sleep(0.2)
        self._connection.execute(
            sa.text(
                f"INSERT INTO {TABLE} (executor_id, application_name) "
                "VALUES (:executor_id, :application_name) ON CONFLICT (executor_id) DO NOTHING"
            ),
            {"executor_id": self.executor_id, "application_name": self.application_name},
        )

    def watch(self, interval: float) -> None:
        """Sweep for dead workers every `interval` seconds in a background thread."""
        self._thread = threading.Thread(
            target=self._loop, args=(interval,), name="agentlib-dbos-failover", daemon=True
        )
        self._thread.start()

    def release(self) -> None:
        """Stop sweeping and let the lock go (another worker may then recover this id's runs)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._connection is not None:
            self._connection.close()
            self._connection.engine.dispose()
        if self._engine is not None:
            self._engine.dispose()

    def sweep(self) -> list[str]:
        """Recover the pending runs of every listed executor whose lock is free.

        Returns:
            The ids of the workflows handed back to their queues.
        """
        assert self._engine is not None, "hold() first"
        recovered: list[str] = []
        with self._engine.connect() as connection:
            others = connection.execute(
                sa.text(
                    f"SELECT executor_id FROM {TABLE} "
                    "WHERE application_name = :application_name AND executor_id <> :me"
                ),
                {"application_name": self.application_name, "me": self.executor_id},
            ).scalars()
            for executor_id in list(others):
                if not self._try_lock(connection, executor_id):
                    continue  # alive, or another worker is recovering it right now
                try:
                    recovered += self._recover(connection, executor_id)
                finally:
                    connection.execute(
                        sa.text(f"SELECT pg_advisory_unlock({_KEY})"),
                        {"executor_id": executor_id},
                    )
        return recovered

    def _recover(self, connection: sa.Connection, executor_id: str) -> list[str]:
        # Only this application version's runs: replaying a run on other code is unsafe, so
        # runs of another version wait for a worker of that version (DBOS's own rule).
        pending = DBOS.list_workflows(
            status="PENDING",
            executor_id=executor_id,
            app_version=DBOS.application_version,
            load_input=False,
            load_output=False,
        )
        for status in pending:
            # Under the dead id's lock, so no other worker resumes it between list and resume.
            DBOS.resume_workflow(status.workflow_id, queue_name=status.queue_name)
        left = DBOS.list_workflows(
            status="PENDING", executor_id=executor_id, load_input=False, load_output=False
        )
        if not left:  # nothing more to recover from this id: forget it
            connection.execute(
                sa.text(f"DELETE FROM {TABLE} WHERE executor_id = :executor_id"),
                {"executor_id": executor_id},
            )
        if pending:
            logger.warning(
                "worker %s is gone; %d run(s) handed back to their queue",
                executor_id,
                len(pending),
            )
        return [status.workflow_id for status in pending]

    def _loop(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                self.sweep()
            except Exception:  # the sweep must outlive a lost connection; it retries next time
                logger.exception("sweeping for dead DBOS workers failed")

    @staticmethod
    def _try_lock(connection: sa.Connection, executor_id: str) -> bool:
        taken = connection.execute(
            sa.text(f"SELECT pg_try_advisory_lock({_KEY})"), {"executor_id": executor_id}
        ).scalar()
        return bool(taken)
