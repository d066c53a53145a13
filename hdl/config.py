"""The shape of one neuromorphic core: capacities and word widths, and the board presets.

One :class:`CoreConfig` parametrises everything that depends on a core's size: the
memory-word layouts (:mod:`neurofab.hdl.layouts`), the compiler that fills those
memories, the emulator's model of the core's finite queues, and the HDL core. A
network that does not fit a core's shape is refused by the compiler before anything
runs; nothing is ever silently dropped.

Per core there are these memories (docs/memory-map.md has every field):

========================= ========================== =====================================
memory                    depth                      contents
========================= ========================== =====================================
profile table             ``profiles``               neuron parameters, shared
neuron memory             ``neurons``                state, profile index, route list
accumulators              ``2 * neurons``            two banks of ``compartments`` sums
stimulus                  ``neurons``                stimulus sums (host-written)
axon table                ``axons``                  synapse list of each axon
synapse memory            ``synapse_words``          target, weight, delay, ...
route table               ``route_words``            (destination core, axon)
event queue               ``event_queue``            spikes in flight, with their value
========================= ========================== =====================================

Axon ``i < n_local`` of a core is its own neuron ``i``; the axons above are *remote*
axons, one per (source neuron on another core) that has synapses here. So ``axons``
bounds local neurons plus remote sources.

The event queue (the delay mechanism). A spike emitted at step ``s`` fans out over its
synapses; each becomes one event ``(target, compartment, value)``, value fixed at
emission, arriving at ``s + 1 + delay`` on the target's core (none when that is ``>= T``).
A delay-0 event goes straight into the accumulators that collect step ``s + 1``; any
other is pushed into the core's queue and drained during step ``s + delay``. The queue
counts ``held``: +1 per push, less a step's drained events at that step's end. So after
the fan-out of step ``s`` (every core's, remote spikes included) a core holds the events
with arrival ``> s`` less the delay-0 events emitted at ``s``; more than ``event_queue``
and the core overflows at step ``s``, and the run is refused naming that step and core
(the emulator predicts the same step). An accumulator holds a signed ``acc_bits``-bit
sum, and one step's events reach it in a timing-dependent order; a job whose synapses'
largest positive values, or most negative ones, onto one (neuron, compartment) could add
up beyond that range is refused before it runs, naming the neuron and compartment. Every
synapse of a spiking neuron gives one event, zero weights included.

With ``accumulator_banks = 1`` (the iCE40) a step drains its slot into the one bank
before the pass, and delay-0 events go through the queue like any other (slot ``s + 1``,
drained at the start of step ``s + 1``): after the fan-out of step ``s`` the core holds
every event with arrival ``> s``, delay-0 events included.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from neurofab.errors import ValidationError

__all__ = [
    "MAX_DELAY_SLOTS",
    "CoreConfig",
    "PRESETS",
    "get_preset",
    "addr_bits",
    "count_bits",
]

#: "delay 0 .. 63": an arrival ring of 64 steps covers every delay the API accepts
MAX_DELAY_SLOTS = 64


def addr_bits(depth: int) -> int:
    """Bits of an address into a memory of ``depth`` words (0 for a memory of 0 or 1 word)."""
    return (depth - 1).bit_length() if depth > 1 else 0


def count_bits(depth: int) -> int:
    """Bits of a count ``0 .. depth`` (a list may fill the whole memory)."""
    return depth.bit_length()


@dataclass(frozen=True)
class CoreConfig:
    """Capacities of one core, and how many cores a target has.

    Every capacity is per core. Widths of the memory words follow from them
    (the ``*_bits`` properties); the layouts in :mod:`neurofab.hdl.layouts` use them.

    Attributes
    ----------
    name : str
        The preset's name (``icebreaker``), used in reports and error messages.
    max_cores : int
        Cores the target has (1 for the single-core boards).
    neurons : int
        Neurons per core (depth of the neuron memory).
    compartments : int
        Input compartments per neuron, 1 .. 4 (accumulators per neuron).
    profiles : int
        Entries of the shared parameter-profile table.
    synapse_words : int
        Depth of the synapse memory.
    axons : int
        Depth of the axon table: local neurons plus remote axons. At least ``neurons``.
    route_words : int
        Depth of the inter-core route table (0 on a single-core target).
    delay_slots : int
        Arrival slots of the event queue; delays ``0 .. delay_slots - 1`` are possible.
    event_queue : int
        Events in flight a core can hold (see the module doc for exactly when).
    acc_bits : int
        Width of one signed input accumulator.
    device : str
        What the preset was sized for (free text for reports).
    memory_bits : int
        The target's block-memory budget per core in bits, or 0 for no budget (sim).
    accumulator_banks : int
        2 (core v2): step ``t``'s pass reads one bank while the other collects step
        ``t + 1``, and a delay-0 event goes straight into the collecting bank. 1 (the
        iCE40, whose block RAM holds one bank): a step drains its slot into the bank,
        then runs the pass, and every event, delay 0 included, goes through the queue;
        so the queue also holds a step's delay-0 events (see the module doc).
    spram : bool
        The iCE40UP memory system (docs/ice40-plan.md): synapses in two single-port
        SPRAM tiles without ``compartment`` (kept packed in rows beside the event pool),
        the event pool, axon table and compartment rows in the other two.
    """

    name: str
    max_cores: int
    neurons: int
    compartments: int
    profiles: int
    synapse_words: int
    axons: int
    route_words: int
    delay_slots: int
    event_queue: int
    acc_bits: int
    device: str = ""
    memory_bits: int = 0
    accumulator_banks: int = 2
    spram: bool = False

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise ValidationError("core.name", f"must be a non-empty string, not {self.name!r}")
        limits = {
            "max_cores": (1, 1 << 20),
            "neurons": (1, 1 << 20),
            "compartments": (1, 4),
            "profiles": (1, 1 << 20),
            "synapse_words": (1, 1 << 32),
            "axons": (1, 1 << 32),
            "route_words": (0, 1 << 32),
            "delay_slots": (1, MAX_DELAY_SLOTS),
            "event_queue": (1, 1 << 40),
            # one event's value is 17 bits signed (graded: (w * g) >> 7); the model sums
            # in at least 32 bits, a narrower accumulator refuses sums it cannot hold
            "acc_bits": (18, 64),
            "memory_bits": (0, 1 << 48),
            "accumulator_banks": (1, 2),
        }
        for key, (lo, hi) in limits.items():
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
                raise ValidationError(f"core.{key}", f"must be an integer in {lo} .. {hi}, not {value!r}")
        if not isinstance(self.spram, bool):
            raise ValidationError("core.spram", f"must be true or false, not {self.spram!r}")
        if self.axons < self.neurons:
            raise ValidationError(
                "core.axons", f"must be at least neurons ({self.neurons}): every local neuron has an "
                f"axon entry, not {self.axons}")
        if self.max_cores > 1 and self.route_words == 0:
            raise ValidationError(
                "core.route_words", f"must be positive when max_cores is {self.max_cores}, not 0")

    # -- widths derived from the capacities ------------------------------------------
    @property
    def neuron_bits(self) -> int:
        """Width of a local neuron index."""
        return addr_bits(self.neurons)

    @property
    def profile_bits(self) -> int:
        return addr_bits(self.profiles)

    @property
    def synapse_addr_bits(self) -> int:
        return addr_bits(self.synapse_words)

    @property
    def synapse_count_bits(self) -> int:
        return count_bits(self.synapse_words)

    @property
    def axon_bits(self) -> int:
        return addr_bits(self.axons)

    @property
    def route_addr_bits(self) -> int:
        return addr_bits(self.route_words)

    @property
    def route_count_bits(self) -> int:
        # a neuron routes to at most every other core
        return count_bits(min(self.route_words, self.max_cores - 1))

    @property
    def core_bits(self) -> int:
        return addr_bits(self.max_cores)

    @property
    def queue_bits(self) -> int:
        return addr_bits(self.event_queue)

    @property
    def accumulators(self) -> int:
        """Accumulator words per core: one per (neuron, compartment)."""
        return self.neurons * self.compartments

    def to_dict(self) -> dict:
        """Every field, for the image header (``CoreConfig(**d)`` rebuilds it)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _preset(**kw) -> CoreConfig:
    return CoreConfig(**kw)


# The arithmetic behind each hardware preset is in docs/memory-map.md ("Presets"); the
# test suite recomputes every budget there from these numbers and the layouts.
PRESETS: dict[str, CoreConfig] = {
    c.name: c
    for c in (
        _preset(
            name="icebreaker", device="iCE40UP5K: 30 x 4 Kbit EBR + 4 x 256 Kbit SPRAM",
            memory_bits=30 * 4096 + 4 * 262144,
            max_cores=1, neurons=512, compartments=4, profiles=16, synapse_words=16384,
            axons=512, route_words=0, delay_slots=64, event_queue=10240, acc_bits=20,
            accumulator_banks=1, spram=True,
        ),
        _preset(
            name="ulx3s-25f", device="ECP5-25F: 56 x 18 Kbit block RAM",
            memory_bits=56 * 18432,
            max_cores=1, neurons=1024, compartments=4, profiles=16, synapse_words=6144,
            axons=1024, route_words=0, delay_slots=64, event_queue=2048, acc_bits=32,
        ),
        _preset(
            name="ulx3s-85f", device="ECP5-85F: 208 x 18 Kbit block RAM",
            memory_bits=208 * 18432,
            max_cores=1, neurons=1024, compartments=4, profiles=32, synapse_words=49152,
            axons=1024, route_words=0, delay_slots=64, event_queue=8192, acc_bits=32,
        ),
        _preset(
            name="sim", device="emulator only (no memory budget)",
            memory_bits=0,
            # every synapse can have one event in flight per slot: the queue never overflows
            max_cores=1 << 16, neurons=1 << 16, compartments=4, profiles=1 << 12,
            synapse_words=1 << 24, axons=1 << 18, route_words=1 << 20, delay_slots=64,
            event_queue=(1 << 24) * 64, acc_bits=64,
        ),
    )
}


def get_preset(name: str) -> CoreConfig:
    """The preset called ``name``; a :class:`ValidationError` lists the known ones."""
    try:
        return PRESETS[name]
    except (KeyError, TypeError):
        known = ", ".join(PRESETS)
        raise ValidationError("core", f"preset {name!r} is unknown; known presets: {known}") from None
