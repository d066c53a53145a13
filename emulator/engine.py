"""``simulate(netlist, job)``: check the input, lay the network out, run the compiled chunks.

A caller that runs many jobs on a netlist it never changes (the service, which keys
netlists by network id: a network is immutable) can :func:`prepare` it once and call
:func:`simulate_prepared`: the netlist's checks and the synapse layouts are then done
once instead of per job (a fifth of a quickstart job's emulator time). Both paths run
the same code, so their results are identical.

See docs/emulator.md for the design. This module holds no per-step Python: it
validates, builds the state arrays, calls :mod:`neurofab.emulator.kernels` for chunks
of about a quarter second (reporting progress between them, growing the spike buffer
when it runs low) and turns the final state into a :class:`neurofab.results.RunResult`.
"""

from __future__ import annotations

import math
import os
import threading
import time

import numba
import numpy as np
from numba import njit

from neurofab.errors import ValidationError
from neurofab.job import Job, reward_schedule, stimulus_schedule
from neurofab.network import Netlist
from neurofab.results import RunResult
from neurofab.rng import initial_lfsr

from . import kernels
from .capacity import QueueCapacity
from .capacity import warm_up as _warm_up_capacity
from .layout import MAX_BLOCK, block_bounds, build_layout, incoming_index

__all__ = ["simulate", "prepare", "simulate_prepared", "PreparedNetlist", "PARALLEL_MIN_NEURONS",
           "CHUNK_SECONDS"]

#: below this many neurons one thread is faster than a parallel region per step
PARALLEL_MIN_NEURONS = 6000
#: target wall time between two progress calls
CHUNK_SECONDS = 0.25
_INT16_MAX = (1 << 15) - 1
_INT32_MAX = (1 << 31) - 1


def simulate(netlist: Netlist, job: Job, *, progress=None,
             capacity: QueueCapacity | None = None) -> RunResult:
    """Run ``job`` on ``netlist`` exactly as docs/model.md defines it.

    ``progress(done_steps, total_steps)`` is called between chunks (about every
    quarter second) when given. Raises :class:`ValidationError` for a netlist or job
    outside the model's ranges. ``compute_seconds`` is the wall time of the whole
    call (checks, layout, run, result) less the time spent compiling or loading
    compiled kernels on a process's first runs.

    With ``capacity`` (a :class:`~neurofab.emulator.capacity.QueueCapacity`, usually
    ``QueueCapacity.from_image(image)`` of the image the netlist was rebuilt from), the
    run also counts the events each core's queue holds, exactly as the hardware does,
    and raises :class:`~neurofab.emulator.capacity.CapacityExceeded` at the step where a
    core would overflow; ``extra["queue_peak"]`` and ``extra["queue_peak_step"]`` then
    give each core's most events in flight and the first step it held them. Without
    it the run is exactly as before (the counting is not compiled into the kernels).
    """
    return _simulate(netlist, None, job, progress, capacity)


class PreparedNetlist:
    """A netlist checked once, with its synapse layouts kept as they are first built.

    Only for a netlist nobody changes afterwards (the arrays are not copied, and a
    change would not be seen). Thread-safe: two threads building the same layout at
    once both build it, and one is kept. ``n_synapses`` says what it holds, for a
    cache's bound (the layouts take about as much memory again as the netlist).
    """

    def __init__(self, netlist: Netlist):
        _warm_up(np.int16, _wants_parallel(netlist.n_neurons))  # the checks' compiled code
        self.netlist = netlist
        self.arrays = _checked_netlist(netlist)
        delay = self.arrays["synapse"]["delay"]
        self.n_slots = int(delay.max()) + 1 if delay.size else 1
        self.n_synapses = int(delay.size)
        #: the final weights of every run without learning (which leaves them as they
        #: are): one read-only array, not a copy per run
        self.initial_weights = self.arrays["synapse"]["weight"].astype(np.int32, copy=True)
        self.initial_weights.flags.writeable = False
        self._layouts: dict[tuple, tuple] = {}
        self._lock = threading.Lock()

    def ready_for(self, job: Job) -> None:
        """Build now the synapse layout that ``job`` (and any job of the same learning
        switches) will run on, so that its :func:`simulate_prepared` finds it made.

        For a service that prepares a network before its first job arrives (the layout
        is a sixth of a large job's emulator time); ``Job(timesteps=1)`` stands for the
        common job, without learning.
        """
        _job_layout(self.netlist, self.arrays, job, self)

    def layout(self, key: tuple, build):
        """The layout for ``key`` (its build parameters), from ``build()`` the first time."""
        with self._lock:
            layout = self._layouts.get(key)
        if layout is None:
            layout = build()
            with self._lock:
                layout = self._layouts.setdefault(key, layout)
        return layout


def prepare(netlist: Netlist) -> PreparedNetlist:
    """Check ``netlist`` once for :func:`simulate_prepared` (raises :class:`ValidationError` as
    :func:`simulate` would)."""
    return PreparedNetlist(netlist)


def simulate_prepared(prepared: PreparedNetlist, job: Job, *, progress=None,
                      capacity: QueueCapacity | None = None) -> RunResult:
    """:func:`simulate` on a :func:`prepare`-d netlist: the same result, less work per job.

    Without learning, the result's ``final_weights`` is the prepared netlist's one
    read-only array (the weights as they were), not a copy per run."""
    return _simulate(prepared.netlist, prepared, job, progress, capacity)


def _simulate(netlist: Netlist, prepared: PreparedNetlist | None, job: Job, progress, capacity) -> RunResult:
    started = time.perf_counter()
    # compile or load the checks, the layout and the narrowest ring's kernels first
    compile_seconds = _warm_up(np.int16, _wants_parallel(netlist.n_neurons))
    arrays = _checked_netlist(netlist) if prepared is None else prepared.arrays
    _check_job(job, netlist.n_neurons)
    if capacity is not None:
        _check_capacity(capacity, netlist.n_neurons)
        capacity.check_accumulators(netlist, job)
        compile_seconds += _warm_up_capacity()
    result, more_compile_seconds = _run(netlist, arrays, job, progress, capacity=capacity, prepared=prepared)
    result.compute_seconds = time.perf_counter() - started - compile_seconds - more_compile_seconds
    return result


def _wants_parallel(n: int) -> bool:
    return _parallel_usable and numba.get_num_threads() > 1 and n >= PARALLEL_MIN_NEURONS


# ---------------------------------------------------------------------------- checks

def _checked_netlist(netlist: Netlist) -> dict:
    """The netlist's arrays in the kernels' dtypes, after checking every range."""
    n = netlist.n_neurons
    if n < 1:
        raise ValidationError("netlist.threshold", f"must list at least one neuron, not {n}")
    neuron = {}
    for name in ("threshold", "leak", "resting", "refrac", "dend_threshold"):
        values = np.asarray(getattr(netlist, name))
        if values.shape != (n,):
            raise ValidationError(f"netlist.{name}", f"must have shape ({n},), not {values.shape}")
        neuron[name] = values.astype(np.int64, copy=False)
    _check_range("netlist.leak", neuron["leak"], 0, 65535)
    _check_range("netlist.resting", neuron["resting"], -(1 << 23), (1 << 23) - 1)
    _check_range("netlist.threshold", neuron["threshold"], 1, (1 << 23) - 1)
    _check_range("netlist.refrac", neuron["refrac"], 0, 255)
    _check_range("netlist.dend_threshold", neuron["dend_threshold"], 0, (1 << 23) - 1)
    below = np.flatnonzero(neuron["threshold"] <= neuron["resting"])
    if below.size:
        i = int(below[0])
        raise ValidationError(f"netlist.threshold[{i}]",
                              f"must be greater than resting ({int(neuron['resting'][i])}), "
                              f"not {int(neuron['threshold'][i])}")

    m = netlist.n_synapses
    synapse = {}
    for name, dtype in (("src", np.int32), ("tgt", np.int32), ("weight", np.int32), ("delay", np.uint8),
                        ("compartment", np.uint8), ("plastic", np.bool_)):
        values = np.asarray(getattr(netlist, name))
        if values.shape != (m,):
            raise ValidationError(f"netlist.{name}", f"must have shape ({m},), not {values.shape}")
        if name != "plastic":
            _check_range(f"netlist.{name}", values, *{
                "src": (0, n - 1), "tgt": (0, n - 1), "weight": (-32768, 32767),
                "delay": (0, 63), "compartment": (0, 3)}[name])
        synapse[name] = values.astype(dtype, copy=False)
    return {"neuron": neuron, "synapse": synapse}


def _check_range(path, values, lo, hi):
    if values.size == 0:
        return
    if not np.issubdtype(values.dtype, np.integer):
        raise ValidationError(path, f"must hold integers, not {values.dtype}")
    # vectorised min/max first; the index of the culprit is only looked for on failure
    if values.min() >= lo and values.max() <= hi:
        return
    i = int(_first_outside(values, lo, hi))
    if i >= 0:
        raise ValidationError(f"{path}[{i}]", f"must be in {lo}..{hi}, not {int(values[i])}")


@njit(cache=True)
def _first_outside(values, lo, hi):
    """Index of the first value outside ``lo .. hi``, or -1 (one pass, no temporaries)."""
    for i in range(values.shape[0]):
        if values[i] < lo or values[i] > hi:
            return i
    return -1


def _check_int(path, value, lo, hi):
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or not lo <= value <= hi:
        raise ValidationError(path, f"must be an integer in {lo}..{hi}, not {value!r}")


def _check_job(job: Job, n_neurons: int) -> None:
    _check_int("timesteps", job.timesteps, 1, 10_000_000)
    _check_int("seed", job.seed, 0, (1 << 32) - 1)
    lr = job.learning
    for name in ("a_plus", "a_minus"):
        _check_int(f"learning.{name}", getattr(lr, name), 0, 32767)
    for name in ("trace_shift", "elig_shift"):
        _check_int(f"learning.{name}", getattr(lr, name), 0, 15)
    for i, reward in enumerate(job.rewards):
        _check_int(f"rewards[{i}].timestep", reward.timestep, 0, job.timesteps - 1)
        _check_int(f"rewards[{i}].value", reward.value, -32768, 32767)
    for i, stim in enumerate(job.stimuli):
        _check_int(f"stimuli[{i}].current", stim.current, -(1 << 23), (1 << 23) - 1)


def _check_capacity(capacity, n_neurons: int) -> None:
    if not isinstance(capacity, QueueCapacity):
        raise ValidationError("capacity", f"must be a QueueCapacity or None, not {capacity!r}")
    if capacity.core_of_gid.shape != (n_neurons,):
        raise ValidationError("capacity.core_of_gid", f"must name the core of each of the netlist's "
                              f"{n_neurons} neurons, not shape {capacity.core_of_gid.shape}")


# ---------------------------------------------------------------------------- plan

def _blocks(n: int, parallel: bool) -> int:
    """How many blocks: enough for 65,536 neurons each, a multiple of the threads when parallel."""
    n_blocks = max(1, math.ceil(n / MAX_BLOCK))
    if parallel:
        threads = numba.get_num_threads()
        n_blocks = threads * math.ceil(max(n_blocks, threads) / threads)
    return n_blocks


def _ring_dtype(bound: int):
    """The narrowest ring integer that holds every partial input sum exactly.

    ``bound`` is the largest ``sum |contribution|`` a neuron can receive in one step
    (:func:`neurofab.emulator.layout.input_bound`); any partial sum is within it too.
    A narrower ring is a smaller working set: at 64K neurons and 21 slots, ``int16``
    keeps each thread's half of the ring inside its 2 MB L2 cache.
    """
    if bound <= _INT16_MAX:
        return np.int16
    if bound <= _INT32_MAX:
        return np.int32
    return np.int64


#: (ring dtype name, parallel) pairs whose kernels this process has compiled or loaded
_warm = set()
_parallel_usable = True


def _warm_up(ring_dtype, parallel: bool) -> float:
    """Compile (or load from the disk cache) the kernels a run needs; returns the seconds spent.

    Runs a two-neuron network through :func:`_run` without, with and with
    three-factor learning, so every kernel is compiled for this ring type.
    """
    global _parallel_usable
    key = (np.dtype(ring_dtype).name, parallel)
    if key in _warm:
        return 0.0
    began = time.perf_counter()
    from neurofab.job import Learning
    from neurofab.network import NeuronParams, Population

    one = np.ones(2, np.int32)
    tiny = Netlist(
        populations=(Population("warm", 2, NeuronParams(), 0),),
        threshold=one * 1000, leak=one * 3, resting=one * 0, refrac=one * 3, dend_threshold=one * 500,
        src=np.array([0], np.int32), tgt=np.array([1], np.int32), weight=np.array([5], np.int32),
        delay=np.array([1], np.uint8), compartment=np.array([0], np.uint8), plastic=np.array([True]),
        connection_offsets=np.array([0, 1]),
    )
    arrays = _checked_netlist(tiny)
    for lr in (Learning(), Learning(enabled=True), Learning(enabled=True, three_factor=True)):
        _run(tiny, arrays, Job(timesteps=2, learning=lr), None, force=(parallel, ring_dtype))
    if parallel and numba.threading_layer() == "workqueue":
        # numba's fallback pool costs ~0.1 ms per parallel region, more than it saves
        _parallel_usable = False
    _warm.add(key)
    return time.perf_counter() - began


# ---------------------------------------------------------------------------- run

def _run(netlist: Netlist, arrays: dict, job: Job, progress, force=None, capacity=None, prepared=None):
    """``(result, compile_seconds)``; ``force = (parallel, ring_dtype)`` overrides the plan
    (the warm-up uses it to compile a given variant on a tiny network). ``capacity``
    counts the events in flight after every chunk (see :mod:`.capacity`). ``prepared``
    (a :class:`PreparedNetlist` of ``netlist``) keeps the layouts between runs."""
    n = netlist.n_neurons
    T = job.timesteps
    lr = job.learning
    learning = bool(lr.enabled)
    three_factor = learning and bool(lr.three_factor)
    syn = arrays["synapse"]
    neu = arrays["neuron"]
    planes = 4 if lr.dendritic else 1
    parallel = _wants_parallel(n) if force is None else force[0]
    layout, n_blocks, bounds, block_len = _job_layout(netlist, arrays, job, prepared, parallel)
    n_padded = n_blocks * block_len
    group_offsets, group_start, group_delay, packed, syn_c, syn_src, syn_plastic, perm, bound = layout
    del layout
    if prepared is not None and learning:
        packed = packed.copy()  # learning rewrites the weights in place: the kept layout stays as built
    ring_dtype = _ring_dtype(int(bound)) if force is None else force[1]
    compile_seconds = 0.0
    if force is None:
        compile_seconds = _warm_up(ring_dtype, parallel)
        parallel = parallel and _parallel_usable
    if prepared is None:
        n_slots = int(syn["delay"].max()) + 1 if syn["delay"].size else 1
    else:
        n_slots = prepared.n_slots

    if learning and not three_factor:
        in_offsets, in_positions = incoming_index(perm, syn["tgt"], n)
    else:
        in_offsets, in_positions = np.zeros(1, np.int64), np.zeros(0, np.int64)
    elig = np.zeros(packed.shape[0] if three_factor else 0, np.int32)
    ring = np.zeros((n_blocks, n_slots, block_len * planes), ring_dtype)
    params = np.stack([neu["threshold"], neu["leak"], neu["resting"], neu["refrac"],
                       neu["dend_threshold"]]).astype(np.int32)
    v = neu["resting"].astype(np.int32)
    r = np.zeros(n, np.int32)
    lfsr = initial_lfsr(job.seed, np.arange(n)).astype(np.int32)
    stim = np.zeros(n, np.int64)
    x = np.zeros(n, np.int32)
    y = np.zeros(n, np.int32)
    spk_gid = np.zeros((2, n_blocks, block_len), np.int32)
    spk_g = np.zeros((2, n_blocks, block_len), np.int32)
    spk_cnt = np.zeros((2, n_blocks), np.int64)
    # per-step spike flags, double-buffered by step parity (STDP reads the previous step's)
    spiked = np.zeros((2, n_padded), np.uint8)
    spiked_words = spiked.view(np.uint64)
    payload = np.zeros(n_padded if lr.graded else 0, np.int32)
    ev_t, ev_gid, ev_delta = stimulus_schedule(job, netlist.populations)
    ev_t = ev_t.astype(np.int64, copy=False)
    ev_gid = ev_gid.astype(np.int32, copy=False)
    ev_delta = ev_delta.astype(np.int64, copy=False)
    if ev_gid.size and (ev_gid.min() < 0 or ev_gid.max() >= n):
        raise ValidationError("stimuli", f"name neurons outside 0..{n - 1}")
    rw_t, rw_v = reward_schedule(job)
    rw_t = rw_t.astype(np.int64, copy=False)
    rw_v = rw_v.astype(np.int64, copy=False)
    flags = np.array([lr.graded, lr.noise, learning, three_factor, lr.a_plus, lr.a_minus, lr.trace_shift,
                      lr.elig_shift], np.int64)
    counters = np.zeros(3, np.int64)
    spike_room = n + min(n * T, 1 << 20)
    out_t = np.empty(spike_room, np.int32)
    out_g = np.empty(spike_room, np.int32)

    chunk_args = (ring, planes, bounds, group_offsets, group_start, group_delay, packed, syn_c, v, r, lfsr,
                  stim, params, spk_gid, spk_g, spk_cnt, spiked, spiked_words, payload, ev_t, ev_gid,
                  ev_delta, rw_t, rw_v)
    learn_args = (counters, flags, x, y, syn_src, syn_plastic, elig, in_offsets, in_positions)
    queue = None if capacity is None else capacity.counter(syn["src"], syn["tgt"], syn["delay"], T)
    chooser = _KernelChooser(parallel, n, packed.shape[0], T)
    if force is not None:
        chooser.only = parallel  # the warm-up compiles exactly the kernel it is asked for
    if parallel:
        # the cost of a call that runs no step, so that short probe chunks compare fairly
        began = time.perf_counter()
        kernels.run_chunk_serial(0, 0, *chunk_args, out_t, out_g, *learn_args)
        chooser.call_overhead = time.perf_counter() - began
    t = 0
    while t < T:
        parallel, steps = chooser.next()
        stop = min(T, t + steps)
        spikes_before = int(counters[0])
        began = time.perf_counter()
        run_chunk = kernels.run_chunk_parallel if parallel else kernels.run_chunk_serial
        reached = int(run_chunk(t, stop, *chunk_args, out_t, out_g, *learn_args))
        elapsed = time.perf_counter() - began
        if reached > t:
            chooser.record(parallel, elapsed, reached - t, int(counters[0]) - spikes_before)
        if reached < stop:  # the spike buffer could not take another step's worst case
            spike_room = max(2 * spike_room, int(counters[0]) + 2 * n)
            out_t = _grown(out_t, spike_room, int(counters[0]))
            out_g = _grown(out_g, spike_room, int(counters[0]))
        if queue is not None:
            # raises at the first step a core overflows; the chunk may have run past it,
            # but nothing of the run is returned then
            queue.advance(t, reached, out_t, out_g, int(counters[0]))
        t = reached
        if progress is not None:
            progress(t, T)
    if learning:
        kernels.finish_learning(T - 1, bounds, group_offsets, group_start, packed, spk_gid, spk_cnt, spiked,
                                rw_t, rw_v, *learn_args)

    n_spikes = int(counters[0])
    if learning:
        weights = np.empty(packed.shape[0], np.int32)
        weights[perm] = packed >> 16
    elif prepared is not None:
        weights = prepared.initial_weights
    else:
        weights = syn["weight"].astype(np.int32, copy=True)
    state = {"v": v, "r": r, "lfsr": lfsr, "x": x, "y": y}
    if three_factor:
        e = np.empty(elig.shape[0], np.int32)
        e[perm] = elig
        state["e"] = e
    result = RunResult(
        timesteps=T,
        spike_times=out_t[:n_spikes].copy(),
        spike_gids=out_g[:n_spikes].copy(),
        final_weights=weights,
        final_state=state,
        extra={"engine": "emulator", "parallel_steps": chooser.steps[True],
               "serial_steps": chooser.steps[False], "threads": numba.get_num_threads(),
               "blocks": n_blocks, "ring_slots": n_slots, "ring_dtype": np.dtype(ring_dtype).name},
    )
    if queue is not None:
        result.extra["queue_peak"] = queue.peak.tolist()
        result.extra["queue_peak_step"] = queue.peak_step.tolist()
    return result, compile_seconds


def _job_layout(netlist: Netlist, arrays: dict, job: Job, prepared: PreparedNetlist | None,
                parallel: bool | None = None):
    """``(layout, n_blocks, bounds, block_len)`` of ``job`` on the netlist: built, or the
    prepared netlist's kept one (built and kept the first time)."""
    n = netlist.n_neurons
    lr = job.learning
    syn = arrays["synapse"]
    parallel = _wants_parallel(n) if parallel is None else parallel
    n_blocks = _blocks(n, parallel)
    bounds, block_len = block_bounds(n, n_blocks)
    dendritic, learning, graded = bool(lr.dendritic), bool(lr.enabled), bool(lr.graded)

    def build():
        return build_layout(syn["src"], syn["tgt"], syn["weight"], syn["delay"], syn["compartment"],
                            syn["plastic"], n, block_len, n_blocks, dendritic, learning, graded)

    if prepared is None:
        layout = build()
    else:
        layout = prepared.layout((n_blocks, block_len, dendritic, learning, graded), build)
    return layout, n_blocks, bounds, block_len


class _KernelChooser:
    """Picks the kernel (parallel or serial) and the length of each chunk, by measured speed.

    The parallel kernel is faster on an idle machine, but it synchronises both cores
    once per step, so when other processes hold the cores each step may wait for the
    scheduler and the run becomes many times slower than on one core. Both kernels
    work on the same state, so the choice is free to change between chunks. Each is
    timed per unit of work (neuron-steps plus synaptic events); the faster runs; the
    slower is re-measured on a probe of a few steps every ``REPROBE_EVERY`` chunks.
    The parallel kernel is probed only while the load average says the other cores
    are free (:func:`_cores_look_free`).
    Chunks last about ``CHUNK_SECONDS`` at the chosen kernel's measured speed; the
    first chunk after a switch is a quarter of that, in case the probe flattered it.
    """

    #: every this many chunks the slower kernel runs a probe
    REPROBE_EVERY = 16
    #: a probe runs this many neuron-steps (at least two steps): short, because a
    #: parallel step on a busy machine can cost a scheduler time slice
    FIRST_PROBE = 50_000
    #: before anything is measured, assume this many units of work per second
    GUESS_SPEED = 4e6

    def __init__(self, allowed: bool, n_neurons: int, n_synapses: int, timesteps: int):
        self.allowed = allowed
        self.n_neurons = n_neurons
        self.timesteps = timesteps
        self.mean_out_degree = n_synapses / n_neurons
        self.probe = max(2, self.FIRST_PROBE // n_neurons)
        #: seconds a chunk call costs beyond its steps (argument checks), subtracted
        self.call_overhead = 0.0
        self.cost = {}
        self.work_per_step = float(n_neurons)
        self.chunks = 0
        self.last = None
        self.steps = {True: 0, False: 0}
        #: run only this kernel (``True``/``False``), or choose (``None``)
        self.only = None

    def _steps_for(self, parallel: bool) -> int:
        seconds_per_step = self.cost.get(parallel, 1.0 / self.GUESS_SPEED) * self.work_per_step
        steps = CHUNK_SECONDS / max(seconds_per_step, 1e-12)
        if self.last is not None and parallel != self.last:
            steps /= 4
        return int(max(1, min(self.timesteps, steps)))

    def next(self) -> tuple[bool, int]:
        """``(parallel, steps)`` for the next chunk."""
        self.chunks += 1
        if self.only is not None:
            return self.only, self._steps_for(self.only)
        if not self.allowed:
            return False, self._steps_for(False)
        if True not in self.cost and not _cores_look_free():
            self.cost[True] = math.inf  # busy: not worth a probe now; asked again at re-probe time
        for parallel in (True, False):
            if parallel not in self.cost:
                return parallel, min(self.probe, self._steps_for(parallel))
        best = min(self.cost, key=self.cost.get)
        if self.chunks % self.REPROBE_EVERY == 0 and (best or _cores_look_free()):
            return not best, self.probe
        return best, self._steps_for(best)

    def record(self, parallel: bool, seconds: float, steps: int, spikes: int) -> None:
        work = steps * self.n_neurons + spikes * self.mean_out_degree
        self.cost[parallel] = max(seconds - self.call_overhead, 1e-9) / max(work, 1.0)
        self.work_per_step = work / steps
        self.last = parallel
        self.steps[parallel] += steps


def _cores_look_free() -> bool:
    """Whether the 1-minute load average leaves room for our threads beside this one.

    A parallel probe on a busy machine can cost far more than the chunk it measures
    (each step waits for the scheduler), so the parallel kernel is only tried when the
    load suggests the other cores are idle; the measurement then decides.
    """
    try:
        load = os.getloadavg()[0]
    except OSError:  # no load average on this platform: let the measurement decide
        return True
    return load < numba.get_num_threads() - 0.5


def _grown(buffer: np.ndarray, capacity: int, used: int) -> np.ndarray:
    bigger = np.empty(capacity, buffer.dtype)
    bigger[:used] = buffer[:used]
    return bigger
