# amaranth: UnusedElaboratable=no
"""The iCE40 core, SpramCore, against the emulator: compiled images, every step's spikes, the state.

Each case is a small random network and job drawn from its seed (``test_hdl_core.small_case``,
the same generator Core is proven with), compiled for the icebreaker-to-be shape (512
neurons, one accumulator bank of 20-bit sums, SPRAM), loaded through the core's host port
as the physical rows the host driver will write (``layouts.spram_image``: 32-bit synapse
rows, axon rows and packed compartment rows in the pool SPRAM), run step by step on
:class:`SpramCore` in the Amaranth simulator, and compared with
``neurofab.emulator.simulate``: every spike (step and neuron), the final ``v``, ``r``,
``lfsr`` of every neuron, the events held after every step (one bank: every event with
arrival after the step, delay-0 ones too), the step's clocks against the stated bound,
and a queue overflow at the emulator's step.
"""

from __future__ import annotations

import dataclasses
import random

import numpy as np
import pytest
from amaranth.sim import Simulator
from core_run import (
    arrivals_by_step,
    as_int,
    events_held_per_step,
    host_write,
    profile_loads,
    rtl_run,
    spram_step_bounds,
)
from netgen import SynapseSpec, netlist_from_synapses
from test_hdl_core import FEATURES, small_case

from neurofab.compiler import compile_network
from neurofab.compiler.image import initial_lfsr
from neurofab.emulator import simulate
from neurofab.emulator.capacity import CapacityExceeded, QueueCapacity, check_image_accumulators
from neurofab.errors import ValidationError
from neurofab.hdl.config import get_preset
from neurofab.hdl.layouts import (
    PROFILE_LAYOUT,
    Memory,
    core_layouts,
    pack_words,
    spram_axon_rows,
    spram_synapse_rows,
)
from neurofab.hdl.neuron_pass import NeuronPass
from neurofab.hdl.spram_core import SpramCore, host_depth, profile_rows
from neurofab.hdl.synthesis import synthesize
from neurofab.host.load import core_loads
from neurofab.job import Job, Stimulus
from neurofab.network import NeuronParams
from neurofab.results import RunResult

#: docs/ice40-plan.md: the icebreaker core to be
ICE40_CORE = dataclasses.replace(get_preset("icebreaker"), neurons=512, axons=512, event_queue=8192,
                                 acc_bits=20, accumulator_banks=1, spram=True)


def host_loads(image, job) -> list:
    """``[(memory, [word, ...])]``: an image's memories as the physical words the host writes."""
    config = image.config
    layouts = core_layouts(config)
    n = image.n_neurons
    neuron = image.fields(0, Memory.NEURON)
    neuron["lfsr"] = initial_lfsr(job.seed, np.arange(n))
    profiles = [as_int(w) for w in image.memories[0][Memory.PROFILE]]
    rows = profile_rows(config)
    width = -(-PROFILE_LAYOUT.size // rows)
    # a profile as ``rows`` words of ``width`` bits, low bits first
    profile_words = [(p >> (width * k)) & ((1 << width) - 1) for p in profiles for k in range(rows)]
    synapses, compartments = spram_synapse_rows(config, image.memories[0][Memory.SYNAPSE])
    return [
        (Memory.PROFILE, profile_words),
        (Memory.NEURON, [as_int(w) for w in pack_words(layouts.neuron, neuron, n)]),
        (Memory.AXON, [int(r) for r in spram_axon_rows(config, image.memories[0][Memory.AXON])]),
        (Memory.SYNAPSE, [int(r) for r in synapses]),
        (Memory.COMPARTMENT, [int(r) for r in compartments]),
    ]


def spram_run(image, job, **kwargs) -> RunResult:
    """``core_run.rtl_run`` on :class:`SpramCore` with the host words derived here
    (:func:`host_loads`, independently of ``neurofab.host.load.core_loads``)."""
    assert image.config.spram
    return rtl_run(image, job, loads=host_loads(image, job), **kwargs)


def step_events(netlist, spike_times, spike_gids, timesteps: int):
    """Per step ``t``: the events arriving at ``t`` (drained), and the events held after ``t``
    (one bank: arrival ``> t``, delay 0 too)."""
    return (arrivals_by_step(netlist, spike_times, spike_gids, timesteps),
            events_held_per_step(netlist, spike_times, spike_gids, timesteps, banks=1))


def reload_clocks(image) -> int:
    """Clocks a pass over ``image``'s neurons spends loading its profile cache."""
    return NeuronPass.RELOAD * profile_loads(image)


def fitting_case(seed: int, **features):
    """``small_case(seed)``'s network, or the first of ``seed + 1000 k`` whose accumulator sums
    fit 20 bits (the job would be refused otherwise); ``(seed used, netlist, job, image)``."""
    for k in range(20):
        netlist, job = small_case(seed + 1000 * k, **features)
        image = compile_network(netlist, ICE40_CORE)
        try:
            check_image_accumulators(image, job)
        except ValidationError:
            continue
        return seed + 1000 * k, netlist, job, image
    raise AssertionError(f"seed={seed}: no case within 20 draws fits 20-bit accumulators")


def check_against_emulator(seed, features, *, p_ready=1.0):
    used, netlist, job, image = fitting_case(seed, **{name: name in features for name in FEATURES})
    rtl = spram_run(image, job, p_ready=p_ready, seed=used)
    emu = simulate(netlist, job)
    print(f"seed={used} neurons={netlist.n_neurons} synapses={netlist.n_synapses} T={job.timesteps} "
          f"spikes={emu.total_spikes} cycles/step max={max(rtl.extra['cycles'])}")
    assert rtl.extra["errors"] == {"queue_overflow": 0, "queue_overflow_step": 0, "acc_overflow": 0,
                                   "acc_overflow_step": 0}
    for t in range(job.timesteps):
        want = emu.spike_gids[emu.spike_times == t].tolist()
        got = rtl.spike_gids[rtl.spike_times == t].tolist()
        assert got == want, f"seed={used} step {t}: spikes"
    for name in ("v", "r", "lfsr"):
        assert rtl.final_state[name].tolist() == np.asarray(emu.final_state[name]).tolist(), name
    arriving, held = step_events(netlist, emu.spike_times, emu.spike_gids, job.timesteps)
    assert rtl.extra["events_held"] == held.tolist()
    if p_ready == 1.0:
        bounds = spram_step_bounds(image, emu, arriving)
        for t, (cycles, bound) in enumerate(zip(rtl.extra["cycles"], bounds, strict=True)):
            assert cycles <= bound, f"seed={used} step {t}: {cycles} clocks, bound {bound}"
    return netlist, job, rtl, emu


CASES = [  # (seed, features on): every feature alone, all together, none
    (101, ()), (102, ("delays",)), (103, ("graded",)), (104, ("dendritic",)), (105, ("noise",)),
    (106, FEATURES), (107, ("delays", "graded")), (116, ("delays", "dendritic", "noise")),
]


@pytest.mark.parametrize("seed,features", CASES, ids=[f"seed={s}-{'+'.join(f) or 'plain'}" for s, f in CASES])
def test_spram_core_matches_emulator(seed, features):
    netlist, job, rtl, emu = check_against_emulator(seed, features)
    assert emu.total_spikes > 0, f"seed={seed}: nothing fired, the case tests too little"
    out_degree = np.bincount(netlist.src, minlength=netlist.n_neurons)
    assert out_degree[emu.spike_gids].sum() > 0, f"seed={seed}: no spike went anywhere"
    if "delays" in features:
        assert {0, 63} <= set(netlist.delay.tolist()), f"seed={seed}: delays 0 and 63 not both drawn"
        assert max(rtl.extra["events_held"]) > 0, f"seed={seed}: no event was ever held"


@pytest.mark.parametrize("seed", [3, 17])
def test_the_hosts_words_are_the_ones_derived_here(seed):
    """``neurofab.host.load.core_loads`` (what the RTL backend and the cocotb runs write)
    gives, memory by memory and word by word, the words :func:`host_loads` derives here;
    beyond them it may write zeros (it clears every axon row, not only the image's)."""
    _, _, job, image = fitting_case(seed, delays=True, graded=True, dendritic=True, noise=True)
    mine = host_loads(image, job)
    theirs = core_loads(image, job)
    assert [which for which, _ in theirs] == [which for which, _ in mine]
    for (which, words), (_, expected) in zip(theirs, mine, strict=True):
        ints = [as_int(w) for w in words]
        assert ints[: len(expected)] == expected and not any(ints[len(expected) :]), which


def test_spike_stream_backpressure():
    """A host that takes spikes 30% of the time slows the step down but changes nothing."""
    _, job, _, emu = check_against_emulator(107, ("delays", "graded"), p_ready=0.3)
    assert emu.total_spikes > job.timesteps, "too few spikes to hold anything back"


@pytest.mark.parametrize("seed", [111, 116], ids=["one-profile", "three-profiles"])
def test_step_cycles_exact_with_nothing_in_flight(seed):
    """No spikes: an empty drain (1 clock), the pass with its profile loads, and the
    controller's clocks."""
    _, netlist, _, image = fitting_case(seed, delays=False, graded=False, dendritic=False, noise=False)
    rtl = spram_run(image, Job(timesteps=3, stimuli=(), seed=1))
    assert rtl.total_spikes == 0
    want = netlist.n_neurons + NeuronPass.SPRAM_LATENCY + reload_clocks(image) + 4
    assert rtl.extra["cycles"] == [want] * 3


def test_queue_overflow_at_the_emulators_step():
    """A queue of 100 events: the core raises the error at the step the emulator names, and
    every spike before it agrees."""
    config = dataclasses.replace(ICE40_CORE, event_queue=100)
    for k in range(20):
        netlist, job = small_case(130 + 1000 * k, delays=True, graded=False, dendritic=False, noise=False)
        image = compile_network(netlist, config)
        try:
            check_image_accumulators(image, job)
            simulate(netlist, job, capacity=QueueCapacity.for_image(image))
        except CapacityExceeded as error:
            step = error.step
            break
        except ValidationError:
            continue
    else:
        raise AssertionError("no case within 20 draws overflows a queue of 100 events")
    rtl = spram_run(image, job)
    print(f"seed={130 + 1000 * k} overflow at step {step}")
    assert rtl.extra["errors"]["queue_overflow"] == 1
    assert rtl.extra["errors"]["queue_overflow_step"] == step
    emu = simulate(netlist, dataclasses.replace(job, timesteps=step + 1))
    for t in range(step + 1):
        assert (rtl.spike_gids[rtl.spike_times == t].tolist()
                == emu.spike_gids[emu.spike_times == t].tolist()), f"step {t}"


def test_accumulator_overflow_and_its_step():
    """An accumulator the host left near the top of its 20-bit range before step 3, whose
    drain adds a delay-1 event of weight 1000 (sent at step 1): the core raises the error
    at step 3, the step whose drain overflowed."""
    params = NeuronParams(threshold=1000, leak=0, resting=0, refrac=0, dend_threshold=0)
    netlist = netlist_from_synapses([("p", 3, params)],
                                    [[SynapseSpec(0, 1, 1000, 1, 2, plastic=False)]], seed=1)
    job = Job(timesteps=6, stimuli=(Stimulus("p", 1000, (0,), times=(1,)),), seed=2)
    image = compile_network(netlist, ICE40_CORE)
    top = (1 << (ICE40_CORE.acc_bits - 1)) - 1
    acc = core_layouts(ICE40_CORE).accumulator

    async def preload(ctx, core, t):
        if t == 3:  # neuron 1, compartment 2: 100 below the top; compartment 0 holds -5
            word = acc.const([-5, 0, top - 100, 0]).as_value().value
            await host_write(ctx, core, Memory.ACCUMULATOR, 1, word)
        assert ctx.get(core.acc_overflow) == (t > 3), f"before step {t}"

    rtl = spram_run(image, job, before_step=preload)
    assert rtl.spike_times.tolist() == [1] and rtl.spike_gids.tolist() == [0]
    assert rtl.extra["errors"]["acc_overflow"] == 1
    assert rtl.extra["errors"]["acc_overflow_step"] == 3
    assert rtl.extra["errors"]["queue_overflow"] == 0


def test_host_port_reads_back_every_memory():
    """Random words written to random addresses of every memory, read back in random order
    with reads back to back: each word on ``host_rdata`` from the second clock after its
    read, held until the next."""
    config = ICE40_CORE
    core = SpramCore(config)
    rng = random.Random(5)
    memories = [Memory.PROFILE, Memory.NEURON, Memory.AXON, Memory.SYNAPSE, Memory.COMPARTMENT,
                Memory.STIMULUS, Memory.ACCUMULATOR]
    layouts = core_layouts(config)
    widths = {
        Memory.PROFILE: len(core.host_rdata) if profile_rows(config) == 1 else 16,
        Memory.NEURON: layouts.neuron.size, Memory.AXON: 32, Memory.SYNAPSE: 32, Memory.COMPARTMENT: 32,
        Memory.STIMULUS: 32, Memory.ACCUMULATOR: layouts.accumulator.size,
    }
    written = {}
    for which in memories:
        depth = host_depth(config, which)
        for address in rng.sample(range(depth), min(depth, 24)) + [0, depth - 1]:
            written[which, address] = rng.getrandbits(widths[which])
    reads = list(written)
    rng.shuffle(reads)

    async def bench(ctx):
        ctx.set(core.clear, 1)
        await ctx.tick()
        ctx.set(core.clear, 0)
        clocks = 1
        while not ctx.get(core.done):
            await ctx.tick()
            clocks += 1
        assert clocks == config.neurons, "a clear's done comes neurons clocks after its pulse"
        await ctx.tick()
        items = list(written.items())
        rng.shuffle(items)
        for (which, address), value in items:
            await host_write(ctx, core, which, address, value)
        issued = []  # the clock of each read
        seen = []  # host_rdata in every clock from the first read on
        for which, address in reads:
            ctx.set(core.host_memory, which)
            ctx.set(core.host_addr, address)
            ctx.set(core.host_re, 1)
            issued.append(len(seen))
            for _ in range(rng.choice([1, 1, 1, 2, 3])):  # back to back, or gaps
                seen.append(ctx.get(core.host_rdata))
                await ctx.tick()
                ctx.set(core.host_re, 0)
        for _ in range(4):
            seen.append(ctx.get(core.host_rdata))
            await ctx.tick()
        # read i's word from its second clock until the next read's word is due
        for i, key in enumerate(reads):
            until = issued[i + 1] + 2 if i + 1 < len(reads) else len(seen)
            for clock in range(issued[i] + 2, until):
                assert seen[clock] == written[key], f"{key[0].name} {key[1]}: clock {clock - issued[i]}"
        # an aux row read in the last idle clock before a step: its answer is the host's,
        # not the fan-out's, though it comes while the step runs
        for which in (Memory.AXON, Memory.COMPARTMENT):
            key = next(k for k in written if k[0] == which)
            ctx.set(core.host_memory, which)
            ctx.set(core.host_addr, key[1])
            ctx.set(core.host_re, 1)
            await ctx.tick()
            ctx.set(core.host_re, 0)
            ctx.set(core.count, 0)
            ctx.set(core.timesteps, 5)
            ctx.set(core.step, 1)
            await ctx.tick()
            ctx.set(core.step, 0)
            assert ctx.get(core.busy) and ctx.get(core.host_rdata) == written[key], which.name
            await ctx.tick().until(core.done)
            await ctx.tick()
            assert ctx.get(core.host_rdata) == written[key], which.name

    sim = Simulator(core)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()


def test_config_is_checked():
    with pytest.raises(ValidationError, match="core.spram"):
        SpramCore(dataclasses.replace(ICE40_CORE, spram=False))
    with pytest.raises(ValidationError, match="core.accumulator_banks"):
        SpramCore(dataclasses.replace(ICE40_CORE, accumulator_banks=2))
    with pytest.raises(ValidationError, match="SpramCore.config"):
        SpramCore("icebreaker")


def bench_case(seed: int, steps: int):
    """docs/ice40-plan.md's bench at full size: 512 neurons, each spiking every 10 steps (in
    ten staggered groups), fan-out 16 to random targets and compartments, delays 0 .. 7,
    weights too small to change the rhythm (so S ~ 51 spikes and E ~ 819 events a step)."""
    rng = random.Random(seed)
    n = ICE40_CORE.neurons
    params = NeuronParams(threshold=1000, leak=0, resting=0, refrac=0, dend_threshold=0)
    synapses = [SynapseSpec(i, rng.randrange(n), rng.randint(-2, 2), rng.randrange(8), rng.randrange(4),
                            plastic=False) for i in range(n) for _ in range(16)]
    netlist = netlist_from_synapses([("bench", n, params)], [synapses], seed=rng.getrandbits(32))
    stimuli = tuple(Stimulus("bench", 100, tuple(range(k, n, 10)), start=k, stop=steps) for k in range(10))
    return netlist, Job(timesteps=steps, stimuli=stimuli, seed=rng.getrandbits(32))


def test_bench_network_meets_the_cycle_target():
    """The full-size bench: exact spikes and state, and from step 10 on (every group firing)
    each step within issue #4's target ``1.1 (N + 2E) + 64`` clocks (``2E``: the events
    the step pushes plus those it drains) and the stated bound."""
    netlist, job = bench_case(140, steps=24)
    image = compile_network(netlist, ICE40_CORE)
    check_image_accumulators(image, job)
    rtl = spram_run(image, job)
    emu = simulate(netlist, job)
    for t in range(job.timesteps):
        assert (rtl.spike_gids[rtl.spike_times == t].tolist()
                == emu.spike_gids[emu.spike_times == t].tolist()), f"step {t}: spikes"
    for name in ("v", "r", "lfsr"):
        assert rtl.final_state[name].tolist() == np.asarray(emu.final_state[name]).tolist(), name
    arriving, held = step_events(netlist, emu.spike_times, emu.spike_gids, job.timesteps)
    assert rtl.extra["events_held"] == held.tolist()
    n = netlist.n_neurons
    bounds = spram_step_bounds(image, emu, arriving)
    for t, (cycles, bound) in enumerate(zip(rtl.extra["cycles"], bounds, strict=True)):
        assert cycles <= bound, f"step {t}: {cycles} clocks, bound {bound}"
        if t >= 10:
            spikes = int((emu.spike_times == t).sum())
            # each event is fanned out in one step and drained in another: 2E = the synapses of
            # the step's spikes (walked even where the run's end drops their events) + arriving
            walked = spikes * 16
            target = 1.1 * (n + walked + arriving[t]) + 64
            print(f"step {t}: S={spikes} E_arriving={arriving[t]} cycles={cycles} "
                  f"target={target:.0f} ({cycles / target:.2f})")
            assert cycles <= target, f"step {t}: {cycles} clocks, over the target {target:.0f}"
    # the synapses' small weights move a few neurons by a step: the bench's activity on average
    activity = np.mean([(emu.spike_times == t).sum() for t in range(10, job.timesteps)])
    assert 45 <= activity <= 58, f"{activity:.1f} spikes a step, not the bench's ~51"


def test_icebreaker_core_memories_under_synth_ice40(record_property):
    """The whole core's memories as synth_ice40 maps them: the four SPRAMs (synapses, the
    pool) and the block RAMs of the plan: accumulator bank 10, neuron words 9, stimulus 4,
    spike list 2, the queue's links, free list and arrival table 4, and the profile table
    (16 bits a 256-word block RAM)."""
    report = synthesize(SpramCore(ICE40_CORE, primitive=True), family="ice40", top="spram_core")
    record_property("synthesis", report.summary())
    print(report.summary())
    rows = profile_rows(ICE40_CORE)
    width = -(-PROFILE_LAYOUT.size // rows)
    profile_ebr = -(-rows * ICE40_CORE.profiles // 256) * -(-width // 16)
    assert report.cells.get("SB_SPRAM256KA", 0) == 4, report.cells
    assert report.brams == 10 + 9 + 4 + 2 + 4 + profile_ebr, report.summary()
