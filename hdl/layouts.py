"""The one definition of every memory word of a core, and bulk packing from it.

Each word is an Amaranth :class:`~amaranth.lib.data.StructLayout` whose field widths come
from a :class:`~neurofab.hdl.config.CoreConfig`. The HDL uses these layouts as views on
its memories; the compiler, the emulator and the host take every field's offset and
width from the same objects through :func:`pack_words`, :func:`pack_words_by_key` and
:func:`unpack_words`, which work on whole memories at once: numpy arrays, every field of
a word packed in one compiled pass (``Layout.const`` costs about 16 us a word).
docs/memory-map.md is generated from these layouts (``python -m
neurofab.compiler.memory_map``) and a test keeps it current.

Field order puts what one pipeline stage reads together in the low bits, so a board
whose block RAM is narrower than a word can split the word at a field boundary (the
iCE40 keeps synapse bits 0 .. 47 in SPRAM and the rest in EBR, see the memory map).

A packed word is ``lanes`` little-endian 64-bit lanes (``lanes = ceil(size / 64)``,
at least 1); bit ``k`` of the word is bit ``k % 64`` of lane ``k // 64``. The image
stores each memory as its used words in address order, each its low bytes little-endian
(:func:`word_bytes`: ``ceil(size / 8)``; :func:`words_to_bytes`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import NamedTuple

import numpy as np
from amaranth.hdl import signed, unsigned
from amaranth.lib import data, enum
from numba import njit

from neurofab.errors import ValidationError

from .config import CoreConfig, addr_bits

__all__ = [
    "V_BITS",
    "LFSR_BITS",
    "TRACE_BITS",
    "REFRAC_BITS",
    "WEIGHT_BITS",
    "ELIG_BITS",
    "EVENT_VALUE_BITS",
    "STIMULUS_BITS",
    "PROFILE_LAYOUT",
    "NEURON_STATE_FIELDS",
    "Memory",
    "CoreLayouts",
    "core_layouts",
    "word_lanes",
    "pack_words",
    "pack_words_by_key",
    "unpack_words",
    "word_bytes",
    "words_to_bytes",
    "words_from_bytes",
    "SPRAM_ROWS",
    "SPRAM_ROW_BITS",
    "CHUNK_EVENTS",
    "COMPARTMENT_ROW_LAYOUT",
    "COMPARTMENTS_PER_ROW",
    "spram_synapse_layout",
    "SpramRegions",
    "spram_regions",
    "spram_synapse_rows",
    "spram_synapse_words",
    "spram_axon_rows",
    "spram_axon_words",
    "SpramImage",
    "spram_image",
    "spram_image_words",
]

# Widths fixed by docs/model.md.
V_BITS = 24  # "v (membrane, signed 24 bit)"; threshold/resting/dend_threshold share it
LFSR_BITS = 16
TRACE_BITS = 8  # "x (pre trace, 0..255)", y likewise
REFRAC_BITS = 8  # "refrac 0 .. 255"
LEAK_BITS = 16  # "leak 0 .. 65535"
WEIGHT_BITS = 16  # "w (signed 16 bit)"
ELIG_BITS = 16  # "e (eligibility, signed 16 bit)"
#: one event's value: w, or (w * g) >> 7 with g <= 255, is in -65280 .. 65279
EVENT_VALUE_BITS = 17
#: a neuron's stimulus sum S (the currents of the job's windows open at a step), signed
STIMULUS_BITS = 32

#: A shared parameter profile: 96 bits, three 32-bit-friendly groups of 24 + 8.
PROFILE_LAYOUT = data.StructLayout({
    "threshold": signed(V_BITS),
    "resting": signed(V_BITS),
    "dend_threshold": signed(V_BITS),
    "leak": unsigned(LEAK_BITS),
    "refrac": unsigned(REFRAC_BITS),
})

#: The neuron word's mutable part, 64 bits at offset 0 of every neuron word.
NEURON_STATE_FIELDS = {
    "v": signed(V_BITS),
    "r": unsigned(REFRAC_BITS),
    "lfsr": unsigned(LFSR_BITS),
    "x": unsigned(TRACE_BITS),
    "y": unsigned(TRACE_BITS),
}


class Memory(enum.Enum, shape=unsigned(4)):
    """A core's memories as the host addresses them: the image's (0 .. 5) and the runtime ones.

    ``STIMULUS`` and ``ACCUMULATOR`` are not in an image: the host keeps the stimulus
    sums current between steps, and may read the accumulators back (word ``b * neurons +
    n`` is neuron ``n``'s word in bank ``b``; see docs/hardware.md).
    """

    PROFILE = 0
    NEURON = 1
    AXON = 2
    SYNAPSE = 3
    ROUTE = 4
    #: host side only: each synapse word's index in synapse order (weight export)
    SYNAPSE_ORDER = 5
    #: runtime: each local neuron's stimulus sum, written by the host between steps
    STIMULUS = 6
    #: runtime: the two banks of accumulator words (a bank collects the next step's input)
    ACCUMULATOR = 7
    #: the iCE40 core's (``CoreConfig.spram``) packed synapse compartments: row ``r`` holds
    #: synapses ``16 r .. 16 r + 15``' (``COMPARTMENT_ROW_LAYOUT``); an image keeps them in
    #: its ``SYNAPSE`` words, the host writes the rows (``neurofab.host.load``)
    COMPARTMENT = 8


class CoreLayouts:
    """Every word layout of a core of shape ``config``.

    Members
    -------
    profile : StructLayout
        ``threshold``, ``resting``, ``dend_threshold`` (signed 24), ``leak`` (16), ``refrac`` (8).
    neuron : StructLayout
        The neuron's state (``v``, ``r``, ``lfsr``, ``x``, ``y``: bits 0 .. 63), then its
        ``profile`` index and its list in the route table (``route_base``, ``route_count``).
    axon : StructLayout
        ``syn_base``, ``syn_count``: the axon's synapses are ``syn_base .. syn_base + syn_count - 1``.
    synapse : StructLayout
        ``weight`` and ``elig`` (signed 16; ``elig`` is 0 in an image), ``delay``,
        ``target`` (local neuron), ``compartment``, ``plastic``.
    route : StructLayout
        ``core``, ``axon``: deliver this neuron's spikes to that axon of that core.
    synapse_order : StructLayout
        ``index`` (32): the synapse-order number of the synapse word at the same address.
    event : StructLayout
        Runtime only (the HDL's queue, not in an image): ``value`` (signed 17),
        ``target``, ``compartment``, then the list link ``next2``: the index of the
        event two places further along the same arrival list, valid when
        ``has_next2``.
    accumulator : ArrayLayout
        Runtime only: a neuron's input sums, one signed ``acc_bits`` element per
        compartment (element ``c`` is compartment ``c``), one word per neuron.
    stimulus : Shape
        Runtime only: a neuron's stimulus sum, ``signed(STIMULUS_BITS)``.
    arrival : StructLayout
        Runtime only: one per delay slot, the list of events arriving at that step:
        ``head`` and ``second``, its first two events in the event queue (``second``
        valid when ``has_second``).
    """

    def __init__(self, config: CoreConfig):
        self.config = config
        self.profile = PROFILE_LAYOUT
        self.neuron = data.StructLayout({
            **NEURON_STATE_FIELDS,
            "profile": unsigned(config.profile_bits),
            "route_base": unsigned(config.route_addr_bits),
            "route_count": unsigned(config.route_count_bits),
        })
        self.axon = data.StructLayout({
            "syn_base": unsigned(config.synapse_addr_bits),
            "syn_count": unsigned(config.synapse_count_bits),
        })
        self.synapse = data.StructLayout({
            "weight": signed(WEIGHT_BITS),
            "elig": signed(ELIG_BITS),
            "delay": unsigned(addr_bits(config.delay_slots)),
            "target": unsigned(config.neuron_bits),
            "compartment": unsigned(addr_bits(config.compartments)),
            "plastic": unsigned(1),
        })
        self.route = data.StructLayout({
            "core": unsigned(config.core_bits),
            "axon": unsigned(config.axon_bits),
        })
        self.synapse_order = data.StructLayout({"index": unsigned(32)})
        self.accumulator = data.ArrayLayout(signed(config.acc_bits), config.compartments)
        self.stimulus = signed(STIMULUS_BITS)
        self.arrival = data.StructLayout({
            "head": unsigned(config.queue_bits),
            "second": unsigned(config.queue_bits),
            "has_second": unsigned(1),
        })
        self.event = data.StructLayout({
            "value": signed(EVENT_VALUE_BITS),
            "target": unsigned(config.neuron_bits),
            "compartment": unsigned(addr_bits(config.compartments)),
            "next2": unsigned(config.queue_bits),
            "has_next2": unsigned(1),
        })

    def for_memory(self, memory: Memory):
        """The word layout (or shape) of ``memory``."""
        return {
            Memory.PROFILE: self.profile,
            Memory.NEURON: self.neuron,
            Memory.AXON: self.axon,
            Memory.SYNAPSE: self.synapse,
            Memory.ROUTE: self.route,
            Memory.SYNAPSE_ORDER: self.synapse_order,
            Memory.STIMULUS: self.stimulus,
            Memory.ACCUMULATOR: self.accumulator,
            Memory.COMPARTMENT: COMPARTMENT_ROW_LAYOUT,
        }[memory]

    def depth(self, memory: Memory) -> int:
        """Words a core has in ``memory``."""
        c = self.config
        return {
            Memory.PROFILE: c.profiles,
            Memory.NEURON: c.neurons,
            Memory.AXON: c.axons,
            Memory.SYNAPSE: c.synapse_words,
            Memory.ROUTE: c.route_words,
            Memory.SYNAPSE_ORDER: c.synapse_words,
            Memory.STIMULUS: c.neurons,
            Memory.ACCUMULATOR: 2 * c.neurons,
            Memory.COMPARTMENT: -(-c.synapse_words // COMPARTMENTS_PER_ROW),
        }[memory]


@cache
def core_layouts(config: CoreConfig) -> CoreLayouts:
    """The layouts of ``config`` (cached: configs are frozen)."""
    return CoreLayouts(config)


def word_lanes(layout: data.StructLayout) -> int:
    """64-bit lanes one packed word of ``layout`` takes."""
    return max(1, -(-layout.size // 64))


# -- bulk packing -------------------------------------------------------------------------
#
# One fused pass packs every field of each word (the word is built in registers and
# stored once), in one of three index maps: word i from element i, word i from element
# order[i], or element i into the word at its place in the stable counting sort of
# ``keys`` (the compiler's synapse memory: sort and pack in the same pass). The kernel
# takes up to _GROUP field columns as separate arguments, so numba specialises it on
# each column's dtype (int32, uint8, bool-as-uint8: no widening copies), and words of up
# to two lanes; wider words take the per-field path below.

#: field columns one fused pass takes; a layout with more fields is packed in groups
_GROUP = 8
_FULL = np.uint64(0xFFFFFFFFFFFFFFFF)
_ZERO = np.uint64(0)


@njit(cache=True, nogil=True)
def _constants(table, f):
    """Field ``f`` of ``table`` (rows: lane, shift, width) as what one word needs.

    Returns the width ``mask`` and two shifted placements: ``(bits << s0) & e0`` into
    lane 0 and ``((bits >> r1) << t1) & e1`` into lane 1 (every shift < 64; a field
    entirely in lane 1, or the part of a lane-0 field that spills into lane 1). Absent
    rows (``f >= len(table)``) give zeros; they are never used.
    """
    if f >= table.shape[0]:
        return _ZERO, _ZERO, _ZERO, _ZERO, _ZERO, _ZERO
    lane, shift, width = table[f, 0], table[f, 1], table[f, 2]
    mask = _FULL >> np.uint64(64 - width)
    if lane == 0:
        s0, e0 = np.uint64(shift), _FULL
        if shift + width > 64:
            r1, t1, e1 = np.uint64(64 - shift), _ZERO, _FULL
        else:
            r1, t1, e1 = _ZERO, _ZERO, _ZERO
    else:
        s0, e0 = _ZERO, _ZERO
        r1, t1, e1 = _ZERO, np.uint64(shift), _FULL
    return mask, s0, e0, r1, t1, e1


@njit(cache=True, nogil=True)
def _place(acc0, acc1, v, two, mask, s0, e0, r1, t1, e1):
    """OR value ``v`` of one field (known to fit) into the word ``acc0, acc1``."""
    bits = np.uint64(v) & mask  # the mask drops a negative value's sign extension
    if two:
        acc0 |= (bits << s0) & e0
        acc1 |= ((bits >> r1) << t1) & e1
    else:  # one lane: every field is in lane 0 and none spills
        acc0 |= bits << s0
    return acc0, acc1


@njit(cache=True, nogil=True)
def _pack_fused(words, order, keys, index, n_keys, table, c0, c1, c2, c3, c4, c5, c6, c7):
    """Pack ``words`` (``uint64``, 1 or 2 lanes, every word written) from columns ``c0 ..``.

    Field ``f`` of ``table`` takes column ``cf``; every value is known to fit (checked
    before, vectorised). With ``keys`` (non-empty): element ``i`` goes to the word at its
    place in the stable sort of ``keys`` (values ``0 .. n_keys - 1``), ``index[place] =
    i``, and the per-key counts are returned. Else with ``order``: word ``i`` is element
    ``order[i]``; else element ``i``.
    """
    nf = table.shape[0]
    mask0, s00, e00, r10, t10, e10 = _constants(table, 0)
    mask1, s01, e01, r11, t11, e11 = _constants(table, 1)
    mask2, s02, e02, r12, t12, e12 = _constants(table, 2)
    mask3, s03, e03, r13, t13, e13 = _constants(table, 3)
    mask4, s04, e04, r14, t14, e14 = _constants(table, 4)
    mask5, s05, e05, r15, t15, e15 = _constants(table, 5)
    mask6, s06, e06, r16, t16, e16 = _constants(table, 6)
    mask7, s07, e07, r17, t17, e17 = _constants(table, 7)

    def word(k, two):  # element k's word (numba inlines this closure into each loop)
        acc0, acc1 = _ZERO, _ZERO
        if nf > 0:
            acc0, acc1 = _place(acc0, acc1, np.int64(c0[k]), two, mask0, s00, e00, r10, t10, e10)
        if nf > 1:
            acc0, acc1 = _place(acc0, acc1, np.int64(c1[k]), two, mask1, s01, e01, r11, t11, e11)
        if nf > 2:
            acc0, acc1 = _place(acc0, acc1, np.int64(c2[k]), two, mask2, s02, e02, r12, t12, e12)
        if nf > 3:
            acc0, acc1 = _place(acc0, acc1, np.int64(c3[k]), two, mask3, s03, e03, r13, t13, e13)
        if nf > 4:
            acc0, acc1 = _place(acc0, acc1, np.int64(c4[k]), two, mask4, s04, e04, r14, t14, e14)
        if nf > 5:
            acc0, acc1 = _place(acc0, acc1, np.int64(c5[k]), two, mask5, s05, e05, r15, t15, e15)
        if nf > 6:
            acc0, acc1 = _place(acc0, acc1, np.int64(c6[k]), two, mask6, s06, e06, r16, t16, e16)
        if nf > 7:
            acc0, acc1 = _place(acc0, acc1, np.int64(c7[k]), two, mask7, s07, e07, r17, t17, e17)
        return acc0, acc1

    count = words.shape[0]
    two = words.shape[1] > 1
    counts = np.zeros(0, np.int64)
    if keys.shape[0] > 0:
        # counting sort: start[k] is the next free place of key k
        start = np.zeros(n_keys + 1, np.int64)
        ordered = True  # keys already sorted (one connection, source-major): no scatter
        for i in range(count):
            start[keys[i] + 1] += 1
            if i and keys[i] < keys[i - 1]:
                ordered = False
        counts = start[1:].copy()
        for k in range(n_keys):
            start[k + 1] += start[k]
        # a run of equal keys (a source's synapses within a connection) takes consecutive
        # places: keep the run's place in a register, not a store and reload per element
        prev = keys[0]
        p = start[prev] - 1
        if ordered and not two:  # element i is word i: a plain sequential loop
            for i in range(count):
                index[i] = i
                words[i, 0] = word(i, False)[0]
        elif not two:  # the synapse memory's case; its own loop keeps it lean
            for i in range(count):
                key = keys[i]
                if key == prev:
                    p += 1
                else:
                    start[prev] = p + 1
                    p = start[key]
                    prev = key
                index[p] = i
                words[p, 0] = word(i, False)[0]
        else:
            for i in range(count):
                key = keys[i]
                if key == prev:
                    p += 1
                else:
                    start[prev] = p + 1
                    p = start[key]
                    prev = key
                index[p] = i
                acc0, acc1 = word(i, True)
                words[p, 0] = acc0
                words[p, 1] = acc1
    else:
        gather = order.shape[0] > 0
        for i in range(count):
            acc0, acc1 = word(order[i] if gather else i, True)
            words[i, 0] = acc0
            if two:
                words[i, 1] = acc1
    return counts


@njit(cache=True, nogil=True)
def _pack_field(words, values, order, lane, shift, width, lo, hi):
    """OR one field into ``words``: ``values[order[i]]`` (or ``values[i]``) into word ``i``.

    The path for words wider than two lanes (the fused pass handles up to two). Returns
    the index of the first value outside ``lo .. hi``, or -1 when all fit.
    """
    mask = np.uint64((1 << width) - 1) if width < 64 else np.uint64(0xFFFFFFFFFFFFFFFF)
    spill = shift + width > 64
    for i in range(words.shape[0]):
        v = np.int64(values[order[i]] if order.shape[0] else values[i])
        if v < lo or v > hi:
            return i
        bits = np.uint64(v) & mask
        words[i, lane] |= bits << np.uint64(shift)
        if spill:
            words[i, lane + 1] |= bits >> np.uint64(64 - shift)
    return -1


@njit(cache=True, nogil=True)
def _unpack_field(words, lane, shift, width, is_signed):
    out = np.empty(words.shape[0], np.int64)
    mask = np.uint64((1 << width) - 1) if width < 64 else np.uint64(0xFFFFFFFFFFFFFFFF)
    spill = shift + width > 64
    for i in range(words.shape[0]):
        bits = words[i, lane] >> np.uint64(shift)
        if spill:
            bits |= words[i, lane + 1] << np.uint64(64 - shift)
        v = np.int64(bits & mask)
        if is_signed and v >= (np.int64(1) << (width - 1)):
            v -= np.int64(1) << width
        out[i] = v
    return out


_NO_INDEX = np.zeros(0, np.int64)
_NO_COLUMN = np.zeros(0, np.uint8)
_INT64_MAX = (1 << 63) - 1


def _field_range(field) -> tuple[int, int]:
    """The values a field holds (the unsigned 64-bit top clipped to int64, what a column can hold)."""
    width = field.width
    if field.shape.signed:
        return -(1 << (width - 1)), (1 << (width - 1)) - 1
    return 0, min((1 << width) - 1, _INT64_MAX)


def _columns(layout: data.StructLayout, values: dict, length: int) -> list:
    """``(name, field, column)`` for each given field of width > 0, in layout order.

    Columns are contiguous integer arrays as given (bool viewed as ``uint8``; scalars
    filled to ``length``). Fields of width 0 must be 0 and are left out.
    """
    unknown = set(values) - {name for name, _ in layout}
    if unknown:
        raise ValueError(f"no field {sorted(unknown)[0]!r} in layout {layout!r}")
    out = []
    for name, field in layout:
        if name not in values:
            continue
        value = np.asarray(values[name])
        if value.dtype.kind not in "biu":
            raise ValueError(f"field {name} takes integers, not {value.dtype} values")
        if value.ndim == 0:
            value = np.full(length, value, dtype=np.int64)
        elif value.ndim != 1:
            raise ValueError(f"field {name} takes a 1-D array, not shape {value.shape}")
        if value.dtype == np.bool_:
            value = value.view(np.uint8)
        value = np.ascontiguousarray(value)
        if field.width == 0:
            if value.size and np.any(value != 0):
                raise ValueError(f"field {name} holds 0 .. 0 ({field.shape}), not "
                                 f"{int(value[np.flatnonzero(value != 0)[0]])}")
            continue
        out.append((name, field, value))
    return out


def _field_table(columns: list) -> np.ndarray:
    """Rows ``lane, shift, width`` of the fields of ``columns``."""
    table = np.zeros((len(columns), 3), np.int64)
    for row, (_, field, _) in enumerate(columns):
        lane, shift = divmod(field.offset, 64)
        table[row] = (lane, shift, field.width)
    return table


def _check_ranges(columns: list) -> None:
    """Raise :class:`ValueError` for the first field (layout order) with a value it cannot hold.

    Vectorised min / max (much cheaper than a compare per value in the packing loop),
    skipped where the column's dtype cannot leave the field's range; the error names
    the field's first such value.
    """
    for name, field, value in columns:
        lo, hi = _field_range(field)
        if not value.size:
            continue
        info = np.iinfo(value.dtype)
        if info.min >= lo and info.max <= hi:
            continue
        if int(value.min()) >= lo and int(value.max()) <= hi:
            continue
        if value.dtype == np.uint64:  # never below lo (<= 0); compare unsigned, no wrap
            outside = value > np.uint64(hi)
        else:
            outside = (value < lo) | (value > hi)
        v = value[int(np.argmax(outside))]
        raise ValueError(f"field {name} holds {lo} .. {hi} ({field.shape}), not {int(v)}")


def _pack_groups(words, columns, order, keys, index, n_keys, filler):
    """The fused kernel over ``columns`` in groups of ``_GROUP``; returns the per-key counts.

    The first group sorts (when ``keys`` is given) and writes every word; later groups
    are packed into a second array in the same word order and ORed in. ``filler`` stands
    for the unused column arguments (its dtype is part of the kernel's specialisation).
    """
    counts = None
    for g in range(0, max(len(columns), 1), _GROUP):
        group = columns[g:g + _GROUP]
        cols = [c for _, _, c in group] + [filler] * (_GROUP - len(group))
        if g == 0:
            counts = _pack_fused(words, order, keys, index, n_keys, _field_table(group), *cols)
        else:
            more = np.empty_like(words)
            _pack_fused(more, index if keys.shape[0] else order, _NO_INDEX, _NO_INDEX, 0,
                        _field_table(group), *cols)
            words |= more
    return counts


def _pack_by_field(words, columns, order) -> None:
    """Words wider than two lanes: one pass per field, ORed into zeroed ``words``."""
    for name, field, value in columns:
        lo, hi = _field_range(field)
        lane, shift = divmod(field.offset, 64)
        bad = _pack_field(words, value, order, lane, shift, field.width, lo, hi) if words.shape[0] else -1
        if bad >= 0:
            v = int(value[order[bad]] if order.shape[0] else value[bad])
            raise ValueError(f"field {name} holds {lo} .. {hi} ({field.shape}), not {v}")


def pack_words(layout: data.StructLayout, values: dict, count: int, order=None) -> np.ndarray:
    """Pack ``count`` words of ``layout`` from per-field integer arrays.

    ``values`` maps field names to arrays (or scalars); word ``i`` takes element ``i`` of
    each, or element ``order[i]`` when ``order`` is given (so a memory can be packed in
    its own address order without gathering copies first). A field that is absent is 0.
    Returns ``uint64`` of shape ``(count, word_lanes(layout))``. A value that does not fit
    its field raises :class:`ValueError` naming the field and the value (every value
    given is checked, also one that ``order`` does not pick); so does an array of the
    wrong length, or an ``order`` entry outside the arrays.

    Words of up to two lanes are packed in one fused pass (every field of a word at
    once); wider words one pass per field.
    """
    order = _NO_INDEX if order is None else np.ascontiguousarray(order, dtype=np.int64)
    if order.shape[0] not in (0, count):
        raise ValueError(f"order has {order.shape[0]} entries, not {count}")
    # scalars stand for arrays as long as the words (or as far as the order reaches)
    columns = _columns(layout, values, int(order.max()) + 1 if order.shape[0] else count)
    for name, _, value in columns:
        if not order.shape[0] and value.shape[0] != count:
            raise ValueError(f"field {name} has {value.shape[0]} values, not {count}")
        if order.shape[0] and (order.min() < 0 or order.max() >= value.shape[0]):
            raise ValueError(f"order indexes 0 .. {int(order.max())}, beyond field {name}'s "
                             f"{value.shape[0]} values")
    lanes = word_lanes(layout)
    if lanes > 2:
        words = np.zeros((count, lanes), dtype=np.uint64)
        _pack_by_field(words, columns, order)
        return words
    _check_ranges(columns)
    words = np.zeros((count, lanes), dtype=np.uint64) if not columns else np.empty((count, lanes), np.uint64)
    if columns and count:
        # int64 columns: one compiled specialisation serves every memory but the synapses'
        wide = [(name, field, value.astype(np.int64, copy=False)) for name, field, value in columns]
        _pack_groups(words, wide, order, _NO_INDEX, _NO_INDEX, 0, _NO_INDEX)
    return words


def pack_words_by_key(layout: data.StructLayout, values: dict, keys, n_keys: int) -> tuple:
    """Pack one word per element, the words in the stable sort order of ``keys``.

    Element ``i`` (of every array in ``values``, as for :func:`pack_words`) is packed
    into the word at its place when the elements are sorted by ``keys[i]`` (integers
    ``0 .. n_keys - 1``), ties kept in element order: a counting sort fused with the
    packing, one pass. Returns ``(words, index, counts)``: ``words`` as from
    :func:`pack_words`, ``index[p]`` the element packed into word ``p`` (``int64``), and
    ``counts[k]`` the number of elements with key ``k`` (so key ``k``'s words start at
    ``counts[:k].sum()``). Raises :class:`ValueError` as :func:`pack_words` does, and for
    a key outside ``0 .. n_keys - 1``.
    """
    keys = np.ascontiguousarray(keys)  # as given: the netlist's int32 sources need no copy
    if keys.ndim != 1 or keys.dtype.kind not in "iu":
        raise ValueError(f"keys must be a 1-D integer array, not {keys.dtype} of shape {keys.shape}")
    count = keys.shape[0]
    columns = _columns(layout, values, count)
    for name, _, value in columns:
        if value.shape[0] != count:
            raise ValueError(f"field {name} has {value.shape[0]} values, not {count} (one per key)")
    if count and (int(keys.min()) < 0 or int(keys.max()) >= n_keys):
        bad = int(keys.min()) if int(keys.min()) < 0 else int(keys.max())
        raise ValueError(f"key {bad} is outside 0 .. {n_keys - 1}")
    lanes = word_lanes(layout)
    if lanes > 2 or not columns or not count:
        # no fused pass: sort first, then pack in that order
        index = np.argsort(keys, kind="stable").astype(np.int64)
        counts = np.bincount(keys, minlength=n_keys).astype(np.int64) if count else np.zeros(n_keys, np.int64)
        return pack_words(layout, values, count, order=index), index, counts
    _check_ranges(columns)
    # words and index in one allocation: half the page-table work of two (and numpy asks
    # for huge pages from 4 MiB on), which is much of the cost of a fresh memory
    block = np.empty(count * (lanes + 1), np.uint64)
    words = block[:count * lanes].reshape(count, lanes)
    index = block[count * lanes:].view(np.int64)
    counts = _pack_groups(words, columns, _NO_INDEX, keys, index, n_keys, _NO_COLUMN)
    return words, index, counts


def unpack_words(layout: data.StructLayout, words: np.ndarray) -> dict:
    """Every field of packed ``words`` (as from :func:`pack_words`) as ``int64`` arrays."""
    words = np.ascontiguousarray(words, dtype=np.uint64).reshape(-1, word_lanes(layout))
    out = {}
    for name, field in layout:
        if field.width == 0:
            out[name] = np.zeros(words.shape[0], dtype=np.int64)
            continue
        lane, shift = divmod(field.offset, 64)
        out[name] = _unpack_field(words, lane, shift, field.width, field.shape.signed)
    return out


def word_bytes(layout: data.StructLayout) -> int:
    """Bytes a word of ``layout`` takes in an image file: ``ceil(size / 8)``, at least 1."""
    return max(1, -(-layout.size // 8))


@njit(cache=True, nogil=True)
def _narrow(raw, nbytes):
    """The first ``nbytes`` of each row of ``raw`` (``uint8``), and whether the rest are all zero."""
    out = np.empty(raw.shape[0] * nbytes, np.uint8)
    spill = np.uint8(0)
    for i in range(raw.shape[0]):
        for b in range(nbytes):
            out[i * nbytes + b] = raw[i, b]
        for b in range(nbytes, raw.shape[1]):
            spill |= raw[i, b]
    return out, spill == 0


@njit(cache=True, nogil=True)
def _widen(raw, count, nbytes, full):
    out = np.zeros((count, full), np.uint8)
    for i in range(count):
        for b in range(nbytes):
            out[i, b] = raw[i * nbytes + b]
    return out


def words_to_bytes(words: np.ndarray, nbytes: int | None = None) -> bytes:
    """Packed words as stored in an image: each word's low ``nbytes`` bytes, little-endian.

    ``nbytes`` defaults to the whole word (``8 * lanes``); fewer drop high bytes, which
    must be zero (:func:`word_bytes` of the layout, or fewer for a field known to be
    narrower); a non-zero dropped byte raises :class:`ValueError`.
    """
    words = np.ascontiguousarray(words, dtype="<u8")
    count, lanes = (words.shape[0], words.shape[1]) if words.ndim == 2 else (words.shape[0], 1)
    full = 8 * lanes
    nbytes = full if nbytes is None else int(nbytes)
    if not 1 <= nbytes <= full:
        raise ValueError(f"a word of {lanes} lanes is stored in 1 .. {full} bytes, not {nbytes}")
    raw = words.view(np.uint8).reshape(count, full)
    if nbytes == full:
        return raw.tobytes()
    out, fits = _narrow(raw, nbytes)
    if not fits:
        raise ValueError(f"words do not fit {nbytes} bytes")
    return out.tobytes()


def words_from_bytes(buffer: bytes, layout: data.StructLayout, count: int,
                     nbytes: int | None = None) -> np.ndarray:
    """The inverse of :func:`words_to_bytes` for ``count`` words of ``layout``, ``nbytes`` each."""
    lanes = word_lanes(layout)
    full = 8 * lanes
    nbytes = full if nbytes is None else int(nbytes)
    if not 1 <= nbytes <= full:
        raise ValueError(f"a word of {lanes} lanes is stored in 1 .. {full} bytes, not {nbytes}")
    if len(buffer) != count * nbytes:
        raise ValueError(f"{count} words of {nbytes} bytes need {count * nbytes} bytes, not {len(buffer)}")
    raw = np.frombuffer(buffer, dtype=np.uint8)
    if nbytes == full:
        return raw.view("<u8").astype(np.uint64).reshape(count, lanes)
    return _widen(raw, count, nbytes, full).view("<u8").astype(np.uint64, copy=False).reshape(count, lanes)


# -- the iCE40 memory system (``CoreConfig.spram``) -----------------------------------------
#
# docs/ice40-plan.md: the synapse memory is one 32-bit SPRAM (SP0 + SP1) holding every
# field of a synapse word but ``elig`` (0 in every image; learning jobs are refused on the
# RTL) and ``compartment``; the compartments are packed 16 to a 32-bit row in the upper
# rows of the event queue's pool SPRAM (SP2 + SP3), after one row per axon. The image
# keeps the logical words (``CoreLayouts.synapse``, ``axon``); the host turns them into
# these physical rows with the helpers below when it loads an iCE40 core.

#: Rows of one 32-bit SPRAM pair (two ``SB_SPRAM256KA`` side by side): the synapse
#: memory's depth limit, and the pool SPRAM's rows (``aux`` addresses are 14 bits)
SPRAM_ROWS = 16384
#: Bits of one row of either 32-bit SPRAM
SPRAM_ROW_BITS = 32
#: Events of one chunk of the chunked event queue's pool (hdl/chunk_queue.py)
CHUNK_EVENTS = 64
#: One compartment row of the pool SPRAM: the ``compartment`` of synapses ``16 r .. 16 r + 15``,
#: synapse ``16 r + j`` in element ``j`` (bits ``2 j .. 2 j + 1``)
COMPARTMENT_ROW_LAYOUT = data.ArrayLayout(unsigned(2), SPRAM_ROW_BITS // 2)
#: Synapses whose compartments share one row
COMPARTMENTS_PER_ROW = COMPARTMENT_ROW_LAYOUT.length


@cache
def spram_synapse_layout(config: CoreConfig) -> data.StructLayout:
    """The synapse word in the 32-bit synapse SPRAM: ``weight`` (signed 16), ``delay``,
    ``target``, ``plastic`` (the widths of ``CoreLayouts.synapse``; no ``elig``, and
    ``compartment`` lives in the compartment rows).

    ``weight`` alone fills SP0's 16 bits, the rest SP1's. Raises
    :class:`~neurofab.errors.ValidationError` naming ``core.neurons`` when the word would
    exceed 32 bits (``target`` wider than 9 bits: more than 512 neurons).
    """
    synapse = core_layouts(config).synapse
    kept = ("weight", "delay", "target", "plastic")
    layout = data.StructLayout({name: synapse[name].shape for name in kept})
    if layout.size > SPRAM_ROW_BITS:
        widths = " + ".join(f"{name} {field.width}" for name, field in layout)
        raise ValidationError(
            "core.neurons", f"is {config.neurons}: the SPRAM synapse word ({widths} = {layout.size} bits) "
            f"exceeds the {SPRAM_ROW_BITS} bits of an SPRAM row")
    return layout


@dataclass(frozen=True)
class SpramRegions:
    """The region map of the pool SPRAM (``SPRAM_ROWS`` rows of 32 bits), bottom up.

    Attributes
    ----------
    pool_chunks : int
        Whole ``CHUNK_EVENTS``-event chunks of the event pool, rows ``0 .. pool_rows - 1``.
    axon_base : int
        Row of axon 0's entry (``CoreLayouts.axon``, one row per axon): ``pool_rows``.
    compartment_base : int
        Row holding the compartments of synapses ``0 .. 15``: ``axon_base + axons``.
    compartment_rows : int
        ``ceil(synapse_words / COMPARTMENTS_PER_ROW)``.
    """

    pool_chunks: int
    axon_base: int
    compartment_base: int
    compartment_rows: int

    @property
    def pool_rows(self) -> int:
        return self.pool_chunks * CHUNK_EVENTS

    @property
    def end(self) -> int:
        """One past the last row used; rows ``end .. SPRAM_ROWS - 1`` are spare (< a chunk)."""
        return self.compartment_base + self.compartment_rows


@cache
def spram_regions(config: CoreConfig) -> SpramRegions:
    """The pool SPRAM's region map of ``config``: pool chunks, then axon rows, then compartment rows.

    The pool takes every whole chunk the axon and compartment rows leave. Raises
    :class:`~neurofab.errors.ValidationError` naming the field when the synapse word
    exceeds 32 bits (:func:`spram_synapse_layout`), the synapses exceed the synapse
    SPRAM's rows (``core.synapse_words``; within them an axon entry fits a row: 29 bits at
    16,384), or the pool left is too small for the chunked queue's
    bound ``event_queue <= (pool_chunks - delay_slots - 1) * CHUNK_EVENTS``
    (``core.event_queue``).
    """
    spram_synapse_layout(config)
    if config.synapse_words > SPRAM_ROWS:
        raise ValidationError(
            "core.synapse_words", f"is {config.synapse_words}: the synapse SPRAM has {SPRAM_ROWS} rows")
    compartment_rows = -(-config.synapse_words // COMPARTMENTS_PER_ROW)
    pool_chunks = (SPRAM_ROWS - config.axons - compartment_rows) // CHUNK_EVENTS
    needed = -(-config.event_queue // CHUNK_EVENTS) + config.delay_slots + 1
    if pool_chunks < needed:
        raise ValidationError(
            "core.event_queue", f"is {config.event_queue}: the pool SPRAM's {SPRAM_ROWS} rows less "
            f"{config.axons} axon rows and {compartment_rows} compartment rows leave "
            f"{max(pool_chunks, 0)} chunks of {CHUNK_EVENTS} events, and the queue needs "
            f"ceil(event_queue / {CHUNK_EVENTS}) + delay_slots + 1 = {needed}")
    axon_base = pool_chunks * CHUNK_EVENTS
    return SpramRegions(pool_chunks=pool_chunks, axon_base=axon_base,
                        compartment_base=axon_base + config.axons, compartment_rows=compartment_rows)


def _words_of(layout, words, name: str) -> np.ndarray:
    """``words`` as ``(count, lanes)`` ``uint64`` packed words of ``layout``; a clear error else."""
    words = np.asarray(words)
    if words.dtype.kind not in "iu":
        raise ValidationError(name, f"must be packed integer words, not {words.dtype} values")
    lanes = word_lanes(layout)
    if words.ndim == 1 and lanes == 1:
        words = words.reshape(-1, 1)
    if words.ndim != 2 or words.shape[1] != lanes:
        raise ValidationError(name, f"must be packed words of {lanes} lane(s), not shape {words.shape}")
    return np.ascontiguousarray(words, dtype=np.uint64)


def _rows_of(rows, name: str, limit: int) -> np.ndarray:
    rows = np.asarray(rows)
    if rows.ndim != 1 or rows.dtype.kind not in "iu":
        raise ValidationError(name, f"must be a 1-D array of integer rows, not {rows.dtype} of shape "
                              f"{rows.shape}")
    if rows.shape[0] > limit:
        raise ValidationError(name, f"has {rows.shape[0]} rows, more than the {limit} it may have")
    if rows.size and (int(rows.min()) < 0 or int(rows.max()) >= 1 << SPRAM_ROW_BITS):
        raise ValidationError(name, f"holds rows of {SPRAM_ROW_BITS} bits, not {int(rows.max())}")
    return rows.astype(np.uint64)


def spram_synapse_rows(config: CoreConfig, synapse_words) -> tuple[np.ndarray, np.ndarray]:
    """An image's logical synapse words (``CoreLayouts.synapse``) as iCE40 SPRAM rows.

    ``synapse_words`` are packed words (``(count, lanes)`` or ``(count,)`` ``uint64``, as
    :func:`pack_words` or :func:`words_from_bytes` give them), synapse addresses
    ``0 .. count - 1``, at most ``synapse_words`` of them. Returns ``(synapse_rows,
    compartment_rows)``, both ``uint32``: row ``k`` of the synapse SPRAM is word ``k`` in
    :func:`spram_synapse_layout`; compartment row ``r`` (pool SPRAM row
    ``compartment_base + r``) holds the compartments of words ``16 r .. 16 r + 15``
    (``COMPARTMENT_ROW_LAYOUT``; past ``count`` they are 0). A word with a non-zero
    ``elig`` is refused (:class:`~neurofab.errors.ValidationError` naming it): the SPRAM
    word has none.
    """
    spram_regions(config)  # refuses a config that does not fit first
    logical = core_layouts(config).synapse
    words = _words_of(logical, synapse_words, "synapse")
    if words.shape[0] > config.synapse_words:
        raise ValidationError("synapse", f"has {words.shape[0]} words, more than core.synapse_words "
                              f"({config.synapse_words})")
    fields = unpack_words(logical, words)
    elig = np.flatnonzero(fields["elig"])
    if elig.size:
        k = int(elig[0])
        raise ValidationError(f"synapse[{k}].elig", f"is {int(fields['elig'][k])}: the iCE40's SPRAM "
                              "synapse word has no elig (0 in every image; the RTL refuses learning jobs)")
    layout = spram_synapse_layout(config)
    rows = pack_words(layout, {name: fields[name] for name, _ in layout}, words.shape[0])
    return rows[:, 0].astype(np.uint32), _pack_compartments(fields["compartment"])


def _pack_compartments(compartments: np.ndarray) -> np.ndarray:
    per_row = COMPARTMENTS_PER_ROW
    padded = np.zeros(-(-compartments.shape[0] // per_row) * per_row, np.uint64)
    padded[:compartments.shape[0]] = compartments
    width = COMPARTMENT_ROW_LAYOUT.elem_shape.width
    shifts = (np.arange(per_row, dtype=np.uint64) * np.uint64(width))
    return np.bitwise_or.reduce(padded.reshape(-1, per_row) << shifts, axis=1).astype(np.uint32)


def _unpack_compartments(rows: np.ndarray, count: int) -> np.ndarray:
    per_row = COMPARTMENTS_PER_ROW
    width = COMPARTMENT_ROW_LAYOUT.elem_shape.width
    shifts = (np.arange(per_row, dtype=np.uint64) * np.uint64(width))
    elems = (rows.reshape(-1, 1) >> shifts) & np.uint64((1 << width) - 1)
    return elems.reshape(-1)[:count].astype(np.int64)


def spram_synapse_words(config: CoreConfig, synapse_rows, compartment_rows) -> np.ndarray:
    """The inverse of :func:`spram_synapse_rows`: packed logical synapse words (``elig`` 0).

    ``compartment_rows`` must cover every synapse row (``ceil(count / 16)`` rows or
    more); a compartment that does not fit ``CoreLayouts.synapse`` (``compartments``)
    raises :class:`~neurofab.errors.ValidationError`.
    """
    regions = spram_regions(config)
    rows = _rows_of(synapse_rows, "synapse_rows", config.synapse_words)
    packed = _rows_of(compartment_rows, "compartment_rows", regions.compartment_rows)
    count = rows.shape[0]
    if packed.shape[0] * COMPARTMENTS_PER_ROW < count:
        raise ValidationError("compartment_rows", f"has {packed.shape[0]} rows, too few for {count} synapse "
                              f"rows ({COMPARTMENTS_PER_ROW} a row)")
    fields = unpack_words(spram_synapse_layout(config), rows.reshape(-1, 1))
    fields["compartment"] = _unpack_compartments(packed, count)
    try:
        return pack_words(core_layouts(config).synapse, fields, count)
    except ValueError as error:
        raise ValidationError("compartment_rows", str(error)) from None


def spram_axon_rows(config: CoreConfig, axon_words) -> np.ndarray:
    """An image's axon words (``CoreLayouts.axon``) as pool SPRAM rows from ``axon_base``, ``uint32``."""
    spram_regions(config)
    words = _words_of(core_layouts(config).axon, axon_words, "axon")
    if words.shape[0] > config.axons:
        raise ValidationError("axon", f"has {words.shape[0]} words, more than core.axons ({config.axons})")
    return words[:, 0].astype(np.uint32)


def spram_axon_words(config: CoreConfig, axon_rows) -> np.ndarray:
    """The inverse of :func:`spram_axon_rows`: packed axon words, ``(count, 1)`` ``uint64``."""
    spram_regions(config)
    rows = _rows_of(axon_rows, "axon_rows", config.axons)
    layout = core_layouts(config).axon
    if rows.size and int(rows.max()) >> layout.size:
        raise ValidationError("axon_rows", f"holds axon entries of {layout.size} bits, not {int(rows.max())}")
    return rows.reshape(-1, 1)


class SpramImage(NamedTuple):
    """The physical rows of an iCE40 core's synapse side, as the host loads them."""

    #: the synapse SPRAM from row 0 (:func:`spram_synapse_layout`), ``uint32``
    synapse_rows: np.ndarray
    #: the pool SPRAM from row ``spram_regions(config).axon_base``: the axon rows (one per
    #: axon, ``axons`` of them, zero past the image's), then the compartment rows, ``uint32``
    aux_rows: np.ndarray


def spram_image(config: CoreConfig, axon_words, synapse_words) -> SpramImage:
    """An image's axon and synapse words as the rows of both SPRAMs (see :class:`SpramImage`)."""
    regions = spram_regions(config)
    axons = spram_axon_rows(config, axon_words)
    synapses, compartments = spram_synapse_rows(config, synapse_words)
    aux = np.zeros(config.axons + compartments.shape[0], np.uint32)
    aux[:axons.shape[0]] = axons
    aux[regions.compartment_base - regions.axon_base:] = compartments
    return SpramImage(synapses, aux)


def spram_image_words(config: CoreConfig, image: SpramImage) -> tuple[np.ndarray, np.ndarray]:
    """The inverse of :func:`spram_image`: ``(axon_words, synapse_words)``, every axon of the core."""
    aux = np.asarray(image.aux_rows)
    axons = spram_axon_words(config, aux[:config.axons])
    synapses = spram_synapse_words(config, image.synapse_rows, aux[config.axons:])
    return axons, synapses
