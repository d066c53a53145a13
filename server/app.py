"""The Flask application factory and what every request shares.

``create_app(config=None)`` builds the app: the settings (:mod:`.config`), the database
(created and migrated on first use), the ``/v1`` API blueprint, the docs blueprint and
one JSON error handler, so every error body is ``{"detail": "..."}``. The shared state
lives in ``app.extensions["neurofab"]`` (a :class:`Service`).
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import socket
import sys
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from flask import Flask, Response, current_app
from werkzeug.exceptions import HTTPException

from neurofab.errors import ValidationError

from .config import Settings
from .doorbell import Doorbell
from .errors import ApiError

__all__ = [
    "create_app",
    "Service",
    "Turns",
    "TurnsMiddleware",
    "LowPriorityLane",
    "service",
    "json_response",
    "TURN_MAX_BODY",
]

#: A request body up to this size is light enough to be handled in its turn (:class:`Turns`).
TURN_MAX_BODY = 1 << 16

log = logging.getLogger("neurofab.server")


class Turns:
    """Light requests take turns: one at a time per web process, each from end to end.

    A web process serves many requests from a pool of threads, but Python runs one
    thread at a time (the interpreter lock). Left to that lock, threads switch every
    half millisecond (the WSGI module's switch interval): a thread inside a write
    transaction, which lets go of the interpreter in every SQLite call, waits for the
    other threads at each call while it holds the database's write lock, which every
    other process then waits for too; and each thread's own SQLite connection finds its
    page cache stale (another connection wrote since its last turn) and reads its pages
    again. Taking turns loses no parallelism (the interpreter lock allowed none), keeps
    every write transaction as short as its own work, and lets the turns share one
    connection (:meth:`.db.Database.lend`), whose cache and prepared statements stay warm:
    at 8 concurrent requests in one process, a quickstart job's CPU falls by about a
    fifth, to what one request at a time costs.

    :class:`TurnsMiddleware` gives a turn to the API's light requests (a job's
    submission with a body up to :data:`TURN_MAX_BODY`, with its inline run; a job's
    status; cancel; usage; health) after reading their bodies (a slow client must not
    hold the process). A long poll gives its turn up while it waits (:meth:`paused`).
    Heavy requests (networks, spikes, weights, rasters, docs, listings) do not take
    turns, so that none of them holds the process for long; they share the interpreter
    with the turns as before.
    """

    def __init__(self, db):
        self._lock = threading.Lock()
        self._mine = threading.local()
        self._db = db

    def held(self) -> bool:
        return getattr(self._mine, "held", False)

    def _take(self) -> None:
        self._lock.acquire()
        self._mine.held = True
        self._db.lend()

    def _give(self) -> None:
        self._db.unlend()
        self._mine.held = False
        self._lock.release()

    @contextmanager
    def turn(self):
        """Hold this process's turn for the block (nothing more if this thread holds it)."""
        if self.held():
            yield
            return
        self._take()
        try:
            yield
        finally:
            self._give()

    @contextmanager
    def paused(self):
        """Give the turn up for the block (a wait), if this thread holds it."""
        if not self.held():
            yield
            return
        self._give()
        try:
            yield
        finally:
            self._take()


#: ``(method, path pattern)`` of the light requests, which take turns (see :class:`Turns`)
_LIGHT = re.compile(r"(POST /v1/jobs|GET /v1/jobs/[^/]+|DELETE /v1/jobs/[^/]+|GET /v1/usage|GET /health)")


class TurnsMiddleware:
    """WSGI middleware: a light request (:data:`_LIGHT`) is handled in its process's turn.

    Its body (at most :data:`TURN_MAX_BODY` bytes, by ``Content-Length``) is read before
    the turn, and its response body is gathered in the turn (light responses are small
    JSON), so that the turn covers nothing but the request's own work.
    """

    def __init__(self, app, turns: Turns):
        self.app = app
        self.turns = turns

    def __call__(self, environ, start_response):
        if not _LIGHT.fullmatch(f"{environ.get('REQUEST_METHOD')} {environ.get('PATH_INFO')}"):
            return self.app(environ, start_response)
        length = environ.get("CONTENT_LENGTH") or "0"
        if not length.isdigit() or int(length) > TURN_MAX_BODY:
            return self.app(environ, start_response)  # large, chunked or odd: as a heavy request
        if int(length):
            environ["wsgi.input"] = io.BytesIO(environ["wsgi.input"].read(int(length)))
        with self.turns.turn():
            body = self.app(environ, start_response)
            try:
                return [b"".join(body)]
            finally:
                if hasattr(body, "close"):
                    body.close()


class LowPriorityLane:
    """Threads at a lower CPU priority than the job workers, for bulky request work.

    A large job submission (a stimulus list of 16K neuron ids is a 100 KB body) takes a few
    milliseconds of CPU to decode, check and store, and it usually arrives while a
    worker expands the network it names on both cores (the expansion starts as the
    network is created, see :mod:`.worker`): a burst on one core stalls the
    expansion's other thread at every join, and so costs the job about twice its own
    CPU time. In this lane the submission's work yields to the workers and runs in the
    gaps (the job is not needed before its network is ready anyway); on an idle
    machine it runs at full speed, since priority only orders who runs first.

    ``run(fn)`` calls ``fn()`` on one of the lane's threads and returns its result (or
    raises its exception). The threads lower their own priority as they start: a
    thread may always lower its priority, while raising it back needs privileges, so
    the lane keeps its own threads rather than lowering a request thread's. Off
    Linux (where a thread's priority cannot be set alone) ``fn`` runs in the caller.
    """

    #: How much lower (``nice`` steps) the lane's threads run than the process.
    NICENESS = 10

    def __init__(self, threads: int = 2):
        self.threads = threads
        self._pool = None
        self._lock = threading.Lock()

    @staticmethod
    def _lower_own_priority() -> None:
        tid = threading.get_native_id()
        os.setpriority(
            os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + LowPriorityLane.NICENESS)
        )

    def run(self, fn):
        if not sys.platform.startswith("linux"):
            return fn()
        if self._pool is None:
            with self._lock:  # made on first use: after the HTTP server's fork, in its process
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(
                        self.threads, thread_name_prefix="low-priority", initializer=self._lower_own_priority
                    )
        return self._pool.submit(fn).result()


class JobWatcher:
    """Wakes long-polling requests when their job ends.

    One thread per process (started while anyone waits) sleeps on the process's
    ``web`` doorbell (:mod:`.doorbell`), which whoever ends a job rings, and at least
    every ``interval`` seconds; on waking it checks ``PRAGMA data_version`` (which
    changes only when another connection commits) and, on a change, looks up every
    awaited job in one query. Waiting requests sleep on an event, so a short job is
    answered as soon as it ends and a long one costs nothing per waiting request.
    """

    TERMINAL = ("completed", "failed", "cancelled")

    def __init__(self, db, data_dir: str, interval: float = 0.25):
        self.db = db
        self.data_dir = data_dir
        self.interval = interval
        self._waiters: dict[str, list[threading.Event]] = {}
        self._lock = threading.Lock()
        self._running = False
        self._recheck = False
        self._doorbell = None

    def wait(self, job_id: str, timeout: float) -> None:
        """Return when ``job_id`` has ended, or after ``timeout`` seconds."""
        event = threading.Event()
        with self._lock:
            self._waiters.setdefault(job_id, []).append(event)
            # The job may have ended just before we registered: look again at once.
            self._recheck = True
            if self._doorbell is None:  # made after the HTTP server's fork, in the serving process
                self._doorbell = Doorbell(self.data_dir, "web")
            if not self._running:
                self._running = True
                threading.Thread(target=self._run, name="job-watcher", daemon=True).start()
        self._doorbell.ring()
        try:
            event.wait(timeout)
        finally:
            with self._lock:
                events = self._waiters.get(job_id, [])
                if event in events:
                    events.remove(event)
                if not events:
                    self._waiters.pop(job_id, None)

    def _run(self) -> None:
        version = None
        idle_since = None
        while True:
            with self._lock:
                ids = list(self._waiters)
                recheck, self._recheck = self._recheck, False
                if not ids:
                    idle_since = idle_since or time.monotonic()
                    if time.monotonic() - idle_since > 1.0:  # nobody waiting for a second: stop
                        self._running = False
                        return
            if ids:
                idle_since = None
                current = self.db.data_version()
                if recheck or current != version:
                    version = current
                    self._wake_finished(ids)
            self._doorbell.wait(self.interval)

    def _wake_finished(self, ids) -> None:
        finished = set()
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            rows = (
                self.db.connect()
                .execute(
                    f"SELECT id FROM jobs WHERE id IN ({','.join('?' * len(chunk))})"
                    " AND status IN ('completed', 'failed', 'cancelled')",
                    chunk,
                )
                .fetchall()
            )
            finished.update(r[0] for r in rows)
        with self._lock:
            for job_id in finished:
                for event in self._waiters.get(job_id, []):
                    event.set()


class Service:
    """Settings, database and caches of one app (one per HTTP server worker process)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.db = settings.database()
        self.db.initialise()
        self.db.start_checkpointer()
        self.watcher = JobWatcher(self.db, settings.data_dir)
        self.turns = Turns(self.db)
        # (account, network) -> (parsed network, expected synapses)
        self._networks: OrderedDict[tuple[int, str], tuple] = OrderedDict()
        self._lock = threading.Lock()
        self._inline = None
        self._inline_lock = threading.Lock()
        #: bulky request work (large job submissions), below the workers' priority
        self.low_priority = LowPriorityLane()

    @property
    def tiers(self):
        return self.settings.tiers

    @property
    def inline(self):
        """This process's :class:`.runner.JobRunner` for inline jobs (``None`` when disabled).

        Made on first use, after the HTTP server has forked, so that its heartbeat thread lives
        in the process that runs the jobs. Its owner id has the worker's form
        (``host:pid:web-...``), so operators and tests find the process by its pid.
        """
        if self._inline is None and self.settings.inline_max_cost > 0:
            with self._inline_lock:
                if self._inline is None:
                    from .runner import JobRunner

                    owner = f"{socket.gethostname()}:{os.getpid()}:web-{os.urandom(3).hex()}"
                    # Inline jobs are small by construction: a small expansion cache.
                    self._inline = JobRunner(
                        self.settings, self.db, owner, max_synapses=4_000_000, exclusive=True
                    )
        return self._inline

    def warm_up_inline(self) -> None:
        """Load the emulator's compiled kernels in the background, before the first inline job."""
        if self.settings.inline_max_cost > 0 and "emulator" in self.settings.backends:
            threading.Thread(
                target=lambda: self.inline.warm_up(["emulator"]), name="inline-warm-up", daemon=True
            ).start()

    def remember_network(self, account_id: int, network_id: str, network, synapses: float) -> None:
        """Cache a network just stored (its first job usually follows at once)."""
        with self._lock:
            self._networks[(account_id, network_id)] = (network, synapses)
            while len(self._networks) > 64:
                self._networks.popitem(last=False)

    def network_entry(self, account_id: int, network_id: str) -> tuple:
        """``(network, expected_synapses)`` of one of this account's networks (404 if none).

        Networks never change once stored, so the parse is cached (jobs on one network
        are the common case, and a large network takes long to parse).
        """
        from neurofab.network import parse_network

        key = (account_id, network_id)
        with self._lock:
            if key in self._networks:
                self._networks.move_to_end(key)
                return self._networks[key]
        row = (
            self.db.connect()
            .execute(
                "SELECT document, expected_synapses FROM networks WHERE id = ? AND account_id = ?",
                (network_id, account_id),
            )
            .fetchone()
        )
        if row is None:
            raise ApiError(404, f"network {network_id!r} not found")
        network = parse_network(json.loads(row["document"]))
        self.remember_network(account_id, network_id, network, row["expected_synapses"])
        return network, row["expected_synapses"]

    def network(self, account_id: int, network_id: str):
        """The parsed :class:`neurofab.network.Network` of one of this account's networks."""
        return self.network_entry(account_id, network_id)[0]


def service() -> Service:
    return current_app.extensions["neurofab"]


def json_response(body, status: int = 200, headers: dict | None = None) -> Response:
    text = body if isinstance(body, str) else json.dumps(body, separators=(",", ":"))
    return Response(text, status=status, headers=headers, mimetype="application/json")


def _error(status: int, detail: str, headers: dict | None = None) -> Response:
    return json_response({"detail": detail}, status, headers)


def create_app(config: dict | None = None) -> Flask:
    """The service as a WSGI app. ``config`` overrides settings (see :mod:`.config`)."""
    app = Flask(__name__, static_folder=None)
    settings = Settings.load(config)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False
    app.extensions["neurofab"] = Service(settings)
    app.extensions["neurofab"].warm_up_inline()
    app.wsgi_app = TurnsMiddleware(app.wsgi_app, app.extensions["neurofab"].turns)

    from .api import api
    from .docs import docs

    app.register_blueprint(api)
    app.register_blueprint(docs)

    @app.errorhandler(ApiError)
    def api_error(e: ApiError):
        return _error(e.status, e.detail, e.headers)

    @app.errorhandler(ValidationError)
    def validation_error(e: ValidationError):
        return _error(400, str(e))

    @app.errorhandler(HTTPException)
    def http_error(e: HTTPException):
        detail = {
            404: "not found: no such endpoint",
            405: f"method not allowed (allowed: {', '.join(sorted(e.valid_methods or []))})"
            if getattr(e, "valid_methods", None)
            else "method not allowed",
            413: f"request body too large: the limit is {settings.max_body_bytes} bytes",
        }.get(e.code, e.description or e.name)
        headers = {"Allow": ", ".join(e.valid_methods)} if getattr(e, "valid_methods", None) else None
        return _error(e.code or 500, detail, headers)

    @app.errorhandler(Exception)
    def internal_error(e: Exception):
        log.exception("unhandled error")
        return _error(500, f"internal server error ({type(e).__name__})")

    return app
