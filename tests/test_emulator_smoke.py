"""Quick checks of the emulator: hand-worked cases and a tiny plain-Python model.

The big equivalence suite (tests against tests/reference.py) lives elsewhere; this
file keeps a deliberately naive loop, written straight from docs/model.md, to catch
a wrong emulator fast, plus cases whose answer is worked out by hand. Every random
case prints its seed.
"""

from __future__ import annotations

import numpy as np
import pytest

from neurofab.emulator import engine as emulator_engine
from neurofab.emulator import simulate
from neurofab.errors import ValidationError
from neurofab.job import Job, Learning, Reward, Stimulus, reward_schedule, stimulus_schedule
from neurofab.network import Netlist, NeuronParams, Population

# ---------------------------------------------------------------- building netlists

def make_netlist(sizes, synapses=(), params=None, plastic=None):
    """A Netlist from population sizes and ``(src, tgt, w, d, c)`` tuples of global ids."""
    populations, offset = [], 0
    for i, size in enumerate(sizes):
        populations.append(Population(f"p{i}", size, params or NeuronParams(), offset))
        offset += size
    n = offset
    p = params or NeuronParams()
    syn = np.array(synapses, dtype=np.int64).reshape(-1, 5)
    m = syn.shape[0]
    return Netlist(
        populations=tuple(populations),
        threshold=np.full(n, p.threshold, np.int32),
        leak=np.full(n, p.leak, np.int32),
        resting=np.full(n, p.resting, np.int32),
        refrac=np.full(n, p.refrac, np.int32),
        dend_threshold=np.full(n, p.dend_threshold, np.int32),
        src=syn[:, 0].astype(np.int32),
        tgt=syn[:, 1].astype(np.int32),
        weight=syn[:, 2].astype(np.int32),
        delay=syn[:, 3].astype(np.uint8),
        compartment=syn[:, 4].astype(np.uint8),
        plastic=(np.ones(m, bool) if plastic is None else np.asarray(plastic, bool)) & (syn[:, 2] > 0),
        connection_offsets=np.array([0, m]),
    )


def random_case(seed, n_max=12, learning=None, stimuli=True):
    """A small random network and job, with every feature drawn at random."""
    rng = np.random.default_rng(seed)
    sizes = [int(rng.integers(1, n_max // 2 + 1)) for _ in range(int(rng.integers(1, 3)))]
    n = sum(sizes)
    params = NeuronParams(threshold=int(rng.integers(50, 400)), leak=int(rng.integers(0, 20)),
                          resting=int(rng.integers(-30, 30)), refrac=int(rng.integers(0, 4)),
                          dend_threshold=int(rng.integers(0, 200)))
    m = int(rng.integers(0, 4 * n + 1))
    synapses = [(int(rng.integers(n)), int(rng.integers(n)), int(rng.integers(-300, 400)),
                 int(rng.choice([0, 0, 1, 2, 5, 63])), int(rng.integers(4))) for _ in range(m)]
    netlist = make_netlist(sizes, synapses, params, plastic=rng.random(m) < 0.8)
    T = int(rng.integers(1, 80))
    stims = []
    if stimuli:
        for _ in range(int(rng.integers(0, 4))):
            pop = int(rng.integers(len(sizes)))
            current = int(rng.integers(-50, 300))
            neurons = None if rng.random() < 0.5 else tuple(
                sorted(set(rng.integers(0, sizes[pop], 2).tolist())))
            if rng.random() < 0.3:
                times = tuple(sorted(set(rng.integers(0, T, 3).tolist())))
                stims.append(Stimulus(f"p{pop}", current, neurons, times=times))
            else:
                start = int(rng.integers(0, T))
                stop = int(rng.integers(start + 1, T + 1))
                stims.append(Stimulus(f"p{pop}", current, neurons, start=start, stop=stop))
    if learning is None:
        learning = Learning(enabled=bool(rng.random() < 0.6), graded=bool(rng.random() < 0.4),
                            dendritic=bool(rng.random() < 0.4), noise=bool(rng.random() < 0.4),
                            three_factor=bool(rng.random() < 0.5), a_plus=int(rng.integers(0, 400)),
                            a_minus=int(rng.integers(0, 400)), trace_shift=int(rng.integers(0, 6)),
                            elig_shift=int(rng.integers(0, 6)))
    rewards = tuple(Reward(int(rng.integers(T)), int(rng.integers(-300, 300)))
                    for _ in range(int(rng.integers(0, 4))))
    job = Job(timesteps=T, stimuli=tuple(stims), learning=learning, rewards=rewards,
              seed=int(rng.integers(0, 2**32)))
    return netlist, job


# ---------------------------------------------------------------- the naive model

def _sat(x, bits):
    return max(-(1 << (bits - 1)), min((1 << (bits - 1)) - 1, x))


def _toward_zero(x, s):
    if x == 0:
        return 0
    sign = 1 if x > 0 else -1
    return x - sign * ((abs(x) + (1 << s) - 1) >> s)


def _splitmix32(x):
    x = (x + 0x9E3779B9) & 0xFFFFFFFF
    x = ((x ^ (x >> 16)) * 0x85EBCA6B) & 0xFFFFFFFF
    x = ((x ^ (x >> 13)) * 0xC2B2AE35) & 0xFFFFFFFF
    return x ^ (x >> 16)


def naive_run(netlist, job):
    """docs/model.md transcribed line by line in plain Python (slow; for tiny cases)."""
    n, T, lr = netlist.n_neurons, job.timesteps, job.learning
    thr, leak, rest = netlist.threshold.tolist(), netlist.leak.tolist(), netlist.resting.tolist()
    refrac, dend = netlist.refrac.tolist(), netlist.dend_threshold.tolist()
    src, tgt = netlist.src.tolist(), netlist.tgt.tolist()
    w, delay, comp = netlist.weight.tolist(), netlist.delay.tolist(), netlist.compartment.tolist()
    plastic = [bool(p) and wk > 0 for p, wk in zip(netlist.plastic.tolist(), w, strict=True)]
    e = [0] * len(w)
    v, r = list(rest), [0] * n
    lfsr = [(_splitmix32(job.seed ^ g) & 0xFFFF) or 0xACE1 for g in range(n)]
    x, y = [0] * n, [0] * n
    arrivals = {}  # step -> list of (tgt, compartment, value)
    ev_t, ev_gid, ev_delta = stimulus_schedule(job, netlist.populations)
    current = [0] * n
    rw = dict(zip(*(a.tolist() for a in reward_schedule(job)), strict=True))
    spikes = []
    for t in range(T):
        for k in np.flatnonzero(ev_t == t).tolist():
            current[ev_gid[k]] += int(ev_delta[k])
        A = [[0, 0, 0, 0] for _ in range(n)]
        for j, c, val in arrivals.pop(t, []):
            A[j][c] += val
        fired, payload = [False] * n, [0] * n
        for i in range(n):
            if lr.dendritic:
                total = A[i][0] + sum(a for a in A[i][1:] if a >= dend[i])
            else:
                total = sum(A[i])
            bit = lfsr[i] & 1
            lfsr[i] >>= 1
            if bit:
                lfsr[i] ^= 0xB400
            if r[i] > 0:
                r[i] -= 1
                continue
            if v[i] > rest[i]:
                v[i] = max(rest[i], v[i] - leak[i])
            elif v[i] < rest[i]:
                v[i] = min(rest[i], v[i] + leak[i])
            v[i] = _sat(v[i] + total + current[i], 24)
            if lr.noise:
                v[i] = _sat(v[i] + ((lfsr[i] & 0xFF) - 128), 24)
            if v[i] >= thr[i]:
                fired[i] = True
                payload[i] = min(255, 128 + ((v[i] - thr[i]) >> 3))
                spikes.append((t, i))
                v[i], r[i] = rest[i], refrac[i]
        for k in range(len(w)):
            if fired[src[k]]:  # the value is fixed here, at emission
                val = (w[k] * payload[src[k]]) >> 7 if lr.graded else w[k]
                arrivals.setdefault(t + 1 + delay[k], []).append((tgt[k], comp[k], val))
        if lr.enabled:
            x = [_toward_zero(a, lr.trace_shift) for a in x]
            y = [_toward_zero(a, lr.trace_shift) for a in y]
            for k in range(len(w)):
                if not plastic[k]:
                    continue
                dw = 0
                if fired[tgt[k]]:
                    dw += (lr.a_plus * x[src[k]]) >> 8
                if fired[src[k]]:
                    dw -= (lr.a_minus * y[tgt[k]]) >> 8
                if lr.three_factor:
                    e[k] = _sat(_toward_zero(e[k], lr.elig_shift) + dw, 16)
                    if t in rw:
                        w[k] = max(0, min(32767, w[k] + ((rw[t] * e[k]) >> 8)))
                else:
                    w[k] = max(0, min(32767, w[k] + dw))
            for i in range(n):
                if fired[i]:
                    x[i] = y[i] = 255
    state = {"v": v, "r": r, "lfsr": lfsr, "x": x, "y": y}
    if lr.enabled and lr.three_factor:
        state["e"] = e
    return spikes, w, state


def assert_same(netlist, job):
    result = simulate(netlist, job)
    spikes, weights, state = naive_run(netlist, job)
    got = list(zip(result.spike_times.tolist(), result.spike_gids.tolist(), strict=True))
    assert got == spikes
    assert result.final_weights.tolist() == weights
    assert sorted(result.final_state) == sorted(state)
    for name, values in state.items():
        assert result.final_state[name].tolist() == values, name
    return result


# ---------------------------------------------------------------- hand-worked cases

def test_constant_current_fires_every_fourth_step():
    # threshold 1000, leak 3, refrac 3, current 5000: v = 5000 >= 1000 at once, then
    # three refractory steps, so a spike at t = 0, 4, 8, ... (125 in 500 steps each).
    netlist = make_netlist([100], params=NeuronParams(threshold=1000, leak=3, refrac=3))
    result = simulate(netlist, Job(timesteps=500, stimuli=(Stimulus("p0", 5000),)))
    assert result.total_spikes == 12_500
    assert result.spike_times.tolist() == np.repeat(np.arange(0, 500, 4), 100).tolist()
    assert result.spike_gids.tolist() == np.tile(np.arange(100), 125).tolist()


def test_delay_arrives_at_s_plus_one_plus_d():
    # neuron 0 fires at t = 0; weight 1000 with delay d makes neuron 1 fire at 1 + d
    for d in (0, 1, 7, 63):
        netlist = make_netlist([2], [(0, 1, 1000, d, 0)])
        result = simulate(netlist, Job(timesteps=70, stimuli=(Stimulus("p0", 1000, (0,), times=(0,)),)))
        assert result.spike_gids.tolist() == [0, 1], d
        assert result.spike_times.tolist() == [0, 1 + d], d


def test_arrivals_at_or_after_the_end_are_dropped():
    netlist = make_netlist([2], [(0, 1, 1000, 5, 0)])
    result = simulate(netlist, Job(timesteps=6, stimuli=(Stimulus("p0", 1000, (0,), times=(0,)),)))
    assert result.spike_gids.tolist() == [0]
    assert result.final_state["v"].tolist() == [0, 0]


def test_leak_stops_at_resting_from_either_side():
    netlist = make_netlist([2], params=NeuronParams(threshold=1000, leak=100, resting=-5))
    stims = (Stimulus("p0", 50, (0,), times=(0,)), Stimulus("p0", -50, (1,), times=(0,)))
    result = assert_same(netlist, Job(timesteps=2, stimuli=stims))
    assert result.final_state["v"].tolist() == [-5, -5]  # 45 and -55 both leak back to exactly -5


def test_membrane_saturates_once_on_the_full_width_sum():
    # -5 - 8e6 = -8000005; then -7999995 - 8e6 saturates to -2^23; a leak of 10 does not undo it
    params = NeuronParams(threshold=(1 << 23) - 1, leak=10, resting=-5, refrac=0)
    netlist = make_netlist([1], params=params)
    result = assert_same(netlist, Job(timesteps=3, stimuli=(Stimulus("p0", -8_000_000),)))
    assert result.final_state["v"].tolist() == [-(1 << 23)]


def test_noise_lfsr_advances_every_step_even_when_refractory():
    netlist = make_netlist([3], params=NeuronParams(refrac=255))
    job = Job(timesteps=10, stimuli=(Stimulus("p0", 5000),), learning=Learning(noise=True), seed=12345)
    result = assert_same(netlist, job)
    expected = []
    for gid in range(3):
        lfsr = (_splitmix32(12345 ^ gid) & 0xFFFF) or 0xACE1
        for _ in range(10):
            lfsr = (lfsr >> 1) ^ (0xB400 if lfsr & 1 else 0)
        expected.append(lfsr)
    assert result.final_state["lfsr"].tolist() == expected
    assert result.final_state["r"].tolist() == [246] * 3  # fired at t = 0, 9 steps counted down


def test_graded_payload_is_fixed_at_emission():
    # v = 2000 at threshold 1000: g = min(255, 128 + 125) = 253; (300 * 253) >> 7 = 592
    netlist = make_netlist([2], [(0, 1, 300, 2, 0), (0, 1, -300, 2, 1)],
                           params=NeuronParams(threshold=1000, leak=0, refrac=10))
    job = Job(timesteps=5, stimuli=(Stimulus("p0", 2000, (0,), times=(0,)),), learning=Learning(graded=True))
    result = assert_same(netlist, job)
    assert result.final_state["v"].tolist() == [0, 592 + ((-300 * 253) >> 7)]


def test_dendritic_threshold_gates_compartments_one_to_three():
    synapses = [(0, 2, 300, 0, 0), (0, 2, 299, 0, 1), (1, 2, 300, 0, 2)]
    netlist = make_netlist([3], synapses, params=NeuronParams(threshold=10_000, leak=0, dend_threshold=300))
    job = Job(timesteps=2, stimuli=(Stimulus("p0", 20_000, (0, 1), times=(0,)),),
              learning=Learning(dendritic=True))
    result = assert_same(netlist, job)
    assert result.final_state["v"][2] == 600  # A_0 = 300, A_1 = 299 < 300 dropped, A_2 = 300
    plain = simulate(netlist, Job(timesteps=2, stimuli=job.stimuli))
    assert plain.final_state["v"][2] == 899


def test_stdp_combines_both_terms_before_one_clamp():
    # 0 -> 1 fire together at t = 1 after both fired at t = 0 (traces 255 -> decayed 224)
    netlist = make_netlist([2], [(0, 1, 5, 0, 0)], params=NeuronParams(threshold=100, leak=0, refrac=0))
    job = Job(timesteps=2, stimuli=(Stimulus("p0", 100),),
              learning=Learning(enabled=True, a_plus=16, a_minus=300))
    result = assert_same(netlist, job)
    # t = 0: x = y = 0, dw = 0; t = 1: x = y = 255 - 32 = 223; dw = (16*223 >> 8) - (300*223 >> 8)
    dw = ((16 * 223) >> 8) - ((300 * 223) >> 8)
    assert result.final_weights.tolist() == [max(0, 5 + dw)]


def test_three_factor_reward_moves_weights_by_eligibility():
    netlist = make_netlist([2], [(0, 1, 1000, 0, 0), (1, 0, -50, 0, 0)],
                           params=NeuronParams(threshold=100, leak=0, refrac=1))
    job = Job(timesteps=30, stimuli=(Stimulus("p0", 100, (0,)),), rewards=(Reward(10, 200), Reward(10, 56),
                                                                            Reward(29, -100)),
              learning=Learning(enabled=True, three_factor=True, a_plus=200, a_minus=50))
    result = assert_same(netlist, job)
    assert result.final_weights[1] == -50  # negative initial weight: never plastic
    assert "e" in result.final_state and result.final_state["e"].shape == (2,)


# ---------------------------------------------------------------- degenerate cases

def test_single_neuron_one_step_no_connections():
    netlist = make_netlist([1])
    result = assert_same(netlist, Job(timesteps=1))
    assert result.total_spikes == 0
    assert result.final_weights.shape == (0,)
    assert result.final_state["v"].tolist() == [0]


def test_huge_fan_in_sums_exactly_in_int64():
    # 70,000 synapses of weight 32767 into one neuron: 2,293,690,000 does not fit int32
    netlist = make_netlist([2], [(0, 1, 32767, 0, 0)] * 70_000,
                           params=NeuronParams(threshold=(1 << 23) - 1, leak=0, refrac=0))
    job = Job(timesteps=3, stimuli=(Stimulus("p0", -(1 << 23), (1,)), Stimulus("p0", (1 << 23) - 1, (0,))))
    result = assert_same(netlist, job)
    assert result.extra["ring_dtype"] == "int64"
    # neuron 0 fires every step; neuron 1 sits at -2^23 until the sum lifts it past threshold
    assert result.spike_times[result.spike_gids == 1].tolist() == [1, 2]
    assert result.final_state["v"].tolist() == [0, 0]


def test_many_stimuli_on_one_neuron_add_in_full_width():
    stims = tuple(Stimulus("p0", (1 << 23) - 1, (0,)) for _ in range(300)) + (
        Stimulus("p0", -(1 << 23), (0,), start=0, stop=2),) * 300
    netlist = make_netlist([1], params=NeuronParams(threshold=(1 << 23) - 1, leak=0, refrac=0))
    result = assert_same(netlist, Job(timesteps=3, stimuli=stims))
    assert result.spike_times.tolist() == [2]  # -300 per step for two steps, then +2.5e9


def test_spike_buffer_grows_past_its_first_capacity():
    # 1,100 neurons firing every step for 1,000 steps: 1.1e6 spikes > the first 2^20 buffer
    netlist = make_netlist([1100], params=NeuronParams(threshold=1, refrac=0, leak=0))
    result = simulate(netlist, Job(timesteps=1000, stimuli=(Stimulus("p0", 1),)))
    assert result.total_spikes == 1_100_000
    assert result.spike_times[-1] == 999 and result.spike_gids[-1] == 1099


# ---------------------------------------------------------------- against the naive model

@pytest.mark.parametrize("seed", range(60))
def test_random_small_networks_match_the_naive_model(seed):
    print("seed", seed)
    netlist, job = random_case(seed)
    assert_same(netlist, job)


@pytest.mark.parametrize("mode", ["serial", "parallel", "alternating"])
def test_blocks_and_kernels_agree(mode, monkeypatch):
    # several blocks, run on the serial kernel, the parallel one, or switching every step
    rng = np.random.default_rng(7)
    n, m = 3000, 12_000
    synapses = np.stack([rng.integers(0, n, m), rng.integers(0, n, m), rng.integers(-200, 400, m),
                         rng.integers(0, 8, m), rng.integers(0, 4, m)], axis=1)
    netlist = make_netlist([n], synapses.tolist(), params=NeuronParams(threshold=800, refrac=2))
    job = Job(timesteps=40, stimuli=(Stimulus("p0", 30),), seed=3,
              learning=Learning(enabled=True, graded=True, noise=True, a_plus=64, a_minus=40))
    monkeypatch.setattr(emulator_engine, "PARALLEL_MIN_NEURONS", 10**9 if mode == "serial" else 1)
    monkeypatch.setattr(emulator_engine, "MAX_BLOCK", 512)
    if mode == "parallel":  # every chunk (of 7 steps) on the parallel kernel
        monkeypatch.setattr(emulator_engine._KernelChooser, "next", lambda self: (True, 7))
    if mode == "alternating":
        monkeypatch.setattr(emulator_engine, "_cores_look_free", lambda: True)  # whatever the load
        monkeypatch.setattr(emulator_engine, "CHUNK_SECONDS", 0.0)  # short chunks
        monkeypatch.setattr(emulator_engine._KernelChooser, "REPROBE_EVERY", 2)
        monkeypatch.setattr(emulator_engine._KernelChooser, "FIRST_PROBE", 1)
    result = simulate(netlist, job)
    assert result.extra["blocks"] >= 6
    if mode == "serial":
        assert result.extra["serial_steps"] == 40
    elif mode == "parallel":
        assert result.extra["parallel_steps"] == 40
    else:
        assert result.extra["parallel_steps"] >= 10 and result.extra["serial_steps"] >= 10
    spikes, weights, state = naive_run(netlist, job)
    assert list(zip(result.spike_times.tolist(), result.spike_gids.tolist(), strict=True)) == spikes
    assert result.final_weights.tolist() == weights
    assert result.final_state["v"].tolist() == state["v"]


# ---------------------------------------------------------------- bad input

def test_bad_netlist_values_are_named():
    netlist = make_netlist([2], [(0, 1, 5, 0, 0)])
    netlist.delay = np.array([64], np.uint8)
    with pytest.raises(ValidationError, match=r"netlist.delay\[0\] must be in 0..63, not 64"):
        simulate(netlist, Job(timesteps=1))
    netlist = make_netlist([2], [(0, 2, 5, 0, 0)])
    with pytest.raises(ValidationError, match=r"netlist.tgt\[0\] must be in 0..1, not 2"):
        simulate(netlist, Job(timesteps=1))


def test_bad_job_values_are_named():
    netlist = make_netlist([2])
    with pytest.raises(ValidationError, match="timesteps must be an integer in 1..10000000, not 0"):
        simulate(netlist, Job(timesteps=0))
    with pytest.raises(ValidationError, match=r"learning.trace_shift must be an integer in 0..15, not 16"):
        simulate(netlist, Job(timesteps=1, learning=Learning(trace_shift=16)))


def test_progress_is_reported_up_to_the_last_step():
    calls = []
    netlist = make_netlist([10])
    job = Job(timesteps=5000, stimuli=(Stimulus("p0", 50),))
    simulate(netlist, job, progress=lambda done, total: calls.append((done, total)))
    assert calls and calls[-1] == (5000, 5000)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


@pytest.mark.parametrize(("weight", "graded", "ring"), [(16_000, False, "int16"), (16_384, False, "int32"),
                                                        (8_192, True, "int32"), (8_000, True, "int16")])
def test_ring_type_is_the_narrowest_exact_one(weight, graded, ring):
    # two synapses into neuron 2: their sum (doubled for graded) decides int16 or int32
    netlist = make_netlist([3], [(0, 2, weight, 0, 0), (1, 2, weight, 0, 0)],
                           params=NeuronParams(threshold=(1 << 23) - 1, leak=0))
    job = Job(timesteps=2, stimuli=(Stimulus("p0", (1 << 23) - 1, (0, 1), times=(0,)),),
              learning=Learning(graded=graded))
    result = assert_same(netlist, job)
    assert result.extra["ring_dtype"] == ring
    g = 128  # v hits threshold exactly: payload 128, so (w * 128) >> 7 = w
    assert result.final_state["v"][2] == 2 * weight if not graded else 2 * ((weight * g) >> 7)


def test_kernel_chooser_runs_the_faster_kernel_and_spares_a_busy_machine(monkeypatch):
    chooser_type = emulator_engine._KernelChooser
    monkeypatch.setattr(emulator_engine, "_cores_look_free", lambda: False)
    busy = chooser_type(True, 1000, 80_000, 10_000)
    assert [busy.next()[0] for _ in range(40)] == [False] * 40  # never a parallel probe
    monkeypatch.setattr(emulator_engine, "_cores_look_free", lambda: True)
    chooser = chooser_type(True, 1000, 80_000, 10_000)
    parallel, steps = chooser.next()
    assert parallel and steps == chooser.probe == 50
    chooser.record(True, 0.001, steps, 0)
    parallel, steps = chooser.next()
    assert not parallel and steps == 50
    chooser.record(False, 0.004, steps, 0)
    choices = [chooser.next()[0] for _ in range(30)]
    assert choices.count(True) > choices.count(False) >= 1  # faster one, with re-probes
    assert not chooser_type(False, 1000, 0, 10).next()[0]
