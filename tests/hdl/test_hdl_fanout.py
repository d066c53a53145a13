# amaranth: UnusedElaboratable=no
"""The fan-out engine over real axon and synapse memories, in the Amaranth simulator.

Random axon tables and synapse memories; spikes offered with random gaps, events taken
from ``direct`` and ``push`` with random stalls of each; every event of each stream, in
order, against ``core_model.fanout_events``. The timing test pins the contract's latency
and throughput.
"""

from __future__ import annotations

import random

import pytest
from amaranth.hdl import Elaboratable, Module, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.sim import Simulator
from core_model import FanOutEvents, event_core, fanout_events, random_synapse_memories

from neurofab.errors import ValidationError
from neurofab.hdl import core as core_module
from neurofab.hdl.core import SYNAPSE_READ_LATENCY, Core
from neurofab.hdl.fanout import FanOut
from neurofab.hdl.layouts import Memory as MemoryName
from neurofab.hdl.layouts import core_layouts


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
    back and apart, each word on ``host_rdata`` two clocks after its address and held."""
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
        # back to back: the address of clock k, its word read after the second edge
        issued = []
        for address in order + [None, None]:
            ctx.set(core.host_re, address is not None)
            if address is not None:
                ctx.set(core.host_addr, address)
            await ctx.tick()
            issued.append(address)
            if len(issued) >= 2 and issued[-2] is not None:
                got[issued[-2]] = ctx.get(core.host_rdata)
        # one read, then the word holds while other addresses pass by
        ctx.set(core.host_addr, order[0])
        ctx.set(core.host_re, 1)
        await ctx.tick()
        ctx.set(core.host_re, 0)
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
