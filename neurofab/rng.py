"""Counter-based random draws for the random topologies (draw version 1).

docs/model.md ("Drawing the random topologies") is the normative description; this
module implements it. Every draw is a pure function of integers: a 64-bit hash of
(key, counter), where the hash is the SplitMix64 output function. Nothing depends on
a generator's internal stream, on floating point beyond one exact conversion of
``p``, or on the number of threads, so the same network and seed give the same
synapses on every machine and with every numpy/numba version.

The plain-Python functions (:func:`mix64`, :func:`hash64`, :func:`connection_key`,
:func:`uniform_below`, :func:`sparse_threshold`) state the procedure; the ``draw_*``
kernels are the same procedure compiled with numba for speed, returning local
(source, target) index pairs in synapse order (source, then target).

INTERFACE (used by :mod:`neurofab.network`):

- ``connection_key(seed, index) -> int``: the 64-bit key of connection ``index``.
- ``sparse_threshold(p) -> int``: ``floor(p * 2**64)``, exact.
- ``draw_random_sparse(key, n_source, n_target, threshold) -> (src, tgt)``
- ``draw_fixed_fan_in(key, n_source, n_target, k) -> (src, tgt)``
- ``draw_fixed_fan_out(key, n_source, n_target, k) -> (src, tgt)``

The kernels return ``int32`` arrays of local indices ordered by source, then target.
"""

from __future__ import annotations

from fractions import Fraction

import numba
import numpy as np

__all__ = [
    "initial_lfsr",
    "DRAW_VERSION",
    "GOLDEN_GAMMA",
    "MIX_MULTIPLIER_1",
    "MIX_MULTIPLIER_2",
    "mix64",
    "hash64",
    "connection_key",
    "uniform_below",
    "sparse_threshold",
    "draw_random_sparse",
    "draw_fixed_fan_in",
    "draw_fixed_fan_out",
]

#: Version of the draw procedure; a change to any draw is a new version (stored
#: networks keep their expanded synapses only if the version they were drawn with is kept).
DRAW_VERSION = 1

MASK64 = (1 << 64) - 1
#: SplitMix64's increment, the odd integer nearest 2**64 / golden ratio.
GOLDEN_GAMMA = 0x9E3779B97F4A7C15
#: The multipliers of SplitMix64's output function (Stafford's "Mix13" variant).
MIX_MULTIPLIER_1 = 0xBF58476D1CE4E5B9
MIX_MULTIPLIER_2 = 0x94D049BB133111EB


def mix64(z: int) -> int:
    """SplitMix64's output function: a bijection on 64-bit integers."""
    z &= MASK64
    z = ((z ^ (z >> 30)) * MIX_MULTIPLIER_1) & MASK64
    z = ((z ^ (z >> 27)) * MIX_MULTIPLIER_2) & MASK64
    return z ^ (z >> 31)


def hash64(key: int, counter: int) -> int:
    """The ``counter``-th output (from 0) of a SplitMix64 generator whose state starts at ``key``.

    ``mix64(key + (counter + 1) * GOLDEN_GAMMA mod 2**64)``: random access into the stream.
    """
    return mix64((key + (counter + 1) * GOLDEN_GAMMA) & MASK64)


def connection_key(seed: int, index: int) -> int:
    """The key of connection ``index`` (0-based, document order) of a network with ``seed``."""
    return hash64(seed, index)


def uniform_below(key: int, counter: int, m: int) -> tuple[int, int]:
    """A uniform integer in ``0 .. m - 1`` (``1 <= m <= 2**32``) from the stream ``key``.

    Lemire's multiply-and-reject method on 32-bit words: ``x = hash64(key, counter) >> 32``
    (the high half), ``prod = x * m``; accept if ``prod mod 2**32 >= (2**32 - m) mod m``,
    giving ``prod >> 32``, else retry with the next counter. Exactly uniform. Returns the
    value and the next unused counter.
    """
    reject_below = ((1 << 32) - m) % m
    while True:
        x = hash64(key, counter) >> 32
        counter += 1
        prod = x * m
        if (prod & 0xFFFFFFFF) >= reject_below:
            return prod >> 32, counter


def sparse_threshold(p: float) -> int:
    """``floor(p * 2**64)`` computed exactly from the binary value of ``p`` (0 <= p <= 1)."""
    return int(Fraction(p) * (1 << 64))


# --- compiled kernels -------------------------------------------------------------------
# The same procedure as above on numba uint64 scalars. Every constant is a np.uint64 so
# that numba never promotes to float64 (uint64 mixed with int64 would).

_U64_GOLDEN = np.uint64(GOLDEN_GAMMA)
_U64_M1 = np.uint64(MIX_MULTIPLIER_1)
_U64_M2 = np.uint64(MIX_MULTIPLIER_2)
_U64_1 = np.uint64(1)
_U64_27 = np.uint64(27)
_U64_30 = np.uint64(30)
_U64_31 = np.uint64(31)
_U64_32 = np.uint64(32)
_U64_LOW32 = np.uint64(0xFFFFFFFF)


@numba.njit(cache=True, inline="always")
def _mix64(z):
    z = (z ^ (z >> _U64_30)) * _U64_M1
    z = (z ^ (z >> _U64_27)) * _U64_M2
    return z ^ (z >> _U64_31)


@numba.njit(cache=True, inline="always")
def _hash64(key, counter):
    return _mix64(key + (counter + _U64_1) * _U64_GOLDEN)


@numba.njit(cache=True)
def _floyd_sample(key, n, k, mark, stamp, out):
    """Write k distinct values of 0..n-1 to ``out`` (Floyd's algorithm), in draw order.

    ``mark`` (length n) holds, for each value, the stamp of the last sample that chose
    it, so membership is O(1) without clearing between samples.
    """
    counter = np.uint64(0)
    m_count = 0
    for t in range(n - k, n):
        m = np.uint64(t + 1)
        reject_below = (np.uint64(1 << 32) - m) % m
        while True:
            x = _hash64(key, counter) >> _U64_32
            counter += _U64_1
            prod = x * m
            if (prod & _U64_LOW32) >= reject_below:
                break
        r = np.int64(prod >> _U64_32)
        if mark[r] == stamp:
            r = t
        mark[r] = stamp
        out[m_count] = r
        m_count += 1


@numba.njit(cache=True, parallel=True)
def _fixed_fan(key, n_draw_from, n_owners, k, block):
    """For each owner o (target for fan-in, source for fan-out), k distinct values
    drawn from 0..n_draw_from-1 with stream key ``hash64(key, o)``, sorted ascending.
    Returns an (n_owners, k) int32 array."""
    chosen = np.empty((n_owners, k), dtype=np.int32)
    n_blocks = (n_owners + block - 1) // block
    for b in numba.prange(n_blocks):
        mark = np.full(n_draw_from, -1, dtype=np.int32)
        row = np.empty(k, dtype=np.int64)
        for o in range(b * block, min(n_owners, (b + 1) * block)):
            _floyd_sample(_hash64(key, np.uint64(o)), n_draw_from, k, mark, o, row)
            row.sort()
            for a in range(k):
                chosen[o, a] = row[a]
    return chosen


@numba.njit(cache=True)
def _fan_in_to_source_order(chosen, n_source):
    """Pairs (source, target) from per-target source lists, ordered by source then target."""
    n_target, k = chosen.shape
    counts = np.zeros(n_source + 1, dtype=np.int64)
    for j in range(n_target):
        for a in range(k):
            counts[chosen[j, a] + 1] += 1
    for i in range(n_source):
        counts[i + 1] += counts[i]
    src = np.empty(n_target * k, dtype=np.int32)
    tgt = np.empty(n_target * k, dtype=np.int32)
    # Targets are visited in ascending order, so each source's targets come out ascending.
    for j in range(n_target):
        for a in range(k):
            i = chosen[j, a]
            pos = counts[i]
            counts[i] = pos + 1
            src[pos] = i
            tgt[pos] = j
    return src, tgt


@numba.njit(cache=True, parallel=True)
def _sparse_row_counts(key, n_source, n_target, threshold):
    counts = np.zeros(n_source, dtype=np.int64)
    nt = np.uint64(n_target)
    for i in numba.prange(n_source):
        state = key + (np.uint64(i) * nt + _U64_1) * _U64_GOLDEN
        c = 0
        for _ in range(n_target):
            if _mix64(state) < threshold:
                c += 1
            state += _U64_GOLDEN
        counts[i] = c
    return counts


@numba.njit(cache=True, parallel=True)
def _sparse_fill(key, n_source, n_target, threshold, offsets, src, tgt):
    nt = np.uint64(n_target)
    for i in numba.prange(n_source):
        state = key + (np.uint64(i) * nt + _U64_1) * _U64_GOLDEN
        pos = offsets[i]
        for j in range(n_target):
            if _mix64(state) < threshold:
                src[pos] = i
                tgt[pos] = j
                pos += 1
            state += _U64_GOLDEN


def draw_random_sparse(key: int, n_source: int, n_target: int, threshold: int):
    """Pairs (i, j) with ``hash64(key, i * n_target + j) < threshold``, by source then target.

    ``threshold`` is :func:`sparse_threshold` of ``p``; ``2**64`` (p = 1) takes every pair.
    Hashes every pair twice (count, then fill) so the output is written in place, in parallel.
    """
    if threshold >= 1 << 64:
        src = np.repeat(np.arange(n_source, dtype=np.int32), n_target)
        tgt = np.tile(np.arange(n_target, dtype=np.int32), n_source)
        return src, tgt
    if threshold <= 0 or n_source == 0 or n_target == 0:
        return np.zeros(0, np.int32), np.zeros(0, np.int32)
    k, thr = np.uint64(key), np.uint64(threshold)
    counts = _sparse_row_counts(k, n_source, n_target, thr)
    offsets = np.zeros(n_source + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    total = int(offsets[-1])
    src = np.empty(total, dtype=np.int32)
    tgt = np.empty(total, dtype=np.int32)
    _sparse_fill(k, n_source, n_target, thr, offsets, src, tgt)
    return src, tgt


def _fan_block(n_owners: int) -> int:
    # Enough blocks for both threads to share the work, few enough that each block's
    # mark array (one int64 per candidate) is allocated rarely.
    return max(1, min(4096, -(-n_owners // 64)))


def draw_fixed_fan_in(key: int, n_source: int, n_target: int, k: int):
    """Each target j gets k distinct sources, drawn by Floyd's algorithm from stream
    ``hash64(key, j)``; pairs ordered by source, then target."""
    if not 0 <= k <= n_source:
        raise ValueError(f"fixed_fan_in needs 0 <= k <= source size {n_source}, not {k}")
    if k == 0:
        return np.zeros(0, np.int32), np.zeros(0, np.int32)
    chosen = _fixed_fan(np.uint64(key), n_source, n_target, k, _fan_block(n_target))
    return _fan_in_to_source_order(chosen, n_source)


def draw_fixed_fan_out(key: int, n_source: int, n_target: int, k: int):
    """Each source i reaches k distinct targets, drawn by Floyd's algorithm from stream
    ``hash64(key, i)``; pairs ordered by source, then target."""
    if not 0 <= k <= n_target:
        raise ValueError(f"fixed_fan_out needs 0 <= k <= target size {n_target}, not {k}")
    if k == 0:
        return np.zeros(0, np.int32), np.zeros(0, np.int32)
    chosen = _fixed_fan(np.uint64(key), n_target, n_source, k, _fan_block(n_source))
    src = np.repeat(np.arange(n_source, dtype=np.int32), k)
    return src, chosen.reshape(-1)


def initial_lfsr(seed: int, gids) -> np.ndarray:
    """Each neuron's initial noise LFSR for the job's ``seed``: ``splitmix32(seed ^ gid) &
    0xFFFF``, or 0xACE1 where that is 0 (docs/model.md, "Noise source" and the appendix).

    Vectorised over ``gids``; returns ``int64``. The one implementation, used by the
    compiler (images carry seed 0's values), the emulator and the RTL host.
    """
    mask = np.uint64(0xFFFFFFFF)
    x = (np.asarray(gids, dtype=np.uint64) ^ np.uint64(seed)) & mask
    x = (x + np.uint64(0x9E3779B9)) & mask
    x = ((x ^ (x >> np.uint64(16))) * np.uint64(0x85EBCA6B)) & mask
    x = ((x ^ (x >> np.uint64(13))) * np.uint64(0xC2B2AE35)) & mask
    value = (x ^ (x >> np.uint64(16))) & np.uint64(0xFFFF)
    return np.where(value == 0, 0xACE1, value).astype(np.int64)
