"""The emulator's model of the cores' event queues: the same overflow, at the same step.

hdl/config.py: after the fan-out of step ``s`` a core holds the events with arrival
``> s`` (and ``< T``) whose target is one of its neurons, less the delay-0 events emitted
at ``s`` (core v2 adds those straight into its accumulators; a core of one accumulator
bank, the iCE40's, queues them too), at most ``event_queue`` of
them; one more and the core overflows at step ``s``. ``simulate(..., capacity=)`` must
raise :class:`CapacityExceeded` at exactly that step, never earlier, never later, and
change nothing else. Checked on hand-worked networks (the expected counts derived in
the comments), against a naive count written straight from the rule on seeded random
runs, and against the core's own Verilog (``neurofab.host.rtl.rtl_run_many``, one
launch for all the RTL cases).
"""

from __future__ import annotations

import dataclasses
import pickle

import numpy as np
import pytest
from netgen import SynapseSpec, netlist_from_synapses
from netgen import random_case as random_netgen_case

from neurofab.compiler import compile_network
from neurofab.emulator import CapacityExceeded, QueueCapacity, simulate
from neurofab.emulator.arith import graded_contribution
from neurofab.emulator.capacity import (
    MAX_EVENT_MAGNITUDE,
    AccumulatorRangeError,
    check_accumulator_range,
    check_image_accumulators,
    event_extremes,
)
from neurofab.errors import ValidationError
from neurofab.hdl.config import PRESETS
from neurofab.job import Job, Learning, Reward, Stimulus
from neurofab.network import NeuronParams

#: fires at every step it is driven with 1,000 (no leak, no refractory period)
EVERY_STEP = NeuronParams(threshold=1000, leak=0, resting=0, refrac=0, dend_threshold=0)


def core(event_queue: int, base: str = "ulx3s-85f", name: str = "tiny"):
    """A preset with a smaller event queue (everything else, acc_bits 32 included, as ``base``)."""
    return dataclasses.replace(PRESETS[base], name=name, event_queue=event_queue)


def single_core(config, netlist) -> QueueCapacity:
    return QueueCapacity(config, np.zeros(netlist.n_neurons, np.int64))


def fan_case(k: int, d: int, timesteps: int, sources: int = 1, stimulus_times=None):
    """``sources`` neurons spiking at every step (or at ``stimulus_times``), each into ``k``
    targets of weight 0 (the targets never spike) with delay ``d``."""
    synapses = [SynapseSpec(i, sources + j, 0, d, j % 4, plastic=False)
                for i in range(sources) for j in range(k)]
    netlist = netlist_from_synapses([("src", sources, EVERY_STEP), ("tgt", k, EVERY_STEP)], [synapses],
                                    seed=1)
    drive = Stimulus("src", 1000, times=stimulus_times) if stimulus_times else Stimulus("src", 1000)
    return netlist, Job(timesteps=timesteps, stimuli=(drive,))


def naive_held(netlist, spike_times, spike_gids, timesteps, core_of_gid, banks: int = 2) -> np.ndarray:
    """``held[c, s]``: events on core ``c`` after the fan-out of ``s``, one synapse at a time.

    A spike at ``s`` over a synapse with delay ``d >= 1`` is held by its target's core
    from the fan-out of ``s`` through step ``s + d`` (whose end subtracts it, drained),
    and never when ``s + 1 + d >= T``; with delay 0 it is never held by a core of two
    accumulator banks, and held after the fan-out of ``s`` by a core of one (drained at
    the start of ``s + 1``).
    """
    n_cores = int(np.max(core_of_gid)) + 1
    change = np.zeros((n_cores, timesteps + 1), np.int64)
    out = {}
    for src, tgt, d in zip(netlist.src.tolist(), netlist.tgt.tolist(), netlist.delay.tolist(), strict=True):
        out.setdefault(src, []).append((int(core_of_gid[tgt]), d))
    for s, gid in zip(spike_times.tolist(), spike_gids.tolist(), strict=True):
        for c, d in out.get(gid, ()):
            if (d > 0 or banks == 1) and s + 1 + d < timesteps:
                change[c, s] += 1
                change[c, s + 1 + d] -= 1
    return np.cumsum(change, axis=1)[:, :timesteps]


def overflow_of(netlist, job, capacity) -> CapacityExceeded:
    with pytest.raises(CapacityExceeded) as error:
        simulate(netlist, job, capacity=capacity)
    return error.value


# --- hand-worked networks ------------------------------------------------------------------------


@pytest.mark.parametrize("k, d", [(2, 1), (3, 4), (7, 1), (5, 63)])
def test_one_neuron_every_step_holds_k_times_d_plus_1(k, d):
    # The source spikes at every step s. Its spike of step s' is held after the fan-out of
    # s for s' <= s < s' + 1 + d, so after step s the queue holds the spikes of steps
    # max(0, s - d) .. s: k * min(s + 1, d + 1) events, k * (d + 1) from step d on, as long
    # as those spikes' events arrive before T (the last that does is at T - 2 - d >= d).
    T = 2 * d + 40
    netlist, job = fan_case(k, d, T)
    peak = k * (d + 1)
    result = simulate(netlist, job, capacity=single_core(core(peak), netlist))
    assert result.extra["queue_peak"] == [peak]
    assert result.extra["queue_peak_step"] == [d]
    assert result.spike_times.tolist() == list(range(T)) and set(result.spike_gids.tolist()) == {0}

    error = overflow_of(netlist, job, single_core(core(peak - 1), netlist))
    assert (error.kind, error.step, error.core, error.in_flight, error.capacity) == (
        "queue_overflow", d, 0, peak, peak - 1)
    assert str(error) == (f"the event queue overflowed at step {d}: more than {peak - 1:,} events in flight "
                          f"on core 0 (preset tiny); use a larger preset, fewer synapses, lower activity or "
                          f"shorter delays")
    assert isinstance(error, ValidationError)


@pytest.mark.parametrize("capacity", [1, 4, 5, 9, 10, 14])
def test_the_first_step_above_capacity(capacity):
    # k = 5, d = 2: k * (s + 1) held after step s = 0, 1, then 15 from step 2 on, so a
    # queue of c < 15 overflows at the first s with 5 * (s + 1) > c: s = c // 5.
    netlist, job = fan_case(5, 2, 30)
    error = overflow_of(netlist, job, single_core(core(capacity), netlist))
    assert (error.step, error.in_flight) == (capacity // 5, 5 * (capacity // 5 + 1))


def test_at_capacity_passes_and_one_more_fails():
    # 41 sources spiking once, at step 4, into 25 targets each with delay 5: 1,025 events,
    # held from the fan-out of step 4 to the drain of step 10. 1,025 fit a queue of 1,025
    # and overflow one of 1,024 at step 4, not before (nothing is held before) and not
    # after (the number only falls).
    netlist, job = fan_case(25, 5, 20, sources=41, stimulus_times=(4,))
    result = simulate(netlist, job, capacity=single_core(core(1025), netlist))
    assert (result.extra["queue_peak"], result.extra["queue_peak_step"]) == ([1025], [4])
    error = overflow_of(netlist, job, single_core(core(1024, name="small"), netlist))
    assert (error.step, error.in_flight, error.preset) == (4, 1025, "small")
    assert "more than 1,024 events in flight on core 0 (preset small)" in str(error)


@pytest.mark.parametrize("d", [1, 9, 63])
def test_arrivals_at_or_after_T_are_not_held(d):
    # A spike at s arrives at s + 1 + d; with T = d + 1 every arrival is >= T, so a source
    # spiking at every step holds nothing and a queue of one never overflows.
    k = 6
    netlist, job = fan_case(k, d, d + 1)
    result = simulate(netlist, job, capacity=single_core(core(1), netlist))
    assert result.extra["queue_peak"] == [0]
    assert result.total_spikes == d + 1
    # T = d + 2: only the spike of step 0 arrives in time (at d + 1 = T - 1): k held over
    # steps 0 .. d, so k - 1 overflows at step 0 and k does not.
    netlist, job = fan_case(k, d, d + 2)
    assert simulate(netlist, job, capacity=single_core(core(k), netlist)).extra["queue_peak"] == [k]
    assert overflow_of(netlist, job, single_core(core(k - 1), netlist)).step == 0


def test_a_burst_in_the_last_steps_is_not_held():
    # 41 x 25 = 1,025 events at step 18 with delay 1 arrive at 20 = T: none is held, so
    # a queue of 1,024 does not overflow; one step earlier they arrive at 19.
    netlist, job = fan_case(25, 1, 20, sources=41, stimulus_times=(18,))
    result = simulate(netlist, job, capacity=single_core(core(1024), netlist))
    assert result.extra["queue_peak"] == [0]
    netlist, job = fan_case(25, 1, 20, sources=41, stimulus_times=(17,))
    assert overflow_of(netlist, job, single_core(core(1024), netlist)).step == 17


def test_delay_0_events_are_never_held():
    # delay 0: a spike of step s arrives at s + 1 and goes straight into the accumulators,
    # so a source spiking every step into 9 targets holds nothing, even in a queue of one.
    netlist, job = fan_case(9, 0, 50)
    result = simulate(netlist, job, capacity=single_core(core(1), netlist))
    assert result.extra["queue_peak"] == [0]
    # 5 synapses of delay 0 and 3 of delay 1 from a source spiking every step: the delay-1
    # events of step s are held through step s + 1, so 3 after step 0 and 6 from step 1 on
    synapses = [SynapseSpec(0, 1 + j, 0, 0 if j < 5 else 1, j % 4, plastic=False) for j in range(8)]
    netlist = netlist_from_synapses([("src", 1, EVERY_STEP), ("tgt", 8, EVERY_STEP)], [synapses], seed=1)
    job = Job(timesteps=20, stimuli=(Stimulus("src", 1000),))
    result = simulate(netlist, job, capacity=single_core(core(6), netlist))
    assert (result.extra["queue_peak"], result.extra["queue_peak_step"]) == ([6], [1])
    error = overflow_of(netlist, job, single_core(core(5), netlist))
    assert (error.step, error.in_flight) == (1, 6)


def test_zero_weight_and_every_compartment_count():
    # Every synapse of a spiking neuron is one event: weights 0, +1, -1 on all four
    # compartments, and several synapses onto the same target, each one.
    synapses = [SynapseSpec(0, 1 + (j % 2), w, 3, j % 4, plastic=False)
                for j, w in enumerate([0, 1, -1, 0, 0, 1, -1, 0])]
    netlist = netlist_from_synapses([("src", 1, EVERY_STEP), ("tgt", 2, EVERY_STEP)], [synapses], seed=1)
    job = Job(timesteps=30, stimuli=(Stimulus("src", 1000),))
    # 8 synapses x (3 + 1) steps in flight = 32 from step 3
    assert simulate(netlist, job, capacity=single_core(core(32), netlist)).extra["queue_peak"] == [32]
    assert overflow_of(netlist, job, single_core(core(31), netlist)).step == 3


# --- several cores: an event lives on its target's core ------------------------------------------


def test_events_are_held_by_the_target_core():
    # One source on core 0 spiking every step; 2 targets on core 0 and 3 on core 1, delay 2.
    # Core 0 holds 2 * 3 = 6, core 1 holds 3 * 3 = 9 from step 2 on.
    synapses = [SynapseSpec(0, 1 + j, 0, 2, 0, plastic=False) for j in range(5)]
    netlist = netlist_from_synapses([("src", 1, EVERY_STEP), ("tgt", 5, EVERY_STEP)], [synapses], seed=1)
    job = Job(timesteps=20, stimuli=(Stimulus("src", 1000),))
    two = core(9, base="sim", name="two-cores")
    cores = np.array([0, 0, 0, 1, 1, 1])
    result = simulate(netlist, job, capacity=QueueCapacity(two, cores))
    assert (result.extra["queue_peak"], result.extra["queue_peak_step"]) == ([6, 9], [2, 2])
    error = overflow_of(netlist, job, QueueCapacity(core(8, base="sim", name="two-cores"), cores))
    assert (error.core, error.step, error.in_flight) == (1, 2, 9)
    assert "on core 1 (preset two-cores)" in str(error)
    # both cores over at once (4 > 3 and 6 > 3 after step 1): the lower-numbered is named
    error = overflow_of(netlist, job, QueueCapacity(core(3, base="sim", name="two-cores"), cores))
    assert (error.core, error.step, error.in_flight) == (0, 1, 4)


def test_from_image_follows_the_placement():
    # 12 sources on core 0 (4 neurons a core) spike at every step into the 4 neurons of
    # core 2 only, delay 1: remote events, held by core 2, 12 * 4 * 2 = 96 from step 1.
    synapses = [SynapseSpec(i, 8 + j, 0, 1, 0, plastic=False) for i in range(4) for j in range(4)]
    synapses += [SynapseSpec(4 + i, 8 + j, 0, 1, 0, plastic=False) for i in range(4) for j in range(4)]
    synapses += [SynapseSpec(i, 8 + j, 0, 1, 1, plastic=False) for i in range(4) for j in range(4)]
    netlist = netlist_from_synapses([("src", 8, EVERY_STEP), ("tgt", 4, EVERY_STEP)], [synapses], seed=1)
    job = Job(timesteps=10, stimuli=(Stimulus("src", 1000),))
    image = compile_network(netlist, core(96, base="sim", name="sim-96"), max_neurons_per_core=4)
    capacity = QueueCapacity.from_image(image)
    assert image.n_cores == 3 and capacity.core_of_gid.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    rebuilt = image.to_netlist(netlist.populations)
    result = simulate(rebuilt, job, capacity=capacity)
    assert result.extra["queue_peak"] == [0, 0, 96]
    small = compile_network(netlist, core(95, base="sim", name="sim-95"), max_neurons_per_core=4)
    error = overflow_of(rebuilt, job, QueueCapacity.from_image(small))
    assert (error.core, error.step, error.in_flight) == (2, 1, 96)


# --- against a naive count, on seeded random runs ------------------------------------------------


def active_case(seed: int):
    """A small random network kept busy: every delay 0 .. 63, a driven subset, any flags.

    ``netgen.random_case`` draws many quiet networks (no synapse or no spike); here a third
    to all of the neurons are driven over a window, so most cases keep events in flight.
    """
    rng = np.random.default_rng(seed)
    n = int(rng.integers(4, 41))
    params = NeuronParams(threshold=int(rng.integers(200, 1001)), leak=int(rng.integers(0, 21)),
                          resting=0, refrac=int(rng.integers(0, 4)), dend_threshold=int(rng.integers(0, 300)))
    delays = np.where(rng.random(n * 8) < 0.3, rng.integers(0, 64, n * 8), rng.integers(0, 8, n * 8))
    synapses = [SynapseSpec(int(rng.integers(n)), int(rng.integers(n)), int(rng.integers(-300, 601)),
                            int(delays[i]), int(rng.integers(4)), plastic=bool(rng.random() < 0.7))
                for i in range(int(rng.integers(n, n * 8 + 1)))]
    netlist = netlist_from_synapses([("all", n, params)], [synapses], seed=seed)
    timesteps = int(rng.integers(40, 401))
    driven = tuple(sorted(rng.choice(n, int(rng.integers(n // 3 + 1, n + 1)), replace=False).tolist()))
    start = int(rng.integers(0, timesteps // 2))
    drive = Stimulus("all", int(rng.integers(100, 1201)), driven, start=start,
                     stop=int(rng.integers(start + 1, timesteps + 1)))
    flags = rng.random(5) < 0.5
    learning = Learning(enabled=bool(flags[0]), three_factor=bool(flags[1]), graded=bool(flags[2]),
                        dendritic=bool(flags[3]), noise=bool(flags[4]))
    rewards = (Reward(int(rng.integers(timesteps)), int(rng.integers(-500, 500))),) if flags[1] else ()
    job = Job(timesteps=timesteps, stimuli=(drive,), learning=learning, rewards=rewards, seed=seed)
    return netlist, job


@pytest.mark.parametrize("banks", [2, 1])
def test_one_bank_holds_delay_0_events_until_the_next_step(banks):
    # A source spiking every step into 9 targets with delay 0: with two banks nothing is
    # held; with one, the 9 events of step s are held after its fan-out (arrival s + 1)
    # and drained at the start of s + 1, before its fan-out adds 9 more: 9 after every step.
    netlist, job = fan_case(9, 0, 50)
    one_bank = dataclasses.replace(core(9), accumulator_banks=banks)
    result = simulate(netlist, job, capacity=single_core(one_bank, netlist))
    assert result.extra["queue_peak"] == [9 if banks == 1 else 0]
    if banks == 1:
        small = dataclasses.replace(core(8), accumulator_banks=1)
        error = overflow_of(netlist, job, single_core(small, netlist))
        assert (error.step, error.in_flight) == (0, 9)
    # delay 0 and 2 mixed (3 + 4 synapses), one bank: after step s the delay-2 events of
    # s - 2 .. s (12 from step 2 on) and the delay-0 events of s (3): peak 15 at step 2
    synapses = [SynapseSpec(0, 1 + j, 0, 0 if j < 3 else 2, j % 4, plastic=False) for j in range(7)]
    netlist = netlist_from_synapses([("src", 1, EVERY_STEP), ("tgt", 7, EVERY_STEP)], [synapses], seed=1)
    job = Job(timesteps=20, stimuli=(Stimulus("src", 1000),))
    config = dataclasses.replace(core(15), accumulator_banks=banks)
    result = simulate(netlist, job, capacity=single_core(config, netlist))
    assert (result.extra["queue_peak"], result.extra["queue_peak_step"]) == (
        ([15], [2]) if banks == 1 else ([12], [2]))


# every case with two accumulator banks, a third of them again with one
@pytest.mark.parametrize("seed, banks", [(s, 2) for s in range(30)] + [(s, 1) for s in range(0, 30, 3)])
def test_random_runs_match_the_naive_count(seed, banks):
    netlist, job = active_case(seed)
    rng = np.random.default_rng(10_000 + seed)
    n_cores = int(rng.integers(1, 4))
    cores = np.sort(rng.integers(0, n_cores, netlist.n_neurons))
    if seed % 4 == 3:  # core ids past 1,024: source_groups sorts instead of a histogram
        cores = cores * 700
    free = simulate(netlist, job)
    held = naive_held(netlist, free.spike_times, free.spike_gids, job.timesteps, cores, banks)
    peak = held.max(axis=1)
    label = (f"seed={seed}: {netlist.n_neurons} neurons, {netlist.n_synapses} synapses, T={job.timesteps}, "
             f"{free.total_spikes} spikes, cores {sorted(set(cores.tolist()))}")
    assert peak.max() > 1, f"{label}: nothing held"
    big = dataclasses.replace(core(int(peak.max()), base="sim", name="random"), accumulator_banks=banks)
    counted = simulate(netlist, job, capacity=QueueCapacity(big, cores))
    assert counted.extra["queue_peak"] == peak.tolist(), label
    assert counted.extra["queue_peak_step"] == np.argmax(held, axis=1).tolist(), label
    assert np.array_equal(counted.spike_times, free.spike_times), label
    capacity = int(rng.integers(1, peak.max()))
    over = held > capacity
    step = int(np.flatnonzero(over.any(axis=0))[0])
    c = int(np.flatnonzero(over[:, step])[0])
    small = dataclasses.replace(core(capacity, base="sim", name="random"), accumulator_banks=banks)
    error = overflow_of(netlist, job, QueueCapacity(small, cores))
    assert (error.step, error.core, error.in_flight) == (step, c, int(held[c, step])), label


def test_without_capacity_nothing_changes():
    # the same runs with no capacity, with one that never fills, and the extra keys only then
    for seed in (3, 4, 5, 6):
        case = random_netgen_case(2000 + seed, force={"stdp": seed % 2 == 0})
        plain = simulate(case.netlist, case.job)
        roomy = simulate(case.netlist, case.job,
                         capacity=single_core(PRESETS["sim"], case.netlist))
        label = f"seed={2000 + seed}"
        assert "queue_peak" not in plain.extra, label
        assert np.array_equal(plain.spike_times, roomy.spike_times), label
        assert np.array_equal(plain.spike_gids, roomy.spike_gids), label
        assert np.array_equal(plain.final_weights, roomy.final_weights), label
        for name, values in plain.final_state.items():
            assert np.array_equal(values, roomy.final_state[name]), f"{label}: {name}"


def test_a_long_run_overflows_late():
    # Chunks of steps are counted as they finish: an overflow thousands of steps in is
    # found at its step. The source is driven only from step 5,000 on (delay 7, 3 targets:
    # 3 * 8 = 24 held from step 5,007).
    netlist, _ = fan_case(3, 7, 20_000)
    job = Job(timesteps=20_000, stimuli=(Stimulus("src", 1000, start=5000),))
    error = overflow_of(netlist, job, single_core(core(23), netlist))
    assert (error.step, error.in_flight) == (5007, 24)


# --- accumulators ---------------------------------------------------------------------------------


def test_event_magnitude_is_the_largest_contribution():
    assert MAX_EVENT_MAGNITUDE == 65280
    assert MAX_EVENT_MAGNITUDE == max(abs(graded_contribution(w, 255)) for w in (-32768, 32767))
    assert MAX_EVENT_MAGNITUDE > 32768  # larger than any plain weight


def one_sum(weights, *, graded, plastic=None, config=None):
    """:func:`check_accumulator_range` for synapses all onto compartment 2 of neuron 3."""
    n = len(weights)
    check_accumulator_range(config or PRESETS["ulx3s-85f"], np.full(n, 3), np.full(n, 2),
                            np.asarray(weights), graded=graded, plastic=plastic)


def test_event_extremes_follow_the_rounding():
    # (w * g) >> 7 floors: w = -1 reaches -2 at g = 255, w = 1 only 1; plain values are w
    most, least = event_extremes([-32768, 32767, -1, 1, 0, 128, -129], graded=True)
    assert most.tolist() == [0, 65278, 0, 1, 0, 255, 0]
    assert least.tolist() == [-65280, 0, -2, 0, 0, 0, -257]
    assert all(max(abs(graded_contribution(w, g)) for g in range(256)) == max(m, -v)
               for w, m, v in zip([-32768, 32767, -1, 1, 0, 128, -129], most, least, strict=True))
    most, least = event_extremes([-5, 7, 0], graded=False)
    assert (most.tolist(), least.tolist()) == ([0, 7, 0], [-5, 0, 0])
    # a plastic synapse of a learning job may take any weight
    most, least = event_extremes([1, 1], graded=False, plastic=[True, False])
    assert (most.tolist(), least.tolist()) == ([32767, 1], [-32768, 0])


def test_the_accumulator_bound_is_exact():
    # signed 32 bits: -2,147,483,648 .. 2,147,483,647
    one_sum([-32768] * 32_896, graded=True)  # -2,147,450,880
    one_sum([32767] * 32_897, graded=True)  # 65,278 x 32,897 = 2,147,450,366
    one_sum([-32768] * 65_536, graded=False)  # exactly -2^31
    one_sum([32767] * 65_538, graded=False)  # 2,147,418,... < 2^31 - 1
    with pytest.raises(AccumulatorRangeError,
                       match=r"^core neuron 3 compartment 2 can receive -2,147,516,160 in one step: its "
                             r"synapses' events \(graded spikes\) could add up beyond the signed 32-bit "
                             r"accumulator \(-2,147,483,648 \.\. 2,147,483,647\) of preset ulx3s-85f"):
        one_sum([-32768] * 32_897, graded=True)
    with pytest.raises(AccumulatorRangeError, match="can receive 2,147,515,644 in one step"):
        one_sum([32767] * 32_898, graded=True)
    with pytest.raises(AccumulatorRangeError, match=r"can receive -2,147,516,416 in one step: .*\(spikes\)"):
        one_sum([-32768] * 65_537, graded=False)
    # positive and negative events cancel: each side is bounded on its own
    one_sum([-32768] * 32_896 + [32767] * 32_897, graded=True)


def test_a_learning_job_counts_plastic_synapses_at_any_weight():
    narrow = dataclasses.replace(PRESETS["icebreaker"], name="narrow", acc_bits=18)  # -131,072 .. 131,071
    one_sum([1, 1, 1, 1, 1], graded=True, plastic=np.array([True, True, False, False, False]), config=narrow)
    with pytest.raises(AccumulatorRangeError, match=r"can receive 195,834 .*\(graded spikes \(plastic "
                                                    r"synapses at any weight: the job learns\)\)"):
        one_sum([1, 1, 1], graded=True, plastic=np.ones(3, bool), config=narrow)


def test_the_emulator_and_the_image_check_the_same_sums():
    # 18-bit sums: two graded events of -65,280 fit (-130,560), three do not; the first
    # sum over names the neuron by population, and compartment
    narrow = dataclasses.replace(PRESETS["icebreaker"], name="narrow", acc_bits=18)
    synapses = [SynapseSpec(i, 3 + 1, -32768, 1, 2, plastic=False) for i in range(3)]
    synapses += [SynapseSpec(i, 3 + 0, -32768, 1, 1, plastic=False) for i in range(2)]
    netlist = netlist_from_synapses([("src", 3, EVERY_STEP), ("tgt", 2, EVERY_STEP)], [synapses], seed=1)
    image = compile_network(netlist, narrow)
    plain = Job(timesteps=5, stimuli=(Stimulus("src", 1000),))
    graded = dataclasses.replace(plain, learning=Learning(graded=True))
    capacity = QueueCapacity.from_image(image)
    for job in (plain, graded):
        want = None if job is plain else "core neuron tgt[1] compartment 2 can receive -195,840 in one step"
        for check in (lambda job: capacity.check_accumulators(netlist, job),
                      lambda job: check_image_accumulators(image, job)):
            if want is None:
                check(job)
                continue
            with pytest.raises(AccumulatorRangeError) as error:
                check(job)
            assert str(error.value).startswith(want)
            assert (error.value.neuron, error.value.compartment, error.value.reach) == (4, 2, -195_840)
            copy = pickle.loads(pickle.dumps(error.value))
            assert type(copy) is AccumulatorRangeError and str(copy) == str(error.value)
            assert (copy.neuron, copy.compartment, copy.reach, copy.preset, copy.path) == (
                4, 2, -195_840, "narrow", "core")


def test_queue_capacity_takes_any_acc_bits():
    # the old blanket refusal of narrow cores is gone: sums are checked per job
    wide_queue = dataclasses.replace(PRESETS["icebreaker"], event_queue=1 << 20, acc_bits=18)
    assert QueueCapacity(wide_queue, np.zeros(3, np.int64)).events_per_core == 1 << 20


# --- bad input, and the error itself --------------------------------------------------------------


def test_bad_capacities_are_refused():
    netlist, job = fan_case(2, 1, 10)
    with pytest.raises(ValidationError, match=r"^capacity must be a QueueCapacity or None, not 1024$"):
        simulate(netlist, job, capacity=1024)
    with pytest.raises(ValidationError, match=r"capacity.core_of_gid must name the core of each of the "
                                              r"netlist's 3 neurons, not shape \(2,\)"):
        simulate(netlist, job, capacity=QueueCapacity(PRESETS["icebreaker"], np.zeros(2, np.int64)))
    with pytest.raises(ValidationError, match=r"capacity.core_of_gid\[1\] must be a core of 0 .. 0 "
                                              r"\(preset icebreaker\), not 1"):
        QueueCapacity(PRESETS["icebreaker"], np.array([0, 1, 0]))
    with pytest.raises(ValidationError,
                       match="capacity.core_of_gid must be a 1-D array of integers, not float64"):
        QueueCapacity(PRESETS["icebreaker"], np.zeros(3))
    with pytest.raises(ValidationError, match="capacity.config must be a CoreConfig, not 'icebreaker'"):
        QueueCapacity("icebreaker", np.zeros(3, np.int64))
    short = dataclasses.replace(PRESETS["icebreaker"], name="short", delay_slots=2)
    netlist, job = fan_case(2, 5, 10)
    with pytest.raises(ValidationError, match=r"netlist.delay\[0\] must be below the short core's 2 delay "
                                              r"slots, not 5"):
        simulate(netlist, job, capacity=single_core(short, netlist))


def test_the_error_survives_pickling_and_names_accumulators():
    error = CapacityExceeded("queue_overflow", 12, PRESETS["icebreaker"], core=0, in_flight=10310)
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is CapacityExceeded and str(copy) == str(error)
    assert (copy.kind, copy.step, copy.core, copy.in_flight, copy.capacity, copy.preset) == (
        "queue_overflow", 12, 0, 10310, 10240, "icebreaker")
    acc = CapacityExceeded("acc_overflow", 3, dataclasses.replace(PRESETS["icebreaker"], acc_bits=18))
    assert str(acc) == ("an accumulator overflowed at step 3: an input sum left the signed 18-bit range on "
                        "core 0 (preset icebreaker)")
    with pytest.raises(ValueError, match="kind must be one of"):
        CapacityExceeded("full", 1, PRESETS["icebreaker"])


# --- against the core's Verilog ---------------------------------------------------------------------


def test_the_rtl_core_fails_at_the_same_step_with_the_same_message():
    """Four icebreaker cases (its iCE40 core: 10,240 events, one accumulator bank) in one
    simulator launch, each also run by the emulator."""
    from neurofab.host.rtl import rtl_run_many

    icebreaker = PRESETS["icebreaker"]
    cases = {
        # 21 x 488 = 10,248 events at step 4 (delay 5): over, at step 4
        "one over": (fan_case(488, 5, 20, sources=21, stimulus_times=(4,)), 4),
        # 32 x 320 = 10,240: exactly full, runs to the end
        "exactly full": (fan_case(320, 5, 20, sources=32, stimulus_times=(4,)), None),
        # 40 sources every step into 40 targets, delay 10: 1,600 * (s + 1) after step s,
        # 9,600 after step 5, 11,200 after step 6
        "filling up": (fan_case(40, 10, 30, sources=40), 6),
        # 21 x 488 at step 18 with delay 1 arrive at T = 20: never held
        "past T": (fan_case(488, 1, 20, sources=21, stimulus_times=(18,)), None),
    }
    runs, emulated = [], []
    for netlist, job in (case for case, _ in cases.values()):
        image = compile_network(netlist, icebreaker)
        runs.append((image, job, netlist.populations))
        rebuilt = image.to_netlist(netlist.populations)
        try:
            emulated.append(simulate(rebuilt, job, capacity=QueueCapacity.from_image(image)))
        except CapacityExceeded as error:
            emulated.append(error)
    results = rtl_run_many(runs, return_errors=True)
    for index, (label, (_, step)) in enumerate(cases.items()):
        rtl, emu = results[index], emulated[index]
        if step is None:
            assert not isinstance(emu, Exception), f"{label}: {emu}"
            assert not isinstance(rtl, Exception), f"{label}: {rtl}"
            assert np.array_equal(rtl.spike_times, emu.spike_times), label
            assert np.array_equal(rtl.spike_gids, emu.spike_gids), label
            assert max(rtl.extra["events_held"]) == emu.extra["queue_peak"][0], label
            continue
        assert isinstance(emu, CapacityExceeded), f"{label}: the emulator gave {emu!r}"
        assert isinstance(rtl, CapacityExceeded), f"{label}: the core gave {rtl!r}"
        assert (rtl.kind, rtl.step) == (emu.kind, emu.step) == ("queue_overflow", step), label
        # rtl_run_many puts "run <index>: " before the message of a job of several.
        assert str(rtl) == f"run {index}: {emu}", label
        assert str(rtl).startswith(f"run {index}: the event queue overflowed at step {step}: more than "
                                   f"10,240 events"), label
