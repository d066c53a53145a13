"""Hand-worked cases of docs/model.md, each run on the reference model AND the emulator.

Every expected number below is derived in the comments from the spec's rules, not
taken from either implementation. The ``simulate`` fixture (conftest.py) runs each
test once per backend.
"""

from __future__ import annotations

import numpy as np
import pytest
from netgen import SynapseSpec, netlist_from_synapses
from reference import (
    graded_payload,
    initial_lfsr,
    lfsr_step,
    sat,
    splitmix32,
    toward_zero,
)

from neurofab.job import Job, Learning, Reward, Stimulus
from neurofab.network import NeuronParams

V_MAX = (1 << 23) - 1
V_MIN = -(1 << 23)


# --- small builders ---------------------------------------------------------------------------


def net(*populations, connections=()):
    """``populations``: (size, params dict) each, labelled p0, p1, ...; connections: lists of SynapseSpec."""
    pops = [(f"p{i}", size, NeuronParams(**params)) for i, (size, params) in enumerate(populations)]
    return netlist_from_synapses(pops, [list(c) for c in connections])


def job(T, *stimuli, learning=None, rewards=(), seed=0):
    return Job(timesteps=T, stimuli=tuple(stimuli), learning=learning or Learning(),
               rewards=tuple(Reward(t, v) for t, v in rewards), seed=seed)


def stim(pop, current, neurons=None, start=None, stop=None, times=None):
    return Stimulus(population=pop, current=current, neurons=None if neurons is None else tuple(neurons),
                    start=start, stop=stop, times=None if times is None else tuple(times))


def trains(result) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for t, gid in zip(result.spike_times.tolist(), result.spike_gids.tolist(), strict=True):
        out.setdefault(gid, []).append(t)
    return out


def state(result, name) -> list[int]:
    return np.asarray(result.final_state[name]).tolist()


# --- the arithmetic helpers themselves (reference only: they are the reference's vocabulary) ---


def test_helpers_by_hand():
    assert sat(V_MAX + 1, 24) == V_MAX and sat(V_MIN - 1, 24) == V_MIN and sat(-5, 24) == -5
    assert sat(40000, 16) == 32767 and sat(-40000, 16) == -32768
    # toward_zero subtracts ceil(|x| / 2^s): 255 - ceil(255/8) = 255 - 32 = 223
    assert toward_zero(255, 3) == 223 and toward_zero(-255, 3) == -223
    assert toward_zero(1, 15) == 0 and toward_zero(-1, 15) == 0  # ceil(1/32768) = 1
    assert toward_zero(255, 15) == 254
    assert toward_zero(7, 1) == 3  # 7 - ceil(7/2) = 7 - 4
    assert toward_zero(-7, 1) == -3
    assert toward_zero(200, 0) == 0  # shift 0 removes everything at once
    assert toward_zero(0, 3) == 0
    # splitmix32(0): 0 + 0x9E3779B9 = 0x9E3779B9; ^>>16 and * 0x85EBCA6B -> 0x936DD45A;
    # ^>>13 and * 0xC2B2AE35 -> 0x92CABDC4; ^>>16 -> 0x92CA2F0E
    assert splitmix32(0) == 0x92CA2F0E
    assert splitmix32(1) == 0x96A0F96B
    assert initial_lfsr(0, 0) == 0x2F0E and initial_lfsr(0, 1) == 0xF96B
    # splitmix32(29897) = 0x15C80000: low 16 bits 0, so the LFSR starts at 0xACE1 instead
    assert splitmix32(29897) == 0x15C80000 and initial_lfsr(29897, 0) == 0xACE1
    assert initial_lfsr(29896, 1) == 0xACE1  # 29896 ^ 1 == 29897
    # 0x2F0E is even: shift only -> 0x1787; 0x1787 is odd: 0x0BC3 ^ 0xB400 = 0xBFC3
    assert lfsr_step(0x2F0E) == 0x1787 and lfsr_step(0x1787) == 0xBFC3
    assert graded_payload(1000, 1000) == 128 and graded_payload(1807, 1000) == 228
    assert graded_payload(5000, 1000) == 255 and graded_payload(2015, 1000) == 254


# --- neurons on their own ---------------------------------------------------------------------


def test_quickstart_100_neurons_500_steps(simulate):
    # v = 0 + 5000 >= 1000 at t = 0 -> spike, r = 3; r counts 3 -> 2 -> 1 -> 0 over t = 1..3,
    # then t = 4 spikes again: one spike every 4th step, 500 / 4 = 125 per neuron, 12,500 in all.
    result = simulate(net((100, {"threshold": 1000, "refrac": 3})), job(500, stim("p0", 5000)))
    assert result.total_spikes == 12_500
    assert result.spike_times.tolist() == [t for t in range(0, 500, 4) for _ in range(100)]
    assert result.spike_gids.tolist() == list(range(100)) * 125
    # last spike at 496 sets r = 3; t = 497, 498, 499 count it down to 0; v held at resting
    assert state(result, "r") == [0] * 100 and state(result, "v") == [0] * 100
    assert result.final_weights.tolist() == []


@pytest.mark.parametrize("T", [1, 2, 5, 50, 51, 60])
def test_leak_from_above(simulate, T):
    # 500 at t = 0 only; each later step leaks 10 toward resting 0 and stops there:
    # v = max(0, 500 - 10 * (T - 1))
    result = simulate(net((1, {"leak": 10})), job(T, stim("p0", 500, times=[0])))
    assert state(result, "v") == [max(0, 500 - 10 * (T - 1))]
    assert result.total_spikes == 0


@pytest.mark.parametrize("T", [1, 3, 40, 100])
def test_leak_from_below_with_negative_resting(simulate, T):
    # resting -200: v starts at -200; t = 0 adds -500 -> -700; then +7 a step up to -200
    result = simulate(net((1, {"leak": 7, "resting": -200})), job(T, stim("p0", -500, times=[0])))
    assert state(result, "v") == [min(-200, -700 + 7 * (T - 1))]


def test_leak_overshoot_clamps_at_resting_and_leak_zero(simulate):
    # p0: leak 65535 takes 999 straight to resting 100 (not below); p1: leak 0 keeps 999 forever
    netlist = net((1, {"leak": 65535, "resting": 100}), (1, {"leak": 0}))
    result = simulate(netlist, job(9, stim("p0", 899, times=[0]), stim("p1", 999, times=[0])))
    assert state(result, "v") == [100, 999]


def test_leak_comes_before_input(simulate):
    # t0: 0 + 500 = 500; t1: 500 - 10 + 500 = 990 < 1000; t2: 990 - 10 + 500 = 1480 -> spike at 2
    result = simulate(net((1, {"leak": 10})), job(4, stim("p0", 500, times=[0, 1, 2])))
    assert trains(result) == {0: [2]}
    # spike resets v to 0 and sets r = 3; t = 3 counts r to 2
    assert state(result, "v") == [0] and state(result, "r") == [2]


def test_refrac_zero_spikes_every_step(simulate):
    result = simulate(net((3, {"refrac": 0})), job(20, stim("p0", 5000)))
    assert trains(result) == {g: list(range(20)) for g in range(3)}


def test_refrac_255(simulate):
    # spikes at 0, then 255 steps refractory, next at 256, then 512; T = 600:
    # after the spike at 512, t = 513..599 (87 steps) count r from 255 to 168
    result = simulate(net((1, {"refrac": 255})), job(600, stim("p0", 5000)))
    assert trains(result) == {0: [0, 256, 512]}
    assert state(result, "r") == [168]


def test_refractory_discards_input_and_stimulus(simulate):
    # spike at t0 (r = 2); a 900 stimulus at t1, t2 is discarded; t3: 0 + 900 -> v = 900
    result = simulate(net((1, {"refrac": 2, "leak": 0})),
                      job(4, stim("p0", 5000, times=[0]), stim("p0", 900, start=1, stop=4)))
    assert trains(result) == {0: [0]}
    assert state(result, "v") == [900] and state(result, "r") == [0]


def test_t_equals_one(simulate):
    # one step: p0 spikes at t0, its spike would arrive at t1 = T and is dropped
    netlist = net((1, {}), (1, {}), connections=[[SynapseSpec(0, 1, weight=5000)]])
    result = simulate(netlist, job(1, stim("p0", 5000)))
    assert trains(result) == {0: [0]}
    assert state(result, "r") == [3, 0] and state(result, "v") == [0, 0]


def test_no_connections_no_stimulus(simulate):
    result = simulate(net((4, {}), (2, {"resting": -7})), job(10))
    assert result.total_spikes == 0 and result.spike_times.dtype.kind == "i"
    assert state(result, "v") == [0, 0, 0, 0, -7, -7]
    assert state(result, "x") == [0] * 6 and state(result, "y") == [0] * 6
    # the LFSR still advances every step, with or without noise
    expected = []
    for gid in range(6):
        lfsr = initial_lfsr(0, gid)
        for _ in range(10):
            lfsr = lfsr_step(lfsr)
        expected.append(lfsr)
    assert state(result, "lfsr") == expected


# --- saturation -------------------------------------------------------------------------------


def _saturation_net(threshold):
    # p0 (gid 0) drives p1 (gid 1) with weight 3000, delay 0; p1 has leak 0
    return net((1, {"threshold": 1000}), (1, {"threshold": threshold, "leak": 0}),
               connections=[[SynapseSpec(0, 1, weight=3000)]])


def test_saturation_at_minimum_one_saturation_not_two(simulate):
    # t0: p1 gets S = -2^23 -> v = -2^23 (= min). t1: I = +3000 (p0 spiked at t0), S = -1000:
    # one saturation of v + I + S = -2^23 + 2000 = -8386608.  (Saturating v + S first would
    # give -2^23 + 3000 = -8385608.)
    result = simulate(_saturation_net(1000),
                      job(2, stim("p0", 5000, times=[0]), stim("p1", V_MIN, times=[0]),
                          stim("p1", -1000, times=[1])))
    assert state(result, "v")[1] == V_MIN + 2000 == -8386608


def test_saturation_at_maximum_one_saturation_not_two(simulate):
    # threshold 2^23 - 1. t0: p1 gets 2^23 - 100 (below threshold). t1: I = +3000, S = -5000:
    # one saturation: 2^23 - 100 - 2000 = 8386508. (Saturating v + I first: 2^23 - 1 - 5000.)
    result = simulate(_saturation_net(V_MAX),
                      job(2, stim("p0", 5000, times=[0]), stim("p1", V_MAX - 99, times=[0]),
                          stim("p1", -5000, times=[1])))
    assert state(result, "v")[1] == V_MAX - 99 - 2000 == 8386508
    assert trains(result) == {0: [0]}


def test_saturation_reaches_threshold_at_maximum(simulate):
    # v + I + S = 2^23 - 1 + 3000 saturates to 2^23 - 1 = threshold -> spike (>=) at t1
    result = simulate(_saturation_net(V_MAX),
                      job(3, stim("p0", 5000, times=[0]), stim("p1", V_MAX, times=[1])))
    assert trains(result) == {0: [0], 1: [1]}


def test_several_stimuli_summed_in_full_width_before_saturating(simulate):
    # two stimuli of -2^23 and one of +2^23 - 1 on the same step: S = -2^23 - 1, then sat -> -2^23.
    # next step a +2^23 - 1 and a -2^23 + 5 stimulus: S = 4, v = sat(-2^23 + 4) = -8388604
    result = simulate(net((1, {"leak": 0})),
                      job(2, stim("p0", V_MIN, times=[0]), stim("p0", V_MIN, times=[0]),
                          stim("p0", V_MAX, times=[0, 1]), stim("p0", V_MIN + 5, times=[1])))
    # t1: v = -2^23 + (2^23 - 1) + (-2^23 + 5) = -2^23 + 4
    assert state(result, "v") == [V_MIN + 4]


def test_inhibition_below_resting_then_leak_back(simulate):
    # p0 spikes at t0; weight -500 arrives at p1 at t1 -> v = -500; leak 100 brings it up
    # by 100 a step: t2 -400, t3 -300, t4 -200, t5 -100, t6 0, then stays at 0.
    netlist = net((1, {}), (1, {"leak": 100}), connections=[[SynapseSpec(0, 1, weight=-500)]])
    for T, v in [(2, -500), (4, -300), (7, 0), (12, 0)]:
        result = simulate(netlist, job(T, stim("p0", 5000, times=[0])))
        assert state(result, "v")[1] == v, T


# --- delays -----------------------------------------------------------------------------------


@pytest.mark.parametrize("d", [0, 1, 7, 62, 63])
def test_delay_arrives_d_plus_one_steps_later(simulate, d):
    netlist = net((1, {}), (1, {}), connections=[[SynapseSpec(0, 1, weight=2000, delay=d)]])
    # emitted at 0, arrives at 1 + d: 2000 >= 1000 -> p1 spikes exactly then
    result = simulate(netlist, job(d + 2, stim("p0", 5000, times=[0])))
    assert trains(result) == {0: [0], 1: [d + 1]}
    # with T = d + 1 the arrival step equals T: dropped, p1 never moves
    result = simulate(netlist, job(d + 1, stim("p0", 5000, times=[0])))
    assert trains(result) == {0: [0]} and state(result, "v")[1] == 0


def test_long_delays_wrap_past_63_steps(simulate):
    # delay 63: spikes at 0, 10, 70, 130 arrive at 64, 74, 134, 194; 194 >= T = 190 is dropped
    netlist = net((1, {}), (1, {}), connections=[[SynapseSpec(0, 1, weight=2000, delay=63)]])
    result = simulate(netlist, job(190, stim("p0", 5000, times=[0, 10, 70, 130])))
    assert trains(result) == {0: [0, 10, 70, 130], 1: [64, 74, 134]}


def test_arrivals_on_one_step_are_summed(simulate):
    # p0 spikes at t0 (delay 5 -> arrives t6), p1 at t3 (delay 2 -> arrives t6): 600 + 600 = 1200
    # reaches threshold only together; p2 spikes at t6 alone, and nothing earlier moved it.
    netlist = net((1, {}), (1, {}), (1, {}),
                  connections=[[SynapseSpec(0, 2, weight=600, delay=5)],
                               [SynapseSpec(1, 2, weight=600, delay=2)]])
    result = simulate(netlist, job(8, stim("p0", 5000, times=[0]), stim("p1", 5000, times=[3])))
    assert trains(result) == {0: [0], 1: [3], 2: [6]}


# --- dendrites --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "compartment, weights, dendritic, expected_v",
    [
        (0, [400], True, 400),  # compartment 0 always passes
        (1, [400], True, 0),  # 400 < dend_threshold 500: dropped
        (1, [400], False, 400),  # without dendritic every compartment sums in
        (2, [500], True, 500),  # A_c >= dend_threshold passes (equality included)
        (3, [499], True, 0),
        (2, [300, 300], True, 600),  # A_c is the compartment's sum: 600 >= 500
        (3, [-700], True, 0),  # a negative sum is below any dend_threshold
        (3, [-700], False, -700),
        (1, [900, -500], True, 0),  # 400 after summing: dropped as a whole
    ],
)
def test_dendritic_compartments(simulate, compartment, weights, dendritic, expected_v):
    k = len(weights)
    synapses = [SynapseSpec(i, k, weight=w, compartment=compartment) for i, w in enumerate(weights)]
    netlist = net((k, {}), (1, {"threshold": 100000, "leak": 0, "dend_threshold": 500}),
                  connections=[synapses])
    result = simulate(netlist, job(2, stim("p0", 5000, times=[0]), learning=Learning(dendritic=dendritic)))
    assert state(result, "v")[k] == expected_v


def test_dendritic_compartments_add_to_soma(simulate):
    # c0 200 + c1 600 (passes) + c2 450 (dropped) + c3 500 (passes) = 1300 >= 1000 -> spike at t1
    synapses = [SynapseSpec(0, 4, weight=200, compartment=0), SynapseSpec(1, 4, weight=600, compartment=1),
                SynapseSpec(2, 4, weight=450, compartment=2), SynapseSpec(3, 4, weight=500, compartment=3)]
    netlist = net((4, {}), (1, {"leak": 0}), connections=[synapses])
    result = simulate(netlist, job(3, stim("p0", 5000, times=[0]), learning=Learning(dendritic=True)))
    assert trains(result)[4] == [1]
    # dend_threshold 1000: 200 + 0 + 0 + 0 = 200 < 1000, no spike, v = 200
    netlist = net((4, {}), (1, {"leak": 0, "dend_threshold": 1000}), connections=[synapses])
    result = simulate(netlist, job(3, stim("p0", 5000, times=[0]), learning=Learning(dendritic=True)))
    assert 4 not in trains(result) and state(result, "v")[4] == 200


# --- graded spikes ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "drive, weight, expected",
    [
        (1000, 100, 100),  # v - threshold = 0: g = 128, (100 * 128) >> 7 = 100
        (1807, 100, 178),  # 807 >> 3 = 100, g = 228: 22800 >> 7 = 178 (178.1)
        (1807, -100, -179),  # -22800 >> 7 floors: -178.1 -> -179
        (5000, -100, -200),  # 4000 >> 3 = 500, g capped at 255: -25500 >> 7 = -200 (-199.2)
        (1008, -1, -2),  # g = 129: -129 >> 7 = -2 (-1.008 floored)
        (5000, 3, 5),  # 765 >> 7 = 5
        (1007, 32767, 32767),  # 7 >> 3 = 0, g = 128: w unchanged
        (5000, -32768, -65280),  # -32768 * 255 >> 7 = -65280 exactly
    ],
)
def test_graded_payload(simulate, drive, weight, expected):
    netlist = net((1, {}), (1, {"threshold": 1 << 20, "leak": 0}),
                  connections=[[SynapseSpec(0, 1, weight=weight)]])
    result = simulate(netlist, job(2, stim("p0", drive, times=[0]), learning=Learning(graded=True)))
    assert state(result, "v")[1] == expected
    # without graded the contribution is the plain weight
    result = simulate(netlist, job(2, stim("p0", drive, times=[0])))
    assert state(result, "v")[1] == weight


def test_graded_payload_from_membrane_after_leak_and_input(simulate):
    # p0 leak 10: t0 v = 900, t1 v = 890 + 900 = 1790 -> spike, g = 128 + (790 >> 3) = 226;
    # weight 64: 64 * 226 >> 7 = 113 arrives at t2
    netlist = net((1, {"leak": 10}), (1, {"threshold": 1 << 20, "leak": 0}),
                  connections=[[SynapseSpec(0, 1, weight=64)]])
    result = simulate(netlist, job(3, stim("p0", 900, times=[0, 1]), learning=Learning(graded=True)))
    assert trains(result) == {0: [1]} and state(result, "v")[1] == 113


# --- noise ------------------------------------------------------------------------------------


def test_lfsr_sequence_and_noise(simulate):
    # seed 0, gid 0: lfsr starts at 0x2F0E (see test_helpers_by_hand). It advances before the
    # soma: 0x1787, 0xBFC3, 0xEBE1, 0xC1F0, 0x60F8, 0x307C; noise (low byte - 128):
    # 0x87-128 = 7, 0xC3-128 = 67, 0xE1-128 = 97, 0xF0-128 = 112, 0xF8-128 = 120, 0x7C-128 = -4
    expected_v = [7, 74, 171, 283, 403, 399]
    expected_lfsr = [0x1787, 0xBFC3, 0xEBE1, 0xC1F0, 0x60F8, 0x307C]
    netlist = net((1, {"threshold": 100000, "leak": 0}))
    for T in range(1, 7):
        result = simulate(netlist, job(T, learning=Learning(noise=True)))
        assert state(result, "v") == [expected_v[T - 1]] and state(result, "lfsr") == [expected_lfsr[T - 1]]
        # without noise the LFSR advances just the same but v stays at 0
        result = simulate(netlist, job(T))
        assert state(result, "v") == [0] and state(result, "lfsr") == [expected_lfsr[T - 1]]


def test_lfsr_of_a_later_gid_and_a_seed(simulate):
    # seed 7, gid 5: splitmix32(7 ^ 5 = 2) & 0xFFFF = 0x1BBB; steps: 0xB9DD, 0xE8EE, 0x7477;
    # noise: 0xDD-128 = 93, 0xEE-128 = 110, 0x77-128 = -9 -> v = 194 after 3 steps
    netlist = net((5, {"threshold": 100000, "leak": 0}), (1, {"threshold": 100000, "leak": 0}))
    result = simulate(netlist, job(3, learning=Learning(noise=True), seed=7))
    assert state(result, "lfsr")[5] == 0x7477 and state(result, "v")[5] == 194


def test_lfsr_zero_seed_replaced(simulate):
    # seed 29897, gid 0: splitmix32 low half is 0 -> 0xACE1; odd: 0x5670 ^ 0xB400 = 0xE270
    result = simulate(net((1, {})), job(1, seed=29897))
    assert state(result, "lfsr") == [0xE270]


def test_noise_skipped_while_refractory_but_lfsr_advances(simulate):
    # gid 0, seed 0: t0 gets 5000 + 7 -> spike, r = 2; t1, t2 refractory (noise 67, 97 unused,
    # v at resting); t3: v = 0 + 112, t4: 112 + 120 = 232
    result = simulate(net((1, {"refrac": 2, "leak": 0})),
                      job(5, stim("p0", 5000, times=[0]), learning=Learning(noise=True)))
    assert trains(result) == {0: [0]}
    assert state(result, "v") == [232] and state(result, "lfsr") == [0x60F8]


def test_noise_saturates_separately(simulate):
    # gid 0 seed 0 at t0: S = -2^23 -> v = -2^23, then noise +7 -> -2^23 + 7 (saturation first,
    # noise second). One saturation of v + I + S + noise would also give -2^23 + 7 here, so use
    # t1: S = -2^23 again: sat(-2^23 + 7 - 2^23) = -2^23, then + 67 -> -2^23 + 67.
    result = simulate(net((1, {"leak": 0})), job(2, stim("p0", V_MIN), learning=Learning(noise=True)))
    assert state(result, "v") == [V_MIN + 67]


def test_job_seed_changes_noise(simulate):
    netlist = net((6, {"threshold": 300, "leak": 1, "refrac": 0}))
    runs = {seed: simulate(netlist, job(60, learning=Learning(noise=True), seed=seed))
            for seed in (0, 1, 12345)}
    again = simulate(netlist, job(60, learning=Learning(noise=True), seed=12345))
    assert runs[12345].spike_times.tolist() == again.spike_times.tolist()
    assert state(runs[12345], "v") == state(again, "v")
    assert state(runs[0], "lfsr") != state(runs[1], "lfsr") != state(runs[12345], "lfsr")
    assert state(runs[0], "v") != state(runs[12345], "v")
    for seed, result in runs.items():
        lfsrs = []
        for gid in range(6):
            lfsr = initial_lfsr(seed, gid)
            for _ in range(60):
                lfsr = lfsr_step(lfsr)
            lfsrs.append(lfsr)
        assert state(result, "lfsr") == lfsrs


# --- stimuli ----------------------------------------------------------------------------------


def test_stimuli_subsets_windows_times_summed(simulate):
    # threshold 10^6, leak 0: v just accumulates. T = 10.
    # A: 10 on neurons 0 and 2 for t = 2, 3, 4 -> 30
    # B: 100 on all at t = 0, 3, 7 -> 300
    # C: -1 on neurons 3 and 2 for all 10 steps -> -10
    # D: 1000 on neuron 1 from t = 8 to the end (stop defaults to T) -> 2000
    result = simulate(net((4, {"threshold": 10**6, "leak": 0})),
                      job(10, stim("p0", 10, neurons=[0, 2], start=2, stop=5),
                          stim("p0", 100, times=[0, 3, 7]), stim("p0", -1, neurons=[3, 2]),
                          stim("p0", 1000, neurons=[1], start=8)))
    assert state(result, "v") == [330, 2300, 320, 290]


def test_stimulus_window_and_times_produce_spikes_exactly_then(simulate):
    # refrac 0, threshold 100 and a current of exactly 100: a spike on every active step
    netlist = net((2, {"threshold": 100, "refrac": 0, "leak": 0}), (3, {"threshold": 100, "refrac": 0}))
    result = simulate(netlist, job(12, stim("p0", 100, neurons=[1], start=3, stop=6),
                                   stim("p1", 100, neurons=[2], times=[1, 4, 11]),
                                   stim("p1", 60, neurons=[0], stop=2)))
    # p1 neuron 2 is gid 4; p1 neuron 0 (gid 2) gets 60 at t0, t1 -> 120 at t1 -> spike at 1
    assert trains(result) == {1: [3, 4, 5], 2: [1], 4: [1, 4, 11]}


def test_stimulus_with_empty_times_is_never_active(simulate):
    result = simulate(net((2, {"refrac": 0})), job(5, stim("p0", 5000, times=[]), stim("p0", 7, neurons=[1])))
    assert result.total_spikes == 0
    # neuron 1: +7 a step, leak 3 before each: 7, 11, 15, 19, 23
    assert state(result, "v") == [0, 23]


# --- STDP -------------------------------------------------------------------------------------
#
# Pair setup: pre (gid 0) -> post (gid 1), delay 63 so that within T <= 63 nothing ever
# arrives; both neurons have threshold 100000, leak 65535, refrac 0 and spike exactly on the
# steps of their 200000 stimuli. Traces after a spike decay by toward_zero(., 3) at the start
# of each later step's learning: 255 -> 223 -> 195 -> 170 -> 148 -> 129 -> 112.


def pair(w0, plastic=True):
    params = {"threshold": 100000, "leak": 65535, "refrac": 0}
    return net((1, params), (1, params),
               connections=[[SynapseSpec(0, 1, weight=w0, delay=63, plastic=plastic)]])


def pair_job(T, pre, post, learning, rewards=()):
    return job(T, stim("p0", 200000, times=pre), stim("p1", 200000, times=post), learning=learning,
               rewards=rewards)


def test_stdp_pre_before_post(simulate):
    # pre at 0: x[pre] = 255; post at 3: x[pre] decayed 3 times -> 170;
    # dw = (300 * 170) >> 8 = 51000 >> 8 = 199 -> w = 1199
    result = simulate(pair(1000), pair_job(5, [0], [3], Learning(enabled=True, a_plus=300)))
    assert result.final_weights.tolist() == [1199]
    # traces at the end (T = 5): pre spiked at 0 -> decayed at t1..t4 -> 148; post at 3 -> 223
    assert state(result, "x") == [148, 223] and state(result, "y") == [148, 223]


def test_stdp_post_before_pre(simulate):
    # post at 0: y[post] = 255; pre at 2: y decayed twice -> 195; dw = -(16 * 195) >> 8 = -12
    result = simulate(pair(100), pair_job(3, [2], [0], Learning(enabled=True)))
    assert result.final_weights.tolist() == [88]


def test_stdp_trace_shift_changes_decay(simulate):
    # trace_shift 15: decay 1 a step: 255 -> 254 -> 253 at t2; dw = (256 * 253) >> 8 = 253
    result = simulate(pair(1000), pair_job(3, [0], [2], Learning(enabled=True, a_plus=256, trace_shift=15)))
    assert result.final_weights.tolist() == [1253]
    # trace_shift 0: traces vanish in one step -> dw = 0 whatever the timing
    result = simulate(pair(1000), pair_job(3, [0], [1], Learning(enabled=True, a_plus=32767, trace_shift=0)))
    assert result.final_weights.tolist() == [1000]


def test_stdp_same_step_pairing_does_not_count(simulate):
    # pre and post both first spike at t0: the traces they see are still 0 -> dw = 0
    result = simulate(pair(1000), pair_job(2, [0], [0], Learning(enabled=True, a_plus=32767, a_minus=32767)))
    assert result.final_weights.tolist() == [1000]


def test_stdp_clamps(simulate):
    # 32760 + (32767 * 170) >> 8 = 32760 + 21759 -> clamp 32767
    result = simulate(pair(32760), pair_job(4, [0], [3], Learning(enabled=True, a_plus=32767)))
    assert result.final_weights.tolist() == [32767]
    # 5 - (32767 * 195) >> 8 = 5 - 24959 -> clamp 0; and once at 0 it can grow back:
    # pre at 2 then post at 5: x[pre] = 170 at t5 -> +(16 * 170) >> 8 = 10
    result = simulate(pair(5), pair_job(7, [2], [0, 5], Learning(enabled=True, a_minus=32767)))
    assert result.final_weights.tolist() == [10]


def test_stdp_both_in_one_step_one_combined_dw_one_clamp(simulate):
    # w0 = 32767, a_plus = a_minus = 1000.
    # t0 pre spikes (y[post] = 0: dw = 0), x[pre] = y[pre] = 255.
    # t1 post spikes: x[pre] = 223, dw = (1000 * 223) >> 8 = 871 -> clamp 32767; y[post] = 255.
    # t3 both: x[pre] = 170, y[post] = 195: dw = 664 - 761 = -97 -> 32670 (clamping the +664
    # first would give 32767 - 761 = 32006).
    learning = Learning(enabled=True, a_plus=1000, a_minus=1000)
    result = simulate(pair(32767), pair_job(4, [0, 3], [1, 3], learning))
    assert result.final_weights.tolist() == [32670]


def test_non_plastic_synapses_never_change(simulate):
    # plastic false, an initial weight of 0, and a negative weight: all stay put
    learning = Learning(enabled=True, a_plus=32767, a_minus=32767)
    for w0, plastic in [(1000, False), (0, True), (-100, True)]:
        result = simulate(pair(w0, plastic), pair_job(8, [0, 4], [2, 6], learning))
        assert result.final_weights.tolist() == [w0], (w0, plastic)


def test_learning_off_leaves_weights_and_traces(simulate):
    result = simulate(pair(1000), pair_job(5, [0], [3], Learning(enabled=False, a_plus=300)))
    assert result.final_weights.tolist() == [1000]
    assert state(result, "x") == [0, 0] and state(result, "y") == [0, 0]


def test_stdp_over_many_synapses_uses_per_neuron_traces(simulate):
    # pre neurons 0, 1 -> post 2 (delay 63). 0 spikes at t0, 1 at t2, post at t3:
    # x[0] = 170, x[1] = 223 at t3: dw = (64 * 170) >> 8 = 42 and (64 * 223) >> 8 = 55
    params = {"threshold": 100000, "leak": 65535, "refrac": 0}
    netlist = net((2, params), (1, params),
                  connections=[[SynapseSpec(0, 2, weight=500, delay=63),
                                SynapseSpec(1, 2, weight=500, delay=63)]])
    result = simulate(netlist, job(4, stim("p0", 200000, neurons=[0], times=[0]),
                                   stim("p0", 200000, neurons=[1], times=[2]),
                                   stim("p1", 200000, times=[3]), learning=Learning(enabled=True, a_plus=64)))
    assert result.final_weights.tolist() == [542, 555]


def test_stdp_self_synapse(simulate):
    # all_to_all includes i -> i. Neuron 0 -> 0 (delay 63, nothing arrives), spikes at 0 and 3.
    # t0: traces 0 -> dw = 0. t3: x = y = 170, the neuron is both pre and post:
    # dw = (300 * 170) >> 8 - (100 * 170) >> 8 = 199 - 66 = 133 -> 1133
    params = {"threshold": 100000, "leak": 65535, "refrac": 0}
    netlist = net((1, params), connections=[[SynapseSpec(0, 0, weight=1000, delay=63)]])
    result = simulate(netlist, job(4, stim("p0", 200000, times=[0, 3]),
                                   learning=Learning(enabled=True, a_plus=300, a_minus=100)))
    assert result.final_weights.tolist() == [1133]


# --- three-factor -----------------------------------------------------------------------------


def test_three_factor_eligibility_and_rewards(simulate):
    # pre at 0, post at 3: dw = (16 * 170) >> 8 = 10 at t3 -> e: t3 0 + 10 = 10;
    # t4 10 - ceil(10/8) = 8; t5 8 - 1 = 7; t6 7 - 1 = 6.
    # rewards: t1 (e = 0, no effect), t3 -100: (-100 * 10) >> 8 = -4 (-3.9 floored) -> 996;
    # t5 256 + 256 = 512 summed: (512 * 7) >> 8 = 14 -> 1010.
    learning = Learning(enabled=True, three_factor=True)
    rewards = [(1, 5000), (3, -100), (5, 256), (5, 256)]
    result = simulate(pair(1000), pair_job(7, [0], [3], learning, rewards))
    assert result.final_weights.tolist() == [1010]
    assert state(result, "e") == [6]
    # no rewards at all: e evolves, w stays
    result = simulate(pair(1000), pair_job(7, [0], [3], learning))
    assert result.final_weights.tolist() == [1000] and state(result, "e") == [6]


def test_three_factor_eligibility_saturates(simulate):
    # a_plus 32767, pre at 0, post at 3 and 4: t3 e = (32767 * 170) >> 8 = 21759;
    # t4 e = 21759 - ceil(21759/8) = 19039, x[pre] = 148: + (32767 * 148) >> 8 = 18943
    # -> 37982 saturates to 32767. t5: 32767 - 4096 = 28671.
    learning = Learning(enabled=True, three_factor=True, a_plus=32767)
    result = simulate(pair(1000), pair_job(5, [0], [3, 4], learning))
    assert state(result, "e") == [32767]
    result = simulate(pair(1000), pair_job(6, [0], [3, 4], learning, rewards=[(5, -32768)]))
    # t5 reward -32768: (-32768 * 28671) >> 8 = -3669888 -> clamp 0
    assert state(result, "e") == [28671] and result.final_weights.tolist() == [0]


def test_three_factor_negative_eligibility(simulate):
    # post at 0, pre at 2: dw = -(16 * 195) >> 8 = -12 -> e = -12 at t2; reward 300 at t2:
    # (300 * -12) >> 8 = -3600 >> 8 = -15 (-14.06 floored) -> 985; t3: e = -12 + 2 = -10
    learning = Learning(enabled=True, three_factor=True)
    result = simulate(pair(1000), pair_job(4, [2], [0], learning, rewards=[(2, 300)]))
    assert result.final_weights.tolist() == [985] and state(result, "e") == [-10]


def test_three_factor_needs_enabled(simulate):
    result = simulate(pair(1000), pair_job(7, [0], [3], Learning(three_factor=True), rewards=[(5, 30000)]))
    assert result.final_weights.tolist() == [1000]


def test_three_factor_non_plastic_stays(simulate):
    learning = Learning(enabled=True, three_factor=True)
    result = simulate(pair(1000, plastic=False), pair_job(7, [0], [3], learning, rewards=[(5, 30000)]))
    assert result.final_weights.tolist() == [1000] and state(result, "e") == [0]


# --- spikes in flight -------------------------------------------------------------------------


def test_in_flight_spike_keeps_emission_weight(simulate):
    # pre (gid 0) -> post (gid 1), weight 1000, delay 10; post threshold 1000, leak 65535.
    # post spikes at t0 (stimulus); pre at t1: emitted with w = 1000 (before learning),
    # then depression: y[post] = 223 at t1, dw = -(256 * 223) >> 8 = -223 -> w = 777.
    # The spike arrives at t12 carrying 1000 >= 1000: post spikes at 12. a_plus = 0 keeps
    # the weight at 777 afterwards.
    netlist = net((1, {"leak": 65535, "refrac": 0}), (1, {"leak": 65535, "refrac": 0}),
                  connections=[[SynapseSpec(0, 1, weight=1000, delay=10)]])
    learning = Learning(enabled=True, a_plus=0, a_minus=256)
    result = simulate(netlist, job(20, stim("p0", 5000, times=[1]), stim("p1", 5000, times=[0]),
                                   learning=learning))
    assert trains(result) == {0: [1], 1: [0, 12]}
    assert result.final_weights.tolist() == [777]


def test_in_flight_graded_spike_keeps_emission_weight(simulate):
    # same, graded: pre at t1 with v = 5000 -> g = 255; emitted value (1000 * 255) >> 7 = 1992
    # arrives at t12 -> post spikes at 12 (with the new weight 777: 1547, also a spike, so also
    # read post's v: post threshold 1992 makes only the old weight reach it).
    netlist = net((1, {"leak": 65535, "refrac": 0}), (1, {"threshold": 1992, "leak": 65535, "refrac": 0}),
                  connections=[[SynapseSpec(0, 1, weight=1000, delay=10)]])
    learning = Learning(enabled=True, graded=True, a_plus=0, a_minus=256)
    result = simulate(netlist, job(20, stim("p0", 5000, times=[1]), stim("p1", 5000, times=[0]),
                                   learning=learning))
    assert trains(result) == {0: [1], 1: [0, 12]}
    assert result.final_weights.tolist() == [777]


# --- the result contract ----------------------------------------------------------------------


def test_result_shapes(simulate):
    netlist = net((3, {"refrac": 0}), (2, {}),
                  connections=[[SynapseSpec(0, 3), SynapseSpec(1, 4, weight=-5)]])
    result = simulate(netlist, job(5, stim("p0", 5000), learning=Learning(enabled=True, three_factor=True)))
    assert result.timesteps == 5
    order = np.lexsort((result.spike_gids, result.spike_times))
    assert np.array_equal(order, np.arange(result.total_spikes))
    assert result.final_weights.shape == (2,)
    # the RunResult contract: int32 spikes and weights, int32/int64 state
    assert result.spike_times.dtype == np.int32 and result.spike_gids.dtype == np.int32
    assert result.final_weights.dtype == np.int32
    assert all(np.asarray(a).dtype in (np.int32, np.int64) for a in result.final_state.values())
    assert set(result.final_state) == {"v", "r", "lfsr", "x", "y", "e"}
    for name in ("v", "r", "lfsr", "x", "y"):
        assert np.asarray(result.final_state[name]).shape == (5,)
    assert np.asarray(result.final_state["e"]).shape == (2,)


def test_huge_stimulus_sums_are_exact(simulate):
    # 300 stimuli of 2^23 - 1 on one neuron sum to about 2.5e9 (beyond 32 bits signed) before
    # the one saturation: v = 2^23 - 1 = threshold -> spike at t0. Likewise 300 of -2^23 on
    # p1 give -2^23. On p2, 300 of +2^23 - 1 and 300 of -2^23 at once sum to -300: v = -300.
    stimuli = ([stim("p0", V_MAX)] * 300 + [stim("p1", V_MIN)] * 300
               + [stim("p2", V_MAX)] * 300 + [stim("p2", V_MIN)] * 300)
    netlist = net((1, {"threshold": V_MAX, "leak": 0}), (1, {"leak": 0}), (1, {"leak": 0}))
    result = simulate(netlist, job(1, *stimuli))
    assert trains(result) == {0: [0]}
    assert state(result, "v") == [0, V_MIN, -300]


def test_synaptic_input_beyond_32_bits(simulate):
    # 100 sources spike at t0 with v = 5000 (graded g = min(255, 128 + 4000 >> 3) = 255), each
    # over 330 parallel synapses to p1 (weight 32767) and 330 to p2 (weight -32768).
    # Per synapse: (32767 * 255) >> 7 = 65278 and (-32768 * 255) >> 7 = -65280.
    # A_0 of p1 = 33000 * 65278 = 2,154,174,000 > 2^31 - 1; summed exactly and saturated once:
    # v = 2^23 - 1 = threshold -> p1 spikes at t1. p2: 33000 * -65280 = -2,154,240,000 -> v = -2^23.
    # (A 32-bit wrapping sum would turn both around.)
    up = [SynapseSpec(i, 100, weight=32767) for i in range(100) for _ in range(330)]
    down = [SynapseSpec(i, 101, weight=-32768) for i in range(100) for _ in range(330)]
    netlist = net((100, {}), (1, {"threshold": V_MAX, "leak": 0}), (1, {"threshold": V_MAX, "leak": 0}),
                  connections=[up, down])
    result = simulate(netlist, job(2, stim("p0", 5000, times=[0]), learning=Learning(graded=True)))
    assert trains(result) == {**{i: [0] for i in range(100)}, 100: [1]}
    assert state(result, "v")[100:] == [0, V_MIN]
