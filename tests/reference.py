"""The slow, plain reference model: docs/model.md (version 1) written out line by line.

This module is the test suite's oracle. It is written from the specification only,
never from the emulator, and is deliberately naive: pure Python integers, one loop
over steps, one over neurons, one over synapses, and every arithmetic rule as a
named helper carrying the sentence of the spec it implements. Delayed spikes are an
explicit list of pending events (kept as a heap ordered by arrival step) rather than
a ring buffer, so that a bug in the emulator's delay machinery cannot be mirrored here
by accident.

INTERFACE: ``reference_simulate(netlist, job) -> RunResult``, the same contract as
``neurofab.emulator.simulate`` (without ``progress``): spikes sorted by time then
gid, ``final_weights`` in synapse order, ``final_state`` with ``v``, ``r``,
``lfsr``, ``x``, ``y`` per neuron and, with three-factor learning, ``e`` per synapse.

Where the spec leaves room, the reading taken here is:

- Traces ``x``/``y`` and eligibilities ``e`` only move when ``learning.enabled``
  (the learning step "runs only with learning.enabled"), so they end at 0 otherwise.
- ``e`` is kept for plastic synapses only ("for every plastic synapse"); a
  non-plastic synapse's ``e`` stays 0.
- A refractory neuron cannot spike: its ``v`` is held at ``resting``, which is
  below ``threshold`` by the parameter rules.
- Noise is added only on the non-refractory branch (it is part of the soma update
  there); the LFSR itself advances every step regardless.
"""

from __future__ import annotations

import heapq
import time

import numpy as np

from neurofab.results import RunResult

__all__ = [
    "sat",
    "clamp",
    "toward_zero",
    "splitmix32",
    "initial_lfsr",
    "lfsr_step",
    "noise_value",
    "graded_payload",
    "contribution",
    "leak_toward_resting",
    "dendritic_input",
    "stimulus_active",
    "reference_simulate",
]

V_BITS = 24  # "v (membrane, signed 24 bit)"
E_BITS = 16  # "e (eligibility, signed 16 bit)"
W_MAX = 32767  # "a plastic weight stays in 0 .. 32767"
TRACE_MAX = 255  # "Set traces of neurons that spiked at t: x = 255, y = 255."
LFSR_TAPS = 0xB400
LFSR_ZERO_REPLACEMENT = 0xACE1


def sat(x: int, bits: int) -> int:
    """``sat(x, b)`` clamps ``x`` to the signed range of ``b`` bits: [-2^(b-1), 2^(b-1) - 1]."""
    lo = -(1 << (bits - 1))
    hi = (1 << (bits - 1)) - 1
    return max(lo, min(hi, x))


def clamp(x: int, lo: int, hi: int) -> int:
    """``clamp(w + dw, 0, 32767)``: the plastic weight range."""
    return max(lo, min(hi, x))


def toward_zero(x: int, s: int) -> int:
    """``toward_zero(x, s) = x - sign(x) * ((|x| + 2^s - 1) >> s)``.

    "subtracts ceil(|x| / 2^s) toward zero, so every non-zero value reaches 0."
    """
    sign = (x > 0) - (x < 0)
    return x - sign * ((abs(x) + (1 << s) - 1) >> s)


def splitmix32(x: int) -> int:
    """The appendix's splitmix32, verbatim."""
    x = (x + 0x9E3779B9) & 0xFFFFFFFF
    x = ((x ^ (x >> 16)) * 0x85EBCA6B) & 0xFFFFFFFF
    x = ((x ^ (x >> 13)) * 0xC2B2AE35) & 0xFFFFFFFF
    return x ^ (x >> 16)


def initial_lfsr(seed: int, gid: int) -> int:
    """"The initial lfsr is splitmix32(seed ^ gid) & 0xFFFF, or 0xACE1 where that is 0"."""
    value = splitmix32(seed ^ gid) & 0xFFFF
    return LFSR_ZERO_REPLACEMENT if value == 0 else value


def lfsr_step(lfsr: int) -> int:
    """"b = lfsr & 1; lfsr >>= 1; if b: lfsr ^= 0xB400"."""
    b = lfsr & 1
    lfsr >>= 1
    if b:
        lfsr ^= LFSR_TAPS
    return lfsr


def noise_value(lfsr: int) -> int:
    """"With noise: v = sat(v + ((lfsr & 0xFF) - 128), 24)": the added term, -128 .. 127."""
    return (lfsr & 0xFF) - 128


def graded_payload(v: int, threshold: int) -> int:
    """"With graded its payload is g = min(255, 128 + ((v - threshold) >> 3))"."""
    return min(255, 128 + ((v - threshold) >> 3))


def contribution(weight: int, payload: int | None) -> int:
    """"A contribution is w, or with graded spikes (w * g) >> 7 where g is the spike's payload"."""
    if payload is None:
        return weight
    return (weight * payload) >> 7


def leak_toward_resting(v: int, resting: int, leak: int) -> int:
    """"if v > resting: v = max(resting, v - leak); if v < resting: v = min(resting, v + leak)"."""
    if v > resting:
        return max(resting, v - leak)
    if v < resting:
        return min(resting, v + leak)
    return v


def dendritic_input(a: list[int], dendritic: bool, dend_threshold: int) -> int:
    """Step 2, Dendrites.

    "Without dendritic: I = A_0 + A_1 + A_2 + A_3. With dendritic:
    I = A_0 + sum over c in 1..3 of (A_c if A_c >= dend_threshold else 0)."
    """
    if not dendritic:
        return a[0] + a[1] + a[2] + a[3]
    total = a[0]
    for c in (1, 2, 3):
        if a[c] >= dend_threshold:
            total += a[c]
    return total


def stimulus_active(stimulus, t: int, timesteps: int) -> bool:
    """Step 3: "active at t: from start (default 0) to before stop (default T), or, for a
    stimulus that lists times, exactly at those steps"."""
    if stimulus.times is not None:
        return t in stimulus.times
    start = 0 if stimulus.start is None else stimulus.start
    stop = timesteps if stimulus.stop is None else stimulus.stop
    return start <= t < stop


def _stimulus_targets(stimulus, populations) -> list[int]:
    """Global ids a stimulus drives: the listed local indices, or the whole population."""
    for pop in populations:
        if pop.label == stimulus.population:
            local = range(pop.size) if stimulus.neurons is None else stimulus.neurons
            return [pop.offset + i for i in local]
    raise KeyError(f"stimulus population {stimulus.population!r} is not in the network")


def reference_simulate(netlist, job) -> RunResult:
    """Run ``job`` on ``netlist`` exactly as docs/model.md defines it, slowly."""
    started = time.perf_counter()
    T = job.timesteps
    learning = job.learning
    n = netlist.n_neurons
    m = netlist.n_synapses

    threshold = [int(x) for x in netlist.threshold]
    leak = [int(x) for x in netlist.leak]
    resting = [int(x) for x in netlist.resting]
    refrac = [int(x) for x in netlist.refrac]
    dend_threshold = [int(x) for x in netlist.dend_threshold]

    src = [int(x) for x in netlist.src]
    tgt = [int(x) for x in netlist.tgt]
    w = [int(x) for x in netlist.weight]
    delay = [int(x) for x in netlist.delay]
    compartment = [int(x) for x in netlist.compartment]
    # "A synapse is plastic if and only if its connection does not say plastic: false
    # and its initial weight is > 0."
    plastic = [bool(netlist.plastic[k]) and w[k] > 0 for k in range(m)]

    # "v ... starts at resting, r ... starts 0, x, y start 0; e starts 0."
    v = list(resting)
    r = [0] * n
    lfsr = [initial_lfsr(job.seed, gid) for gid in range(n)]
    x = [0] * n
    y = [0] * n
    e = [0] * m

    stimuli = [(stim, _stimulus_targets(stim, netlist.populations)) for stim in job.stimuli]
    # "if any rewards fall on step t, R = their sum"
    reward_sum: dict[int, int] = {}
    for reward in job.rewards:
        reward_sum[reward.timestep] = reward_sum.get(reward.timestep, 0) + reward.value

    # Spikes in flight: (arrival step, target gid, compartment, value), value fixed at emission;
    # a heap, so the earliest arrival is pending[0].
    pending: list[tuple[int, int, int, int]] = []
    spikes: list[tuple[int, int]] = []

    for t in range(T):
        # 1. Input: sum every contribution arriving at (neuron, c) at t, exactly.
        inputs = [[0, 0, 0, 0] for _ in range(n)]
        while pending and pending[0][0] == t:
            _, target, comp, value = heapq.heappop(pending)
            inputs[target][comp] += value
        assert not pending or pending[0][0] > t, "a spike arrival was missed"

        # 3. Stimulus: S per neuron, the sum of every active stimulus on it.
        stim_current = [0] * n
        for stim, targets in stimuli:
            if stimulus_active(stim, t, T):
                for gid in targets:
                    stim_current[gid] += stim.current

        spiked = [False] * n
        payload: list[int | None] = [None] * n
        for i in range(n):
            # 2. Dendrites.
            current = dendritic_input(inputs[i], learning.dendritic, dend_threshold[i])
            # 4. Noise source: "advances once, every step, refractory or not".
            lfsr[i] = lfsr_step(lfsr[i])
            # 5. Soma.
            if r[i] > 0:
                # "r -= 1; v stays at resting; I and S are discarded."
                r[i] -= 1
                v[i] = resting[i]
                continue
            v[i] = leak_toward_resting(v[i], resting[i], leak[i])
            # "v = sat(v + I + S, 24) (I + S added in full width, one saturation)"
            v[i] = sat(v[i] + current + stim_current[i], V_BITS)
            if learning.noise:
                v[i] = sat(v[i] + noise_value(lfsr[i]), V_BITS)
            if v[i] >= threshold[i]:
                spiked[i] = True
                if learning.graded:
                    payload[i] = graded_payload(v[i], threshold[i])
                spikes.append((t, i))
                v[i] = resting[i]
                r[i] = refrac[i]

        # Emission into the delay lines, with the weights as they are before learning.
        # "A spike emitted at step s over a synapse with delay d arrives at step s + 1 + d."
        for k in range(m):
            if spiked[src[k]]:
                arrival = t + 1 + delay[k]
                if arrival < T:  # "Arrivals at t >= T have no effect."
                    event = (arrival, tgt[k], compartment[k], contribution(w[k], payload[src[k]]))
                    heapq.heappush(pending, event)

        # 6. Learning, at the end of step t.
        if learning.enabled:
            # 1. "Decay traces of every neuron."
            for i in range(n):
                x[i] = toward_zero(x[i], learning.trace_shift)
                y[i] = toward_zero(y[i], learning.trace_shift)
            # 2. Every plastic synapse.
            for k in range(m):
                if not plastic[k]:
                    continue
                dw = 0
                if spiked[tgt[k]]:
                    dw += (learning.a_plus * x[src[k]]) >> 8
                if spiked[src[k]]:
                    dw -= (learning.a_minus * y[tgt[k]]) >> 8
                if not learning.three_factor:
                    w[k] = clamp(w[k] + dw, 0, W_MAX)
                else:
                    e[k] = toward_zero(e[k], learning.elig_shift)
                    e[k] = sat(e[k] + dw, E_BITS)
                    if t in reward_sum:
                        w[k] = clamp(w[k] + ((reward_sum[t] * e[k]) >> 8), 0, W_MAX)
            # 3. "Set traces of neurons that spiked at t."
            for i in range(n):
                if spiked[i]:
                    x[i] = TRACE_MAX
                    y[i] = TRACE_MAX

    # spikes were appended in time order, and within a step in gid order
    final_state = {
        "v": np.array(v, dtype=np.int64),
        "r": np.array(r, dtype=np.int64),
        "lfsr": np.array(lfsr, dtype=np.int64),
        "x": np.array(x, dtype=np.int64),
        "y": np.array(y, dtype=np.int64),
    }
    if learning.enabled and learning.three_factor:
        final_state["e"] = np.array(e, dtype=np.int64)
    return RunResult(
        timesteps=T,
        spike_times=np.array([s[0] for s in spikes], dtype=np.int32),
        spike_gids=np.array([s[1] for s in spikes], dtype=np.int32),
        final_weights=np.array(w, dtype=np.int32),
        final_state=final_state,
        compute_seconds=time.perf_counter() - started,
    )
