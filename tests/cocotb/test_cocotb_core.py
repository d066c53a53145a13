"""The whole core as Verilog under Verilator (``neurofab.host.rtl``) against the emulator.

Random networks and jobs (``netgen.random_case`` with learning off: delays 0 .. 63,
compartments, dendritic gating, noise, graded spikes, stimulus windows, listed times and
neuron subsets, job seeds, extreme parameters) are compiled for the ``icebreaker``
preset (the iCE40 core, ``SpramCore``: 60 cases) and the ``ulx3s-85f`` preset (core v2,
``Core``: 20 cases), run by ``rtl_run_many`` (one simulator launch per batch, one
Verilator build per preset), and by ``neurofab.emulator.simulate``. A drawn case whose
synapse sums the preset's accumulators cannot hold (20 bits on the iCE40) is refused
before any run, by both backends alike; the next draw (``seed + 1000 k``) is taken, and
the seed used is logged. ``core_checks.mismatches`` compares
every step's spikes, the final state of every neuron, the weights, the events in flight
and the cycle counters. A case whose spikes put more events in flight than the preset's
queue holds must fail with ``RtlOverflowError`` at exactly the step the queue's rule
gives. Each case's seed is in the test id (``seeds=A..B``), in its output line and in
every assertion message.

The long runs are 1,000 steps of the whole ``ulx3s-85f`` core (1,024 neurons) and of the
whole ``icebreaker`` core (512 neurons).
"""

from __future__ import annotations

import random
import time

import numpy as np
import pytest
from core_checks import first_overflow_step, mismatches
from core_run import events_held_per_step
from netgen import FEATURES, SynapseSpec, netlist_from_synapses, random_case

from neurofab.compiler import CapacityError, compile_network
from neurofab.emulator import QueueCapacity, simulate
from neurofab.emulator.capacity import AccumulatorRangeError, check_image_accumulators
from neurofab.errors import ValidationError
from neurofab.hdl.config import PRESETS, CoreConfig
from neurofab.host.rtl import RtlOverflowError, rtl_run, rtl_run_many
from neurofab.job import Job, Learning, Stimulus
from neurofab.network import NeuronParams

CORE = PRESETS["icebreaker"]
#: per preset: (first seed, batches of ``PER_BATCH`` cases)
BATCHES = {"icebreaker": (7000, 6), "ulx3s-85f": (7100, 2)}
PER_BATCH = 10
#: a batch may lose a case or two to the queue (checked as an overflow instead), no more
MIN_COMPARED = PER_BATCH - 2
NO_LEARNING = {"stdp": False, "three_factor": False}
#: draws tried per case for one the preset's accumulators hold (``seed + 1000 k``)
DRAWS = 20


def batch_seeds(preset: str, batch: int) -> list[int]:
    first = BATCHES[preset][0] + batch * PER_BATCH
    return list(range(first, first + PER_BATCH))


BATCH_IDS = [(preset, b) for preset, (_, n) in BATCHES.items() for b in range(n)]
BATCH_NAMES = [f"{p}-seeds={batch_seeds(p, b)[0]}..{batch_seeds(p, b)[-1]}" for p, b in BATCH_IDS]


def draw(seed: int):
    """A random non-learning case (through the API parser, as the CLI reads documents)."""
    return random_case(seed, force=NO_LEARNING, via="parser")


def fitting_draw(seed: int, config):
    """``draw(seed)``, or the first ``draw(seed + 1000 k)`` whose synapse sums ``config``'s
    accumulators hold; ``(case, image)``, or ``(case, None)`` for a case beyond the preset."""
    for k in range(DRAWS):
        case = draw(seed + 1000 * k)
        try:
            image = compile_network(case.netlist, config)
        except CapacityError as error:  # beyond the preset: the compiler refuses, the core never sees it
            print(f"seed={case.seed}: does not fit {config.name}: {error}")
            return case, None
        try:
            check_image_accumulators(image, case.job)
        except AccumulatorRangeError as error:  # refused by both backends alike: draw again
            print(f"seed={case.seed}: refused on {config.name}: {error}")
            continue
        return case, image
    raise AssertionError(f"seed={seed}: no draw of {DRAWS} fits {config.name}'s accumulators")


@pytest.mark.parametrize("preset, batch", BATCH_IDS, ids=BATCH_NAMES)
def test_random_networks_match_the_emulator(preset, batch):
    config = PRESETS[preset]
    cases, runs, expected, images = [], [], [], []
    for seed in batch_seeds(preset, batch):
        case, image = fitting_draw(seed, config)
        assert not case.job.learning.enabled, f"seed={case.seed}: the generator drew a learning job"
        if image is None:
            continue
        emu = simulate(case.netlist, case.job)
        held = events_held_per_step(case.netlist, emu.spike_times, emu.spike_gids, case.job.timesteps,
                                    config.accumulator_banks)
        cases.append(case)
        images.append(image)
        runs.append((image, case.job, case.netlist.populations))
        expected.append((emu, first_overflow_step(held, config.event_queue)))

    started = time.perf_counter()
    results = rtl_run_many(runs, return_errors=True)
    seconds = time.perf_counter() - started

    failures, compared = [], 0
    for case, image, rtl, (emu, overflow) in zip(cases, images, results, expected, strict=True):
        label = f"seed={case.seed}"
        print(f"{case.describe()} spikes={emu.total_spikes} overflow_step={overflow} "
              f"cycles/step={getattr(rtl, 'extra', {}).get('cycles_per_step')}")
        if overflow is not None:
            if not isinstance(rtl, RtlOverflowError) or rtl.kind != "queue_overflow" or rtl.step != overflow:
                failures.append(f"{label}: the queue must overflow at step {overflow}, got {rtl!r}")
            elif f"step {overflow}:" not in str(rtl):
                failures.append(f"{label}: the error does not name step {overflow}: {rtl}")
            continue
        if isinstance(rtl, Exception):
            failures.append(f"{label}: {rtl}")
            continue
        compared += 1
        failures += mismatches(label, case.netlist, case.job, rtl, emu, image)
    print(f"{preset} batch {batch}: {compared} cases compared, {len(cases) - compared} overflows checked, "
          f"rtl {seconds:.1f} s")
    assert not failures, "\n".join(failures)
    assert compared >= MIN_COMPARED, f"seeds {batch_seeds(preset, batch)}: only {compared} cases compared"


def test_random_cases_cover_every_feature():
    """The seeds of the batches draw every feature the brief lists (checked on the draws)."""
    cases = [fitting_draw(seed, PRESETS[p])[0] for p, b in BATCH_IDS for seed in batch_seeds(p, b)]
    delays = set().union(*(set(c.netlist.delay.tolist()) for c in cases))
    compartments = set().union(*(set(c.netlist.compartment.tolist()) for c in cases))
    assert {0, 63} <= delays and len(delays) > 30, sorted(delays)
    assert compartments == {0, 1, 2, 3}
    for name in ("dendritic", "noise", "graded"):
        assert sum(getattr(c.job.learning, name) for c in cases) >= 10, name
    stimuli = [s for c in cases for s in c.job.stimuli]
    assert any(s.times for s in stimuli), "no listed stimulus times"
    assert any(s.start or s.stop for s in stimuli), "no stimulus windows"
    assert any(s.neurons is not None for s in stimuli), "no neuron subsets"
    assert len({c.job.seed for c in cases}) > 10, "job seeds"
    assert all(name in FEATURES for name in NO_LEARNING)


# --- long runs: a whole core -------------------------------------------------------------------


def long_case(seed: int, *, neurons: int = 1024, timesteps: int = 1000, fan_out: int = 2):
    """``neurons`` neurons (a fifth inhibitory), ``fan_out`` random synapses each, about 1.6% active.

    Delays mostly 0 .. 7 with a fifth up to 63, every compartment, dendritic gating,
    noise and graded spikes; background stimuli on neuron subsets over windows and a
    burst at listed times. Sized so the events in flight stay under the presets' queues.
    """
    rng = random.Random(seed)
    n_inh = neurons // 5
    excitatory = NeuronParams(threshold=1000, leak=25, resting=0, refrac=3, dend_threshold=300)
    inhibitory = NeuronParams(threshold=800, leak=40, resting=-100, refrac=2, dend_threshold=0)
    populations = [("exc", neurons - n_inh, excitatory), ("inh", n_inh, inhibitory)]
    synapses = []
    for src in range(neurons):
        excitatory = src < neurons - n_inh
        for tgt in sorted(rng.sample(range(neurons), fan_out)):
            weight = rng.randint(100, 500) if excitatory else -rng.randint(200, 800)
            delay = rng.randint(0, 7) if rng.random() < 0.8 else rng.randint(0, 63)
            synapses.append(SynapseSpec(src, tgt, weight, delay, rng.randrange(4), plastic=False))
    netlist = netlist_from_synapses(populations, [synapses], seed=rng.getrandbits(32))
    stimuli = []
    for k in range(8):
        label, size = ("exc", neurons - n_inh) if k < 6 else ("inh", n_inh)
        start = rng.randrange(timesteps // 2)
        subset = tuple(sorted(rng.sample(range(size), size // 10)))
        stimuli.append(Stimulus(label, rng.randint(60, 160), subset, start=start,
                                stop=rng.randint(start + 100, timesteps)))
    burst = tuple(sorted(rng.sample(range(timesteps), 30)))
    stimuli.append(Stimulus("exc", 900, tuple(range(40)), times=burst))
    job = Job(timesteps=timesteps, stimuli=tuple(stimuli),
              learning=Learning(graded=True, dendritic=True, noise=True), seed=rng.getrandbits(32))
    return netlist, job


@pytest.mark.parametrize("preset", ["ulx3s-85f", "icebreaker"])
def test_long_run_whole_core(preset):
    seed = 1
    config = PRESETS[preset]
    netlist, job = long_case(seed, neurons=config.neurons)
    emu = simulate(netlist, job)
    held = events_held_per_step(netlist, emu.spike_times, emu.spike_gids, job.timesteps,
                                config.accumulator_banks)
    assert held.max() <= config.event_queue, f"seed={seed}: the case overfills the queue ({held.max()})"
    assert emu.total_spikes > 5 * config.neurons, f"seed={seed}: too quiet ({emu.total_spikes} spikes)"
    image = compile_network(netlist, config)
    started = time.perf_counter()
    rtl = rtl_run(image, job, populations=netlist.populations)
    seconds = time.perf_counter() - started
    print(f"long run seed={seed}: {netlist.n_neurons} neurons, {netlist.n_synapses} synapses, "
          f"{job.timesteps} steps, {emu.total_spikes} spikes, max {held.max()} events held; "
          f"rtl {seconds:.1f} s (simulation {rtl.compute_seconds:.1f} s), "
          f"cycles/step {rtl.extra['cycles_per_step']}")
    failures = mismatches(f"long {preset} seed={seed}", netlist, job, rtl, emu, image)
    assert not failures, "\n".join(failures)


# --- errors: overflow, learning, shapes the backend cannot run -----------------------------------


def burst_case(*, sources: int, targets: int, weight: int, delay: int, burst_step: int, timesteps: int):
    """``sources`` neurons driven to spike at ``burst_step`` only, all-to-all onto ``targets``."""
    params = NeuronParams(threshold=1000, leak=0, resting=0, refrac=0, dend_threshold=0)
    populations = [("src", sources, params), ("tgt", targets, params)]
    synapses = [SynapseSpec(i, sources + j, weight, delay, 0, plastic=False)
                for i in range(sources) for j in range(targets)]
    netlist = netlist_from_synapses(populations, [synapses], seed=3)
    job = Job(timesteps=timesteps, stimuli=(Stimulus("src", 1000, times=(burst_step,)),), seed=5)
    return netlist, job


@pytest.mark.parametrize("preset, sources, targets", [("icebreaker", 21, 488), ("ulx3s-85f", 33, 249)])
def test_queue_overflow_fails_the_job_at_its_step(preset, sources, targets):
    # icebreaker: 21 spikes x 488 synapses = 10,248 events in flight after the fan-out of
    # step 4 > 10,240; ulx3s-85f: 33 x 249 = 8,217 > 8,192
    config = PRESETS[preset]
    netlist, job = burst_case(sources=sources, targets=targets, weight=1, delay=5, burst_step=4, timesteps=20)
    image = compile_network(netlist, config)
    message = rf"the event queue overflowed at step 4: more than {config.event_queue:,} events"
    with pytest.raises(RtlOverflowError, match=message) as error:
        rtl_run(image, job, populations=netlist.populations)
    assert (error.value.kind, error.value.step) == ("queue_overflow", 4)
    assert isinstance(error.value, ValidationError)


#: a narrow core whose 18-bit accumulators five full-weight events overflow
NARROW = CoreConfig(name="rtl-narrow", max_cores=1, neurons=8, compartments=1, profiles=2, synapse_words=16,
                    axons=8, route_words=0, delay_slots=64, event_queue=16, acc_bits=18)


def test_accumulator_overflow_is_refused_before_the_run_as_by_the_emulator():
    # five sources of weight 32,767 onto one neuron can add 163,835 > 2^17 - 1 in one step, in
    # an order the emulator does not follow: both backends refuse the job with one message
    netlist, job = burst_case(sources=5, targets=1, weight=32767, delay=0, burst_step=2, timesteps=6)
    image = compile_network(netlist, NARROW)
    message = r"neuron .* compartment 0 can receive 163,835 in one step: .* signed 18-bit accumulator"
    with pytest.raises(AccumulatorRangeError, match=message) as rtl_error:
        rtl_run(image, job, populations=netlist.populations)
    with pytest.raises(AccumulatorRangeError) as emu_error:
        simulate(netlist, job, capacity=QueueCapacity.from_image(image))
    assert str(rtl_error.value) == str(emu_error.value)
    assert isinstance(rtl_error.value, ValidationError)
    # four fit: the same core runs them exactly as the emulator does
    netlist, job = burst_case(sources=4, targets=1, weight=32767, delay=0, burst_step=2, timesteps=6)
    rtl = rtl_run(compile_network(netlist, NARROW), job, populations=netlist.populations)
    emu = simulate(netlist, job)
    assert not mismatches("narrow, four sources", netlist, job, rtl, emu, compile_network(netlist, NARROW))
    assert rtl.total_spikes == 4 + 1


def test_learning_jobs_are_refused():
    netlist, job = burst_case(sources=2, targets=2, weight=100, delay=0, burst_step=1, timesteps=4)
    job = Job(timesteps=4, stimuli=job.stimuli, learning=Learning(enabled=True), seed=1)
    with pytest.raises(ValidationError, match="learning is not supported on the rtl backend yet"):
        rtl_run(compile_network(netlist, CORE), job, populations=netlist.populations)


def test_multi_core_presets_are_refused():
    netlist, job = burst_case(sources=2, targets=2, weight=100, delay=0, burst_step=1, timesteps=4)
    with pytest.raises(CapacityError, match="single-core presets; 'sim' has max_cores 65,536"):
        rtl_run(compile_network(netlist, "sim"), job, populations=netlist.populations)


def test_populations_must_be_the_images():
    netlist, job = burst_case(sources=2, targets=2, weight=100, delay=0, burst_step=1, timesteps=4)
    other, _ = burst_case(sources=3, targets=2, weight=100, delay=0, burst_step=1, timesteps=4)
    with pytest.raises(ValidationError, match="populations must be the image's"):
        rtl_run(compile_network(netlist, CORE), job, populations=other.populations)


def test_stimulus_sums_beyond_the_core_are_refused():
    netlist, _ = burst_case(sources=1, targets=1, weight=100, delay=0, burst_step=1, timesteps=4)
    big = (1 << 23) - 1
    job = Job(timesteps=4, stimuli=tuple(Stimulus("src", big) for _ in range(300)), seed=1)
    with pytest.raises(ValidationError, match=r"stimuli sum to 2516582100 on neuron 0 at step 0, outside"):
        rtl_run(compile_network(netlist, CORE), job, populations=netlist.populations)


def test_results_have_the_emulators_shape():
    netlist, job = burst_case(sources=3, targets=2, weight=600, delay=2, burst_step=1, timesteps=8)
    rtl = rtl_run(compile_network(netlist, CORE), job, populations=netlist.populations)
    emu = simulate(netlist, job)
    assert rtl.spike_times.dtype == np.int32 and rtl.spike_gids.dtype == np.int32
    assert rtl.final_weights.dtype == np.int32 and rtl.final_weights.tolist() == [600] * 6
    assert rtl.spike_times.tolist() == emu.spike_times.tolist() == [1, 1, 1, 4, 4]
    assert rtl.extra["backend"] == "rtl" and rtl.extra["core"] == "icebreaker"
    assert len(rtl.extra["cycles"]) == job.timesteps
