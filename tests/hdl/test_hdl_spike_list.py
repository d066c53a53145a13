# amaranth: UnusedElaboratable=no
"""SpikeList in the Amaranth simulator against a plain list, and its block RAM under synth_ice40.

Each round clears the list and writes a random number of spikes (neuron, payload) with
random gaps while both readers take them with random ``ready``; each reader must receive
exactly the spikes written, in order, with the payload restored (``128 + stored`` when
graded, 0 otherwise). The writer is never stalled. Clock-exact cases pin the latency,
the fan-out's priority and one spike a clock.
"""

from __future__ import annotations

import dataclasses
import random

import pytest
from amaranth.sim import Simulator
from core_model import event_core

from neurofab.errors import ValidationError
from neurofab.hdl.config import get_preset
from neurofab.hdl.spike_list import SpikeList
from neurofab.hdl.synthesis import synthesize


def random_spikes(rng: random.Random, config, graded: bool) -> list[tuple[int, int]]:
    """At most ``neurons`` spikes of increasing neurons (as a pass makes them)."""
    count = rng.choice([0, 1, config.neurons, rng.randint(0, config.neurons)])
    neurons = sorted(rng.sample(range(config.neurons), count))
    return [(n, rng.choice([128, 255, rng.randint(128, 255)]) if graded else 0) for n in neurons]


def run_rounds(config, rounds, *, p_write: float, p_fanout: float, p_host: float, seed: int):
    """``rounds`` = ``[(graded, spikes)]``; per round the spikes each reader took, and the clocks."""
    rng = random.Random(seed)
    dut = SpikeList(config)
    got = []

    async def bench(ctx):
        for graded, spikes in rounds:
            ctx.set(dut.graded, graded)
            ctx.set(dut.clear, 1)
            await ctx.tick()
            ctx.set(dut.clear, 0)
            assert not ctx.get(dut.busy) and ctx.get(dut.written) == 0
            taken = {"fanout": [], "host": []}
            pending = list(spikes)
            clocks = 0
            while True:
                writing = bool(pending) and rng.random() < p_write
                ctx.set(dut.spikes.valid, writing)
                if writing:
                    ctx.set(dut.spikes.payload, {"neuron": pending[0][0], "payload": pending[0][1]})
                ctx.set(dut.fanout.ready, rng.random() < p_fanout)
                ctx.set(dut.host.ready, rng.random() < p_host)
                # the writer is never held back
                assert ctx.get(dut.spikes.ready) == 1
                if not writing and not pending and not ctx.get(dut.busy):
                    break
                for name in taken:
                    port = getattr(dut, name)
                    if ctx.get(port.valid) and ctx.get(port.ready):
                        spike = ctx.get(port.payload)
                        taken[name].append((spike.neuron, spike.payload))
                await ctx.tick()
                if writing:
                    pending.pop(0)
                clocks += 1
                assert clocks < 20 * config.neurons + 100, "the readers never finished"
            ctx.set(dut.spikes.valid, 0)
            assert ctx.get(dut.written) == len(spikes)
            assert not ctx.get(dut.fanout.valid) and not ctx.get(dut.host.valid)
            got.append(taken)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return got


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_both_readers_get_every_spike_in_order(seed):
    rng = random.Random(seed)
    config = event_core(neurons=24)
    rounds = [(graded, random_spikes(rng, config, graded)) for graded in
              [rng.random() < 0.5 for _ in range(12)]]
    p_write = rng.choice([1.0, 0.6, 0.2])
    p_fanout, p_host = rng.choice([1.0, 0.5, 0.1]), rng.choice([1.0, 0.5, 0.1])
    print(f"seed={seed} p_write={p_write} p_fanout={p_fanout} p_host={p_host}")
    got = run_rounds(config, rounds, p_write=p_write, p_fanout=p_fanout, p_host=p_host, seed=seed)
    for k, ((_, spikes), taken) in enumerate(zip(rounds, got, strict=True)):
        assert taken["fanout"] == spikes, f"round {k}: fan-out"
        assert taken["host"] == spikes, f"round {k}: host"
    assert any(len(spikes) == config.neurons for _, spikes in rounds), "no round filled the list"


def test_clear_drops_what_was_not_read():
    """A clear mid-round empties the list: the next round's readers see only its spikes."""
    config = event_core(neurons=8)
    dut = SpikeList(config)

    async def bench(ctx):
        ctx.set(dut.graded, 1)
        for n in range(5):
            ctx.set(dut.spikes.valid, 1)
            ctx.set(dut.spikes.payload, {"neuron": n, "payload": 200})
            await ctx.tick()
        ctx.set(dut.spikes.valid, 0)
        await ctx.tick().repeat(4)
        # nobody took anything: each reader's buffer is full (3 of 5), the rest unread
        assert ctx.get(dut.busy) and ctx.get(dut.fanout.valid) and ctx.get(dut.host.valid)
        ctx.set(dut.clear, 1)
        await ctx.tick()
        ctx.set(dut.clear, 0)
        assert not ctx.get(dut.busy) and not ctx.get(dut.fanout.valid) and not ctx.get(dut.host.valid)
        ctx.set(dut.spikes.valid, 1)
        ctx.set(dut.spikes.payload, {"neuron": 7, "payload": 129})
        await ctx.tick()
        ctx.set(dut.spikes.valid, 0)
        ctx.set(dut.fanout.ready, 1)
        ctx.set(dut.host.ready, 1)
        seen = {"fanout": [], "host": []}
        for _ in range(8):
            for name in seen:
                port = getattr(dut, name)
                if ctx.get(port.valid):
                    seen[name].append((ctx.get(port.payload.neuron), ctx.get(port.payload.payload)))
            await ctx.tick()
        assert seen == {"fanout": [(7, 129)], "host": [(7, 129)]}
        assert not ctx.get(dut.busy)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()


def test_latency_priority_and_one_spike_a_clock():
    """k spikes written in clocks 0 .. k-1, both readers always ready: the fan-out reads each
    the clock after its write and is offered it two clocks later (clocks 3 .. k + 2); the
    host reads in the clocks the fan-out does not (k + 1 .. 2k), offered k + 3 .. 2k + 2."""
    config = event_core(neurons=16)
    k = 10
    dut = SpikeList(config)
    offered = {"fanout": [], "host": []}

    async def bench(ctx):
        ctx.set(dut.graded, 0)
        ctx.set(dut.fanout.ready, 1)
        ctx.set(dut.host.ready, 1)
        for clock in range(2 * k + 6):
            ctx.set(dut.spikes.valid, clock < k)
            ctx.set(dut.spikes.payload, {"neuron": clock, "payload": 0})
            for name in offered:
                port = getattr(dut, name)
                if ctx.get(port.valid):
                    offered[name].append((clock, ctx.get(port.payload.neuron)))
            await ctx.tick()
        assert not ctx.get(dut.busy)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert offered["fanout"] == [(3 + i, i) for i in range(k)]
    assert offered["host"] == [(k + 3 + i, i) for i in range(k)]


def test_config_is_checked():
    with pytest.raises(ValidationError, match="SpikeList.config"):
        SpikeList("icebreaker")


def test_icebreaker_list_is_two_block_rams(record_property):
    """512 entries of 16 bits (neuron 9 + stored payload 7): two SB_RAM40_4K in 256 x 16."""
    config = dataclasses.replace(get_preset("icebreaker"), neurons=512, axons=512, event_queue=8192,
                                 acc_bits=20, accumulator_banks=1, spram=True)
    report = synthesize(SpikeList(config), family="ice40", top="spike_list")
    record_property("synthesis", report.summary())
    print(report.summary())
    assert report.cells.get("SB_RAM40_4K", 0) == 2, report.cells
