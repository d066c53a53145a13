"""The job table as a queue with leases.

A job is ``queued`` until a worker claims it with one atomic ``UPDATE ... RETURNING``
(the lowest ``seq`` among queued jobs of the backends that worker serves), which sets
``running``, the worker as ``lease_owner`` and ``lease_expires``. The worker extends
the lease while it runs (heartbeat). A job whose lease ran out belongs to a worker that
died: :func:`reap_expired` puts it back in the queue, or, after ``max_attempts`` claims,
fails it with a message. Every write that finishes a job is conditional on the lease
still being the writer's, so a slow worker that lost its lease, or a job cancelled in
the meantime, is never overwritten: each job completes exactly once.

After committing, the functions here ring the other processes' doorbells
(:mod:`.doorbell`): ``worker`` when a job was queued, ``web`` when one ended.

Statuses: ``queued -> running -> completed | failed | cancelled`` (a re-queued job goes
``running -> queued`` again; ``cancelled`` can also follow ``queued``).
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import time

from .accounts import seconds_to_next_utc_day, utc_day, utc_month
from .doorbell import ring
from .errors import ApiError

__all__ = [
    "TERMINAL",
    "JOB_COLUMNS",
    "new_job_id",
    "insert_job",
    "claim",
    "heartbeat",
    "report_progress",
    "complete",
    "fail",
    "release",
    "add_compute",
    "cancel",
    "reap_expired",
    "queue_counts",
    "touch_worker",
    "live_workers",
    "WARM_WINDOW",
    "WARM_MAX_SYNAPSES",
    "newest_network",
    "claim_warm",
    "warm_done",
    "drop_warm",
    "ring_workers",
]

TERMINAL = ("completed", "failed", "cancelled")

#: Every column of a job row but its stored arrays (``result_manifest``, ``result_data``),
#: which only the endpoints serving spikes, weights and rasters read: a status poll
#: should not pull a result's BLOB through SQLite's page cache.
JOB_COLUMNS = (
    "seq, id, account_id, network_id, document, timesteps, backend, status, runtime_limit, created_at,"
    " started_at, finished_at, attempts, lease_owner, lease_expires, progress, error_message,"
    " compute_seconds, result, provenance, idempotency_key"
)


def _ring(db, kind: str) -> None:
    ring(os.path.dirname(os.path.abspath(db.path)), kind)


def ring_workers(db) -> None:
    """Wake the idle job workers (a network was created: one prepares it, see :func:`claim_warm`)."""
    _ring(db, "worker")


def new_job_id() -> str:
    return "job_" + secrets.token_hex(12)


def insert_job(
    db,
    *,
    account_id: int,
    jobs_per_day: int | None,
    network_id: str,
    document: str,
    timesteps: int,
    backend: str,
    runtime_limit: float,
    idempotency_key: str | None = None,
    claimed_by: str | None = None,
    lease_seconds: float = 30.0,
    now: float | None = None,
) -> tuple[str, bool]:
    """Queue a job; returns ``(job_id, created)``.

    Counts it towards today's jobs and refuses it with 429 when the day's limit is
    reached (only accepted jobs count). With an ``idempotency_key`` the first job
    submitted under it is returned again (``created`` false) and nothing is counted.

    With ``claimed_by`` the job goes in already claimed by that owner, exactly as
    :func:`claim` would leave it (``running``, first attempt, a lease of
    ``lease_seconds``): the web process's inline path runs it at once, and if that
    process dies the lease runs out and a worker takes the job over. A replayed job
    (``created`` false) is never claimed here.
    """
    now = time.time() if now is None else now
    day = utc_day(now)
    job_id = new_job_id()
    # (status, lease_owner, lease_expires, attempts, started_at, progress)
    if claimed_by is None:
        state = ("queued", None, None, 0, None, None)
    else:  # what _claim_in sets
        state = ("running", claimed_by, now + lease_seconds, 1, now, 0.0)
    # Two statements on the common path, so the write lock is held briefly: the job goes
    # in first (a repeated Idempotency-Key inserts nothing), then the day's count goes up
    # and says whether the job fits; if not, the transaction is rolled back.
    with db.write() as conn:
        inserted = conn.execute(
            "INSERT INTO jobs (id, account_id, network_id, document, timesteps, backend, status,"
            " runtime_limit, created_at, idempotency_key, lease_owner, lease_expires, attempts, started_at,"
            " progress) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (account_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING",
            (
                job_id,
                account_id,
                network_id,
                document,
                timesteps,
                backend,
                state[0],
                runtime_limit,
                now,
                idempotency_key,
                *state[1:],
            ),
        ).rowcount
        if not inserted:
            row = conn.execute(
                "SELECT id FROM jobs WHERE account_id = ? AND idempotency_key = ?",
                (account_id, idempotency_key),
            ).fetchone()
            return row["id"], False
        used = conn.execute(
            "INSERT INTO daily_usage (account_id, day, jobs) VALUES (?, ?, 1)"
            " ON CONFLICT (account_id, day) DO UPDATE SET jobs = jobs + 1 RETURNING jobs",
            (account_id, day),
        ).fetchone()[0]
        if jobs_per_day is not None and used > jobs_per_day:
            wait = seconds_to_next_utc_day(now)
            raise ApiError(  # db.write rolls the job and the count back
                429,
                f"daily job limit reached: {used - 1} of {jobs_per_day} jobs today (UTC); "
                f"the limit resets in {wait} s, or upgrade your tier",
                {"Retry-After": str(wait)},
            )
    if claimed_by is None:
        _ring(db, "worker")
    return job_id, True


def claim(db, worker_id: str, backends, lease_seconds: float, now: float | None = None) -> sqlite3.Row | None:
    """Claim the oldest queued job of these backends, or ``None`` if there is none."""
    now = time.time() if now is None else now
    backends = list(backends)
    marks = ",".join("?" * len(backends))
    conn = db.connect()
    # A plain read first: an idle worker must not take the write lock every time it looks.
    if (
        conn.execute(
            f"SELECT 1 FROM jobs WHERE status = 'queued' AND backend IN ({marks}) LIMIT 1", backends
        ).fetchone()
        is None
    ):
        return None
    with db.write() as conn:
        return _claim_in(conn, worker_id, backends, lease_seconds, now)


def _claim_in(conn, worker_id: str, backends, lease_seconds: float, now: float) -> sqlite3.Row | None:
    """The claiming UPDATE, inside the caller's write transaction.

    A job whose network another worker is preparing (or has prepared and is idle with,
    see :func:`claim_warm`) and whose backend that worker serves is left to it while
    its ``network_warm`` row lasts. A claim ends the claimer's own such rows: busy now,
    it no longer waits for those networks' jobs.
    """
    backends = list(backends)
    marks = ",".join("?" * len(backends))
    row = conn.execute(
        "UPDATE jobs SET status = 'running', lease_owner = ?, lease_expires = ?, attempts = attempts + 1,"
        " started_at = ?, progress = 0.0"
        " WHERE seq = (SELECT q.seq FROM jobs AS q WHERE q.status = 'queued' AND q.backend IN"
        f" ({marks}) AND NOT EXISTS (SELECT 1 FROM network_warm AS w WHERE w.network_id = q.network_id"
        " AND w.worker_id != ? AND w.expires > ?"
        " AND instr(',' || w.backends || ',', ',' || q.backend || ',') > 0)"
        f" ORDER BY q.seq LIMIT 1) AND status = 'queued' RETURNING {JOB_COLUMNS}",
        (worker_id, now + lease_seconds, now, *backends, worker_id, now),
    ).fetchone()
    if row is not None:
        conn.execute("DELETE FROM network_warm WHERE worker_id = ?", (worker_id,))
    return row


#: A network created this recently (seconds) is worth preparing ahead of its first job.
WARM_WINDOW = 30.0
#: Networks up to this many (expected) synapses are prepared ahead; bigger ones would
#: crowd a worker's network cache out for a job that may never come.
WARM_MAX_SYNAPSES = 16_000_000


def newest_network(db) -> int:
    """The newest network's rowid (0 if none): where a starting worker's look-out begins."""
    return db.connect().execute("SELECT coalesce(max(rowid), 0) FROM networks").fetchone()[0]


def claim_warm(
    db,
    worker_id: str,
    backends,
    after: int,
    lease_seconds: float,
    now: float | None = None,
    skip=frozenset(),
) -> tuple[str | None, int]:
    """Claim a network created since rowid ``after`` to prepare ahead of its first job.

    Returns ``(network_id or None, rowid to look after next time)``. Only one worker
    claims a network (``network_warm``'s key); its row, until ``now + lease_seconds``,
    asks the other workers to leave the network's jobs to it (:func:`_claim_in`), so
    the job finds the network expanded. Should the claimer die, the row runs out like
    a lease, and the job runs anyway: the preparation is a hint, never a dependency.
    Networks older than :data:`WARM_WINDOW` or larger than :data:`WARM_MAX_SYNAPSES`
    are passed over, and so are ``skip`` (the networks the worker has ready already).
    """
    now = time.time() if now is None else now
    rows = (
        db.connect()
        .execute(
            "SELECT rowid, id, created_at, expected_synapses FROM networks WHERE rowid > ? ORDER BY rowid",
            (after,),
        )
        .fetchall()
    )
    candidates = [
        r
        for r in rows
        if r["created_at"] >= now - WARM_WINDOW
        and r["expected_synapses"] <= WARM_MAX_SYNAPSES
        and r["id"] not in skip
    ]
    if not candidates:
        return None, rows[-1]["rowid"] if rows else after
    with db.write() as conn:
        for r in candidates:
            if conn.execute(
                "INSERT INTO network_warm (network_id, worker_id, backends, expires) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (network_id) DO NOTHING",
                (r["id"], worker_id, ",".join(backends), now + lease_seconds),
            ).rowcount:
                return r["id"], r["rowid"]
    return None, rows[-1]["rowid"]


def warm_done(
    db, network_id: str, worker_id: str, lease_seconds: float, claim_next=None
) -> sqlite3.Row | None:
    """The network is prepared: keep its jobs for this (now idle) worker a lease longer.

    With ``claim_next`` (the worker's backends) the same transaction claims the worker's
    next job, as :func:`claim` would (usually the network's first job, queued while it
    was being prepared), and returns it.
    """
    now = time.time()
    with db.write() as conn:
        conn.execute(
            "UPDATE network_warm SET expires = ? WHERE network_id = ? AND worker_id = ?",
            (now + lease_seconds, network_id, worker_id),
        )
        if claim_next:
            return _claim_in(conn, worker_id, claim_next, lease_seconds, now)
    return None


def drop_warm(db, worker_id: str, network_id: str | None = None) -> None:
    """Let any worker take the network's jobs at once (the preparation failed), or every
    network's that ``worker_id`` prepared (``network_id`` ``None``: it is stopping)."""
    with db.write() as conn:
        if network_id is None:
            conn.execute("DELETE FROM network_warm WHERE worker_id = ?", (worker_id,))
        else:
            conn.execute(
                "DELETE FROM network_warm WHERE network_id = ? AND worker_id = ?", (network_id, worker_id)
            )


def heartbeat(db, job_id: str, worker_id: str, lease_seconds: float) -> bool:
    """Extend the lease; false when the job is no longer this worker's running job."""
    with db.write() as conn:
        return (
            conn.execute(
                "UPDATE jobs SET lease_expires = ? WHERE id = ? AND lease_owner = ? AND status = 'running'",
                (time.time() + lease_seconds, job_id, worker_id),
            ).rowcount
            == 1
        )


def report_progress(db, job_id: str, worker_id: str, progress: float) -> str | None:
    """Store progress; returns the job's status (``None`` if the lease is gone)."""
    with db.write() as conn:
        row = conn.execute(
            "UPDATE jobs SET progress = ? WHERE id = ? AND lease_owner = ? RETURNING status",
            (progress, job_id, worker_id),
        ).fetchone()
    return None if row is None else row["status"]


def _bill(conn, job_id: str, compute_seconds: float | None, now: float) -> None:
    """Add a job's compute to its account's month (what /v1/usage reports)."""
    if not compute_seconds:
        return
    conn.execute(
        "INSERT INTO monthly_usage (account_id, month, compute_seconds)"
        " SELECT account_id, ?, ? FROM jobs WHERE id = ?"
        " ON CONFLICT (account_id, month)"
        " DO UPDATE SET compute_seconds = compute_seconds + excluded.compute_seconds",
        (utc_month(now), compute_seconds, job_id),
    )


def complete(
    db,
    job_id: str,
    worker_id: str,
    *,
    result_json: str,
    compute_seconds: float,
    provenance_json: str,
    manifest: str,
    blob: bytes | None,
    claim_next=None,
    lease_seconds: float = 30.0,
) -> tuple[bool, sqlite3.Row | None]:
    """Store the result and mark the job completed, if it is still this worker's.

    The summary, provenance and stored arrays (``manifest`` and the inline ``blob``, see
    :mod:`.store`) go into the job's row in the one UPDATE that completes it. Returns
    ``(completed, next_job)``. With ``claim_next`` (the worker's backends) the
    same transaction also claims the worker's next job, as :func:`claim` would: a busy
    worker then takes the write lock once per job instead of twice.
    """
    now = time.time()
    next_job = None
    with db.write() as conn:
        done = (
            conn.execute(
                "UPDATE jobs SET status = 'completed', finished_at = ?, result = ?, compute_seconds = ?,"
                " provenance = ?, progress = 1.0, lease_expires = NULL, result_manifest = ?, result_data = ?"
                " WHERE id = ? AND lease_owner = ? AND status = 'running'",
                (now, result_json, compute_seconds, provenance_json, manifest, blob, job_id, worker_id),
            ).rowcount
            == 1
        )
        if done:
            _bill(conn, job_id, compute_seconds, now)
        if claim_next:
            next_job = _claim_in(conn, worker_id, claim_next, lease_seconds, now)
    if done:
        _ring(db, "web")
    return done, next_job


def fail(db, job_id: str, worker_id: str, message: str, compute_seconds: float | None) -> bool:
    now = time.time()
    with db.write() as conn:
        done = (
            conn.execute(
                "UPDATE jobs SET status = 'failed', finished_at = ?, error_message = ?, compute_seconds = ?,"
                " lease_expires = NULL WHERE id = ? AND lease_owner = ? AND status = 'running'",
                (now, message, compute_seconds, job_id, worker_id),
            ).rowcount
            == 1
        )
        if done:
            _bill(conn, job_id, compute_seconds, now)
    if done:
        _ring(db, "web")
    return done


def release(db, job_id: str, worker_id: str) -> bool:
    """Give a running job back to the queue (the worker is shutting down); not an attempt."""
    with db.write() as conn:
        released = (
            conn.execute(
                "UPDATE jobs SET status = 'queued', lease_owner = NULL, lease_expires = NULL,"
                " progress = NULL, started_at = NULL, attempts = attempts - 1"
                " WHERE id = ? AND lease_owner = ? AND status = 'running'",
                (job_id, worker_id),
            ).rowcount
            == 1
        )
    if released:
        _ring(db, "worker")
    return released


def add_compute(db, job_id: str, worker_id: str, compute_seconds: float) -> None:
    """Bill the compute a cancelled job used before its worker noticed."""
    with db.write() as conn:
        if conn.execute(
            "UPDATE jobs SET compute_seconds = coalesce(compute_seconds, 0) + ?"
            " WHERE id = ? AND lease_owner = ?",
            (compute_seconds, job_id, worker_id),
        ).rowcount:
            _bill(conn, job_id, compute_seconds, time.time())


def cancel(db, account_id: int, job_id: str) -> str | None:
    """Cancel a queued or running job; returns its status afterwards (``None``: no such job)."""
    with db.write() as conn:
        row = conn.execute(
            "UPDATE jobs SET status = 'cancelled', finished_at = ?, progress = NULL"
            " WHERE id = ? AND account_id = ? AND status IN ('queued', 'running') RETURNING status",
            (time.time(), job_id, account_id),
        ).fetchone()
        cancelled = row is not None
        if not cancelled:
            row = conn.execute(
                "SELECT status FROM jobs WHERE id = ? AND account_id = ?", (job_id, account_id)
            ).fetchone()
    if cancelled:
        _ring(db, "web")
    return None if row is None else row["status"]


def reap_expired(db, max_attempts: int, now: float | None = None) -> tuple[int, int]:
    """Re-queue running jobs whose lease ran out; fail those out of attempts.

    Returns ``(requeued, failed)``.
    """
    now = time.time() if now is None else now
    with db.write() as conn:
        failed = conn.execute(
            "UPDATE jobs SET status = 'failed', finished_at = ?, lease_expires = NULL,"
            " error_message = 'the worker running this job stopped responding ' || attempts ||"
            " ' times (its lease expired); giving up after ' || attempts || ' attempts'"
            " WHERE status = 'running' AND lease_expires < ? AND attempts >= ?",
            (now, now, max_attempts),
        ).rowcount
        requeued = conn.execute(
            "UPDATE jobs SET status = 'queued', lease_owner = NULL, lease_expires = NULL, progress = NULL"
            " WHERE status = 'running' AND lease_expires < ?",
            (now,),
        ).rowcount
        conn.execute("DELETE FROM network_warm WHERE expires < ?", (now,))
    if requeued:
        _ring(db, "worker")
    if failed:
        _ring(db, "web")
    return requeued, failed


def queue_counts(db) -> dict:
    rows = (
        db.connect()
        .execute(
            "SELECT status, count(*) AS n FROM jobs WHERE status IN ('queued', 'running') GROUP BY status"
        )
        .fetchall()
    )
    counts = {"queued": 0, "running": 0}
    counts.update({r["status"]: r["n"] for r in rows})
    return counts


def touch_worker(db, worker_id: str, pid: int, backends, now: float | None = None) -> None:
    """Record that a worker is alive (what ``/health`` counts)."""
    now = time.time() if now is None else now
    with db.write() as conn:
        conn.execute(
            "INSERT INTO workers (id, pid, backends, started_at, seen_at) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at",
            (worker_id, pid, ",".join(backends), now, now),
        )
        # Forget workers gone for a day, so the table stays small.
        conn.execute("DELETE FROM workers WHERE seen_at < ?", (now - 86400,))


def live_workers(db, within: float, now: float | None = None) -> list[dict]:
    now = time.time() if now is None else now
    rows = (
        db.connect()
        .execute(
            "SELECT id, pid, backends, started_at, seen_at FROM workers"
            " WHERE seen_at >= ? ORDER BY started_at",
            (now - within,),
        )
        .fetchall()
    )
    return [dict(r) for r in rows]
