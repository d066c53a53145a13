# amaranth: UnusedElaboratable=no
"""The whole core against the emulator: compiled images, every step's spikes, the final state.

Each case is a small random network and job drawn from its seed (in the test id):
``compile_network(netlist, config)`` makes the image, ``core_run.rtl_run`` loads it
through the core's host port and runs it step by step on ``Core`` in the Amaranth
simulator, and ``neurofab.emulator.simulate`` runs the netlist. Compared: every spike
(step and neuron), the final ``v``, ``r``, ``lfsr`` of every neuron, and the events in
flight after every step against the count the queue's rule gives from the emulator's
spikes. Features are forced per case so that delays 0 and 63, graded spikes, dendritic
gating, noise and stimuli (windows and listed times) all occur. In those runs no read of
the core's memories but Accumulate's banks and the synapse parts (which read in every
clock: see ``memories_without_collisions``) meets a write of the same word in the same
clock (they are ``NO_RW_CHECK``): an assertion in every clock. The host port's registered
writes and their forwarding to a read the clock after are tested on their own.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
from amaranth.hdl import unsigned
from amaranth.lib.memory import Memory as RAM
from amaranth.sim import Simulator
from core_run import events_held_per_step, host_write, rtl_run
from netgen import SynapseSpec, netlist_from_synapses
from test_hdl_event_queue import NoCollisionRAM

from neurofab.compiler import compile_network
from neurofab.emulator import simulate
from neurofab.errors import ValidationError
from neurofab.hdl import core as core_module
from neurofab.hdl.config import CoreConfig
from neurofab.hdl.core import HOST_MEMORIES, Core
from neurofab.hdl.layouts import Memory, core_layouts
from neurofab.hdl.neuron_pass import NeuronPass
from neurofab.job import Job, Learning, Stimulus
from neurofab.network import NeuronParams

#: the core the cases are compiled for: small memories, a queue that never fills
RTL_CORE = CoreConfig(
    name="rtl-test", max_cores=1, neurons=24, compartments=4, profiles=8, synapse_words=512, axons=24,
    route_words=0, delay_slots=64, event_queue=512, acc_bits=32)


@pytest.fixture(autouse=True)
def memories_without_collisions(request, monkeypatch):
    """The core's memories, but for the accumulator banks (where Accumulate forwards over a
    collision) and the synapse parts, in :class:`NoCollisionRAM`; not for the host port's
    own test, whose forwarded reads collide on purpose. The synapse parts' block RAMs read
    in every clock (their enable is 1, so no decode of ``host_re`` reaches them): while
    idle a host write meets their read, whose word is then not taken unless the host read
    that part (and a read of the written word takes the forwarded one: the host tests);
    while a step runs nothing writes them."""
    if request.node.name.startswith("test_host_"):
        return
    layouts = core_layouts(RTL_CORE)
    unchecked = (layouts.accumulator, layouts.synapse)

    def ram(*, shape, depth, init, attrs=None):
        cls = RAM if shape in unchecked else NoCollisionRAM
        return cls(shape=shape, depth=depth, init=init, attrs=attrs)

    monkeypatch.setattr(core_module, "RAM", ram)


def small_case(seed: int, *, delays: bool, graded: bool, dendritic: bool, noise: bool, steps=None):
    """A random network of at most ``RTL_CORE.neurons`` neurons and a job, drawn from ``seed``."""
    rng = random.Random(seed)
    populations, offset = [], 0
    for index in range(rng.randint(1, 3)):
        size = rng.randint(1, RTL_CORE.neurons // 3)
        resting = rng.choice([0, 0, -200, rng.randint(-2000, 500)])
        params = NeuronParams(
            threshold=max(1, resting + rng.choice([300, 1000, rng.randint(1, 3000)])),
            leak=rng.choice([0, 3, 50, rng.randint(0, 400)]),
            resting=resting,
            refrac=rng.choice([0, 1, 3, rng.randint(0, 6)]),
            dend_threshold=rng.choice([0, 150, 500, rng.randint(0, 2000)]),
        )
        populations.append((f"p{index}", size, params))
        offset += size
    bounds = np.cumsum([0] + [size for _, size, _ in populations])
    connections, sources = [], []
    for _ in range(rng.randint(1, 4)):
        s, t = rng.randrange(len(populations)), rng.randrange(len(populations))
        sources.append(populations[s])
        p = rng.choice([0.2, 0.5, 1.0]) if connections else 1.0
        weight = rng.choice([200, 600, -400, rng.randint(-3000, 3000), 32767, -32768])
        compartment = rng.randrange(4)
        synapses = []
        for i in range(bounds[s], bounds[s + 1]):
            for j in range(bounds[t], bounds[t + 1]):
                if rng.random() < p:
                    w = weight if rng.random() < 0.7 else rng.randint(-2000, 3000)
                    d = rng.choice([0, 63, rng.randint(0, 63), rng.randint(0, 4)]) if delays else 0
                    synapses.append(SynapseSpec(int(i), int(j), w, d, compartment, plastic=False))
        connections.append(synapses)
    netlist = netlist_from_synapses(populations, connections, seed=rng.getrandbits(32))

    T = steps or (rng.randint(66, 80) if delays else rng.randint(20, 40))
    # the first connection's source is driven above threshold for a while: spikes travel
    label, size, params = sources[0]
    start = rng.randrange(T // 3)
    stimuli = [Stimulus(label, params.threshold - params.resting + params.leak + rng.randint(1, 400),
                        start=start, stop=rng.randint(start + T // 2, T))]
    for _ in range(rng.randint(0, 2)):
        # mostly on a connection's source, so that spikes travel
        label, size, _ = rng.choice(sources if rng.random() < 0.8 else populations)
        neurons = None if rng.random() < 0.5 else tuple(sorted(rng.sample(range(size), rng.randint(1, size))))
        current = rng.choice([400, 1200, rng.randint(-500, 3000), (1 << 23) - 1])
        if rng.random() < 0.3:
            times = tuple(sorted(rng.sample(range(T), rng.randint(1, min(8, T)))))
            stimuli.append(Stimulus(label, current, neurons, times=times))
        else:
            start = rng.randrange(T)
            stimuli.append(Stimulus(label, current, neurons, start=start, stop=rng.randint(start + 1, T)))
    job = Job(timesteps=T, stimuli=tuple(stimuli),
              learning=Learning(graded=graded, dendritic=dendritic, noise=noise),
              seed=rng.getrandbits(32))
    return netlist, job


def check_against_emulator(netlist, job, *, p_ready=1.0, seed=0):
    image = compile_network(netlist, RTL_CORE)
    rtl = rtl_run(image, job, p_ready=p_ready, seed=seed)
    emu = simulate(netlist, job)
    assert rtl.extra["errors"] == {"queue_overflow": 0, "queue_overflow_step": 0, "acc_overflow": 0,
                                   "acc_overflow_step": 0}
    for t in range(job.timesteps):
        want = emu.spike_gids[emu.spike_times == t].tolist()
        got = rtl.spike_gids[rtl.spike_times == t].tolist()
        assert got == want, f"step {t}: spikes"
    for name in ("v", "r", "lfsr"):
        assert rtl.final_state[name].tolist() == np.asarray(emu.final_state[name]).tolist(), name
    held = events_held_per_step(netlist, emu.spike_times, emu.spike_gids, job.timesteps)
    assert rtl.extra["events_held"] == held.tolist()
    return rtl, emu


FEATURES = ("delays", "graded", "dendritic", "noise")
CASES = [  # (seed, features on): every feature alone, all together, none
    (101, ()), (102, ("delays",)), (103, ("graded",)), (104, ("dendritic",)), (105, ("noise",)),
    (106, FEATURES), (107, ("delays", "graded")), (116, ("delays", "dendritic", "noise")),
]


@pytest.mark.parametrize("seed,features", CASES, ids=[f"seed={s}-{'+'.join(f) or 'plain'}" for s, f in CASES])
def test_core_matches_emulator(seed, features):
    netlist, job = small_case(seed, **{name: name in features for name in FEATURES})
    rtl, emu = check_against_emulator(netlist, job)
    print(f"seed={seed} neurons={netlist.n_neurons} synapses={netlist.n_synapses} T={job.timesteps} "
          f"spikes={emu.total_spikes} cycles/step max={max(rtl.extra['cycles'])}")
    assert emu.total_spikes > 0, f"seed={seed}: nothing fired, the case tests too little"
    out_degree = np.bincount(netlist.src, minlength=netlist.n_neurons)
    assert out_degree[emu.spike_gids].sum() > 0, f"seed={seed}: no spike went anywhere"
    if "delays" in features:
        assert {0, 63} <= set(netlist.delay.tolist()), f"seed={seed}: delays 0 and 63 not both drawn"
        assert max(rtl.extra["events_held"]) > 0, f"seed={seed}: no event was ever held"


@pytest.mark.parametrize("seed", [120, 121, 122, 123])
def test_core_matches_emulator_random_features(seed):
    """Features drawn from the seed too (logged in the id and the output)."""
    rng = random.Random(seed)
    features = {name: rng.random() < 0.5 for name in FEATURES}
    netlist, job = small_case(seed, **features)
    rtl, emu = check_against_emulator(netlist, job)
    print(f"seed={seed} {features} neurons={netlist.n_neurons} synapses={netlist.n_synapses} "
          f"T={job.timesteps} spikes={emu.total_spikes}")


def test_spike_stream_backpressure():
    """A host that takes spikes 30% of the time slows the step down but changes nothing."""
    netlist, job = small_case(110, delays=True, graded=True, dendritic=False, noise=False, steps=40)
    check_against_emulator(netlist, job, p_ready=0.3, seed=110)


def test_step_cycles_follow_the_budget():
    """A step with nothing in flight: the pass, one neuron a clock, and the controller's 3 clocks."""
    netlist, job = small_case(111, delays=False, graded=False, dendritic=False, noise=False, steps=3)
    image = compile_network(netlist, RTL_CORE)
    rtl = rtl_run(image, Job(timesteps=3, stimuli=(), seed=1))
    n = netlist.n_neurons
    assert rtl.total_spikes == 0
    assert rtl.extra["cycles"] == [n + NeuronPass.LATENCY + 3] * 3


def test_core_config_is_checked():
    with pytest.raises(ValidationError, match="Core.config"):
        Core(CoreConfig(name="two", max_cores=2, neurons=4, compartments=1, profiles=1, synapse_words=4,
                        axons=4, route_words=2, delay_slots=64, event_queue=8, acc_bits=32))
    with pytest.raises(ValidationError, match="Core.config"):
        Core("icebreaker")
    assert Memory.STIMULUS.value == 6 and Memory.as_shape() == unsigned(4)


def test_host_reads_a_word_written_the_clock_before():
    """A host write lands a clock late (registered); a read of that word in the next clock
    gets the new word all the same (forwarded), every memory, and a read in the write's
    own clock the old one; a read of another word meanwhile is the memory's."""
    config = RTL_CORE
    layouts = core_layouts(config)
    core = Core(config)
    rng = random.Random(7)
    width = {m: (layouts.for_memory(m).size if hasattr(layouts.for_memory(m), "size")
                 else layouts.for_memory(m).width) for m in HOST_MEMORIES}
    depth = {m: layouts.depth(m) for m in HOST_MEMORIES}
    depth[Memory.ACCUMULATOR] = 2 * config.neurons

    async def testbench(ctx):
        for which in HOST_MEMORIES:
            for _ in range(6):
                address = rng.randrange(depth[which])
                other = (address + 1) % depth[which]
                old, new, far = (rng.getrandbits(width[which]) for _ in range(3))
                await host_write(ctx, core, which, address, old)
                await host_write(ctx, core, which, other, far)
                await ctx.tick()
                # clock 0: write `new`, read the same word (old); clock 1: read it again
                # (new, forwarded); clock 2: read the other word (far); each word on
                # host_rdata HOST_READ_LATENCY clocks after its read
                ctx.set(core.host_addr, address)
                # the bits above the memory's word are not kept, nor read back
                high = rng.getrandbits(len(core.host_wdata)) >> width[which] << width[which]
                ctx.set(core.host_wdata, new | high)
                ctx.set(core.host_we, 1)
                ctx.set(core.host_re, 1)
                await ctx.tick()
                ctx.set(core.host_we, 0)
                await ctx.tick()
                ctx.set(core.host_addr, other)
                await ctx.tick()
                ctx.set(core.host_re, 0)
                for _ in range(core.host_read_latency - 3):  # to the edge that brings clock 0's word
                    await ctx.tick()
                assert ctx.get(core.host_rdata) == old, (which.name, address)
                await ctx.tick()
                assert ctx.get(core.host_rdata) == new, (which.name, address)
                await ctx.tick()
                assert ctx.get(core.host_rdata) == far, (which.name, other)
                await ctx.tick()
                assert ctx.get(core.host_rdata) == far, (which.name, other)  # held

    sim = Simulator(core)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
