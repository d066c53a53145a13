"""The service's embedded database: SQLite in WAL mode inside the data directory.

Every process (HTTP server workers, job workers, the CLI) opens the same file. Each
thread gets its own connection (:func:`connect` caches one per thread and process),
in autocommit mode, so a transaction exists only where :func:`write` opens one:
``BEGIN IMMEDIATE`` takes the write lock up front, which is what makes a job claim
atomic and keeps readers on the WAL snapshot undisturbed. Writers queue before
that, on a lock per process and an ``flock`` across processes, which hand the turn
over at once (SQLite's busy handler would have each waiter poll with sleeps); the
busy timeout covers a process outside that queue.

``synchronous=NORMAL`` in WAL mode survives any process crash (a restart loses
nothing): a commit is in the WAL file, in the operating system's page cache, before
``COMMIT`` returns, and a SIGKILLed process's writes are not undone. Only an
operating-system crash or power loss can lose the last commits (those since the last
checkpoint's fsync, at most about a second); ``FULL`` would fsync the WAL on every
commit, two per job, for a guarantee the service does not promise.

A job is one row from submission to result (schema version 2): the stored result
(its manifest and inline BLOB, :mod:`.store`) goes into the job's own row, so
completing a job writes one table's pages, and ``seq`` is a plain ``INTEGER PRIMARY
KEY`` (jobs are never deleted, so SQLite's "largest rowid + 1" never reuses one;
``AUTOINCREMENT`` would add a write of ``sqlite_sequence`` to every submission).
Version-1 files are migrated in place by :meth:`Database.initialise`.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
from contextlib import contextmanager

__all__ = ["SCHEMA_VERSION", "Database", "process_write_lock"]

SCHEMA_VERSION = 2

#: Held by a thread of this process while it writes (and by an inline job while it
#: runs, see :func:`process_write_lock`). Re-entrant: a write may happen inside it.
_WRITE_LOCK = threading.RLock()


def _new_write_lock() -> None:
    global _WRITE_LOCK
    _WRITE_LOCK = threading.RLock()  # a forked child starts with nobody holding it


os.register_at_fork(after_in_child=_new_write_lock)


def process_write_lock() -> threading.RLock:
    """This process's write lock: one thread at a time takes SQLite's write lock.

    Threads of one process queue here (woken the moment the writer finishes) rather
    than in SQLite's lock (where each polls with sleeps). A thread that holds the
    interpreter for long stretches without releasing it (the emulator's compiled
    kernels) takes this lock too, so that no thread of its process sits on SQLite's
    write lock meanwhile, waiting for the interpreter while other processes wait for
    the database.
    """
    return _WRITE_LOCK

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS accounts (
    id INTEGER PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    tier TEXT NOT NULL,
    created_at REAL NOT NULL,
    approved_by TEXT
);
-- Keys are stored only as SHA-256 digests; the prefix is for the operator's listings.
CREATE TABLE IF NOT EXISTS api_keys (
    key_hash TEXT PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts(id),
    prefix TEXT NOT NULL,
    created_at REAL NOT NULL,
    revoked_at REAL
);
CREATE INDEX IF NOT EXISTS api_keys_account ON api_keys(account_id);
-- Sign-ups for a paid tier that the operator has not approved yet.
CREATE TABLE IF NOT EXISTS tier_requests (
    email TEXT PRIMARY KEY,
    tier TEXT NOT NULL,
    requested_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS networks (
    id TEXT PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts(id),
    document TEXT NOT NULL,
    seed INTEGER NOT NULL,
    total_neurons INTEGER NOT NULL,
    expected_synapses REAL NOT NULL,
    populations INTEGER NOT NULL,
    connections INTEGER NOT NULL,
    created_at REAL NOT NULL,
    idempotency_key TEXT
);
CREATE INDEX IF NOT EXISTS networks_account ON networks(account_id, created_at);
CREATE UNIQUE INDEX IF NOT EXISTS networks_idempotency
    ON networks(account_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
-- result_manifest and result_data: the stored arrays (see .store), null until completed.
-- Readers name their columns (see jobqueue.JOB_COLUMNS), so a job's BLOB is read only
-- by the endpoints that serve its arrays.
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    account_id INTEGER NOT NULL REFERENCES accounts(id),
    network_id TEXT NOT NULL REFERENCES networks(id),
    document TEXT NOT NULL,
    timesteps INTEGER NOT NULL,
    backend TEXT NOT NULL,
    status TEXT NOT NULL,
    runtime_limit REAL NOT NULL,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_expires REAL,
    progress REAL,
    error_message TEXT,
    compute_seconds REAL,
    result TEXT,
    provenance TEXT,
    idempotency_key TEXT,
    result_manifest TEXT,
    result_data BLOB
);
CREATE INDEX IF NOT EXISTS jobs_queue ON jobs(status, backend, seq);
CREATE INDEX IF NOT EXISTS jobs_account ON jobs(account_id, seq);
CREATE UNIQUE INDEX IF NOT EXISTS jobs_idempotency
    ON jobs(account_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
-- Accepted jobs per account and UTC day: the daily limit is checked against this row.
CREATE TABLE IF NOT EXISTS daily_usage (
    account_id INTEGER NOT NULL,
    day TEXT NOT NULL,
    jobs INTEGER NOT NULL,
    PRIMARY KEY (account_id, day)
);
-- Compute seconds per account and UTC month, added as jobs end (the bill's basis).
CREATE TABLE IF NOT EXISTS monthly_usage (
    account_id INTEGER NOT NULL,
    month TEXT NOT NULL,
    compute_seconds REAL NOT NULL,
    PRIMARY KEY (account_id, month)
);
-- Networks a worker is expanding (or has expanded) ahead of their first job (see
-- jobqueue.claim_warm): while the row lasts (expires), another worker serving the
-- job's backend leaves that network's jobs to it. A hint only: no job waits past
-- expires. Added without a version bump (older files gain it on their next start).
CREATE TABLE IF NOT EXISTS network_warm (
    network_id TEXT PRIMARY KEY,
    worker_id TEXT NOT NULL,
    backends TEXT NOT NULL,
    expires REAL NOT NULL
);
-- Job workers seen recently (what /health reports).
CREATE TABLE IF NOT EXISTS workers (
    id TEXT PRIMARY KEY,
    pid INTEGER NOT NULL,
    backends TEXT NOT NULL,
    started_at REAL NOT NULL,
    seen_at REAL NOT NULL
);
"""

#: Version 1 kept each result in a ``results`` table of its own: its rows move into
#: the jobs' new columns. (Version 1's ``AUTOINCREMENT`` on ``jobs.seq`` stays: harmless.)
_MIGRATE_1_TO_2 = """
ALTER TABLE jobs ADD COLUMN result_manifest TEXT;
ALTER TABLE jobs ADD COLUMN result_data BLOB;
UPDATE jobs SET result_manifest = r.manifest, result_data = r.data FROM results AS r WHERE r.job_id = jobs.id;
DROP TABLE results
"""


def _statements(script: str):
    """The statements of a script (comments dropped, so they may contain semicolons)."""
    code = "\n".join(line for line in script.splitlines() if not line.lstrip().startswith("--"))
    return [s.strip() for s in code.split(";") if s.strip()]


class Database:
    """The SQLite file of one data directory, with a connection per thread."""

    def __init__(self, path: str, *, busy_timeout_ms: int = 30_000):
        self.path = path
        self.busy_timeout_ms = busy_timeout_ms
        self._local = threading.local()
        self._writers_fd: int | None = None
        self._writers_pid: int | None = None
        self._shared: tuple[int, sqlite3.Connection] | None = None  # (pid, connection)
        #: give the CPU up just before queueing for the write lock: for a CPU-bound process
        #: (a job worker between runs). A transaction needs ~0.2 ms of CPU, but a process
        #: that has been computing for a while is the scheduler's first choice to preempt
        #: when someone wakes, and preempted while holding the write lock it keeps every
        #: writer waiting for its next slice (writes held 4-12 ms, ~1 in 5 completions,
        #: on 2 busy cores). Yielding first, it resumes with a fresh slice (Linux's
        #: EEVDF) and finishes the transaction within it: holds over 3 ms fell ~10x.
        self.yield_before_write = False

    def connect(self) -> sqlite3.Connection:
        """This thread's connection (opened on first use, reopened after a fork), or the
        shared one while it is lent to this thread (:meth:`lend`)."""
        if getattr(self._local, "lent", False):
            if self._shared is None or self._shared[0] != os.getpid():
                self._shared = (os.getpid(), self._open())
            return self._shared[1]
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            return conn
        conn = self._open()
        self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    def lend(self) -> None:
        """Let this thread use the process's shared connection, until :meth:`unlend`.

        For threads that take turns, one at a time (:class:`neurofab.server.app.Turns`):
        sharing one connection keeps its page cache and prepared statements warm, where a
        connection per thread would find its cache stale at every turn (SQLite drops a
        connection's cache whenever another connection has written). The caller
        guarantees that no two threads borrow it at once.
        """
        self._local.lent = True

    def unlend(self) -> None:
        self._local.lent = False

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=0)
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        # No checkpoint inside a request's COMMIT (it fsyncs, and would land on one unlucky
        # request); a background thread checkpoints instead (start_checkpointer).
        conn.execute("PRAGMA wal_autocheckpoint = 0")
        return conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            conn.close()
        self._local.conn = None

    def initialise(self) -> None:
        """Create the file, switch it to WAL and create the tables (idempotent)."""
        directory = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(directory, exist_ok=True)
        conn = self.connect()
        conn.execute("PRAGMA journal_mode = WAL")
        # executescript() commits on its own, so the schema goes in statement by statement,
        # all in one transaction: a migration is applied whole or not at all.
        with self.write() as c:
            row = None
            if c.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").fetchone():
                row = c.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            version = None if row is None else int(row["value"])  # None: a new file
            if version is not None and version > SCHEMA_VERSION:
                raise RuntimeError(
                    f"{self.path} has schema version {version}, newer than this neurofab's {SCHEMA_VERSION}"
                )
            if version == 1:
                for statement in _statements(_MIGRATE_1_TO_2):
                    c.execute(statement)
            for statement in _statements(_SCHEMA):
                c.execute(statement)
            c.execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (str(SCHEMA_VERSION),),
            )

    def _writers_file(self) -> int:
        """This process's descriptor of ``<database>.writers``, the processes' queue for writing."""
        if self._writers_fd is None or self._writers_pid != os.getpid():
            self._writers_fd = os.open(self.path + ".writers", os.O_RDWR | os.O_CREAT, 0o600)
            self._writers_pid = os.getpid()
        return self._writers_fd

    @contextmanager
    def write(self):
        """A write transaction: ``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on error).

        Writers queue first on this process's lock (:func:`process_write_lock`), then
        across processes on an ``flock`` of ``<database>.writers``: the kernel hands it
        to the next writer the moment the last one is done, where SQLite's own lock
        would have each waiter poll with sleeps. SQLite's lock is still taken (so a
        process that does not queue here, such as the ``sqlite3`` shell, stays safe).
        """
        conn = self.connect()
        if self.yield_before_write:
            os.sched_yield()  # see __init__: start the short hold on a fresh time slice
        with _WRITE_LOCK:
            fd = self._writers_file()
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                # Every writer of the service queued on the flock, so SQLite's lock is free
                # now but for an outside process (the sqlite3 shell), which the busy
                # timeout waits for.
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)

    @contextmanager
    def read(self):
        """A read transaction: several SELECTs that see one snapshot."""
        conn = self.connect()
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            conn.execute("COMMIT")

    def checkpoint(self) -> None:
        """Copy committed WAL pages into the database file, without blocking anyone."""
        self.connect().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()

    def start_checkpointer(self, interval: float = 1.0) -> threading.Thread:
        """Checkpoint every ``interval`` seconds from a daemon thread of this process."""

        def loop():
            while True:
                time.sleep(interval)
                try:
                    self.checkpoint()
                except sqlite3.Error:  # busy or locked: the next round will do it
                    pass

        thread = threading.Thread(target=loop, name="sqlite-checkpointer", daemon=True)
        thread.start()
        return thread

    def data_version(self) -> int:
        """Changes whenever another connection commits: a cheap "anything new?" check."""
        return self.connect().execute("PRAGMA data_version").fetchone()[0]
