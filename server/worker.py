"""Job workers: claim a queued job, run it on its backend, store the result.

One worker process runs one job at a time; ``neurofab worker --workers N`` (and
``neurofab serve``) run N of them under a supervisor. While a job runs, a heartbeat
thread extends its lease, and the backend's progress callback stores the progress and
stops the run (by raising) when the job was cancelled, when it outran its tier's
runtime limit, or when the worker is shutting down (the job then goes back to the
queue, not counted as an attempt). A worker also re-queues jobs whose worker died
(their lease expired) and records that it is alive.

Run one worker in the foreground with ``python -m neurofab.server.worker --data DIR``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import signal
import socket
import threading
import time
import traceback
from collections import OrderedDict

import neurofab
from neurofab.errors import ValidationError

from . import jobqueue
from .backends import get_backend, load_backend_modules
from .config import Settings
from .store import delete_result, pack_result, write_result

__all__ = ["Worker", "NetworkCache", "stored_job", "main"]

log = logging.getLogger("neurofab.server.worker")

#: How often a running job's progress is written (and its cancel flag read), at most.
PROGRESS_INTERVAL = 0.25


class _Stop(Exception):
    """Raised from the progress callback to end a run early; ``reason`` says why."""

    def __init__(self, reason: str, message: str = ""):
        super().__init__(message or reason)
        self.reason = reason


class NetworkCache:
    """Parsed and expanded networks, most recently used kept, bounded by synapse count.

    Networks never change once stored, so a cached expansion is always valid; jobs on
    the same network (the common case) skip parsing and expanding.
    """

    def __init__(self, db, max_synapses: int = 64_000_000):
        self.db = db
        self.max_synapses = max_synapses
        self._entries: OrderedDict[str, tuple] = OrderedDict()

    def get(self, network_id: str):
        """``(network, netlist, document_hash)`` for a stored network."""
        from neurofab.network import expand, parse_network

        entry = self._entries.get(network_id)
        if entry is not None:
            self._entries.move_to_end(network_id)
            return entry
        row = (
            self.db.connect().execute("SELECT document FROM networks WHERE id = ?", (network_id,)).fetchone()
        )
        if row is None:
            raise LookupError(f"network {network_id} no longer exists")
        network = parse_network(json.loads(row["document"]))
        netlist = expand(network)
        # The stored document is canonical JSON (defaults filled in, seed included), so it
        # identifies the expansion exactly: hashing it costs microseconds, not a pass over
        # every synapse.
        entry = (network, netlist, "sha256:" + hashlib.sha256(row["document"].encode()).hexdigest())
        self._entries[network_id] = entry
        total = sum(e[1].n_synapses for e in self._entries.values())
        while len(self._entries) > 1 and total > self.max_synapses:
            _, old = self._entries.popitem(last=False)
            total -= old[1].n_synapses
        return entry


def stored_job(doc: dict):
    """The :class:`neurofab.job.Job` of a stored job document, without validating it again.

    The API stored ``Job.to_document()`` of a job that ``parse_job`` and ``bind_job``
    accepted, so the fields are known good; rebuilding the dataclasses directly skips a
    per-element validation that costs milliseconds for a job listing thousands of
    neurons. ``parse_job`` gives an equal ``Job`` (tests/server check both ways).
    """
    from neurofab.job import Job, Learning, Reward, Stimulus

    def ints(values):
        return None if values is None else tuple(values)

    return Job(
        timesteps=doc["timesteps"],
        stimuli=tuple(
            Stimulus(
                population=s["population"],
                current=s["current"],
                neurons=ints(s.get("neurons")),
                start=s.get("start"),
                stop=s.get("stop"),
                times=ints(s.get("times")),
            )
            for s in doc["stimuli"]
        ),
        learning=Learning(**doc["learning"]),
        rewards=tuple(Reward(timestep=r["timestep"], value=r["value"]) for r in doc["rewards"]),
        seed=doc["seed"],
        network_id=doc.get("network_id"),
    )


def _limit_message(tier: str, limit: float, ran: float) -> str:
    return f"job exceeded the {tier} tier's runtime limit of {limit:g} s (stopped after {ran:.1f} s)"


class _Heartbeat(threading.Thread):
    """Extends the lease of the worker's current job every third of the lease time.

    One thread for the worker's life (a thread per job would cost more than a small job).
    ``lost`` turns true when the current job is no longer this worker's running job.
    """

    def __init__(self, db, worker_id: str, lease_seconds: float):
        super().__init__(name="heartbeat", daemon=True)
        self.db, self.worker_id, self.lease_seconds = db, worker_id, lease_seconds
        self._lock = threading.Lock()
        self._job_id: str | None = None
        self.lost = False
        self.done = threading.Event()

    def watch(self, job_id: str | None) -> None:
        with self._lock:
            self._job_id, self.lost = job_id, False

    def run(self) -> None:
        while not self.done.wait(self.lease_seconds / 3):
            with self._lock:
                job_id = self._job_id
            if job_id is None:
                continue
            try:
                alive = jobqueue.heartbeat(self.db, job_id, self.worker_id, self.lease_seconds)
            except Exception:  # a locked or busy database: try again next beat
                log.exception("heartbeat for %s failed", job_id)
                continue
            with self._lock:
                if not alive and self._job_id == job_id:
                    self.lost = True


class Worker:
    """One job worker. ``run()`` loops until ``stop`` is set; ``run_one()`` runs one job."""

    def __init__(
        self,
        settings: Settings,
        *,
        backends=None,
        worker_id: str | None = None,
        poll_interval: float = 0.001,
        idle_poll_interval: float = 0.005,
        housekeeping_interval: float | None = None,
    ):
        self.settings = settings
        self.db = settings.database()
        self.backends = tuple(backends or settings.backends)
        for name in self.backends:
            get_backend(name)  # fail at start, not at the first job, on an unknown backend
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"
        self.poll_interval = poll_interval
        self.idle_poll_interval = idle_poll_interval
        self.housekeeping_interval = housekeeping_interval or max(0.2, min(5.0, settings.lease_seconds / 4))
        self.networks = NetworkCache(self.db)
        self.stop = threading.Event()
        self._next_housekeeping = 0.0
        self._heartbeat = _Heartbeat(self.db, self.worker_id, settings.lease_seconds)
        self._heartbeat.start()

    # -- the loop ---------------------------------------------------------------------

    def run(self) -> None:
        log.info(
            "worker %s serving %s from %s", self.worker_id, ",".join(self.backends), self.settings.data_dir
        )
        self.db.start_checkpointer()
        last_version = None
        last_busy = time.monotonic()
        while not self.stop.is_set():
            if self.housekeeping():
                # data_version reflects other connections' commits only: after our own
                # housekeeping (which may have re-queued jobs), look at the queue anyway.
                last_version = None
            version = self.db.data_version()
            if version != last_version:
                last_version = version
                while not self.stop.is_set() and self.run_one():
                    last_busy = time.monotonic()
                    self.housekeeping()
                continue
            # Look often while jobs are coming in, rarely once the service has been idle
            # for a while: a new job then waits at most idle_poll_interval to be seen.
            idle = time.monotonic() - last_busy > 2.0
            self.stop.wait(self.idle_poll_interval if idle else self.poll_interval)

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
        while row is not None:
            row = self.execute(row)  # the next job, claimed as this one completed
            if row is not None and self.stop.is_set():
                jobqueue.release(self.db, row["id"], self.worker_id)
                row = None
            self.housekeeping()
        return True

    # -- one job ----------------------------------------------------------------------

    def execute(self, row):
        """Run one claimed job and record how it ended; returns the next claimed job, if any."""
        from neurofab.results import result_document

        job_id, backend_name = row["id"], row["backend"]
        heartbeat = self._heartbeat
        heartbeat.watch(job_id)
        started = time.monotonic()
        try:
            network, netlist, image_hash = self.networks.get(row["network_id"])
            job = stored_job(json.loads(row["document"]))
            backend = get_backend(backend_name)
            limit = row["runtime_limit"]
            tier = self._tier_of(row["account_id"])
            progress = self._progress_callback(job_id, limit, tier, heartbeat)
            started = time.monotonic()
            result = backend.run(netlist, job, progress)
            ran = max(time.monotonic() - started, result.compute_seconds)
            if ran > limit:  # a backend that reports progress rarely can overshoot
                raise _Stop("limit", _limit_message(tier, limit, ran))
            arrays = pack_result(
                result, netlist.n_neurons, netlist.connection_offsets, weights=job.learning.enabled
            )
            manifest, blob = write_result(self.settings.data_dir, job_id, arrays)
            document = result_document(result, network.populations)
            provenance = {
                "model_version": neurofab.MODEL_VERSION,
                "package_version": neurofab.__version__,
                "backend": backend_name,
                "core_preset": backend.core_preset(),
                "image_hash": image_hash if backend.image_hash is None else backend.image_hash(netlist),
                "network_seed": network.seed,
                "job_seed": job.seed,
                "attempt": row["attempts"],
            }
            done, next_job = jobqueue.complete(
                self.db,
                job_id,
                self.worker_id,
                result_json=json.dumps(document["result"], separators=(",", ":")),
                compute_seconds=document["compute_seconds"],
                provenance_json=json.dumps(provenance, separators=(",", ":")),
                manifest=manifest,
                blob=blob,
                claim_next=None if self.stop.is_set() else self.backends,
                lease_seconds=self.settings.lease_seconds,
            )
            if not done:  # cancelled, or our lease was taken over: the other outcome stands
                delete_result(self.settings.data_dir, manifest)
                jobqueue.add_compute(self.db, job_id, self.worker_id, document["compute_seconds"])
            return next_job
        except _Stop as stop:
            ran = time.monotonic() - started
            if stop.reason == "limit":
                jobqueue.fail(self.db, job_id, self.worker_id, str(stop), ran)
            elif stop.reason == "shutdown":
                jobqueue.release(self.db, job_id, self.worker_id)
            else:
                # "cancelled", or "lost" (the heartbeat found the job no longer running:
                # cancelled too, or re-queued after our lease ran out). The compute is
                # billed only where the job is still ours (add_compute checks the owner).
                jobqueue.add_compute(self.db, job_id, self.worker_id, ran)
        except ValidationError as e:
            jobqueue.fail(self.db, job_id, self.worker_id, f"{backend_name} refused the job: {e}", None)
        except Exception as e:
            log.error("job %s failed on %s:\n%s", job_id, backend_name, traceback.format_exc())
            jobqueue.fail(
                self.db,
                job_id,
                self.worker_id,
                f"internal error on backend {backend_name}: {type(e).__name__}: {e}",
                None,
            )
        finally:
            heartbeat.watch(None)
        return None

    def _tier_of(self, account_id: int) -> str:
        row = self.db.connect().execute("SELECT tier FROM accounts WHERE id = ?", (account_id,)).fetchone()
        return row["tier"] if row else "unknown"

    def _progress_callback(self, job_id: str, runtime_limit: float, tier: str, heartbeat: _Heartbeat):
        started = time.monotonic()
        next_report = [started + PROGRESS_INTERVAL]

        def progress(done: int, total: int) -> None:
            now = time.monotonic()
            if self.stop.is_set():
                raise _Stop("shutdown")
            if heartbeat.lost:
                raise _Stop("lost")
            if now - started > runtime_limit:
                raise _Stop("limit", _limit_message(tier, runtime_limit, now - started))
            if now >= next_report[0]:
                next_report[0] = now + PROGRESS_INTERVAL
                fraction = min(1.0, done / total) if total else 0.0
                status = jobqueue.report_progress(self.db, job_id, self.worker_id, round(fraction, 4))
                if status is None:
                    raise _Stop("lost")
                if status == "cancelled":
                    raise _Stop("cancelled")

        return progress

    def warm_up(self) -> None:
        """Run a tiny job so the first real one does not pay for JIT compilation."""
        try:
            from neurofab.job import parse_job
            from neurofab.network import expand, parse_network

            network = parse_network(
                {
                    "populations": [{"label": "a", "size": 2}],
                    "connections": [{"source": "a", "target": "a"}],
                    "seed": 1,
                }
            )
            job = parse_job({"timesteps": 4, "stimuli": [{"population": "a", "current": 2000}]})
            for name in self.backends:
                get_backend(name).run(expand(network), job, None)
        except Exception:
            log.exception("warm-up run failed (the worker carries on)")


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
    load_backend_modules(args.backend_module)
    settings = Settings.load({"DATA_DIR": args.data})
    db = settings.database()
    db.initialise()
    worker = Worker(settings, backends=args.backend)

    def on_signal(signum, frame):
        worker.stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    worker.warm_up()
    worker.housekeeping(force=True)
    worker.run()
    log.info("worker %s stopped", worker.worker_id)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
