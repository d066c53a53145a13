# amaranth: UnusedElaboratable=no
"""The fan-out engine over real axon and synapse memories, in the Amaranth simulator.

Random axon tables and synapse memories; spikes offered with random gaps, events taken
from ``direct`` and ``push`` with random stalls of each; every event of each stream, in
order, against ``core_model.fanout_events``. The timing test pins the contract's latency
and throughput.
"""

from __future__ import annotations

import dataclasses
import random
from typing import NamedTuple

import numpy as np
import pytest
from amaranth.hdl import Elaboratable, Module, Mux, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.sim import Simulator
from core_model import FanOutEvents, event_core, fanout_events, graded_value, random_synapse_memories

from neurofab.errors import ValidationError
from neurofab.hdl import core as core_module
from neurofab.hdl.chunk_queue import ChunkedEventQueue
from neurofab.hdl.config import CoreConfig, get_preset
from neurofab.hdl.core import SYNAPSE_READ_LATENCY, Core
from neurofab.hdl.fanout import FanOut
from neurofab.hdl.layouts import Memory as MemoryName
from neurofab.hdl.layouts import core_layouts, spram_image, spram_regions, spram_synapse_layout
from neurofab.hdl.synthesis import synthesize


class FanOutBench(Elaboratable):
    """The fan-out over real memories; with ``syn_latency > 1`` the synapse word passes
    ``syn_latency - 1`` free-running registers after the read port, as Core's banks do."""

    def __init__(self, config, axons, synapses, syn_latency=1):
        layouts = core_layouts(config)
        self.syn_latency = syn_latency
        self.dut = FanOut(config, syn_latency=syn_latency)
        self.axons = Memory(shape=layouts.axon, depth=config.axons, init=axons)
        self.synapses = Memory(shape=layouts.synapse, depth=config.synapse_words, init=synapses)

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = self.dut
        m.submodules.axons = self.axons
        m.submodules.synapses = self.synapses
        wiring.connect(m, self.dut.axon_rd, self.axons.read_port())
        port = self.synapses.read_port()
        m.d.comb += [port.addr.eq(self.dut.syn_rd.addr), port.en.eq(self.dut.syn_rd.en)]
        data = Value.cast(port.data)
        for _ in range(self.syn_latency - 1):
            stage = Signal.like(data)
            m.d.sync += stage.eq(data)
            data = stage
        m.d.comb += self.dut.syn_rd.data.eq(data)
        return m


def run_fanout(config, axons, synapses, spikes, *, slot, horizon, graded, seed=0, p_valid=1.0, p_ready=1.0,
               syn_latency=1):
    """Offer ``spikes``, collect the events.

    Returns ``(FanOutEvents, accept cycles, [(cycle, "direct" or "push")] of each event,
    cycles)``.
    """
    rng = random.Random(seed)
    bench = FanOutBench(config, axons, synapses, syn_latency)
    dut = bench.dut
    got = FanOutEvents([], [])
    accepted, emitted = [], []
    limit = 10 * (len(spikes) + sum(a["syn_count"] for a in axons)) + 50
    state = {"cycles": 0}

    async def producer(ctx):
        ctx.set(dut.slot, slot)
        ctx.set(dut.horizon, horizon)
        ctx.set(dut.graded, graded)
        cycle = 0
        for neuron, payload in spikes:
            while rng.random() >= p_valid:
                ctx.set(dut.spikes.valid, 0)
                await ctx.tick()
                cycle += 1
            ctx.set(dut.spikes.payload, {"neuron": neuron, "payload": payload})
            ctx.set(dut.spikes.valid, 1)
            while True:
                _, _, ready = await ctx.tick().sample(dut.spikes.ready)
                cycle += 1
                if ready:
                    accepted.append(cycle - 1)
                    break
        ctx.set(dut.spikes.valid, 0)

    async def consumer(ctx):
        cycle = 0
        idle = 0
        while idle < 8:  # the engine idle for a while after the producer is done
            ctx.set(dut.direct.ready, rng.random() < p_ready)
            ctx.set(dut.push.ready, rng.random() < p_ready)
            _, _, d_valid, d_ready, direct, p_valid, p_ready_now, push, busy, spike_valid = \
                await ctx.tick().sample(dut.direct.valid, dut.direct.ready, dut.direct.payload,
                                        dut.push.valid, dut.push.ready, dut.push.payload, dut.busy,
                                        dut.spikes.valid)
            assert not (d_valid and p_valid), "an event offered on both streams"
            if d_valid and d_ready:
                got.direct.append((direct.target, direct.compartment, direct.value))
                emitted.append((cycle, "direct"))
            if p_valid and p_ready_now:
                got.push.append((push.slot, push.target, push.compartment, push.value))
                emitted.append((cycle, "push"))
            idle = idle + 1 if not (busy or spike_valid) and len(accepted) == len(spikes) else 0
            cycle += 1
            assert cycle < limit, "the fan-out never finished"
        state["cycles"] = cycle

    sim = Simulator(bench)
    sim.add_clock(1e-6)
    sim.add_testbench(producer)
    sim.add_testbench(consumer)
    sim.run()
    return got, accepted, emitted, state["cycles"]


@pytest.mark.parametrize("syn_latency", [1, SYNAPSE_READ_LATENCY])
@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("p_valid,p_ready", [(1.0, 1.0), (0.6, 0.5), (1.0, 0.2)])
def test_events_match_model(seed, p_valid, p_ready, syn_latency):
    rng = random.Random(seed)
    config = event_core(compartments=rng.choice([1, 3, 4]))
    axons, synapses = random_synapse_memories(rng, config)
    spikes = [(rng.randrange(config.neurons), rng.randrange(128, 256)) for _ in range(80)]
    graded = seed % 2 == 1
    slot = rng.randrange(64)
    horizon = rng.choice([64, rng.randrange(16, 64)])
    got, accepted, emitted, _ = run_fanout(config, axons, synapses, spikes, slot=slot, horizon=horizon,
                                           graded=graded, seed=seed, p_valid=p_valid, p_ready=p_ready,
                                           syn_latency=syn_latency)
    assert len(accepted) == len(spikes)
    want = fanout_events(config, axons, synapses, spikes, slot, horizon, graded)
    assert len(want.direct) > 10 and len(want.push) > 10, "the case fans out too little to test anything"
    assert got == want, f"seed={seed}"


def test_graded_values_at_the_ends():
    """``(w * g) >> 7`` floors toward minus infinity; the extremes fit the 17-bit value."""
    config = event_core(neurons=4, synapse_words=8)
    weights = [-32768, 32767, -1, 1, -129, 127, 0, -32767]
    synapses = [{"weight": w, "elig": 0, "delay": k, "target": k % 4, "compartment": k % 4, "plastic": 0}
                for k, w in enumerate(weights)]
    axons = [{"syn_base": 0, "syn_count": 8}] + [{"syn_base": 8, "syn_count": 0}] * 3
    spikes = [(0, 255), (0, 128), (0, 129), (1, 200)]
    for graded in (True, False):
        got, *_ = run_fanout(config, axons, synapses, spikes, slot=62, horizon=64, graded=graded)
        want = fanout_events(config, axons, synapses, spikes, 62, 64, graded)
        assert got == want
    assert (-32768 * 255) >> 7 == -65280 and (-1 * 129) >> 7 == -2  # the rule really floors


def test_horizon_drops_late_arrivals():
    """Only delays below the horizon (arrival < T) give events; horizon 0 gives none.

    Delay 0 goes direct (with horizon >= 1), delays 1 .. horizon - 1 are pushed into
    slots ``t + 2 ..`` (wrapping at 64).
    """
    config = event_core(neurons=2, synapse_words=64)
    synapses = [{"weight": d + 1, "elig": 0, "delay": d, "target": 1, "compartment": 0, "plastic": 0}
                for d in range(64)]
    axons = [{"syn_base": 0, "syn_count": 64}, {"syn_base": 64, "syn_count": 0}]
    for horizon in (0, 1, 2, 5, 63, 64):
        got, *_ = run_fanout(config, axons, synapses, [(0, 0)], slot=10, horizon=horizon, graded=False)
        assert got.direct == ([(1, 0, 1)] if horizon else [])
        assert [e[3] - 1 for e in got.push] == list(range(1, horizon))
        assert [e[0] for e in got.push] == [(11 + d) % 64 for d in range(1, horizon)]


def expected_timing(counts, first_accept, syn_latency=1):
    """The contract's clocks for spikes offered back to back, outputs always ready.

    Spike ``i``'s walk starts (its axon entry leaves the register) at ``start[i] =
    max(accept[i] + 2, start[i - 1] + max(counts[i - 1], 1))``; spike ``i`` is taken once
    the registered entry of spike ``i - 2`` moves on: ``accept[i] = max(accept[i - 1] + 1,
    start[i - 2])``; its ``j``-th synapse's event is offered at
    ``start[i] + 3 + syn_latency + j``.
    """
    accept, start = [], []
    for i, _ in enumerate(counts):
        a = first_accept if i == 0 else accept[-1] + 1
        if i >= 2:
            a = max(a, start[i - 2])
        accept.append(a)
        s = a + 2 if i == 0 else max(a + 2, start[-1] + max(counts[i - 1], 1))
        start.append(s)
    events = [s + 3 + syn_latency + j for s, c in zip(start, counts, strict=True) for j in range(c)]
    return accept, events


@pytest.mark.parametrize("syn_latency", [1, 2, SYNAPSE_READ_LATENCY])
def test_latency_and_throughput(syn_latency):
    """First event ``FanOut.LATENCY`` (6) clocks after the spike is taken; then one a clock
    on either stream, in synapse order, with no gap between spikes; a spike costs
    ``max(count, 1)`` clocks of the walk (the spikes are taken ahead of it)."""
    config = event_core(neurons=4, synapse_words=32)
    # delays 0 and 1 alternate in threes: direct and push interleave within a spike
    synapses = [{"weight": k, "elig": 0, "delay": (k // 3) % 2, "target": 0, "compartment": 0, "plastic": 0}
                for k in range(32)]
    counts = [5, 0, 1, 7]
    bases = [0, 5, 5, 6]
    axons = [{"syn_base": b, "syn_count": c} for b, c in zip(bases, counts, strict=True)]
    spikes = [(0, 0), (1, 0), (2, 0), (3, 0), (0, 0), (1, 0), (1, 0), (2, 0), (3, 0)]
    got, accepted, emitted, _ = run_fanout(config, axons, synapses, spikes, slot=0, horizon=64, graded=False,
                                           syn_latency=syn_latency)
    spike_counts = [counts[n] for n, _ in spikes]
    want_accept, want_events = expected_timing(spike_counts, accepted[0], syn_latency)
    assert FanOut.LATENCY == 6
    assert FanOut(config, syn_latency).latency == 5 + syn_latency
    assert want_events[0] == accepted[0] + 5 + syn_latency
    assert accepted == want_accept
    cycles = [cycle for cycle, _ in emitted]
    assert cycles == want_events
    # one event a clock from the first on, but for one clock per spike without synapses
    # (spikes 1, 5 and 6): the walk never waits for an axon entry
    gaps = [b - a for a, b in zip(cycles, cycles[1:], strict=False)]
    assert [k for k, g in enumerate(gaps) if g != 1] == [4, 17] and (gaps[4], gaps[17]) == (2, 3)
    words = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
    kinds = ["push" if (w // 3) % 2 else "direct" for w in words]
    assert [kind for _, kind in emitted] == kinds
    assert [e[2] for e in got.direct] == [w for w, k in zip(words, kinds, strict=True) if k == "direct"]
    assert [e[3] for e in got.push] == [w for w, k in zip(words, kinds, strict=True) if k == "push"]


@pytest.mark.parametrize("syn_latency", [1, SYNAPSE_READ_LATENCY])
def test_stall_holds_every_stage(syn_latency):
    """Outputs stalled for a long while with spikes waiting: nothing lost or repeated, and
    the spikes taken meanwhile are bounded by the stages (two axon entries)."""
    config = event_core(neurons=4, synapse_words=32)
    synapses = [{"weight": k + 1, "elig": 0, "delay": k % 3, "target": k % 4, "compartment": 0, "plastic": 0}
                for k in range(32)]
    axons = [{"syn_base": b, "syn_count": c} for b, c in ((0, 6), (6, 0), (6, 1), (7, 9))]
    spikes = [(n % 4, 0) for n in range(12)]
    for seed in range(4):
        got, accepted, _, _ = run_fanout(config, axons, synapses, spikes, slot=3, horizon=64, graded=False,
                                         seed=seed, p_ready=0.25, syn_latency=syn_latency)
        assert len(accepted) == len(spikes)
        assert got == fanout_events(config, axons, synapses, spikes, 3, 64, False), f"seed={seed}"


def test_config_is_checked():
    with pytest.raises(ValidationError, match="FanOut.config"):
        FanOut("icebreaker")


def test_syn_latency_is_checked():
    config = event_core(neurons=4, synapse_words=32)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValidationError, match="FanOut.syn_latency"):
            FanOut(config, syn_latency=bad)


def test_core_synapse_banks_host_port(monkeypatch):
    """Core's synapse memory in four banks: host writes to every bank, then reads back to
    back and apart, each word on ``host_rdata`` ``HOST_READ_LATENCY`` clocks after its address
    and held."""
    monkeypatch.setattr(core_module, "SYNAPSE_BANK_BITS", 3)
    config = event_core(neurons=4, synapse_words=32)  # 5 address bits: 4 banks of 8
    core = Core(config)
    rng = random.Random(5)
    words = {a: rng.getrandbits(40) for a in rng.sample(range(32), 20)}
    got = {}

    async def testbench(ctx):
        ctx.set(core.host_memory, MemoryName.SYNAPSE)
        for address, word in words.items():
            ctx.set(core.host_addr, address)
            ctx.set(core.host_wdata, word)
            ctx.set(core.host_we, 1)
            await ctx.tick()
        ctx.set(core.host_we, 0)
        order = list(words)
        # back to back: the address of clock k, its word read after edge k + latency - 1
        latency = core.host_read_latency
        issued = []
        for address in order + [None] * latency:
            ctx.set(core.host_re, address is not None)
            if address is not None:
                ctx.set(core.host_addr, address)
            await ctx.tick()
            issued.append(address)
            if len(issued) >= latency and issued[-latency] is not None:
                got[issued[-latency]] = ctx.get(core.host_rdata)
        # one read, then the word holds while other addresses pass by
        ctx.set(core.host_addr, order[0])
        ctx.set(core.host_re, 1)
        await ctx.tick()
        ctx.set(core.host_re, 0)
        for _ in range(latency - 1):
            ctx.set(core.host_addr, order[1])
            await ctx.tick()
        for _ in range(3):
            assert ctx.get(core.host_rdata) == words[order[0]] & mask
            ctx.set(core.host_addr, rng.randrange(32))
            await ctx.tick()

    mask = (1 << core_layouts(config).synapse.size) - 1
    sim = Simulator(core)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    assert got == {a: w & mask for a, w in words.items()}


@pytest.mark.parametrize("seed", [102, 107])
def test_core_with_synapse_banks_matches_emulator(monkeypatch, seed):
    """The whole core with its synapse memory in 16 banks (the RTL test core's 512 words
    in banks of 32; these cases use 99 and 118 words) against the emulator."""
    from test_hdl_core import FEATURES, check_against_emulator, small_case

    monkeypatch.setattr(core_module, "SYNAPSE_BANK_BITS", 5)
    netlist, job = small_case(seed, **{name: True for name in FEATURES})
    check_against_emulator(netlist, job)


# -- the iCE40 mode: axon entries and compartment rows over the shared aux port ------------


def spram_core(*, neurons: int = 16, compartments: int = 4, synapse_words: int = 512, banks: int = 1,
               delay_slots: int = 64) -> CoreConfig:
    """A small iCE40-shaped core: synapses in the 32-bit SPRAM word, rows over ``aux``."""
    return CoreConfig(
        name="test", max_cores=1, neurons=neurons, compartments=compartments, profiles=4,
        synapse_words=synapse_words, axons=neurons, route_words=0, delay_slots=delay_slots,
        event_queue=64, acc_bits=20, accumulator_banks=banks, spram=True)


def pushed_events(config, axons, synapses, spikes, slot, horizon, graded) -> list:
    """With one accumulator bank every event is pushed, delay 0 to slot ``t + 1``: the
    model's events ``(slot, target, compartment, value)`` in spike and synapse order."""
    out = []
    for neuron, payload in spikes:
        axon = axons[neuron]
        for s in synapses[axon["syn_base"]:axon["syn_base"] + axon["syn_count"]]:
            if s["delay"] < horizon:
                out.append(((slot + 1 + s["delay"]) % config.delay_slots, s["target"], s["compartment"],
                            graded_value(s["weight"], payload, graded)))
    return out


class SpramFanOutBench(Elaboratable):
    """The SPRAM-mode fan-out over a synapse memory of 32-bit SPRAM rows (with
    ``syn_latency - 1`` registers after its read port, as FanOutBench); ``aux`` is the
    testbench's."""

    def __init__(self, config, synapse_rows, syn_latency=1):
        self.syn_latency = syn_latency
        self.dut = FanOut(config, syn_latency=syn_latency)
        self.synapses = Memory(shape=32, depth=config.synapse_words,
                               init=[int(r) for r in synapse_rows])

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = self.dut
        m.submodules.synapses = self.synapses
        port = self.synapses.read_port()
        m.d.comb += [port.addr.eq(self.dut.syn_rd.addr), port.en.eq(self.dut.syn_rd.en)]
        data = Value.cast(port.data)
        for _ in range(self.syn_latency - 1):
            stage = Signal.like(data)
            m.d.sync += stage.eq(data)
            data = stage
        m.d.comb += self.dut.syn_rd.data.eq(data)
        return m


class SpramRun(NamedTuple):
    pushed: list  #: ``(slot, target, compartment, value)`` in the order taken
    direct: list  #: ``(target, compartment, value)`` in the order taken
    accepted: list  #: the clock each spike was taken
    port: list  #: each clock's use of the shared port: "aux", "push", "idle" (free, unused) or "busy"
    pushes_at: list  #: the clock of each push taken


def run_spram_fanout(config, axons, synapses, spikes, *, slot, horizon, graded, seed=0, p_valid=1.0,
                     p_port=1.0, p_direct=1.0, latency=(1, 1), syn_latency=1) -> SpramRun:
    """Offer ``spikes`` to a SPRAM-mode fan-out whose ``aux`` and ``push`` share one port.

    The port model is the chunked queue's: in a clock the port is free (probability
    ``p_port``; else a drain or the host has it) it takes the fan-out's aux request if
    one is offered, else a push. A read's row comes back on ``aux_rsp`` a random
    ``latency[0] .. latency[1]`` clocks after its request was taken, in order. ``direct``
    (two banks only) is taken with probability ``p_direct`` a clock.
    """
    rng = random.Random(seed)
    layouts = core_layouts(config)
    axon_words = np.array([[layouts.axon.const(a).as_bits()] for a in axons], np.uint64)
    synapse_words = np.array([[layouts.synapse.const(s).as_bits()] for s in synapses], np.uint64)
    image = spram_image(config, axon_words, synapse_words)
    base = spram_regions(config).axon_base
    rows = {base + k: int(row) for k, row in enumerate(image.aux_rows)}
    bench = SpramFanOutBench(config, image.synapse_rows, syn_latency)
    dut = bench.dut
    run = SpramRun([], [], [], [], [])
    limit = 40 * (len(spikes) + sum(a["syn_count"] for a in axons)) / max(p_port, 0.05) + 200

    async def testbench(ctx):
        ctx.set(dut.slot, slot)
        ctx.set(dut.horizon, horizon)
        ctx.set(dut.graded, graded)
        responses = []  # (clock due, row), due clocks increasing
        offered = None  # index of the spike offered now
        gap = 0
        cycle = idle = 0
        while idle < 8:
            # the producer: each spike after a random gap, held until taken
            if offered is None and len(run.accepted) < len(spikes):
                if rng.random() < p_valid or gap >= 20:
                    offered, gap = len(run.accepted), 0
                else:
                    gap += 1
            if offered is not None:
                neuron, payload = spikes[offered]
                ctx.set(dut.spikes.payload, {"neuron": neuron, "payload": payload})
            ctx.set(dut.spikes.valid, offered is not None)
            # the shared port: aux first, pushes otherwise
            free = rng.random() < p_port
            aux_valid = ctx.get(dut.aux_req.valid)
            ctx.set(dut.aux_req.ready, free)
            ctx.set(dut.push.ready, free and not aux_valid)
            ctx.set(dut.direct.ready, rng.random() < p_direct)
            if responses and responses[0][0] == cycle:
                ctx.set(dut.aux_rsp.payload, responses.pop(0)[1])
                ctx.set(dut.aux_rsp.valid, 1)
            else:
                ctx.set(dut.aux_rsp.valid, 0)
            assert ctx.get(dut.aux_rsp.ready), "aux_rsp must always be ready"
            # the transfers of this clock
            use = "idle" if free else "busy"
            if aux_valid and free:
                address = ctx.get(dut.aux_req.payload)
                assert address in rows, f"aux read of row {address}, outside the axon and compartment rows"
                due = max(responses[-1][0] + 1 if responses else 0, cycle + rng.randint(*latency))
                responses.append((due, rows[address]))
                use = "aux"
            if ctx.get(dut.push.valid) and free and not aux_valid:
                event = ctx.get(dut.push.payload)
                run.pushed.append((event.slot, event.target, event.compartment, event.value))
                run.pushes_at.append(cycle)
                use = "push"
            if ctx.get(dut.direct.valid) and ctx.get(dut.direct.ready):
                event = ctx.get(dut.direct.payload)
                run.direct.append((event.target, event.compartment, event.value))
            run.port.append(use)
            if offered is not None and ctx.get(dut.spikes.ready):
                run.accepted.append(cycle)
                offered = None
            busy = ctx.get(dut.busy)
            await ctx.tick()
            cycle += 1
            done = len(run.accepted) == len(spikes) and offered is None and not busy and not responses
            idle = idle + 1 if done else 0
            assert cycle < limit, "the fan-out never finished"

    sim = Simulator(bench)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    return run


def spram_network(rng, config, max_count=40):
    """Random axon lists (some empty, many crossing compartment rows) and synapses (elig 0)."""
    axons, synapses = random_synapse_memories(rng, config, max_count=max_count)
    return axons, [{**s, "elig": 0} for s in synapses]


@pytest.mark.parametrize("banks", [1, 2])
@pytest.mark.parametrize("syn_latency", [1, SYNAPSE_READ_LATENCY])
@pytest.mark.parametrize("seed,compartments,p_valid,p_port,latency", [
    (1, 4, 1.0, 1.0, (2, 2)), (2, 3, 0.5, 0.7, (1, 4)), (3, 4, 1.0, 0.3, (2, 6)), (4, 1, 0.8, 0.9, (1, 2))])
def test_spram_events_match_model(seed, compartments, p_valid, p_port, latency, syn_latency, banks):
    """Random networks, spikes and port contention (``latency``: the clocks from an aux
    request taken to its row): every event, in exact order."""
    rng = random.Random(seed)
    config = spram_core(compartments=compartments, banks=banks)
    axons, synapses = spram_network(rng, config)
    spikes = [(rng.randrange(config.neurons), rng.randrange(128, 256)) for _ in range(60)]
    graded = seed % 2 == 1
    slot = rng.randrange(64)
    horizon = rng.choice([64, rng.randrange(16, 64)])
    run = run_spram_fanout(config, axons, synapses, spikes, slot=slot, horizon=horizon, graded=graded,
                           seed=seed, p_valid=p_valid, p_port=p_port, p_direct=0.6, latency=latency,
                           syn_latency=syn_latency)
    assert len(run.accepted) == len(spikes)
    if banks == 1:
        want = pushed_events(config, axons, synapses, spikes, slot, horizon, graded)
        assert len(want) > 100 and {e[0] for e in want} >= {(slot + 1) % 64}, "too little to test"
        assert run.direct == [] and run.pushed == want, f"seed={seed}"
    else:
        want = fanout_events(config, axons, synapses, spikes, slot, horizon, graded)
        assert len(want.direct) > 20 and len(want.push) > 20, "the case fans out too little to test anything"
        assert FanOutEvents(run.direct, run.pushed) == want, f"seed={seed}"


def test_spram_horizon_and_delays_0_and_63():
    """One bank: delay 0 is pushed to slot t + 1 like any other; delays >= horizon give none."""
    config = spram_core(neurons=2, synapse_words=64)
    synapses = [{"weight": d + 1, "elig": 0, "delay": d, "target": 1, "compartment": d % 4, "plastic": d % 2}
                for d in range(64)]
    axons = [{"syn_base": 0, "syn_count": 64}, {"syn_base": 64, "syn_count": 0}]
    for horizon in (0, 1, 2, 63, 64):
        run = run_spram_fanout(config, axons, synapses, [(0, 0), (1, 0)], slot=10, horizon=horizon,
                               graded=False)
        assert run.pushed == [((11 + d) % 64, 1, d % 4, d + 1) for d in range(horizon)]
        assert run.direct == []


def test_spram_graded_values_at_the_ends():
    config = spram_core(neurons=4, synapse_words=32)
    weights = [-32768, 32767, -1, 1, -129, 127, 0, -32767]
    synapses = [{"weight": w, "elig": 0, "delay": 63 * (k % 2), "target": k % 4, "compartment": k % 4,
                 "plastic": 0} for k, w in enumerate(weights)]
    # list 0 starts mid-row and crosses into the next: rows 0 and 1 read for one spike
    synapses = synapses[4:] + synapses + [synapses[0]] * 20
    axons = [{"syn_base": b, "syn_count": c} for b, c in ((12, 8), (0, 4), (4, 0), (4, 28))]
    spikes = [(0, 255), (0, 128), (3, 129), (1, 200), (2, 7)]
    for graded in (True, False):
        run = run_spram_fanout(config, axons, synapses, spikes, slot=62, horizon=64, graded=graded)
        assert run.pushed == pushed_events(config, axons, synapses, spikes, 62, 64, graded)


def test_spram_config_is_checked():
    wide = dataclasses.replace(spram_core(), neurons=1024, axons=1024)
    with pytest.raises(ValidationError, match=r"core\.neurons is 1024: the SPRAM synapse word"):
        FanOut(wide)
    default = FanOut(event_core())
    spram = FanOut(spram_core())
    assert "axon_rd" in default.signature.members and "aux_req" not in default.signature.members
    assert "axon_rd" not in spram.signature.members
    assert len(spram.aux_req.payload) == 14 and len(spram.aux_rsp.payload) == 32
    assert spram.syn_rd.data.shape() == spram_synapse_layout(spram_core())


def compartment_rows(base: int, count: int) -> int:
    """The compartment rows a list of ``count`` synapses from ``base`` spans."""
    return (base % 16 + count + 15) // 16 if count else 0


def port_use(run: SpramRun) -> tuple[int, int, int]:
    """``(clocks the port was used, idle clocks before the first push, idle clocks from
    the first push to the last)``, counted from the first aux request."""
    first = run.port.index("aux")
    last = run.pushes_at[-1]
    used = sum(use in ("aux", "push") for use in run.port)
    before = run.port[first:run.pushes_at[0]].count("idle")
    between = run.port[run.pushes_at[0]:last + 1].count("idle")
    return used, before, between


@pytest.mark.parametrize("aux_latency", [1, 2, 3])
@pytest.mark.parametrize("syn_latency", [1, SYNAPSE_READ_LATENCY])
def test_spram_latency_and_port_clocks(aux_latency, syn_latency):
    """The contract's SPRAM timing: the first event ``spram_latency(Lr)`` clocks after its
    spike; with spikes waiting and the port free, ``1 + R + F`` port clocks a spike and no
    idle clock from the first push to the last."""
    config = spram_core(synapse_words=512)
    synapses = [{"weight": k, "elig": 0, "delay": 1 + k % 5, "target": k % 16, "compartment": k % 4,
                 "plastic": 0} for k in range(512)]
    dut = FanOut(config, syn_latency)
    assert FanOut.SPRAM_LATENCY == 9
    assert dut.spram_latency(aux_latency) == 8 + 2 * aux_latency + syn_latency
    # one spike, everything idle: its list starts mid-row and spans two rows
    axons = [{"syn_base": 9, "syn_count": 12}] + [{"syn_base": 0, "syn_count": 0}] * 15
    run = run_spram_fanout(config, axons, synapses, [(0, 0)], slot=0, horizon=64, graded=False,
                           latency=(aux_latency, aux_latency), syn_latency=syn_latency)
    assert run.accepted == [0] and run.pushes_at[0] == dut.spram_latency(aux_latency)
    assert run.pushes_at == list(range(run.pushes_at[0], run.pushes_at[0] + 12))
    assert run.port.count("aux") == 1 + 2
    # a burst: 40 spikes waiting, lists of 2 .. 40 synapses at any alignment
    rng = random.Random(5)
    lists = [(rng.randrange(0, 470), rng.randint(2, 40)) for _ in range(16)]
    axons = [{"syn_base": b, "syn_count": c} for b, c in lists]
    spikes = [(rng.randrange(16), 0) for _ in range(40)]
    run = run_spram_fanout(config, axons, synapses, spikes, slot=0, horizon=64, graded=False,
                           latency=(aux_latency, aux_latency), syn_latency=syn_latency)
    want = sum(1 + compartment_rows(*lists[n]) + lists[n][1] for n, _ in spikes)
    used, before, between = port_use(run)
    # gap-free at the chunked queue's Lr (2) and below; at 3 the two row credits can show
    assert used == want and between <= (0 if aux_latency <= 2 else 1), (used, want, between)
    # the port idles before the first push only while the first rows and words travel
    assert before <= dut.spram_latency(aux_latency) - 8
    assert run.port.count("aux") == sum(1 + compartment_rows(*lists[n]) for n, _ in spikes)


@pytest.mark.parametrize("count,used,span", [(0, 32, 77), (1, 96, 109)])
def test_spram_port_clocks_of_small_lists(count, used, span):
    """The contract's numbers for spikes of 0 and 1 synapse at the chunked queue's ``Lr`` 2."""
    config = spram_core(synapse_words=512)
    synapses = [{"weight": k, "elig": 0, "delay": 1, "target": 1, "compartment": k % 4, "plastic": 0}
                for k in range(512)]
    axons = [{"syn_base": (i * 37) % 400, "syn_count": count} for i in range(16)]
    run = run_spram_fanout(config, axons, synapses, [(n, 0) for n in range(16)] * 2, slot=0, horizon=64,
                           graded=False, latency=(2, 2), syn_latency=SYNAPSE_READ_LATENCY)
    first = run.port.index("aux")
    last = max(k for k, use in enumerate(run.port) if use in ("aux", "push"))
    assert sum(use in ("aux", "push") for use in run.port) == used
    assert last - first + 1 == span


def test_one_bank_memory_mode_pushes_every_event():
    """``accumulator_banks == 1`` without SPRAM: the memory mode's ports, every event pushed."""
    rng = random.Random(9)
    config = dataclasses.replace(event_core(), accumulator_banks=1)
    axons, synapses = random_synapse_memories(rng, config)
    spikes = [(rng.randrange(config.neurons), rng.randrange(256)) for _ in range(40)]
    got, accepted, emitted, _ = run_fanout(config, axons, synapses, spikes, slot=63, horizon=40, graded=True,
                                           seed=9, p_valid=0.7, p_ready=0.6)
    want = pushed_events(config, axons, synapses, spikes, 63, 40, True)
    assert len(accepted) == len(spikes) and got.direct == [] and {kind for _, kind in emitted} == {"push"}
    assert got.push == want and sum(e[0] == 0 for e in want) > 5  # delay 0 into slot (63 + 1) mod 64


def test_spram_fanout_synthesises_without_block_ram(record_property):
    """At the icebreaker-to-be's widths the SPRAM-mode fan-out is logic only: its FIFOs of
    rows and entries in flight must not take any of the 3 EBRs the plan leaves spare."""
    config = dataclasses.replace(get_preset("icebreaker"), neurons=512, axons=512, event_queue=8192,
                                 acc_bits=20, accumulator_banks=1, spram=True)
    report = synthesize(FanOut(config), family="ice40", top="fanout")
    record_property("synthesis", report.summary())
    cells = 5280  # the iCE40UP5K's logic cells
    # the graded product is one SB_MAC16 (synth_ice40 -dsp); the flip-flops' budget is a
    # tenth of the chip and the 35 of the skid register that keeps ``push.ready`` out of
    # the walk (557 FF with it)
    assert report.brams == 0 and report.dsps == 1, report.summary()
    assert report.luts < cells // 8 + 100 and report.ffs < cells // 10 + 35, report.summary()


class SpramEventSideBench(Elaboratable):
    """The SPRAM-mode fan-out wired to the iCE40's ChunkedEventQueue as the iCE40 core
    wires them: ``push`` into the queue, ``aux_req``/``aux_rsp`` onto the queue's aux
    port, which the testbench takes (``host``) to write the axon and compartment rows."""

    def __init__(self, config, synapse_rows):
        self.fanout = FanOut(config)
        self.queue = ChunkedEventQueue(config, pool_chunks=spram_regions(config).pool_chunks)
        self.synapses = Memory(shape=32, depth=config.synapse_words, init=[int(r) for r in synapse_rows])
        self.host = Signal()
        self.host_valid = Signal()
        self.host_addr = Signal(14)
        self.host_data = Signal(32)

    def elaborate(self, platform):
        m = Module()
        fanout, queue = self.fanout, self.queue
        m.submodules.fanout = fanout
        m.submodules.queue = queue
        m.submodules.synapses = self.synapses
        port = self.synapses.read_port()
        m.d.comb += [port.addr.eq(fanout.syn_rd.addr), port.en.eq(fanout.syn_rd.en),
                     fanout.syn_rd.data.eq(port.data)]
        wiring.connect(m, fanout.push, queue.push)
        m.d.comb += [
            queue.aux.valid.eq(Mux(self.host, self.host_valid, fanout.aux_req.valid)),
            queue.aux.payload.addr.eq(Mux(self.host, self.host_addr, fanout.aux_req.payload)),
            queue.aux.payload.write.eq(self.host),
            queue.aux.payload.data.eq(self.host_data),
            fanout.aux_req.ready.eq(~self.host),  # the queue takes an aux access every clock
            fanout.aux_rsp.valid.eq(queue.aux_valid),
            fanout.aux_rsp.payload.eq(queue.aux_row),
        ]
        return m


@pytest.mark.parametrize("seed", [21, 22])
def test_spram_fanout_into_the_chunked_queue(seed):
    """Rows loaded through the queue's aux port, the spikes fanned out into the queue,
    every slot drained: each slot's events in push order, as the model has them. The
    fan-out runs at the port's pace: ``1 + R + F`` port clocks a spike."""
    rng = random.Random(seed)
    config = dataclasses.replace(spram_core(compartments=4), event_queue=4096)  # room for every event
    axons, synapses = spram_network(rng, config)
    spikes = [(rng.randrange(config.neurons), rng.randrange(256)) for _ in range(40)]
    slot, horizon, graded = rng.randrange(64), 64, seed % 2 == 1
    layouts = core_layouts(config)
    image = spram_image(config, np.array([[layouts.axon.const(a).as_bits()] for a in axons], np.uint64),
                        np.array([[layouts.synapse.const(s).as_bits()] for s in synapses], np.uint64))
    base = spram_regions(config).axon_base
    bench = SpramEventSideBench(config, image.synapse_rows)
    fanout, queue = bench.fanout, bench.queue
    drained = {}
    clocks = {}

    async def testbench(ctx):
        ctx.set(bench.host, 1)
        for k, row in enumerate(image.aux_rows):
            ctx.set(bench.host_addr, base + k)
            ctx.set(bench.host_data, int(row))
            ctx.set(bench.host_valid, 1)
            await ctx.tick()
        ctx.set(bench.host_valid, 0)
        ctx.set(bench.host, 0)
        ctx.set(fanout.slot, slot)
        ctx.set(fanout.horizon, horizon)
        ctx.set(fanout.graded, graded)
        start = 0
        for k, (neuron, payload) in enumerate(spikes):
            ctx.set(fanout.spikes.payload, {"neuron": neuron, "payload": payload})
            ctx.set(fanout.spikes.valid, 1)
            clock = 0
            while not ctx.get(fanout.spikes.ready):
                await ctx.tick()
                clock += 1
            await ctx.tick()
            clocks[k] = clock
        ctx.set(fanout.spikes.valid, 0)
        while ctx.get(fanout.busy) or ctx.get(queue.busy):
            await ctx.tick()
            start += 1
        clocks["tail"] = start
        assert not ctx.get(queue.queue_overflow)
        ctx.set(queue.drained.ready, 1)
        for s in range(64):
            ctx.set(queue.slot, s)
            ctx.set(queue.drain, 1)
            await ctx.tick()
            ctx.set(queue.drain, 0)
            events = []
            while True:
                valid, event, done = ctx.get(queue.drained.valid), ctx.get(queue.drained.payload), \
                    ctx.get(queue.done)
                if valid:
                    events.append((event.target, event.compartment, event.value))
                await ctx.tick()
                if done:
                    break
            drained[s] = events

    sim = Simulator(bench)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    want = pushed_events(config, axons, synapses, spikes, slot, horizon, graded)
    assert len(want) > 200
    assert drained == {s: [e[1:] for e in want if e[0] == s] for s in range(64)}, f"seed={seed}"
    # the whole fan-out, spike 0 taken to the queue idle, against the port's clocks
    port = sum(1 + compartment_rows(axons[n]["syn_base"], axons[n]["syn_count"]) + axons[n]["syn_count"]
               for n, _ in spikes)
    total = sum(clocks[k] + 1 for k in range(len(spikes))) + clocks["tail"]
    # measured: 4 clocks over the port's (the first spike's rows and words in flight)
    # and a few for the empty lists' axon rows (two credits, a port round trip each)
    print(f"seed {seed}: {total} clocks, {port} port clocks")
    assert port <= total <= port + 16, (total, port)
