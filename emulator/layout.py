"""The emulator's synapse layout: synapses regrouped for cache-friendly, race-free delivery.

Neurons are cut into ``n_blocks`` contiguous *blocks* of at most 65,536 neurons. Every
synapse is filed under its *key* (source, target block), and within a key sorted by
delay; synapses that tie keep synapse order (stable counting sorts). A key's
synapses are cut into *groups* of one delay:

- ``group_offsets[s * n_blocks + b] .. group_offsets[s * n_blocks + b + 1]`` are the
  groups of source ``s`` into block ``b`` (keys in source-major order, so one
  source's entries for all blocks share a cache line);
- ``group_start[g] .. group_start[g + 1]`` are group ``g``'s synapses, all with delay
  ``group_delay[g]``;
- ``packed[k] = (w << 16) | local_target``: the weight and the block-local target of
  synapse ``k`` in one ``int32`` (see :func:`pack_synapse`);
- ``perm[k]`` (kept only with learning) is the synapse-order index of layout position
  ``k``, to report weights and eligibilities in synapse order.

A thread that delivers into block ``b`` writes only block ``b``'s rows of the ring,
so blocks run in parallel without locks, and each group writes a single ring row.
Target indices are stored relative to their block, which is why a block holds at
most 65,536 neurons (``uint16``).

The layout is four compiled passes over the synapses, so laying out a network costs
a small fraction of simulating it.
"""

import numpy as np
from numba import njit

__all__ = ["MAX_BLOCK", "MAX_DELAY", "block_bounds", "build_layout", "pack_synapse", "incoming_index",
           "input_bound"]

#: neurons per block at most: local target indices are ``uint16``
MAX_BLOCK = 1 << 16
MAX_DELAY = 63


def block_bounds(n_neurons: int, n_blocks: int) -> tuple[np.ndarray, int]:
    """``(bounds, block_len)``: block ``b`` is gids ``bounds[b] .. bounds[b + 1]``.

    Every block but the last holds ``block_len`` neurons, a multiple of 64, so each
    block starts on a 64-byte boundary of the per-neuron flag arrays and its ring rows
    never share a cache line with another block's (no false sharing between threads).
    """
    block_len = -(-n_neurons // n_blocks)
    block_len = -(-block_len // 64) * 64
    if block_len > MAX_BLOCK:
        raise ValueError(f"{n_blocks} blocks cannot hold {n_neurons} neurons")
    bounds = np.minimum(np.arange(n_blocks + 1, dtype=np.int64) * block_len, n_neurons)
    return bounds, block_len


@njit(cache=True)
def build_layout(src, tgt, weight, delay, compartment, plastic, n_neurons, block_len, n_blocks,
                 with_compartment, with_learning, graded):
    """The layout (see the module doc) and the input bound.

    Returns ``(group_offsets, group_start, group_delay, packed, compartment, source,
    plastic, perm, bound)``: ``packed[k] = (w << 16) | local_target`` (``int32``);
    ``compartment`` is empty unless ``with_compartment``; ``source``, ``plastic`` and
    ``perm`` are empty unless ``with_learning``. ``plastic`` is the connection's flag
    and an initial weight > 0 (docs/model.md). ``bound`` is :func:`input_bound`.
    """
    n_syn = src.shape[0]
    n_keys = n_blocks * n_neurons
    # a lookup instead of two integer divisions per synapse and pass
    block_of = np.empty(n_neurons, np.int64)
    for j in range(n_neurons):
        block_of[j] = j // block_len
    # pass 1: synapses per (block, source), the input bound, synapses per delay
    offsets = np.zeros(n_keys + 1, np.int64)
    per_target = np.zeros(n_neurons, np.int64)
    by_delay_start = np.zeros(MAX_DELAY + 2, np.int64)
    for k in range(n_syn):
        j = tgt[k]
        offsets[np.int64(src[k]) * n_blocks + block_of[j] + 1] += 1
        per_target[j] += _largest_contribution(weight[k], plastic[k], with_learning, graded)
        by_delay_start[delay[k] + 1] += 1
    for key in range(n_keys):
        offsets[key + 1] += offsets[key]
    for d in range(MAX_DELAY + 1):
        by_delay_start[d + 1] += by_delay_start[d]
    bound = np.int64(0)
    for j in range(n_neurons):
        bound = max(bound, per_target[j])
    # pass 2: synapse order, stably by delay (a connection's synapses share one delay,
    # so this reads the input in long sequential runs)
    by_delay = np.empty(n_syn, np.int32)
    for k in range(n_syn):
        d = delay[k]
        by_delay[by_delay_start[d]] = k
        by_delay_start[d] += 1
    # pass 3: that order, stably by (source, block): within a key, ascending delay
    fill = offsets[:-1].copy()
    packed = np.empty(n_syn, np.int32)
    syn_d = np.empty(n_syn, np.uint8)
    syn_c = np.empty(n_syn if with_compartment else 0, np.uint8)
    syn_src = np.empty(n_syn if with_learning else 0, np.int32)
    syn_plastic = np.empty(n_syn if with_learning else 0, np.uint8)
    perm = np.empty(n_syn if with_learning else 0, np.int64)
    for i in range(n_syn):
        k = by_delay[i]
        j = tgt[k]
        b = block_of[j]
        key = np.int64(src[k]) * n_blocks + b
        pos = fill[key]
        fill[key] = pos + 1
        packed[pos] = pack_synapse(weight[k], j - b * block_len)
        syn_d[pos] = delay[k]
        if with_compartment:
            syn_c[pos] = compartment[k]
        if with_learning:
            syn_src[pos] = src[k]
            syn_plastic[pos] = 1 if (plastic[k] and weight[k] > 0) else 0
            perm[pos] = k
    # pass 4: groups, the runs of one delay within a key
    n_groups = 0
    for key in range(n_keys):
        for pos in range(offsets[key], offsets[key + 1]):
            if pos == offsets[key] or syn_d[pos] != syn_d[pos - 1]:
                n_groups += 1
    group_offsets = np.empty(n_keys + 1, np.int64)
    group_start = np.empty(n_groups + 1, np.int64)
    group_delay = np.empty(n_groups, np.uint8)
    g = 0
    for key in range(n_keys):
        group_offsets[key] = g
        for pos in range(offsets[key], offsets[key + 1]):
            if pos == offsets[key] or syn_d[pos] != syn_d[pos - 1]:
                group_start[g] = pos
                group_delay[g] = syn_d[pos]
                g += 1
    group_offsets[n_keys] = g
    group_start[n_groups] = n_syn
    return group_offsets, group_start, group_delay, packed, syn_c, syn_src, syn_plastic, perm, bound


@njit(cache=True)
def pack_synapse(weight, local_target):
    """One synapse word: the signed 16-bit weight above the 16-bit block-local target.

    ``packed >> 16`` (arithmetic) is the weight and ``packed & 0xFFFF`` the target; for
    weights in -32768 .. 32767 the word fits ``int32``.
    """
    return (np.int64(weight) << 16) | np.int64(local_target)


@njit(cache=True)
def _largest_contribution(weight, plastic, learning, graded):
    """The largest ``|contribution|`` one synapse can make in one step.

    ``|w|``, or 32767 for a plastic weight under learning (it may grow to that),
    doubled with graded spikes (``|(w * g) >> 7| <= 2 |w|`` for ``g <= 255``).
    """
    w = np.int64(weight)
    if learning and plastic and w > 0:
        w = 32767
    if w < 0:
        w = -w
    return 2 * w if graded else w


@njit(cache=True)
def incoming_index(perm, tgt, n_neurons):
    """Layout positions grouped by target: ``(in_offsets, in_positions)``, a CSR by gid.

    STDP walks the incoming synapses of each neuron that spiked; targets only ever sit
    in their own block, so each block's walk stays inside the block's layout range.
    """
    n_syn = perm.shape[0]
    in_offsets = np.zeros(n_neurons + 1, np.int64)
    for j in range(n_syn):
        in_offsets[tgt[perm[j]] + 1] += 1
    for i in range(n_neurons):
        in_offsets[i + 1] += in_offsets[i]
    fill = in_offsets[:-1].copy()
    in_positions = np.empty(n_syn, np.int64)
    for j in range(n_syn):
        i = tgt[perm[j]]
        in_positions[fill[i]] = j
        fill[i] += 1
    return in_offsets, in_positions


@njit(cache=True)
def input_bound(tgt, weight, plastic, n_neurons, learning, graded):
    """The largest possible ``sum_c |A_c|`` of any neuron in any step.

    Each synapse delivers at most once per step (a source spikes at most once per
    step and a synapse has one delay), so a neuron's input is bounded by the sum over
    its incoming synapses of :func:`_largest_contribution`. When this fits in 15 (31)
    bits the ring can hold ``int16`` (``int32``) exactly.
    """
    per_target = np.zeros(n_neurons, np.int64)
    for k in range(tgt.shape[0]):
        per_target[tgt[k]] += _largest_contribution(weight[k], plastic[k], learning, graded)
    bound = np.int64(0)
    for j in range(n_neurons):
        bound = max(bound, per_target[j])
    return bound
