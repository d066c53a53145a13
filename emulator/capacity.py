"""The hardware's finite queues, modelled: the emulator fails a job where a core would.

docs/model.md: "Where an implementation must deviate (a capacity the hardware lacks), it
refuses the job with a clear error; it never silently computes something else." A core
(:class:`neurofab.hdl.config.CoreConfig`) holds at most ``event_queue`` events in flight;
when a push finds its pool full it drops the event and sets a sticky error flag with the
step (:class:`neurofab.hdl.event_queue.EventQueue`). Given a :class:`QueueCapacity`,
:func:`neurofab.emulator.simulate` counts the same events and raises the same
:class:`CapacityExceeded` at the same step, instead of returning spikes the core would
not have produced.

The rule (hdl/config.py, docs/memory-map.md "Capacities the emulator models"): a spike
emitted at step ``s`` over a synapse with delay ``d`` is one event, zero weights
included, held **by the core of the synapse's target** from the fan-out of ``s`` until
the drain of ``s + 1 + d`` (the drain of step ``t`` runs before the fan-out of ``t``),
and not at all when ``s + 1 + d >= T``. After the fan-out of step ``s`` a core may hold
at most ``event_queue`` events; if it holds more, it overflowed at step ``s``. Before the
first overflow the core and the emulator agree spike for spike, so counting from the
emulator's own spikes gives the hardware's step exactly.

Accumulators cannot overflow where the queue does not: the events drained into one
``(neuron, compartment)`` accumulator at a step were all held at once, so there are at
most ``event_queue`` of them, each of magnitude at most :data:`MAX_EVENT_MAGNITUDE`, and
the accumulator is cleared every step. :class:`QueueCapacity` refuses a core shape where
``event_queue * MAX_EVENT_MAGNITUDE`` does not fit the signed ``acc_bits`` range (no
preset; only a hand-made narrow core), because there the outcome depends on the order in
which the hardware adds events, which this model does not follow.

How the counting runs: per source neuron, its synapses are summarised once as a short
list of ``(target core, delay, count)`` (:func:`source_groups`). After each chunk of
steps the engine hands the chunk's spikes to :meth:`QueueCounter.advance`, which keeps a
64-slot ring of arrival counts per core, drains slot ``t mod 64`` at the start of step
``t``, adds every spike's groups, and checks each core after the step's fan-out. The
kernels' hot loop is untouched; the cost is one pass over the spikes (a few groups each)
and ``cores`` operations per step, and nothing at all without a capacity.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from numba import njit

from neurofab.errors import ValidationError
from neurofab.hdl.config import MAX_DELAY_SLOTS, CoreConfig

__all__ = [
    "MAX_EVENT_MAGNITUDE",
    "CapacityExceeded",
    "QueueCapacity",
    "QueueCounter",
    "source_groups",
    "warm_up",
]

#: the largest ``|value|`` of one event: a weight is -32768 .. 32767, a graded value
#: ``(w * g) >> 7`` with ``g <= 255`` is -65280 .. 65279 (docs/memory-map.md, ``event``)
MAX_EVENT_MAGNITUDE = -((-32768 * 255) >> 7)

#: the arrival ring: delays 0 .. 63 arrive 1 .. 64 steps on, and the slot an arrival
#: ``t + 64`` lands in was drained at the start of ``t``
_RING = MAX_DELAY_SLOTS

_KINDS = ("queue_overflow", "acc_overflow")


class CapacityExceeded(ValidationError):
    """A core's event queue or an accumulator overflowed: the job fails at ``step``.

    The one error for this on every backend: the emulator raises it when it predicts the
    overflow, the RTL runner when the core's sticky flag reports it, with the same
    message. Like a network that does not fit the preset, the job asks more of the core
    than it has, so this is a :class:`~neurofab.errors.ValidationError` (the CLI prints it
    and exits 2, the service answers 400).

    Parameters
    ----------
    kind : str
        ``"queue_overflow"`` or ``"acc_overflow"``.
    step : int
        The step whose fan-out (queue) or drain (accumulator) overflowed first.
    config : CoreConfig
        The core's shape: its ``name`` (the preset), ``event_queue`` and ``acc_bits``.
    core : int
        Which core of the image overflowed (0 on a single-core target).
    in_flight : int or None
        The events the core would hold after the fan-out of ``step`` (more than
        ``event_queue``), where known: the emulator counts them, the hardware cannot (it
        drops what does not fit). Not in the message, so that every backend's is the same.

    Attributes ``kind``, ``step``, ``core``, ``capacity`` (``event_queue``), ``preset``,
    ``in_flight`` carry the same facts.
    """

    def __init__(self, kind: str, step: int, config: CoreConfig, *, core: int = 0,
                 in_flight: int | None = None):
        if kind not in _KINDS:
            raise ValueError(f"kind must be one of {_KINDS}, not {kind!r}")
        self.kind, self.step, self.core, self.in_flight = kind, int(step), int(core), in_flight
        self.capacity, self.preset = config.event_queue, config.name
        if kind == "queue_overflow":
            message = (f"the event queue overflowed at step {self.step}: more than {config.event_queue:,} "
                       f"events in flight on core {self.core} (preset {config.name}); use a larger preset, "
                       f"fewer synapses, lower activity or shorter delays")
        else:
            message = (f"an accumulator overflowed at step {self.step}: an input sum left the signed "
                       f"{config.acc_bits}-bit range on core {self.core} (preset {config.name})")
        super().__init__("", message)

    def __reduce__(self):  # keep the keyword arguments through pickling (worker processes)
        return _rebuild, (self.kind, self.step, self.capacity, self.preset, self.args, self.core,
                          self.in_flight, type(self))


def _rebuild(kind, step, capacity, preset, args, core, in_flight, cls):
    error = cls.__new__(cls)
    ValidationError.__init__(error, "", args[0])
    error.kind, error.step, error.core, error.in_flight = kind, step, core, in_flight
    error.capacity, error.preset = capacity, preset
    return error


@dataclass(frozen=True, eq=False)
class QueueCapacity:
    """The event queues of a compiled image's cores, for ``simulate(..., capacity=)``.

    Parameters
    ----------
    config : CoreConfig
        The shape of every core (the image's): ``event_queue`` is each core's capacity,
        ``name`` the preset the error names.
    core_of_gid : array of int, shape ``(n_neurons,)``
        The core that holds each neuron (by global id). An event lives on its target's core.

    Raises :class:`ValidationError` when a core id is outside ``0 .. max_cores - 1`` or
    the shape's accumulators could overflow before its queue does (see the module doc).
    """

    config: CoreConfig
    core_of_gid: np.ndarray

    def __post_init__(self):
        config = self.config
        if not isinstance(config, CoreConfig):
            raise ValidationError("capacity.config", f"must be a CoreConfig, not {config!r}")
        cores = np.asarray(self.core_of_gid)
        if cores.ndim != 1 or (cores.size and not np.issubdtype(cores.dtype, np.integer)):
            raise ValidationError("capacity.core_of_gid",
                                  f"must be a 1-D array of integers, not {cores.dtype} of shape "
                                  f"{cores.shape}")
        if cores.size and (cores.min() < 0 or cores.max() >= config.max_cores):
            i = int(np.flatnonzero((cores < 0) | (cores >= config.max_cores))[0])
            raise ValidationError(f"capacity.core_of_gid[{i}]",
                                  f"must be a core of 0 .. {config.max_cores - 1} (preset {config.name}), "
                                  f"not {int(cores[i])}")
        if config.event_queue * MAX_EVENT_MAGNITUDE >= 1 << (config.acc_bits - 1):
            raise ValidationError(
                "capacity.config.acc_bits",
                f"of preset {config.name} is {config.acc_bits}: {config.event_queue:,} events of up to "
                f"{MAX_EVENT_MAGNITUDE:,} can overflow an accumulator before the queue, which the emulator "
                f"does not model; it needs at least "
                f"{(config.event_queue * MAX_EVENT_MAGNITUDE).bit_length() + 1} bits")
        object.__setattr__(self, "core_of_gid", cores.astype(np.int32, copy=False))

    @classmethod
    def from_image(cls, image) -> QueueCapacity:
        """The capacity of ``image`` (a :class:`neurofab.compiler.image.Image`): its preset and placement."""
        return cls(image.config, image.core_of(np.arange(image.n_neurons)))

    @classmethod
    def for_image(cls, image) -> QueueCapacity | None:
        """:meth:`from_image`, or ``None`` where the core shape can never overflow.

        A synapse holds at most ``delay_slots`` events at once (its source spikes at most
        once a step), so a queue of ``delay_slots * synapse_words`` events (the ``sim``
        preset's) never fills, and counting would only cost time.
        """
        config = image.config
        if config.event_queue >= config.delay_slots * config.synapse_words:
            return None
        return cls.from_image(image)

    @property
    def events_per_core(self) -> int:
        return self.config.event_queue

    @property
    def n_cores(self) -> int:
        """Cores that hold at least the highest-numbered neuron's (cores above hold nothing)."""
        return int(self.core_of_gid.max()) + 1 if self.core_of_gid.size else 1

    def counter(self, src, tgt, delay, timesteps: int) -> QueueCounter:
        """A :class:`QueueCounter` for a netlist's synapses and a job of ``timesteps`` steps."""
        n = self.core_of_gid.shape[0]
        src = np.asarray(src, np.int32)
        delay = np.asarray(delay, np.int32)
        if delay.size and delay.max() >= self.config.delay_slots:
            i = int(np.flatnonzero(delay >= self.config.delay_slots)[0])
            raise ValidationError(f"netlist.delay[{i}]",
                                  f"must be below the {self.config.name} core's {self.config.delay_slots} "
                                  f"delay slots, not {int(delay[i])}")
        n_cores = self.n_cores
        if n_cores == 1:  # every hardware preset: no per-synapse lookup
            targets = np.zeros(src.shape[0], np.int32)
        else:
            targets = self.core_of_gid[np.asarray(tgt, np.int64)]
        offsets, group_core, group_delay, group_count = source_groups(src, targets, delay, n, n_cores)
        return QueueCounter(self, offsets, group_core, group_delay, group_count, timesteps)


class QueueCounter:
    """Events in flight per core over a run, advanced chunk by chunk from the run's spikes.

    ``advance(t0, t1, spike_times, spike_gids, n_spikes)`` takes steps ``t0 .. t1 - 1``
    (every step once, in order); ``spike_times``/``spike_gids`` are the run's spikes so
    far, sorted by step, of which the first ``n_spikes`` are valid. It raises
    :class:`CapacityExceeded` for the first step after whose fan-out a core holds more
    than its ``event_queue`` events. ``peak[c]`` is the most core ``c`` held after any
    step so far, ``peak_step[c]`` the first step it did.
    """

    def __init__(self, capacity: QueueCapacity, offsets, group_core, group_delay, group_count, timesteps):
        self.capacity = capacity
        self.timesteps = int(timesteps)
        self._groups = (offsets, group_core, group_delay, group_count)
        n_cores = capacity.n_cores
        self._arrivals = np.zeros((n_cores, _RING), np.int64)
        self.held = np.zeros(n_cores, np.int64)
        self.peak = np.zeros(n_cores, np.int64)
        self.peak_step = np.zeros(n_cores, np.int64)
        self._next_step = 0
        self._next_spike = 0

    def advance(self, t0: int, t1: int, spike_times, spike_gids, n_spikes: int) -> None:
        if t0 != self._next_step:
            raise ValueError(f"steps must be counted in order: expected {self._next_step}, got {t0}")
        reached, core, self._next_spike = _count_steps(
            t0, t1, self.timesteps, spike_times, spike_gids, self._next_spike, n_spikes, *self._groups,
            self._arrivals, self.held, self.peak, self.peak_step, self.capacity.events_per_core)
        self._next_step = reached
        if core >= 0:
            raise CapacityExceeded("queue_overflow", reached - 1, self.capacity.config, core=core,
                                   in_flight=int(self.held[core]))


@njit(cache=True)
def source_groups(src, core, delay, n_neurons, n_cores):
    """Each source's synapses summarised by (target core, delay): ``(offsets, core, delay, count)``.

    Source ``s``'s groups are ``offsets[s] .. offsets[s + 1]`` (in no particular order);
    each is a distinct ``(core, delay)`` with the number of the source's synapses that
    have it. A spike of ``s`` puts ``count`` events on ``core`` for arrival ``+ 1 +
    delay``. ``core`` values are below ``n_cores``.
    """
    m = src.shape[0]
    start = np.zeros(n_neurons + 1, np.int64)
    for i in range(m):
        start[src[i] + 1] += 1
    for s in range(n_neurons):
        start[s + 1] += start[s]
    # one key per synapse, filed by source: core * 64 + delay
    keys = np.empty(m, np.int64)
    fill = start[:-1].copy()
    for i in range(m):
        keys[fill[src[i]]] = np.int64(core[i]) * 64 + delay[i]
        fill[src[i]] += 1
    offsets = np.zeros(n_neurons + 1, np.int64)
    group_key = np.empty(m, np.int64)
    group_count = np.empty(m, np.int64)
    n_groups = 0
    n_keys = n_cores * 64
    # few keys (every hardware target): a histogram per source, no sort; many cores: sort
    histogram = np.zeros(n_keys if n_keys <= 1 << 16 else 0, np.int64)
    for s in range(n_neurons):
        lo = start[s]
        hi = start[s + 1]
        if hi == lo:
            offsets[s + 1] = n_groups
            continue
        if histogram.shape[0]:
            for j in range(lo, hi):
                histogram[keys[j]] += 1
            for j in range(lo, hi):
                key = keys[j]
                if histogram[key] > 0:
                    group_key[n_groups] = key
                    group_count[n_groups] = histogram[key]
                    histogram[key] = 0
                    n_groups += 1
        else:
            run = np.sort(keys[lo:hi])
            group_key[n_groups] = run[0]
            group_count[n_groups] = 1
            n_groups += 1
            for j in range(1, hi - lo):
                if run[j] == run[j - 1]:
                    group_count[n_groups - 1] += 1
                else:
                    group_key[n_groups] = run[j]
                    group_count[n_groups] = 1
                    n_groups += 1
        offsets[s + 1] = n_groups
    group_core = (group_key[:n_groups] // 64).astype(np.int32)
    group_delay = (group_key[:n_groups] % 64).astype(np.int32)
    return offsets, group_core, group_delay, group_count[:n_groups].copy()


@njit(cache=True)
def _count_steps(t0, t1, timesteps, spike_times, spike_gids, k, n_spikes, offsets, group_core, group_delay,
                 group_count, arrivals, held, peak, peak_step, capacity):
    """Run the queue rule over steps ``t0 .. t1 - 1``; ``(next step, overflowing core or -1, next spike)``.

    Stops after the first step at whose end a core holds more than ``capacity``; the
    core returned is the lowest-numbered one that does.
    """
    n_cores = held.shape[0]
    for t in range(t0, t1):
        slot = t % 64
        # the drain of step t, before its fan-out
        for c in range(n_cores):
            held[c] -= arrivals[c, slot]
            arrivals[c, slot] = 0
        # the fan-out of step t: arrivals at T or later are not queued
        while k < n_spikes and spike_times[k] == t:
            g = spike_gids[k]
            for j in range(offsets[g], offsets[g + 1]):
                arrival = t + 1 + group_delay[j]
                if arrival < timesteps:
                    c = group_core[j]
                    arrivals[c, arrival % 64] += group_count[j]
                    held[c] += group_count[j]
            k += 1
        over = -1
        for c in range(n_cores):
            if held[c] > peak[c]:
                peak[c] = held[c]
                peak_step[c] = t
            if held[c] > capacity and over < 0:
                over = c
        if over >= 0:
            return t + 1, over, k
    return t1, -1, k


_warm = False


def warm_up() -> float:
    """Compile (or load from numba's disk cache) the counting functions; the seconds spent."""
    global _warm
    if _warm:
        return 0.0
    began = time.perf_counter()
    one = np.zeros(1, np.int32)
    offsets, group_core, group_delay, group_count = source_groups(one, one, one, 1, 1)
    _count_steps(0, 1, 1, one, one, 0, 1, offsets, group_core, group_delay, group_count,
                 np.zeros((1, _RING), np.int64), np.zeros(1, np.int64), np.zeros(1, np.int64),
                 np.zeros(1, np.int64), 1)
    _warm = True
    return time.perf_counter() - began
