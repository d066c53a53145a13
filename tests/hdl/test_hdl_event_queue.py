# amaranth: UnusedElaboratable=no
"""The delay event queue with a real accumulator memory, in the Amaranth simulator.

A run is many timesteps of: drain slot ``t mod delay_slots`` into the accumulators,
then push a random batch of events (random gaps between pushes) as a fan-out of step
``t`` would. After every drain the accumulators, the number of events held and both
sticky errors are compared with ``core_model.QueueModel``; the queue's free list is
exercised by small capacities that fill, empty and refill many times.
"""

from __future__ import annotations

import random

import pytest
from amaranth.hdl import Elaboratable, Module, signed
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.sim import Simulator
from core_model import QueueModel, event_core

from neurofab.errors import ValidationError
from neurofab.hdl.event_queue import EventQueue


class QueueBench(Elaboratable):
    def __init__(self, config):
        self.dut = EventQueue(config)
        self.accumulators = Memory(shape=signed(config.acc_bits), depth=config.neurons * config.compartments,
                                   init=[])

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = self.dut
        m.submodules.accumulators = self.accumulators
        wiring.connect(m, self.dut.acc_rd, self.accumulators.read_port())
        wiring.connect(m, self.dut.acc_wr, self.accumulators.write_port())
        return m


def random_batch(rng, config, slot, size, value_scale):
    """Events of one step's fan-out: slot ``(slot + 1 + d) mod D``, targets bunched so sums collide."""
    D = config.delay_slots
    hot = rng.randrange(config.neurons)
    events = []
    for _ in range(size):
        d = rng.choice([0, D - 1, rng.randrange(D), rng.randrange(4)])
        target = rng.choice([hot, hot, rng.randrange(config.neurons)])
        value = rng.choice([rng.randint(-value_scale, value_scale), -65280, 65279, 0])
        events.append(((slot + 1 + d) % D, target, rng.randrange(config.compartments), value))
    return events


def run_queue(config, seed, steps, *, batch=(0, 12), value_scale=65279, p_valid=0.7):
    rng = random.Random(seed)
    bench = QueueBench(config)
    dut = bench.dut
    model = QueueModel(config)
    n_acc = config.neurons * config.compartments
    stats = {"drained": 0, "pushed": 0, "max_held": 0, "drain_clocks": []}

    async def drain(ctx, t):
        ctx.set(dut.step, t)
        ctx.set(dut.slot, t % config.delay_slots)
        ctx.set(dut.drain, 1)
        await ctx.tick()
        ctx.set(dut.drain, 0)
        clocks = 1
        while True:
            _, _, done = await ctx.tick().sample(dut.done)
            clocks += 1
            if done:
                return clocks
            assert clocks < 10 * config.event_queue + 20, "a drain never finished"

    async def testbench(ctx):
        ctx.set(dut.clear, 1)
        await ctx.tick()
        ctx.set(dut.clear, 0)
        await ctx.tick().until(dut.done)
        accumulators = [0] * n_acc
        for t in range(steps):
            in_slot = len(model.slots[t % config.delay_slots])
            clocks = await drain(ctx, t)
            stats["drain_clocks"].append((in_slot, clocks))
            stats["drained"] += in_slot
            model.drain(t, accumulators, order="lifo")
            got = [ctx.get(bench.accumulators.data[i]) for i in range(n_acc)]
            assert got == accumulators, f"seed={seed} step {t}: accumulators"
            assert ctx.get(dut.held) == model.held, f"seed={seed} step {t}: held"
            assert ctx.get(dut.acc_overflow) == (model.acc_overflow_step is not None)
            if model.acc_overflow_step is not None:
                assert ctx.get(dut.acc_overflow_step) == model.acc_overflow_step

            for event in random_batch(rng, config, t % config.delay_slots, rng.randint(*batch), value_scale):
                while rng.random() >= p_valid:
                    ctx.set(dut.push.valid, 0)
                    await ctx.tick()
                slot, target, compartment, value = event
                ctx.set(dut.push.payload, {"slot": slot, "target": target, "compartment": compartment,
                                           "value": value})
                ctx.set(dut.push.valid, 1)
                _, _, ready = await ctx.tick().sample(dut.push.ready)
                assert ready, "the queue refused a push while idle"
                model.push(t, event)
                stats["pushed"] += 1
            ctx.set(dut.push.valid, 0)
            await ctx.tick()
            assert not ctx.get(dut.busy)
            assert ctx.get(dut.held) == model.held, f"seed={seed} step {t}: held after pushes"
            stats["max_held"] = max(stats["max_held"], model.held)
            assert ctx.get(dut.queue_overflow) == (model.queue_overflow_step is not None)
            if model.queue_overflow_step is not None:
                assert ctx.get(dut.queue_overflow_step) == model.queue_overflow_step

        # a clear empties every list and both errors; then every slot drains nothing
        ctx.set(dut.clear, 1)
        await ctx.tick()
        ctx.set(dut.clear, 0)
        await ctx.tick().until(dut.done)
        assert ctx.get(dut.held) == 0
        assert not ctx.get(dut.queue_overflow) and not ctx.get(dut.acc_overflow)
        before = [ctx.get(bench.accumulators.data[i]) for i in range(n_acc)]
        for s in range(config.delay_slots):
            assert await drain(ctx, steps + s) == 2
        assert [ctx.get(bench.accumulators.data[i]) for i in range(n_acc)] == before

    sim = Simulator(bench)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    return model, stats


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_drains_match_model(seed):
    """A queue that never fills: every sum exact, the free list reused many times over."""
    config = event_core(neurons=8, compartments=3, event_queue=256)
    model, stats = run_queue(config, seed, steps=150)
    assert model.queue_overflow_step is None and model.acc_overflow_step is None
    assert stats["drained"] > 3 * config.event_queue // 2  # words were freed and allocated again
    for events, clocks in stats["drain_clocks"]:
        assert clocks == (events + 4 if events else 2)


@pytest.mark.parametrize("seed", [4, 5])
def test_queue_overflow_is_sticky_with_its_step(seed):
    """A small pool overflows: the first step is kept, events beyond capacity are not held."""
    config = event_core(neurons=6, compartments=2, event_queue=20, delay_slots=8)
    model, stats = run_queue(config, seed, steps=60, batch=(0, 9))
    assert model.queue_overflow_step is not None, f"seed={seed}: the case never overflowed"
    assert stats["max_held"] == config.event_queue


@pytest.mark.parametrize("seed", [6, 7])
def test_accumulator_overflow_is_sticky_with_its_step(seed):
    """18-bit accumulators that are never cleared leave their range: error and step as the model's."""
    config = event_core(neurons=2, compartments=1, event_queue=64, acc_bits=18, delay_slots=4)
    model, _ = run_queue(config, seed, steps=40, batch=(2, 6))
    assert model.acc_overflow_step is not None, f"seed={seed}: the case never overflowed"


def test_config_is_checked():
    with pytest.raises(ValidationError, match="EventQueue.config"):
        EventQueue(None)
