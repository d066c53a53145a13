"""Job workers: claim a queued job, run it on its backend, store the result.

One worker process runs one job at a time; ``neurofab worker --workers N`` (and
``neurofab serve``) run N of them under a supervisor. While a job runs, a heartbeat
thread extends its lease, and the backend's progress callback stores the progress and
stops the run (by raising) when the job was cancelled, when it outran its tier's
runtime limit, or when the worker is shutting down (the job then goes back to the
queue, not counted as an attempt). A worker also re-queues jobs whose worker died
(their lease expired) and records that it is alive. An idle worker sleeps on its
doorbell (:mod:`.doorbell`), which a submission rings, instead of polling.

A network's creation rings the doorbell too: one idle worker claims the new network
(:func:`.jobqueue.claim_warm`) and expands it, with its backends' per-network setup
(:attr:`.backends.Backend.prepare`), while the client is still sending the first job;
that job is left to this worker (the other workers skip it while the claim lasts), so
it finds its network ready. If the worker dies meanwhile the claim runs out like a
lease and any worker runs the job, expanding the network itself.

Run one worker in the foreground with ``python -m neurofab.server.worker --data DIR``.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import threading
import time

from . import jobqueue
from .backends import get_backend, load_backend_modules
from .config import Settings
from .doorbell import Doorbell
from .runner import PROGRESS_INTERVAL, JobRunner, NetworkCache, stored_job

__all__ = [
    "Worker",
    "NetworkCache",
    "stored_job",
    "PROGRESS_INTERVAL",
    "keep_freed_memory",
    "WORKER_CACHE_SYNAPSES",
    "main",
]

log = logging.getLogger("neurofab.server.worker")


class Worker:
    """One job worker. ``run()`` loops until ``stop`` is set; ``run_one()`` runs one job."""

    def __init__(
        self,
        settings: Settings,
        *,
        backends=None,
        worker_id: str | None = None,
        poll_interval: float = 0.25,
        housekeeping_interval: float | None = None,
    ):
        self.settings = settings
        self.db = settings.database()
        # a worker computes between its writes: see Database.yield_before_write
        self.db.yield_before_write = True
        self.backends = tuple(backends or settings.backends)
        for name in self.backends:
            get_backend(name)  # fail at start, not at the first job, on an unknown backend
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"
        #: the longest a job queued without a ring (another machine's) waits to be seen
        self.poll_interval = poll_interval
        self.housekeeping_interval = housekeeping_interval or max(0.2, min(5.0, settings.lease_seconds / 4))
        self.stop = threading.Event()
        self.runner = JobRunner(
            settings, self.db, self.worker_id, stop=self.stop, max_synapses=WORKER_CACHE_SYNAPSES
        )
        self.networks = self.runner.networks
        self._next_housekeeping = 0.0
        #: networks created after this rowid are candidates for warm_one
        self._warm_after = jobqueue.newest_network(self.db)

    # -- the loop ---------------------------------------------------------------------

    def run(self) -> None:
        log.info(
            "worker %s serving %s from %s", self.worker_id, ",".join(self.backends), self.settings.data_dir
        )
        self.db.start_checkpointer()
        self.doorbell = Doorbell(self.settings.data_dir, "worker")
        last_version = None
        try:
            while not self.stop.is_set():
                if self.housekeeping():
                    # data_version reflects other connections' commits only: after our own
                    # housekeeping (which may have re-queued jobs), look at the queue anyway.
                    last_version = None
                version = self.db.data_version()
                if version != last_version:
                    last_version = version
                    while not self.stop.is_set() and self.run_one():
                        self.housekeeping()
                    if not self.stop.is_set() and self.warm_one():
                        # a job may have been queued (and left to us) meanwhile: look again
                        last_version = None
                    continue
                # Sleep until a submission rings (or housekeeping is due, or the fallback
                # look at the queue for submitters that cannot ring, such as another machine).
                due = self._next_housekeeping - time.monotonic()
                self.doorbell.wait(max(0.0, min(self.poll_interval, due)))
        finally:
            self.doorbell.close()
            try:  # stopping: this worker's prepared networks' jobs are anybody's now
                jobqueue.drop_warm(self.db, self.worker_id)
            except Exception:
                log.exception("could not drop this worker's network claims")

    def wake(self) -> None:
        """Interrupt the loop's sleep (after setting ``stop``, from a signal handler)."""
        doorbell = getattr(self, "doorbell", None)
        if doorbell is not None:
            doorbell.ring()

    def housekeeping(self, force: bool = False) -> bool:
        """Now and then: say we are alive and re-queue jobs of dead workers.

        Returns true when it ran (the queue may have changed).
        """
        now = time.monotonic()
        if not force and now < self._next_housekeeping:
            return False
        self._next_housekeeping = now + self.housekeeping_interval
        try:
            jobqueue.touch_worker(self.db, self.worker_id, os.getpid(), self.backends)
            requeued, failed = jobqueue.reap_expired(self.db, self.settings.max_attempts)
            if requeued or failed:
                log.warning(
                    "re-queued %d job(s) and failed %d whose worker stopped responding", requeued, failed
                )
        except Exception:
            log.exception("housekeeping failed")
        return True

    def run_one(self) -> bool:
        """Claim and run jobs while there are any; false when the queue had none for this worker."""
        row = jobqueue.claim(self.db, self.worker_id, self.backends, self.settings.lease_seconds)
        if row is None:
            return False
        self._run_claimed(row)
        return True

    def _run_claimed(self, row) -> None:
        """Run a claimed job, and the next ones claimed as each completes."""
        while row is not None:
            row = self.execute(row)  # the next job, claimed as this one completed
            if row is not None and self.stop.is_set():
                jobqueue.release(self.db, row["id"], self.worker_id)
                row = None
            self.housekeeping()

    def warm_one(self) -> bool:
        """Expand and prepare one newly created network ahead of its first job, then run
        the worker's next job if one is queued (usually the network's first).

        True when it claimed a network (prepared, or failed and released). Only an
        optimisation: a job never depends on it (see the module's docstring).
        """
        network_id, self._warm_after = jobqueue.claim_warm(
            self.db,
            self.worker_id,
            self.backends,
            self._warm_after,
            self.settings.lease_seconds,
            skip=self.networks.cached(),
        )
        if network_id is None:
            return False
        try:
            _, netlist, _ = self.networks.get(network_id)
            for name in self.backends:
                prepare = get_backend(name).prepare
                if prepare is not None:
                    prepare(netlist)
        except Exception:
            # a job on it will fail with the reason (or run, if this was transient)
            log.exception("preparing network %s ahead of its jobs failed", network_id)
            jobqueue.drop_warm(self.db, self.worker_id, network_id)
            return True
        # the network's first job has usually been queued meanwhile: claim it at once
        row = jobqueue.warm_done(
            self.db,
            network_id,
            self.worker_id,
            self.settings.lease_seconds,
            claim_next=None if self.stop.is_set() else self.backends,
        )
        self._run_claimed(row)
        return True

    # -- one job ----------------------------------------------------------------------

    def execute(self, row):
        """Run one claimed job and record how it ended; returns the next claimed job, if any."""
        return self.runner.execute(row, claim_next=self.backends)

    def warm_up(self) -> None:
        """Run a tiny job so the first real one does not pay for JIT compilation."""
        self.runner.warm_up(self.backends)


#: The synapses of expanded networks a worker keeps (its :class:`.runner.NetworkCache`):
#: three 16,384-neuron networks of 1.3M synapses, or thousands of small ones. Kept
#: networks hold their memory, so a new network's arrays cannot reuse it (see
#: :func:`keep_freed_memory`); a network dropped is expanded again by its next job
#: (1.3M synapses in about 40 ms, against 60 ms for 1,000 of its steps).
WORKER_CACHE_SYNAPSES = 1 << 22

# glibc's mallopt parameters
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def keep_freed_memory() -> bool:
    """Have this process's allocator keep the memory it frees, for its next arrays.

    glibc serves a large block (over 128 KiB, a threshold that rises with use) with a
    mapping of its own and gives it back to the kernel when it is freed, and returns a
    heap's free top beyond 128 KiB: so a worker's next network lands on fresh pages and
    pays a first-touch fault on every one of them. Fresh pages are dear where memory is
    virtual (a machine under a hypervisor faults twice), and dearer as transparent huge
    pages, which also speed the run itself. Here blocks up to 32 MiB (glibc's largest
    setting) come from the heap, and up to 256 MiB of free heap is kept. Measured on
    the bench's 16,384-neuron network (1.3M synapses, expanded again and again, the
    results dropped): 44 ms an expansion with glibc's defaults, 35 ms with these.
    A worker's memory stays at its high-water mark, which its caches bound
    (:data:`WORKER_CACHE_SYNAPSES`, ``backends.PREPARED_TOTAL_SYNAPSES``) with the
    largest job it ran.

    Returns whether the C library took both settings (only glibc's ``mallopt`` does).
    """
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, 32 << 20)) and bool(mallopt(_M_TRIM_THRESHOLD, 256 << 20))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m neurofab.server.worker", description="run one job worker"
    )
    parser.add_argument("--data", help="data directory (default: $NEUROFAB_DATA or ./data)")
    parser.add_argument("--backend", action="append", help="serve jobs of this backend (repeatable)")
    parser.add_argument(
        "--backend-module",
        action="append",
        default=[],
        help="import this module first (it registers a backend)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s worker[%(process)d] %(levelname)s %(message)s"
    )
    keep_freed_memory()
    load_backend_modules(args.backend_module)
    settings = Settings.load({"DATA_DIR": args.data})
    db = settings.database()
    db.initialise()
    worker = Worker(settings, backends=args.backend)

    def on_signal(signum, frame):
        worker.stop.set()
        worker.wake()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    worker.warm_up()
    worker.housekeeping(force=True)
    worker.run()
    log.info("worker %s stopped", worker.worker_id)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
