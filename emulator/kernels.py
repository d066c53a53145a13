"""The emulator's compiled step loop: deliver, update, learn, for a chunk of timesteps.

State lives in flat arrays owned by :mod:`neurofab.emulator.engine`; a chunk call runs
steps ``t0 .. t1 - 1`` entirely in compiled code and returns the first step it did
not run (earlier than ``t1`` only when the spike buffer needs to grow first).

Order of work (equivalent to docs/model.md, step by step):

- Step ``t`` starts by delivering the spikes of step ``t - 1`` into the delay ring
  (arrival ``t - 1 + 1 + d`` lands in slot ``(t + d) % R``, ``R = max_delay + 1``),
  with the weights as they were when those spikes were emitted, because learning for
  step ``t - 1`` runs only after this delivery. Then every neuron reads and clears
  its slot ``t % R``, and the soma updates. Both halves touch only the neuron's own
  block (targets of a block's synapses are in the block), so blocks run in parallel
  and one parallel region per step suffices.
- Learning for step ``t - 1`` follows (traces decay, weights/eligibilities change per
  block, traces of ``t - 1``'s spikers set), using spike flags double-buffered by the
  parity of the step. Learning for the last step runs in :func:`finish_learning`.

The ring has one plane (``I`` is just the sum of the four compartments) or, with
``dendritic``, four interleaved planes (``ring[b, slot, 4 * local + c]``). Its integer
type is the narrowest of ``int16``, ``int32``, ``int64`` that the per-neuron input
bound (:func:`neurofab.emulator.layout.input_bound`) proves exact; sums are exact
either way. Synapses are read through the layout of :mod:`neurofab.emulator.layout`
(groups of one delay per source and block, packed ``(weight, target)`` words).

``run_chunk_parallel`` and ``run_chunk_serial`` are the same loop, the first over
blocks with ``prange``. They are two functions (not one compiled twice) because
numba's on-disk cache keys compiled code by function, not by its ``parallel`` flag.
"""

import numpy as np
from numba import njit, prange

from .arith import (
    TRACE_MAX,
    clamp_weight,
    graded_contribution,
    graded_payload,
    lfsr_step,
    sat,
    sat24,
    toward_zero,
)
from .layout import pack_synapse

__all__ = ["FLAG_FIELDS", "run_chunk_parallel", "run_chunk_serial", "finish_learning"]

#: meaning of the ``flags`` array passed to the kernels, in order
FLAG_FIELDS = ("graded", "noise", "learning", "three_factor", "a_plus", "a_minus", "trace_shift",
               "elig_shift")
_GRADED, _NOISE, _LEARNING, _THREE_FACTOR, _A_PLUS, _A_MINUS, _TRACE_SHIFT, _ELIG_SHIFT = range(8)
#: rows of the ``params`` array
_THRESHOLD, _LEAK, _RESTING, _REFRAC, _DEND_THRESHOLD = range(5)
#: entries of the ``counters`` array
_N_SPIKES, _NEXT_STIMULUS, _NEXT_REWARD = range(3)


@njit(cache=True)
def _deliver_block(b, slot, ring, planes, n_neurons, group_offsets, group_start, group_delay, packed, syn_c,
                   spk_gid, spk_g, spk_cnt, prev, graded):
    """Add the spikes of the previous step (all blocks) into block ``b``'s ring rows.

    A source's synapses into the block come in groups of one delay, so each group
    writes one ring row. The common case (one plane, binary spikes) has a loop of
    its own, kept minimal: one ``int32`` load and one add per synapse.
    """
    ring_b = ring[b]
    n_slots = ring_b.shape[0]
    n_blocks = spk_cnt.shape[1]
    simple = planes == 1 and not graded
    for sb in range(n_blocks):
        for i in range(spk_cnt[prev, sb]):
            s = spk_gid[prev, sb, i]
            g = np.int64(spk_g[prev, sb, i])
            key = np.int64(s) * n_blocks + b
            for group in range(group_offsets[key], group_offsets[key + 1]):
                row = slot + np.int64(group_delay[group])
                if row >= n_slots:
                    row -= n_slots
                ring_row = ring_b[row]
                if simple:
                    for k in range(group_start[group], group_start[group + 1]):
                        word = np.int64(packed[k])
                        ring_row[word & 0xFFFF] += word >> 16
                else:
                    for k in range(group_start[group], group_start[group + 1]):
                        word = np.int64(packed[k])
                        col = word & 0xFFFF
                        if planes != 1:
                            col = 4 * col + np.int64(syn_c[k])
                        w = word >> 16
                        if graded:
                            w = graded_contribution(w, g)
                        ring_row[col] += w


@njit(cache=True)
def _soma(total, bits, v, r, stim, threshold, leak, resting, refrac, noise):
    """One neuron's soma step (model step 5): ``(v, r, fired, v_at_threshold_test)``.

    Written without branches on the neuron's state so that the block loop vectorises.
    """
    active = r <= 0
    # leak toward resting without crossing it (the identity when v == resting)
    leaked = max(v - leak, min(resting, v + leak))
    vn = sat24(leaked + total + stim)
    if noise:
        vn = sat24(vn + ((bits & 0xFF) - 128))
    fired = active & (vn >= threshold)
    v_next = (resting if fired else vn) if active else v
    r_next = (refrac if fired else 0) if active else r - 1
    return v_next, r_next, fired, vn


@njit(cache=True)
def _dendritic_input(row, j, dend_threshold):
    """Model step 2 with ``dendritic``: ``A_0`` plus each ``A_c`` (c = 1..3) that reaches
    ``dend_threshold``; the neuron's four ring entries are cleared for reuse."""
    total = np.int64(row[4 * j])
    for c in range(1, 4):
        a = np.int64(row[4 * j + c])
        if a >= dend_threshold:
            total += a
    for c in range(4):
        row[4 * j + c] = 0
    return total


@njit(cache=True)
def _update_block(b, slot, ring, planes, lo, hi, v, r, lfsr, stim, params, noise, graded,
                  fired, payload):
    """Soma update of neurons ``lo .. hi - 1`` (block ``b``): state, ``fired`` flags and,
    with graded spikes, each firing neuron's ``payload``.

    The loop is written twice, for one plane and for four, because a branch on
    ``planes`` inside it keeps the compiler from vectorising the common case.
    """
    row = ring[b, slot]
    v_b = v[lo:hi]
    r_b = r[lo:hi]
    lfsr_b = lfsr[lo:hi]
    stim_b = stim[lo:hi]
    thr_b = params[_THRESHOLD, lo:hi]
    leak_b = params[_LEAK, lo:hi]
    rest_b = params[_RESTING, lo:hi]
    refrac_b = params[_REFRAC, lo:hi]
    dend_b = params[_DEND_THRESHOLD, lo:hi]
    fired_b = fired[lo:hi]
    if planes == 1:
        for j in range(hi - lo):
            total = np.int64(row[j])
            row[j] = 0
            # the noise source advances every step, refractory or not
            bits = lfsr_step(np.int64(lfsr_b[j]))
            lfsr_b[j] = bits
            threshold = np.int64(thr_b[j])
            v_next, r_next, spike, v_test = _soma(total, bits, np.int64(v_b[j]), np.int64(r_b[j]), stim_b[j],
                                                  threshold, np.int64(leak_b[j]), np.int64(rest_b[j]),
                                                  np.int64(refrac_b[j]), noise)
            v_b[j] = v_next
            r_b[j] = r_next
            fired_b[j] = spike
            if graded:
                payload[lo + j] = graded_payload(v_test, threshold)
    else:
        for j in range(hi - lo):
            total = _dendritic_input(row, j, np.int64(dend_b[j]))
            bits = lfsr_step(np.int64(lfsr_b[j]))
            lfsr_b[j] = bits
            threshold = np.int64(thr_b[j])
            v_next, r_next, spike, v_test = _soma(total, bits, np.int64(v_b[j]), np.int64(r_b[j]), stim_b[j],
                                                  threshold, np.int64(leak_b[j]), np.int64(rest_b[j]),
                                                  np.int64(refrac_b[j]), noise)
            v_b[j] = v_next
            r_b[j] = r_next
            fired_b[j] = spike
            if graded:
                payload[lo + j] = graded_payload(v_test, threshold)


@njit(cache=True)
def _list_spikes(b, lo, hi, fired_words, payload, graded, spk_gid, spk_g, cur):
    """Gids (ascending) and payloads of block ``b``'s neurons that fired; returns the count.

    Spikes are sparse, so the flags are scanned eight at a time as ``uint64`` words
    (``lo`` is a multiple of 64 by construction of the blocks).
    """
    count = 0
    for w in range(lo >> 3, (hi + 7) >> 3):
        word = fired_words[w]
        if word == 0:
            continue
        for k in range(8):
            if (word >> np.uint64(8 * k)) & np.uint64(0xFF):
                i = w * 8 + k
                spk_gid[cur, b, count] = i
                if graded:
                    spk_g[cur, b, count] = payload[i]
                count += 1
    return count


@njit(cache=True)
def _decay_traces(x, y, shift):
    for i in range(x.shape[0]):
        x[i] = toward_zero(np.int64(x[i]), shift)
        y[i] = toward_zero(np.int64(y[i]), shift)


@njit(cache=True)
def _set_traces(x, y, spk_gid, spk_cnt, p):
    for sb in range(spk_cnt.shape[1]):
        for i in range(spk_cnt[p, sb]):
            x[spk_gid[p, sb, i]] = TRACE_MAX
            y[spk_gid[p, sb, i]] = TRACE_MAX


@njit(cache=True)
def _step_reward(step, rw_t, rw_v, counters):
    """``(has_reward, R)`` for ``step``; rewards are sorted by step and consumed in order."""
    k = counters[_NEXT_REWARD]
    while k < rw_t.shape[0] and rw_t[k] < step:
        k += 1
    has = False
    total = np.int64(0)
    if k < rw_t.shape[0] and rw_t[k] == step:
        has = True
        total = rw_v[k]
        k += 1
    counters[_NEXT_REWARD] = k
    return has, total


@njit(cache=True)
def _set_weight(packed, k, w):
    """Store weight ``w`` into synapse word ``k``, keeping its target."""
    packed[k] = pack_synapse(w, np.int64(packed[k]) & 0xFFFF)


@njit(cache=True)
def _learn_block(b, p, lo_b, n_neurons, group_offsets, group_start, packed, syn_src, syn_plastic, elig,
                 in_offsets, in_positions, spiked, x, y, spk_gid, spk_cnt, flags, has_reward, reward):
    """Weight (and eligibility) updates of step parity ``p`` for synapses into block ``b``."""
    a_plus = flags[_A_PLUS]
    a_minus = flags[_A_MINUS]
    n_blocks = spk_cnt.shape[1]
    if flags[_THREE_FACTOR]:
        elig_shift = flags[_ELIG_SHIFT]
        for s in range(n_neurons):
            key = np.int64(s) * n_blocks + b
            _three_factor_range(group_start[group_offsets[key]], group_start[group_offsets[key + 1]], p, lo_b,
                                packed, syn_src, syn_plastic, elig, spiked, x, y, a_plus, a_minus, elig_shift,
                                has_reward, reward)
        return
    # Pair STDP touches only synapses with a spiking end. A synapse whose ends both
    # spiked is left to the post pass, which applies both terms before one clamp.
    for sb in range(n_blocks):
        for i in range(spk_cnt[p, sb]):
            key = np.int64(spk_gid[p, sb, i]) * n_blocks + b
            first = group_start[group_offsets[key]]
            last = group_start[group_offsets[key + 1]]
            for k in range(first, last):
                if not syn_plastic[k]:
                    continue
                word = np.int64(packed[k])
                post = lo_b + (word & 0xFFFF)
                if spiked[p, post]:
                    continue
                _set_weight(packed, k, clamp_weight((word >> 16) - ((a_minus * np.int64(y[post])) >> 8)))
    for i in range(spk_cnt[p, b]):
        q = spk_gid[p, b, i]
        y_q = np.int64(y[q])
        for j in range(in_offsets[q], in_offsets[q + 1]):
            k = in_positions[j]
            if not syn_plastic[k]:
                continue
            pre = syn_src[k]
            dw = (a_plus * np.int64(x[pre])) >> 8
            if spiked[p, pre]:
                dw -= (a_minus * y_q) >> 8
            _set_weight(packed, k, clamp_weight((np.int64(packed[k]) >> 16) + dw))


@njit(cache=True)
def _three_factor_range(first, last, p, lo_b, packed, syn_src, syn_plastic, elig, spiked, x, y, a_plus,
                        a_minus, elig_shift, has_reward, reward):
    """Three-factor updates of the synapses at layout positions ``first .. last - 1``."""
    for k in range(first, last):
        if not syn_plastic[k]:
            continue
        pre = syn_src[k]
        word = np.int64(packed[k])
        post = lo_b + (word & 0xFFFF)
        dw = np.int64(0)
        if spiked[p, post]:
            dw += (a_plus * np.int64(x[pre])) >> 8
        if spiked[p, pre]:
            dw -= (a_minus * np.int64(y[post])) >> 8
        e = np.int64(elig[k])
        if e == 0 and dw == 0:
            continue  # decay keeps 0 at 0 and a reward moves w by (R * 0) >> 8 = 0
        e = sat(toward_zero(e, elig_shift) + dw, 16)
        elig[k] = e
        if has_reward:
            _set_weight(packed, k, clamp_weight((word >> 16) + ((reward * e) >> 8)))


@njit(cache=True)
def _apply_stimuli(t, ev_t, ev_gid, ev_delta, stim, counters):
    k = counters[_NEXT_STIMULUS]
    while k < ev_t.shape[0] and ev_t[k] == t:
        stim[ev_gid[k]] += ev_delta[k]
        k += 1
    counters[_NEXT_STIMULUS] = k


@njit(cache=True)
def _collect_spikes(t, spk_gid, spk_cnt, cur, out_t, out_g, counters):
    n = counters[_N_SPIKES]
    for b in range(spk_cnt.shape[1]):
        for i in range(spk_cnt[cur, b]):
            out_t[n] = t
            out_g[n] = spk_gid[cur, b, i]
            n += 1
    counters[_N_SPIKES] = n


@njit(cache=True, parallel=True)
def run_chunk_parallel(t0, t1, ring, planes, bounds, group_offsets, group_start, group_delay, packed, syn_c,
                     v, r, lfsr, stim, params, spk_gid, spk_g, spk_cnt, spiked, spiked_words, payload,
                     ev_t, ev_gid, ev_delta, rw_t, rw_v, out_t, out_g, counters, flags,
                     x, y, syn_src, syn_plastic, elig, in_offsets, in_positions):
    """Steps ``t0 .. t1 - 1``, blocks in parallel; returns the first step not run."""
    n_neurons = v.shape[0]
    n_blocks = bounds.shape[0] - 1
    n_slots = ring.shape[1]
    graded = flags[_GRADED] != 0
    noise = flags[_NOISE] != 0
    learning = flags[_LEARNING] != 0
    t = t0
    while t < t1:
        if counters[_N_SPIKES] + n_neurons > out_t.shape[0]:
            break
        _apply_stimuli(t, ev_t, ev_gid, ev_delta, stim, counters)
        cur = t & 1
        prev = cur ^ 1
        slot = t % n_slots
        for b in prange(n_blocks):
            lo = bounds[b]
            hi = bounds[b + 1]
            _deliver_block(b, slot, ring, planes, n_neurons, group_offsets, group_start, group_delay, packed,
                           syn_c, spk_gid, spk_g, spk_cnt, prev, graded)
            _update_block(b, slot, ring, planes, lo, hi, v, r, lfsr, stim, params, noise, graded,
                          spiked[cur], payload)
            spk_cnt[cur, b] = _list_spikes(b, lo, hi, spiked_words[cur], payload, graded, spk_gid, spk_g,
                                           cur)
        _collect_spikes(t, spk_gid, spk_cnt, cur, out_t, out_g, counters)
        if learning and t > 0:
            has_reward, reward = _step_reward(t - 1, rw_t, rw_v, counters)
            _decay_traces(x, y, flags[_TRACE_SHIFT])
            for b in prange(n_blocks):
                _learn_block(b, prev, bounds[b], n_neurons, group_offsets, group_start, packed, syn_src,
                             syn_plastic, elig, in_offsets, in_positions, spiked, x, y, spk_gid,
                             spk_cnt, flags, has_reward, reward)
            _set_traces(x, y, spk_gid, spk_cnt, prev)
        t += 1
    return t


@njit(cache=True)
def run_chunk_serial(t0, t1, ring, planes, bounds, group_offsets, group_start, group_delay, packed, syn_c,
                     v, r, lfsr, stim, params, spk_gid, spk_g, spk_cnt, spiked, spiked_words, payload,
                     ev_t, ev_gid, ev_delta, rw_t, rw_v, out_t, out_g, counters, flags,
                     x, y, syn_src, syn_plastic, elig, in_offsets, in_positions):
    """:func:`run_chunk_parallel` on one thread (small networks, or the other core busy)."""
    n_neurons = v.shape[0]
    n_blocks = bounds.shape[0] - 1
    n_slots = ring.shape[1]
    graded = flags[_GRADED] != 0
    noise = flags[_NOISE] != 0
    learning = flags[_LEARNING] != 0
    t = t0
    while t < t1:
        if counters[_N_SPIKES] + n_neurons > out_t.shape[0]:
            break
        _apply_stimuli(t, ev_t, ev_gid, ev_delta, stim, counters)
        cur = t & 1
        prev = cur ^ 1
        slot = t % n_slots
        for b in range(n_blocks):
            lo = bounds[b]
            hi = bounds[b + 1]
            _deliver_block(b, slot, ring, planes, n_neurons, group_offsets, group_start, group_delay, packed,
                           syn_c, spk_gid, spk_g, spk_cnt, prev, graded)
            _update_block(b, slot, ring, planes, lo, hi, v, r, lfsr, stim, params, noise, graded,
                          spiked[cur], payload)
            spk_cnt[cur, b] = _list_spikes(b, lo, hi, spiked_words[cur], payload, graded, spk_gid, spk_g,
                                           cur)
        _collect_spikes(t, spk_gid, spk_cnt, cur, out_t, out_g, counters)
        if learning and t > 0:
            has_reward, reward = _step_reward(t - 1, rw_t, rw_v, counters)
            _decay_traces(x, y, flags[_TRACE_SHIFT])
            for b in range(n_blocks):
                _learn_block(b, prev, bounds[b], n_neurons, group_offsets, group_start, packed, syn_src,
                             syn_plastic, elig, in_offsets, in_positions, spiked, x, y, spk_gid,
                             spk_cnt, flags, has_reward, reward)
            _set_traces(x, y, spk_gid, spk_cnt, prev)
        t += 1
    return t


@njit(cache=True)
def finish_learning(last, bounds, group_offsets, group_start, packed, spk_gid, spk_cnt, spiked, rw_t, rw_v,
                    counters, flags, x, y, syn_src, syn_plastic, elig, in_offsets, in_positions):
    """Learning for the run's last step ``last`` (the chunk loop runs it one step late)."""
    n_neurons = x.shape[0]
    p = last & 1
    has_reward, reward = _step_reward(last, rw_t, rw_v, counters)
    _decay_traces(x, y, flags[_TRACE_SHIFT])
    for b in range(bounds.shape[0] - 1):
        _learn_block(b, p, bounds[b], n_neurons, group_offsets, group_start, packed, syn_src, syn_plastic,
                     elig, in_offsets, in_positions, spiked, x, y, spk_gid, spk_cnt, flags, has_reward,
                     reward)
    _set_traces(x, y, spk_gid, spk_cnt, p)
