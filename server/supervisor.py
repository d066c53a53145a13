"""``neurofab serve`` and ``neurofab worker``: one process that runs the others.

The supervisor prepares the data directory (database created and migrated once,
before any child starts), then starts

- granian (``serve`` only), the production WSGI server: HTTP handled in Rust, the app
  called on a pool of Python threads per process so long polls do not hold a process
  each (against gunicorn's threaded workers, a small inline job's web-process CPU falls
  from ~2.3 ms to ~1.5 ms), and
- N job workers (``python -m neurofab.server.worker``),

restarts a job worker that dies (a job it was running is re-queued when its lease
expires, see :mod:`.jobqueue`), and on SIGTERM or SIGINT stops everything: workers hand
their running jobs back to the queue, granian finishes its requests. If granian
itself exits, the supervisor stops the workers and exits with its status.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

from .config import Settings

__all__ = ["Supervisor", "SupervisorOptions", "process_role"]

log = logging.getLogger("neurofab.server.supervisor")


def process_role(cmdline: str) -> str:
    """What one of the service's processes is, from its command line: ``http`` (the WSGI
    server's, granian or gunicorn), ``worker`` (a job worker) or ``supervisor``."""
    if "granian" in cmdline or "gunicorn" in cmdline:
        return "http"
    return "worker" if "server.worker" in cmdline else "supervisor"


@dataclass
class SupervisorOptions:
    data_dir: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    serve_http: bool = True
    http_workers: int = 2
    threads: int = 32
    job_workers: int = 2
    backends: list[str] = field(default_factory=list)
    backend_modules: list[str] = field(default_factory=list)
    access_log: bool = False
    stop_timeout: float = 30.0


class Supervisor:
    def __init__(self, options: SupervisorOptions):
        self.options = options
        self.settings = Settings.load({"DATA_DIR": options.data_dir})
        self.env = dict(os.environ, NEUROFAB_DATA=self.settings.data_dir)
        if options.backends:  # the web app routes jobs only to backends that have workers
            self.env["NEUROFAB_BACKENDS"] = ",".join(options.backends)
        self.http: subprocess.Popen | None = None
        self.workers: dict[int, subprocess.Popen] = {}
        self._restarts: dict[int, list[float]] = {}
        self._stopping = False

    # -- children ------------------------------------------------------------------------

    def _worker_command(self) -> list[str]:
        command = [sys.executable, "-m", "neurofab.server.worker", "--data", self.settings.data_dir]
        for backend in self.options.backends:
            command += ["--backend", backend]
        for module in self.options.backend_modules:
            command += ["--backend-module", module]
        return command

    def _http_command(self) -> list[str]:
        o = self.options
        command = [
            sys.executable,
            "-m",
            "granian",
            "--interface",
            "wsgi",
            "--host",
            o.host,
            "--port",
            str(o.port),
            "--workers",
            str(o.http_workers),
            # WSGI calls run on this many Python threads per process; a long poll (up to
            # 30 s) or a streamed body holds one, so there must be more than concurrent
            # long polls. Requests beyond them wait in Rust, costing no Python thread.
            "--blocking-threads",
            str(o.threads),
            "--backpressure",
            str(o.threads),
            "--http",
            "1",
            "--no-ws",
            # A SIGKILLed worker (its inline job goes to a job worker) is replaced.
            "--respawn-failed-workers",
            # On SIGTERM, requests in flight (long polls) get this long to finish.
            "--workers-kill-timeout",
            str(int(o.stop_timeout)),
            "--log-level",
            "warning",
        ]
        command += ["--access-log"] if o.access_log else ["--no-access-log"]
        return command + ["neurofab.server.wsgi:app"]

    def _start_worker(self, slot: int) -> None:
        process = subprocess.Popen(self._worker_command(), env=self.env)
        self.workers[slot] = process
        log.info("job worker %d started (pid %d)", slot, process.pid)

    def start(self) -> None:
        self.settings.database().initialise()
        if self.options.serve_http:
            self.http = subprocess.Popen(self._http_command(), env=self.env)
            log.info(
                "granian started (pid %d) on %s:%d", self.http.pid, self.options.host, self.options.port
            )
        for slot in range(self.options.job_workers):
            self._start_worker(slot)

    # -- the loop --------------------------------------------------------------------------

    def _on_signal(self, signum, frame) -> None:
        self._stopping = True

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        self.start()
        status = 0
        try:
            while not self._stopping:
                if self.http is not None and self.http.poll() is not None:
                    status = self.http.returncode or 1
                    log.error("granian exited with status %s; stopping", self.http.returncode)
                    break
                for slot, process in list(self.workers.items()):
                    if process.poll() is not None:
                        self._restart(slot, process.returncode)
                time.sleep(0.2)
        finally:
            self.stop()
        return status

    def _restart(self, slot: int, returncode: int) -> None:
        now = time.monotonic()
        recent = [t for t in self._restarts.get(slot, []) if now - t < 60] + [now]
        self._restarts[slot] = recent
        if len(recent) > 5:  # crash-looping: wait rather than spin
            if now - recent[-2] < 10:
                return
        log.warning("job worker %d exited with status %s; restarting", slot, returncode)
        self._start_worker(slot)

    def stop(self) -> None:
        children = [p for p in [self.http, *self.workers.values()] if p is not None and p.poll() is None]
        for process in children:
            process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.options.stop_timeout
        for process in children:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.error("pid %d did not stop in time; killing it", process.pid)
                process.kill()
                process.wait()
