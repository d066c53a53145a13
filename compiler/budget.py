"""The arithmetic behind each hardware preset: a core's memories mapped onto block RAM.

:func:`core_memories` lists every memory a core of a given shape needs (depth x width,
image memories and runtime ones), with widths from :mod:`neurofab.hdl.layouts`.
:func:`device_budget` maps them onto the block RAM primitives of the preset's FPGA the
way the HDL core is meant to (``MAPPINGS``), and counts the blocks. docs/memory-map.md
prints these tables and the tests check every hardware preset fits its device.
"""

from __future__ import annotations

from dataclasses import dataclass

from neurofab.hdl.config import MAX_DELAY_SLOTS, CoreConfig, addr_bits
from neurofab.hdl.layouts import (
    CHUNK_EVENTS,
    PROFILE_LAYOUT,
    SPRAM_ROW_BITS,
    TRACE_BITS,
    core_layouts,
    spram_regions,
    spram_synapse_layout,
)
from neurofab.hdl.spike_list import entry_layout as spike_list_entry

__all__ = ["Primitive", "CoreMemory", "Placed", "PRIMITIVES", "MAPPINGS", "SPRAM_MAPPING", "OVER_BUDGET",
           "core_memories",
           "core_bits",
           "device_budget", "blocks_for"]


@dataclass(frozen=True)
class Primitive:
    """A block RAM primitive: its aspect ratios ``(depth, width)`` and how many a device has."""

    name: str
    modes: tuple[tuple[int, int], ...]
    available: int

    @property
    def bits(self) -> int:
        return max(d * w for d, w in self.modes)


@dataclass(frozen=True)
class CoreMemory:
    name: str
    depth: int
    width: int
    #: True where an image fills it; False for runtime-only memories
    in_image: bool

    @property
    def bits(self) -> int:
        return self.depth * self.width


@dataclass(frozen=True)
class Placed:
    """One memory (or a bit range of one) on a primitive, with its block count."""

    memory: str
    bits: tuple[int, int]
    depth: int
    primitive: str
    blocks: int
    note: str


#: ECP5 DP16KD aspect ratios (18 Kbit; the x9/x18/x36 modes use the parity bits)
_DP16KD = ((16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36))

PRIMITIVES = {
    "ice40-ebr": Primitive("EBR", ((256, 16), (512, 8), (1024, 4), (2048, 2)), 30),
    "ice40-spram": Primitive("SPRAM", ((16384, 16),), 4),
    "ecp5-85-ebr": Primitive("DP16KD", _DP16KD, 208),
    "ecp5-25-ebr": Primitive("DP16KD", _DP16KD, 56),
}

#: Per preset: ``(memory, first bit, end bit or None, primitive, "parallel" | "lanes" | "rows" |
#: "stacked")``. "parallel" memories get their own blocks in the cheapest aspect ratio and
#: are read one word per cycle; "lanes" memories likewise, but in lanes each one block deep
#: (no output selector after the blocks: the event queue's pool and free list, for Fmax);
#: "rows" memories share one primitive time-multiplexed, a word taking ``ceil(width /
#: 16)`` consecutive 16-bit rows; "stacked" memories of one primitive share its blocks one
#: above the other (the iCE40's pool SPRAM: the event pool, then the axon rows, then the
#: compartment rows, 32 bits each).
_V2 = ("profile", "neuron", "acc_bank0", "acc_bank1", "stimulus", "axon", "synapse", "event", "free",
       "arrival", "spike_fifo")
_LANED = ("event", "free")
#: The iCE40UP memory system (``CoreConfig.spram``, hdl/spram_core.py), whatever the preset's name
SPRAM_MAPPING = (
    ("synapse", 0, None, "ice40-spram", "parallel"),
    *((m, 0, None, "ice40-spram", "stacked") for m in ("event", "axon", "compartment")),
    ("profile", 0, None, "ice40-ebr", "rows"),
    *((m, 0, None, "ice40-ebr", "parallel") for m in ("neuron", "acc_bank0", "stimulus", "spike_list",
                                                        "arrival", "chunk_links", "free_chunks")),
)

MAPPINGS = {
    "icebreaker": SPRAM_MAPPING,
    "ulx3s-25f": tuple((m, 0, None, "ecp5-25-ebr", "lanes" if m in _LANED else "parallel") for m in _V2),
    "ulx3s-85f": tuple((m, 0, None, "ecp5-85-ebr", "lanes" if m in _LANED else "parallel") for m in _V2),
}

#: Presets whose mapping above does not fit the device yet, and where the plan that will is
#: (none today: the iCE40 core's SPRAM memory system fits the UP5K, docs/ice40-plan.md)
OVER_BUDGET: dict[str, str] = {}


def core_memories(config: CoreConfig) -> dict[str, CoreMemory]:
    """Every memory of one core of shape ``config``, as :class:`neurofab.hdl.core.Core` builds it, by name.

    With ``config.spram``, as :class:`neurofab.hdl.spram_core.SpramCore` builds it instead.
    """
    if config.spram:
        return _spram_memories(config)
    layouts = core_layouts(config)
    mems = [
        CoreMemory("profile", config.profiles, layouts.profile.size, True),
        CoreMemory("neuron", config.neurons, layouts.neuron.size, True),
        # two banks of one word per neuron: step t's sums, and step t + 1's being collected
        CoreMemory("acc_bank0", config.neurons, layouts.accumulator.size, False),
        CoreMemory("acc_bank1", config.neurons, layouts.accumulator.size, False),
        CoreMemory("stimulus", config.neurons, layouts.stimulus.width, False),
        CoreMemory("axon", config.axons, layouts.axon.size, True),
        CoreMemory("synapse", config.synapse_words, layouts.synapse.size, True),
        CoreMemory("route", config.route_words, layouts.route.size, True),
        CoreMemory("event", config.event_queue, layouts.event.size, False),
        # the queue's free list: pool indices a drain has read, reusable at once
        CoreMemory("free", config.event_queue, config.queue_bits, False),
        CoreMemory("arrival", config.delay_slots, layouts.arrival.size, False),
        # the step's spikes between the pass (one a clock) and the fan-out (one a synapse)
        CoreMemory("spike_fifo", config.neurons, config.neuron_bits + 8, False),
        # a remote axon's pre-synaptic trace x, for STDP on this core (local axons use the neuron's)
        CoreMemory("axon_trace", config.axons - config.neurons, TRACE_BITS, False),
    ]
    assert config.delay_slots <= MAX_DELAY_SLOTS
    return {m.name: m for m in mems}


def _spram_memories(config: CoreConfig) -> dict[str, CoreMemory]:
    layouts = core_layouts(config)
    regions = spram_regions(config)
    chunk_bits = max(1, addr_bits(regions.pool_chunks))
    mems = [
        # 16-bit rows, six a profile, cached in a register by the pass
        CoreMemory("profile", config.profiles, PROFILE_LAYOUT.size, True),
        CoreMemory("neuron", config.neurons, layouts.neuron.size, True),
        # one bank: a step drains into it, then the pass reads and zeroes it
        CoreMemory("acc_bank0", config.neurons, layouts.accumulator.size, False),
        CoreMemory("stimulus", config.neurons, layouts.stimulus.width, False),
        # weight, delay, target, plastic (no elig); the compartments are packed rows below
        CoreMemory("synapse", config.synapse_words, spram_synapse_layout(config).size, True),
        CoreMemory("event", regions.pool_rows, SPRAM_ROW_BITS, False),
        CoreMemory("axon", config.axons, SPRAM_ROW_BITS, True),
        CoreMemory("compartment", regions.compartment_rows, SPRAM_ROW_BITS, True),
        # the chunked lists: per slot head, tail, tail fill and full; links; free chunks
        CoreMemory("arrival", config.delay_slots, 2 * chunk_bits + addr_bits(CHUNK_EVENTS) + 1, False),
        CoreMemory("chunk_links", regions.pool_chunks, chunk_bits, False),
        CoreMemory("free_chunks", regions.pool_chunks, chunk_bits, False),
        # the step's spikes, read by the fan-out and by the host
        CoreMemory("spike_list", config.neurons, spike_list_entry(config).size, False),
        CoreMemory("route", config.route_words, layouts.route.size, True),
    ]
    return {m.name: m for m in mems}


def core_bits(config: CoreConfig) -> int:
    """Logical bits of one core of shape ``config``: every memory of :func:`core_memories`.

    The one figure for a core's memory: docs/memory-map.md prints it per hardware preset
    ("Logical bits") and the compile report gives it per core.
    """
    return sum(m.bits for m in core_memories(config).values())


def blocks_for(depth: int, width: int, primitive: Primitive, *, one_deep: bool = False) -> int:
    """Fewest blocks holding ``depth`` words of ``width`` bits, read one word per cycle.

    ``one_deep``: only aspect ratios at least ``depth`` deep (lanes side by side, no
    selector after the blocks), where the primitive has one.
    """
    if depth == 0 or width == 0:
        return 0
    modes = [(d, w) for d, w in primitive.modes if d >= depth] if one_deep else []
    return min(-(-width // w) * -(-depth // d) for d, w in modes or primitive.modes)


def device_budget(config: CoreConfig) -> tuple[list[Placed], dict[str, tuple[int, int]]]:
    """The mapping of ``config``'s memories onto its device and ``{primitive: (used, available)}``.

    Only presets in ``MAPPINGS`` have one; every memory of non-zero size must be mapped.
    """
    mapping = SPRAM_MAPPING if config.spram else MAPPINGS[config.name]
    mems = core_memories(config)
    unmapped = [m.name for m in mems.values() if m.bits and m.name not in {e[0] for e in mapping}]
    if unmapped:
        raise ValueError(f"preset {config.name} maps no block RAM for {unmapped}")
    placed: list[Placed] = []
    used: dict[str, int] = {}
    rows: dict[str, int] = {}
    stacked: dict[str, tuple[int, int]] = {}  # primitive: (depth so far, widest)
    for name, lo, hi, prim_key, how in mapping:
        mem = mems[name]
        hi = mem.width if hi is None else hi
        prim = PRIMITIVES[prim_key]
        width = hi - lo
        if how in ("parallel", "lanes"):
            n = blocks_for(mem.depth, width, prim, one_deep=how == "lanes")
            placed.append(Placed(name, (lo, hi), mem.depth, prim.name, n, ""))
            used[prim_key] = used.get(prim_key, 0) + n
        elif how == "stacked":
            depth, widest = stacked.get(prim_key, (0, 0))
            stacked[prim_key] = (depth + mem.depth, max(widest, width))
            placed.append(Placed(name, (lo, hi), mem.depth, prim.name, 0,
                                 f"rows {depth:,} .. {depth + mem.depth - 1:,} (stacked)"))
        else:
            row_width = prim.modes[0][1]
            r = mem.depth * -(-width // row_width)
            rows[prim_key] = rows.get(prim_key, 0) + r
            placed.append(Placed(name, (lo, hi), mem.depth, prim.name, 0,
                                 f"{r:,} rows of {row_width} bits (shared block)"))
    for prim_key, (depth, widest) in stacked.items():
        used[prim_key] = used.get(prim_key, 0) + blocks_for(depth, widest, PRIMITIVES[prim_key])
    for prim_key, r in rows.items():
        prim = PRIMITIVES[prim_key]
        used[prim_key] = used.get(prim_key, 0) + -(-r // prim.modes[0][0])
    totals = {PRIMITIVES[k].name: (used.get(k, 0), PRIMITIVES[k].available)
              for k in dict.fromkeys(e[3] for e in mapping)}
    return placed, totals
