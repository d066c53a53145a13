"""Running one claimed job: shared by the job workers and the web process's inline path.

A :class:`JobRunner` takes a job row that its owner has claimed (the row is
``running`` with the owner's lease), runs it on its backend, stores the result and
completes the job with :func:`.jobqueue.complete`, or records how it ended otherwise
(failed, cancelled, runtime limit, handed back on shutdown). Every write is
conditional on the lease still being the owner's, so whoever runs a job, and however
it ends, it completes exactly once.

Two owners use it:

- a job worker (:mod:`.worker`), one job at a time, claiming the next job in the same
  transaction that completes the last;
- a web process (a granian worker: :mod:`.api`, ``POST /v1/jobs?wait=S``), which runs a *small*
  job (:func:`inline_cost` at most ``INLINE_MAX_COST``) in the request's own thread
  instead of handing it to a worker and waiting: the job is inserted already claimed
  by the web process, with a lease like any worker's, so if the web process dies the
  lease runs out and a worker re-runs it.

A :class:`Heartbeat` thread per owner process extends the leases of the jobs it is
running.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
import traceback
from collections import OrderedDict

import neurofab
from neurofab.errors import ValidationError

from . import jobqueue
from .backends import get_backend
from .db import process_write_lock
from .store import delete_result, pack_result, write_result

__all__ = [
    "PROGRESS_INTERVAL",
    "NetworkCache",
    "Heartbeat",
    "JobRunner",
    "stored_job",
    "inline_cost",
    "INLINE_BACKENDS",
]

log = logging.getLogger("neurofab.server.runner")

#: How often a running job's progress is written (and its cancel flag read), at most.
PROGRESS_INTERVAL = 0.25
#: How long an exclusive (inline) run keeps its process's writers waiting, at most
#: (between the backend's chunks, which the emulator keeps to about a quarter second).
YIELD_INTERVAL = 0.02


#: Backends whose small jobs the web process may run inline: the emulator only (a board
#: belongs to the one worker owning its port; the RTL simulation is never small).
INLINE_BACKENDS = ("emulator",)


def inline_cost(timesteps: int, neurons: int, synapses: float) -> float:
    """A job's predicted cost in neuron-and-synapse steps (what the inline threshold compares).

    The emulator's time per step grows with both the neurons it updates and the synapses
    it may deliver; the quickstart job (125 neurons, ~5,000 synapses, 1,000 steps) is
    about 5 million, under a millisecond of emulator time.
    """
    return float(timesteps) * (neurons + synapses)


class _Stop(Exception):
    """Raised from the progress callback to end a run early; ``reason`` says why."""

    def __init__(self, reason: str, message: str = ""):
        super().__init__(message or reason)
        self.reason = reason


class NetworkCache:
    """Parsed and expanded networks, most recently used kept, bounded by synapse count.

    Networks never change once stored, so a cached expansion is always valid; jobs on
    the same network (the common case) skip parsing and expanding. Thread-safe (a web
    process runs inline jobs from many threads); two threads missing the same network
    at once may both expand it, and one result is kept.
    """

    def __init__(self, db, max_synapses: int = 64_000_000):
        self.db = db
        self.max_synapses = max_synapses
        self._entries: OrderedDict[str, tuple] = OrderedDict()
        self._lock = threading.Lock()

    def cached(self) -> frozenset[str]:
        """The ids of the networks held now."""
        with self._lock:
            return frozenset(self._entries)

    def get(self, network_id: str, network=None):
        """``(network, netlist, document_hash)`` for a stored network.

        ``network``: its parsed :class:`neurofab.network.Network`, if the caller has it
        (saves parsing the document again).
        """
        from neurofab.network import expand, parse_network

        with self._lock:
            entry = self._entries.get(network_id)
            if entry is not None:
                self._entries.move_to_end(network_id)
                return entry
        row = (
            self.db.connect().execute("SELECT document FROM networks WHERE id = ?", (network_id,)).fetchone()
        )
        if row is None:
            raise LookupError(f"network {network_id} no longer exists")
        if network is None:
            network = parse_network(json.loads(row["document"]))
        netlist = expand(network)
        # The stored document is canonical JSON (defaults filled in, seed included), so it
        # identifies the expansion exactly: hashing it costs microseconds, not a pass over
        # every synapse.
        entry = (network, netlist, "sha256:" + hashlib.sha256(row["document"].encode()).hexdigest())
        with self._lock:
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


class Heartbeat(threading.Thread):
    """Extends the leases of the owner's running jobs every third of the lease time.

    One thread for the owner process's life (a thread per job would cost more than a
    small job). :meth:`lost` turns true for a job that is no longer the owner's running
    job (cancelled, or re-queued after its lease ran out).
    """

    def __init__(self, db, owner: str, lease_seconds: float):
        super().__init__(name="heartbeat", daemon=True)
        self.db, self.owner, self.lease_seconds = db, owner, lease_seconds
        self._lock = threading.Lock()
        self._lost: dict[str, bool] = {}  # the jobs watched -> lease lost
        self.done = threading.Event()

    def watch(self, job_id: str) -> None:
        with self._lock:
            self._lost[job_id] = False

    def unwatch(self, job_id: str) -> None:
        with self._lock:
            self._lost.pop(job_id, None)

    def lost(self, job_id: str) -> bool:
        return self._lost.get(job_id, False)

    def run(self) -> None:
        while not self.done.wait(self.lease_seconds / 3):
            with self._lock:
                job_ids = list(self._lost)
            for job_id in job_ids:
                try:
                    alive = jobqueue.heartbeat(self.db, job_id, self.owner, self.lease_seconds)
                except Exception:  # a locked or busy database: try again next beat
                    log.exception("heartbeat for %s failed", job_id)
                    continue
                with self._lock:
                    if not alive and job_id in self._lost:
                        self._lost[job_id] = True


class JobRunner:
    """Runs claimed jobs for one owner (a worker, or a web process's inline jobs).

    ``stop`` (an event) set means the owner is shutting down: a running job is handed
    back to the queue at its next progress check.
    """

    def __init__(
        self,
        settings,
        db,
        owner: str,
        *,
        stop: threading.Event | None = None,
        max_synapses: int = 64_000_000,
        exclusive: bool = False,
    ):
        #: run jobs holding the process's write lock (:func:`.db.process_write_lock`), for
        #: a process whose other threads write meanwhile (the web process's inline jobs);
        #: the progress callback lets writers through between chunks
        self.exclusive = exclusive
        self.settings = settings
        self.db = db
        self.owner = owner
        self.stop = stop or threading.Event()
        self.networks = NetworkCache(db, max_synapses)
        self.heartbeat = Heartbeat(db, owner, settings.lease_seconds)
        self.heartbeat.start()

    def execute(self, row, *, claim_next=None, network=None, job=None, tier: str | None = None):
        """Run one claimed job and record how it ended; returns the next claimed job, if any.

        ``row`` needs ``id``, ``account_id``, ``network_id``, ``document``, ``backend``,
        ``runtime_limit`` and ``attempts``. ``claim_next``: the owner's backends, to claim
        its next job in the transaction that completes this one (workers). ``network``,
        ``job`` and ``tier``: the parsed network, the bound job (equal to the stored
        document's) and the account's tier, when the caller has them (saves work).
        """
        from neurofab.results import result_document

        job_id, backend_name = row["id"], row["backend"]
        self.heartbeat.watch(job_id)
        started = time.monotonic()
        try:
            network, netlist, image_hash = self.networks.get(row["network_id"], network)
            job = job or stored_job(json.loads(row["document"]))
            backend = get_backend(backend_name)
            limit = row["runtime_limit"]
            tier = tier or self._tier_of(row["account_id"])
            progress = self._progress_callback(job_id, limit, tier)
            started = time.monotonic()
            if self.exclusive:
                with process_write_lock():
                    result = backend.run(netlist, job, progress)
            else:
                result = backend.run(netlist, job, progress)
            ran = max(time.monotonic() - started, result.compute_seconds)
            if ran > limit:  # a backend that reports progress rarely can overshoot
                raise _Stop("limit", _limit_message(tier, limit, ran))
            arrays = pack_result(
                result, netlist.n_neurons, netlist.connection_offsets, weights=job.learning.enabled
            )
            manifest, blob = write_result(self.settings.data_dir, job_id, arrays)
            # The summary is built once, here; GET splices the stored text into its answer.
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
                self.owner,
                result_json=json.dumps(document["result"], separators=(",", ":")),
                compute_seconds=document["compute_seconds"],
                provenance_json=json.dumps(provenance, separators=(",", ":")),
                manifest=manifest,
                blob=blob,
                claim_next=None if self.stop.is_set() else claim_next,
                lease_seconds=self.settings.lease_seconds,
            )
            if not done:  # cancelled, or our lease was taken over: the other outcome stands
                delete_result(self.settings.data_dir, manifest)
                jobqueue.add_compute(self.db, job_id, self.owner, document["compute_seconds"])
            return next_job
        except _Stop as stop:
            ran = time.monotonic() - started
            if stop.reason == "limit":
                jobqueue.fail(self.db, job_id, self.owner, str(stop), ran)
            elif stop.reason == "shutdown":
                jobqueue.release(self.db, job_id, self.owner)
            else:
                # "cancelled", or "lost" (the heartbeat found the job no longer running:
                # cancelled too, or re-queued after our lease ran out). The compute is
                # billed only where the job is still ours (add_compute checks the owner).
                jobqueue.add_compute(self.db, job_id, self.owner, ran)
        except ValidationError as e:
            jobqueue.fail(self.db, job_id, self.owner, f"{backend_name} refused the job: {e}", None)
        except Exception as e:
            log.error("job %s failed on %s:\n%s", job_id, backend_name, traceback.format_exc())
            jobqueue.fail(
                self.db,
                job_id,
                self.owner,
                f"internal error on backend {backend_name}: {type(e).__name__}: {e}",
                None,
            )
        finally:
            self.heartbeat.unwatch(job_id)
        return None

    def _tier_of(self, account_id: int) -> str:
        row = self.db.connect().execute("SELECT tier FROM accounts WHERE id = ?", (account_id,)).fetchone()
        return row["tier"] if row else "unknown"

    def _progress_callback(self, job_id: str, runtime_limit: float, tier: str):
        started = time.monotonic()
        next_report = [started + PROGRESS_INTERVAL]
        next_yield = [started + YIELD_INTERVAL]
        heartbeat = self.heartbeat

        def progress(done: int, total: int) -> None:
            now = time.monotonic()
            if self.exclusive and now >= next_yield[0]:
                # a job running this long lets this process's writers (heartbeats, other
                # requests) through between chunks; a small one just finishes first
                lock = process_write_lock()
                lock.release()
                time.sleep(0)
                lock.acquire()
                now = time.monotonic()
                next_yield[0] = now + YIELD_INTERVAL
            if self.stop.is_set():
                raise _Stop("shutdown")
            if heartbeat.lost(job_id):
                raise _Stop("lost")
            if now - started > runtime_limit:
                raise _Stop("limit", _limit_message(tier, runtime_limit, now - started))
            if now >= next_report[0]:
                next_report[0] = now + PROGRESS_INTERVAL
                fraction = min(1.0, done / total) if total else 0.0
                status = jobqueue.report_progress(self.db, job_id, self.owner, round(fraction, 4))
                if status is None:
                    raise _Stop("lost")
                if status == "cancelled":
                    raise _Stop("cancelled")

        return progress

    def warm_up(self, backends) -> None:
        """Run a tiny job on each backend so the first real one does not pay for JIT compilation."""
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
            for name in backends:
                get_backend(name).run(expand(network), job, None)
        except Exception:
            log.exception("warm-up run failed (the owner carries on)")
