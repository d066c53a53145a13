"""The hardware's finite queues, modelled: the emulator fails a job where a core would.

docs/model.md: "Where an implementation must deviate (a capacity the hardware lacks), it
refuses the job with a clear error; it never silently computes something else." A core
(:class:`neurofab.hdl.config.CoreConfig`) holds at most ``event_queue`` events in flight;
when a push finds its pool full it drops the event and sets a sticky error flag with the
step (:class:`neurofab.hdl.event_queue.EventQueue`). Given a :class:`QueueCapacity`,
:func:`neurofab.emulator.simulate` counts the same events and raises the same
:class:`CapacityExceeded` at the same step, instead of returning spikes the core would
not have produced.

The rule (hdl/config.py, docs/hardware.md "Core v2"): a spike emitted at step ``s`` over
a synapse with delay ``d`` is one event, zero weights included, that arrives at ``s + 1 +
d`` on **the core of the synapse's target**, and is not made at all when ``s + 1 + d >=
T``. A delay-0 event goes straight into the accumulators of step ``s + 1`` and never
enters the queue; any other is pushed during the fan-out of ``s``, and the queue counts
it (``held``) until the end of step ``s + d``, the step that drains it. So after the
fan-out of step ``s`` a core holds the events with arrival ``> s`` less the delay-0
events emitted at ``s``, at most ``event_queue`` of them; if it holds more, it overflowed
at step ``s``. (The hardware subtracts a step's drained events at the step's end, not as
they leave, so the count does not depend on how its concurrent streams interleave.)
With one accumulator bank (``CoreConfig.accumulator_banks == 1``, the iCE40 core) a
step drains its slot before the pass and every event goes through the queue, delay-0
ones too, and the queue subtracts a drain's events as it ends: after the fan-out of step
``s`` the core holds every event with arrival ``> s``.
Before the first overflow the core and the emulator agree spike for spike, so counting
from the emulator's own spikes gives the hardware's step exactly.

Accumulators: the events into one ``(neuron, compartment)`` sum arrive at the hardware
in an order that depends on timing, so a partial sum that leaves the signed ``acc_bits``
range cannot be modelled; it must be impossible. :func:`check_accumulator_range` (the
emulator with a capacity, through :meth:`QueueCapacity.check_accumulators`, and the RTL
backend, through :func:`check_image_accumulators`: one rule) refuses a job before it
runs when the events one step can bring to one sum could leave that range: the sum of
the largest positive values of the synapses onto it, or of the largest negative ones
(any partial sum lies between the two). A synapse's value is its weight ``w``, or with
graded spikes ``(w * g) >> 7`` for a payload ``g <= 255``, so at most ``(w * 255) >> 7``
in magnitude (``-65,280 .. 65,278``); a plastic synapse of a learning job may take any
weight. The hardware presets' signed 32-bit sums take 32,896 synapses of the most
negative graded value onto one compartment (65,536 of weight -32,768 without graded
spikes), and refuse one more.

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
    "AccumulatorRangeError",
    "QueueCapacity",
    "QueueCounter",
    "event_extremes",
    "accumulator_reach",
    "check_accumulator_range",
    "check_image_accumulators",
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


class AccumulatorRangeError(ValidationError):
    """One step's events could carry an accumulator sum out of its signed ``acc_bits`` range.

    Raised before a run (:func:`check_accumulator_range`), like a network that does not
    fit the preset: the CLI prints it and exits 2, the service answers 400. ``path`` is
    ``"core"``; attributes ``neuron`` (global id), ``compartment``, ``reach`` (the
    largest sum, signed: negative for the negative side), ``preset``.
    """

    def __init__(self, message: str, *, neuron: int, compartment: int, reach: int, preset: str):
        super().__init__("core", message)
        self.neuron, self.compartment, self.reach, self.preset = neuron, compartment, reach, preset

    def __reduce__(self):  # keep the keyword arguments through pickling (worker processes)
        return _rebuild_range, (self.args[0], self.neuron, self.compartment, self.reach, self.preset)


def _rebuild_range(text, neuron, compartment, reach, preset):
    error = AccumulatorRangeError.__new__(AccumulatorRangeError)
    ValueError.__init__(error, text)
    error.path = "core"
    error.neuron, error.compartment, error.reach, error.preset = neuron, compartment, reach, preset
    return error


#: a weight's range (docs/model.md: "w (signed 16 bit)"), for plastic synapses that learn
_W_MIN, _W_MAX = -(1 << 15), (1 << 15) - 1
#: the largest graded payload: ``(w * g) >> 7`` with ``g <= 255``
_G_MAX = 255
_GRADED_SHIFT = 7


def event_extremes(weight, *, graded: bool, plastic=None):
    """The most positive and the most negative value one event of each synapse can carry.

    Without ``graded`` an event's value is its weight ``w``; with it ``(w * g) >> 7`` for
    a payload ``g`` in ``0 .. 255``, which is monotonic in ``g``: ``0 .. (w * 255) >> 7``
    (``>> 7`` floors, so ``w = -1`` gives ``-2``). Where ``plastic`` is true (a learning
    job's plastic synapses), the weight may become any of ``-32768 .. 32767``. Returns
    ``(most, least)``, ``int64`` arrays: ``most >= 0 >= least``.
    """
    w = np.asarray(weight, np.int64)
    if graded:
        top = (w * _G_MAX) >> _GRADED_SHIFT
    else:
        top = w
    most, least = np.maximum(top, 0), np.minimum(top, 0)
    if plastic is not None:
        learns = np.asarray(plastic, bool)
        hi = (_W_MAX * _G_MAX) >> _GRADED_SHIFT if graded else _W_MAX
        lo = (_W_MIN * _G_MAX) >> _GRADED_SHIFT if graded else _W_MIN
        most = np.where(learns, hi, most)
        least = np.where(learns, lo, least)
    return most, least


def accumulator_reach(tgt, compartment, weight, n_neurons: int, compartments: int, *, graded: bool,
                      plastic=None):
    """``(up, down)``, each ``int64`` of shape ``(n_neurons, compartments)``.

    ``up[n, c]`` is the sum of the largest positive values of the synapses onto
    compartment ``c`` of neuron ``n`` (:func:`event_extremes`), ``down[n, c]`` the sum of
    the most negative ones (``<= 0``). A synapse gives at most one event a step (its
    source spikes at most once a step), so every partial sum of one step's events into
    that accumulator lies in ``down .. up``, and both ends can be reached.
    """
    most, least = event_extremes(weight, graded=graded, plastic=plastic)
    key = np.asarray(tgt, np.int64) * compartments + np.asarray(compartment, np.int64)
    size = n_neurons * compartments
    # float64 sums of integers are exact below 2^53: at most 2^32 synapses of |value| <= 65,280
    up = np.bincount(key, weights=most, minlength=size).astype(np.int64)
    down = np.bincount(key, weights=least, minlength=size).astype(np.int64)
    return up.reshape(n_neurons, compartments), down.reshape(n_neurons, compartments)


def _population_names(populations):
    """``gid -> "label[i]"`` for ``populations`` given as ``(label, size)`` in gid order."""
    labels = [label for label, _ in populations]
    starts = np.cumsum([0] + [int(size) for _, size in populations])

    def name(gid: int) -> str:
        p = int(np.searchsorted(starts, gid, side="right")) - 1
        if 0 <= p < len(labels):
            return f"{labels[p]}[{gid - int(starts[p])}]"
        return str(gid)
    return name


def check_accumulator_range(config: CoreConfig, tgt, compartment, weight, *, graded: bool, plastic=None,
                            names=None) -> None:
    """Raise :class:`AccumulatorRangeError` where one step's events could overflow a sum.

    ``tgt`` (global neuron ids), ``compartment``, ``weight`` (and, for a learning job,
    ``plastic``) are the synapses; ``graded`` the job's flag; ``names(gid)`` names a
    neuron in the message (default: its id). The sum of a ``(neuron,
    compartment)`` is a signed ``config.acc_bits``-bit accumulator; the check fails when
    :func:`accumulator_reach` leaves that range, and names the first such sum (lowest
    neuron, then compartment).
    """
    tgt = np.asarray(tgt, np.int64)
    if tgt.size == 0:
        return
    n = int(tgt.max()) + 1
    up, down = accumulator_reach(tgt, compartment, weight, n, config.compartments, graded=graded,
                                 plastic=plastic)
    hi = (1 << (config.acc_bits - 1)) - 1
    lo = -(1 << (config.acc_bits - 1))
    over = (up > hi) | (down < lo)
    if not over.any():
        return
    gid, c = (int(i) for i in np.argwhere(over)[0])
    reach = int(up[gid, c]) if up[gid, c] > hi else int(down[gid, c])
    who = names(gid) if names is not None else str(gid)
    kind = "graded spikes" if graded else "spikes"
    learning = " (plastic synapses at any weight: the job learns)" if plastic is not None and \
        np.asarray(plastic, bool).any() else ""
    raise AccumulatorRangeError(
        f"neuron {who} compartment {c} can receive {reach:,} in one step: its synapses' events "
        f"({kind}{learning}) could add up beyond the signed {config.acc_bits}-bit accumulator "
        f"({lo:,} .. {hi:,}) of preset {config.name}, where the order of the adds decides what "
        f"is stored; use fewer or weaker synapses onto it",
        neuron=gid, compartment=c, reach=reach, preset=config.name)


def check_image_accumulators(image, job) -> None:
    """:func:`check_accumulator_range` for ``job`` on a compiled ``image``, from its synapse memories.

    The same rule as :meth:`QueueCapacity.check_accumulators` (the emulator's), for a
    backend that runs the image itself (``neurofab.host.rtl``): every core's synapse
    words (a target is ``bounds[core] + target``), the image's preset and populations.
    """
    from neurofab.hdl.layouts import Memory  # here: the emulator itself needs no Amaranth

    config = image.config
    tgt, compartment, weight, plastic = [], [], [], []
    for c in range(image.n_cores):
        words = image.fields(c, Memory.SYNAPSE)
        tgt.append(int(image.bounds[c]) + words["target"])
        compartment.append(words["compartment"])
        weight.append(words["weight"])
        plastic.append(words["plastic"].astype(bool))
    if not tgt:
        return
    check_accumulator_range(config, np.concatenate(tgt), np.concatenate(compartment), np.concatenate(weight),
                            graded=job.learning.graded,
                            plastic=np.concatenate(plastic) if job.learning.enabled else None,
                            names=_population_names(image.populations))


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

    Raises :class:`ValidationError` when a core id is outside ``0 .. max_cores - 1``.
    A job's accumulator sums are checked by :meth:`check_accumulators` (see the module
    doc), which needs the job.
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

    def check_accumulators(self, netlist, job) -> None:
        """Refuse ``job`` on ``netlist`` where one step's events could overflow an accumulator.

        :func:`check_accumulator_range` over the netlist's synapses, with the job's
        ``graded`` and ``enabled`` (learning) flags; raises :class:`AccumulatorRangeError`.
        The engine calls it before a run with this capacity.
        """
        names = _population_names([(p.label, p.size) for p in netlist.populations])
        check_accumulator_range(self.config, netlist.tgt, netlist.compartment, netlist.weight,
                                graded=job.learning.graded,
                                plastic=netlist.plastic if job.learning.enabled else None, names=names)

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
        # with two banks delay-0 events go straight into the accumulators and the queue
        # never holds them; with one bank they are queued like any other
        queued = delay >= (1 if self.config.accumulator_banks == 2 else 0)
        src, delay = src[queued], delay[queued]
        n_cores = self.n_cores
        if n_cores == 1:  # every hardware preset: no per-synapse lookup
            targets = np.zeros(src.shape[0], np.int32)
        else:
            targets = self.core_of_gid[np.asarray(tgt, np.int64)[queued]]
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
