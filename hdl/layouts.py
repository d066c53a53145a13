"""The one definition of every memory word of a core, and bulk packing from it.

Each word is an Amaranth :class:`~amaranth.lib.data.StructLayout` whose field widths come
from a :class:`~neurofab.hdl.config.CoreConfig`. The HDL uses these layouts as views on
its memories; the compiler, the emulator and the host take every field's offset and
width from the same objects through :func:`pack_words` and :func:`unpack_words`, which
work on whole memories at once: numpy arrays, one compiled pass per field (``Layout.const``
costs about 16 us a word).
docs/memory-map.md is generated from these layouts (``python -m
neurofab.compiler.memory_map``) and a test keeps it current.

Field order puts what one pipeline stage reads together in the low bits, so a board
whose block RAM is narrower than a word can split the word at a field boundary (the
iCE40 keeps synapse bits 0 .. 47 in SPRAM and the rest in EBR, see the memory map).

A packed word is ``lanes`` little-endian 64-bit lanes (``lanes = ceil(size / 64)``,
at least 1); bit ``k`` of the word is bit ``k % 64`` of lane ``k // 64``. The image
stores each memory as its used words in address order, ``8 * lanes`` bytes per word.
"""

from __future__ import annotations

from functools import cache

import numpy as np
from amaranth.hdl import signed, unsigned
from amaranth.lib import data, enum
from numba import njit

from .config import CoreConfig, addr_bits

__all__ = [
    "V_BITS",
    "LFSR_BITS",
    "TRACE_BITS",
    "REFRAC_BITS",
    "WEIGHT_BITS",
    "ELIG_BITS",
    "EVENT_VALUE_BITS",
    "PROFILE_LAYOUT",
    "NEURON_STATE_FIELDS",
    "Memory",
    "CoreLayouts",
    "core_layouts",
    "word_lanes",
    "pack_words",
    "unpack_words",
    "words_to_bytes",
    "words_from_bytes",
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


class Memory(enum.Enum, shape=unsigned(3)):
    """The memories of a core image; the host addresses them by this number."""

    PROFILE = 0
    NEURON = 1
    AXON = 2
    SYNAPSE = 3
    ROUTE = 4
    #: host side only: each synapse word's index in synapse order (weight export)
    SYNAPSE_ORDER = 5


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
        ``target``, ``compartment``, ``next`` (the queue's free/arrival list link).
    arrival : StructLayout
        Runtime only: one per delay slot, the list of events arriving at that step
        (``head``, ``tail`` into the event queue, ``nonempty``).
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
        self.arrival = data.StructLayout({
            "head": unsigned(config.queue_bits),
            "tail": unsigned(config.queue_bits),
            "nonempty": unsigned(1),
        })
        self.event = data.StructLayout({
            "value": signed(EVENT_VALUE_BITS),
            "target": unsigned(config.neuron_bits),
            "compartment": unsigned(addr_bits(config.compartments)),
            "next": unsigned(config.queue_bits),
        })

    def for_memory(self, memory: Memory) -> data.StructLayout:
        """The word layout of an image memory."""
        return {
            Memory.PROFILE: self.profile,
            Memory.NEURON: self.neuron,
            Memory.AXON: self.axon,
            Memory.SYNAPSE: self.synapse,
            Memory.ROUTE: self.route,
            Memory.SYNAPSE_ORDER: self.synapse_order,
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
        }[memory]


@cache
def core_layouts(config: CoreConfig) -> CoreLayouts:
    """The layouts of ``config`` (cached: configs are frozen)."""
    return CoreLayouts(config)


def word_lanes(layout: data.StructLayout) -> int:
    """64-bit lanes one packed word of ``layout`` takes."""
    return max(1, -(-layout.size // 64))


@njit(cache=True, nogil=True)
def _pack_field(words, values, order, lane, shift, width, lo, hi):
    """OR one field into ``words``: ``values[order[i]]`` (or ``values[i]``) into word ``i``.

    One pass, no temporaries. Returns the index of the first value outside ``lo .. hi``,
    or -1 when all fit.
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


_NO_ORDER = np.zeros(0, np.int64)


def pack_words(layout: data.StructLayout, values: dict, count: int, order=None) -> np.ndarray:
    """Pack ``count`` words of ``layout`` from per-field integer arrays.

    ``values`` maps field names to arrays (or scalars); word ``i`` takes element ``i`` of
    each, or element ``order[i]`` when ``order`` is given (so a memory can be packed in
    its own address order without gathering copies first). A field that is absent is 0.
    Returns ``uint64`` of shape ``(count, word_lanes(layout))``. A value that does not fit
    its field raises :class:`ValueError` naming the field and the value.
    """
    unknown = set(values) - {name for name, _ in layout}
    if unknown:
        raise ValueError(f"no field {sorted(unknown)[0]!r} in layout {layout!r}")
    order = _NO_ORDER if order is None else np.ascontiguousarray(order, dtype=np.int64)
    if order.shape[0] not in (0, count):
        raise ValueError(f"order has {order.shape[0]} entries, not {count}")
    words = np.zeros((count, word_lanes(layout)), dtype=np.uint64)
    for name, field in layout:
        if name not in values:
            continue
        value = np.asarray(values[name])
        if value.dtype == np.bool_:
            value = value.view(np.uint8)
        if value.ndim == 0 or (value.shape[0] != count and not order.shape[0]):
            value = np.broadcast_to(value.astype(np.int64), (count,))
        width, is_signed = field.width, field.shape.signed
        lo, hi = (-(1 << (width - 1)), (1 << (width - 1)) - 1) if is_signed else (0, (1 << width) - 1)
        if width == 0:
            lo = hi = 0
        lane, shift = divmod(field.offset, 64)
        bad = _pack_field(words, np.ascontiguousarray(value), order, lane, shift, width, lo, hi) \
            if count else -1
        if bad >= 0:
            v = int(value[order[bad]] if order.shape[0] else value[bad])
            raise ValueError(f"field {name} holds {lo} .. {hi} ({field.shape}), not {v}")
    return words


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


def words_to_bytes(words: np.ndarray) -> bytes:
    """Packed words as stored in an image: little-endian lanes, word after word."""
    return np.ascontiguousarray(words, dtype="<u8").tobytes()


def words_from_bytes(buffer: bytes, layout: data.StructLayout, count: int) -> np.ndarray:
    """The inverse of :func:`words_to_bytes` for ``count`` words of ``layout``."""
    lanes = word_lanes(layout)
    if len(buffer) != count * lanes * 8:
        raise ValueError(f"{count} words of {lanes} lanes need {count * lanes * 8} bytes, not {len(buffer)}")
    return np.frombuffer(buffer, dtype="<u8").astype(np.uint64).reshape(count, lanes)
