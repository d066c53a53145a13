# amaranth: UnusedElaboratable=no
"""The delay event queue v2 in the Amaranth simulator, against ``core_model.QueueModel``.

A run is many timesteps of core v2's pattern: pulse ``drain`` of slot ``(t + 1) mod D``
and, in the same clocks, push a random batch of the step's events (delays 1 .. D - 1,
random gaps between them) while a consumer takes ``drained`` with random stalls; when
the queue is idle, pulse ``step_end``. Every clock ``held`` is compared with the model;
after every step the drained events (as a multiset: the hardware's list order is its
own) and the sticky error with its step. Small pools fill, empty and refill many times,
so the free FIFO's words are reused over and over. Dual-port and single-port pools.
In every run of a dual-port pool, the pool's read never meets a write of the same word
in the same clock (its block RAMs are ``NO_RW_CHECK``): an assertion in every clock.
"""

from __future__ import annotations

import random
from collections import Counter

import pytest
from amaranth.hdl import Assert, Module
from amaranth.lib import data
from amaranth.lib.memory import Memory
from amaranth.sim import Simulator
from core_model import QueueModel, event_core

from neurofab.errors import ValidationError
from neurofab.hdl import event_queue
from neurofab.hdl.event_queue import DRAIN_LATENCY, EventQueue


class NoCollisionRAM(Memory):
    """A ``lib.memory.Memory`` whose simulation fails an assertion in any clock in which a
    read port reads the word a write port writes: the proof, clock by clock, of a memory
    marked ``NO_RW_CHECK`` (whose read in that case is undefined on the FPGA)."""

    def elaborate(self, platform):
        m = Module()
        m.submodules.memory = super().elaborate(platform)
        for rd in self.read_ports:
            for wr in self.write_ports:
                m.d.sync += Assert(~(rd.en & wr.en.any() & (rd.addr == wr.addr)),
                                   "a read meets a write of its word in the same clock")
        return m


class _CheckedLanedRAM(event_queue._LanedRAM):
    """The queue's laned memory, its pool (words of ``layouts.event``, not indices) in
    :class:`NoCollisionRAM`."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        if isinstance(self.shape, data.Layout):
            m.d.sync += Assert(~(self.ren & self.we & (self.raddr == self.waddr)),
                               "the drain reads a pool word in the clock a push writes it")
        return m


@pytest.fixture(autouse=True)
def pool_without_collisions(monkeypatch):
    """Every dual-port queue built in this module checks its pool with an assertion."""
    monkeypatch.setattr(event_queue, "_LanedRAM", _CheckedLanedRAM)


def random_batch(rng, config, t, size, value_scale=65279):
    """Events of step ``t``'s fan-out that enter the queue: delays 1 .. D - 1, targets bunched."""
    D = config.delay_slots
    hot = rng.randrange(config.neurons)
    events = []
    for _ in range(size):
        d = rng.choice([1, D - 1, rng.randrange(1, D), rng.randrange(1, min(D, 4))])
        target = rng.choice([hot, hot, rng.randrange(config.neurons)])
        value = rng.choice([rng.randint(-value_scale, value_scale), -65280, 65279, 0])
        events.append(((t + 1 + d) % D, target, rng.randrange(config.compartments), value))
    return events


def run_queue(config, seed, steps, *, single_port=False, batch=(0, 12), p_valid=0.7, p_ready=0.7,
              batches=None):
    """Run ``steps`` steps; returns the model and per-step facts.

    ``batches`` (a function of ``(rng, t)``) replaces the random batches. Each step's
    facts: ``drained`` (events), ``pushed`` (offered), ``done`` (the clock of ``done``
    after the ``drain`` pulse, clock 0) and ``idle`` (the first clock with nothing
    left to do).
    """
    rng = random.Random(seed)
    dut = EventQueue(config, single_port=single_port)
    model = QueueModel(config)
    D = config.delay_slots
    facts = []
    lag = not single_port  # the dual-port queue's input register

    async def pulse(ctx, signal):
        ctx.set(signal, 1)
        await ctx.tick()
        ctx.set(signal, 0)

    async def testbench(ctx):
        await pulse(ctx, dut.clear)
        assert ctx.get(dut.done) and not ctx.get(dut.held) and not ctx.get(dut.queue_overflow)
        await ctx.tick()
        for t in range(steps):
            slot = (t + 1) % D
            events = batches(rng, t) if batches else random_batch(rng, config, t, rng.randint(*batch))
            want = model.drain(slot)
            pending = list(events)
            got, done_at, clock, offered = [], None, 0, False
            entering = []  # taken into the input register, counted from the next clock
            quiet_before = False  # last clock: settling, no push taken, no drain pulse
            ctx.set(dut.step, t)
            ctx.set(dut.slot, slot)
            ctx.set(dut.drain, 1)
            while True:
                # a push, once offered, stays offered until taken (the stream rule)
                offered = bool(pending) and (offered or rng.random() < p_valid)
                if offered:
                    s, target, compartment, value = pending[0]
                    ctx.set(dut.push.payload, {"slot": s, "target": target, "compartment": compartment,
                                               "value": value})
                ctx.set(dut.push.valid, offered)
                ctx.set(dut.drained.ready, rng.random() < p_ready)
                _, _, taken, out_valid, out_ready, out, done, busy, settling = await ctx.tick().sample(
                    dut.push.ready, dut.drained.valid, dut.drained.ready, dut.drained.payload, dut.done,
                    dut.busy, dut.settling)
                assert not (quiet_before and busy), f"seed={seed} step {t} clock {clock}: settling, then busy"
                ctx.set(dut.drain, 0)
                just_taken = offered and taken
                quiet_before = settling and not just_taken and clock > 0
                # a dual-port queue counts a push a clock after it takes it (its input
                # register), a single-port one at once
                if entering:
                    model.push(t, entering.pop(0))
                if just_taken:
                    event = pending.pop(0)
                    if lag:
                        entering.append(event)
                    else:
                        model.push(t, event)
                    offered = False
                if out_valid and out_ready:
                    got.append((out.target, out.compartment, out.value))
                if done:
                    assert done_at is None, f"seed={seed} step {t}: done twice"
                    done_at = clock
                assert ctx.get(dut.held) == model.held, f"seed={seed} step {t} clock {clock}: held"
                clock += 1
                # `busy` covers a push from the clock after it is taken
                if not pending and not just_taken and done_at is not None and not busy:
                    break
                assert clock < 10 * (len(events) + len(want)) + 50, f"seed={seed} step {t}: never idle"
            ctx.set(dut.push.valid, 0)
            assert Counter(got) == Counter(want), f"seed={seed} step {t}: drained events"
            facts.append({"drained": len(want), "pushed": len(events), "done": done_at, "idle": clock - 1})
            await pulse(ctx, dut.step_end)
            model.step_end()
            assert ctx.get(dut.held) == model.held, f"seed={seed} step {t}: held after step_end"
            assert ctx.get(dut.queue_overflow) == (model.queue_overflow_step is not None)
            if model.queue_overflow_step is not None:
                assert ctx.get(dut.queue_overflow_step) == model.queue_overflow_step, f"seed={seed}"

        # a clear empties every list and the error; then every slot drains nothing
        await pulse(ctx, dut.clear)
        assert ctx.get(dut.done) and ctx.get(dut.held) == 0 and not ctx.get(dut.queue_overflow)
        for s in range(D):
            ctx.set(dut.slot, s)
            await pulse(ctx, dut.drain)
            _, _, done, valid = await ctx.tick().sample(dut.done, dut.drained.valid)
            assert done and not valid
            assert not ctx.get(dut.busy)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    return model, facts


@pytest.mark.parametrize("single_port", [False, True], ids=["dual-port", "single-port"])
@pytest.mark.parametrize("seed", [1, 2])
def test_drains_match_model(seed, single_port):
    """A queue that never fills: every drained event exact, the free FIFO reused many times."""
    config = event_core(neurons=8, compartments=3, event_queue=64, delay_slots=16)
    model, facts = run_queue(config, seed, steps=150, single_port=single_port, batch=(0, 9))
    assert model.queue_overflow_step is None
    drained = sum(f["drained"] for f in facts)
    assert drained > 8 * config.event_queue, f"seed={seed}: the pool's words were reused too little"
    assert max(f["drained"] for f in facts) >= 8


@pytest.mark.parametrize("single_port", [False, True], ids=["dual-port", "single-port"])
@pytest.mark.parametrize("seed", [4, 5])
def test_queue_overflow_is_sticky_with_its_step(seed, single_port):
    """A small pool overflows: the first step is kept, events beyond capacity are not held."""
    config = event_core(neurons=6, compartments=2, event_queue=20, delay_slots=8)
    model, facts = run_queue(config, seed, steps=60, single_port=single_port, batch=(0, 9))
    assert model.queue_overflow_step is not None, f"seed={seed}: the case never overflowed"


def test_overflow_at_the_exact_push():
    """``held`` counts drained events until step_end: a pool of 7 holding 6 takes one more
    push in a step that drains 3 of them, and drops the next, with 4 words in use."""
    config = event_core(neurons=4, compartments=1, event_queue=7, delay_slots=4)

    def batches(rng, t):
        # step 0: 3 events for slot 2 (arrival 2) and 3 for slot 3 (arrival 3); step 1
        # drains slot 2 while it pushes 4 for slots 0 (arrival 4) and 3: the 1st is held
        # (7), the rest dropped
        if t == 0:
            return [(2, 0, 0, 1), (2, 1, 0, 2), (2, 2, 0, 3), (3, 0, 0, 4), (3, 1, 0, 5), (3, 2, 0, 6)]
        if t == 1:
            return [(0, 3, 0, 7), (0, 3, 0, 8), (0, 3, 0, 9), (3, 3, 0, 10)]
        return []

    for single_port in (False, True):
        model, facts = run_queue(config, 0, steps=5, single_port=single_port, batches=batches,
                                 p_valid=1.0, p_ready=1.0)
        assert model.queue_overflow_step == 1
        assert [f["drained"] for f in facts] == [0, 3, 3, 1, 0]


def test_drain_timing_dual_port():
    """``n`` events with a ready consumer are handed over in ``n + 5`` clocks, pushes or not."""
    config = event_core(neurons=8, compartments=2, event_queue=128, delay_slots=8)
    _, facts = run_queue(config, 7, steps=80, batch=(0, 16), p_valid=1.0, p_ready=1.0)
    assert DRAIN_LATENCY == 5
    assert sum(f["drained"] > 4 for f in facts) > 20
    for f in facts:
        n = f["drained"]
        assert f["done"] == (n + DRAIN_LATENCY - 1 if n else 1), f
        # pushes go on meanwhile from clock 0 (the drain pulse's: the drain reads a copy of
        # the arrival table), the last offered in clock p - 1, taken from the input register
        # in p and written in p + 2
        assert f["idle"] == max(f["pushed"] + 3 if f["pushed"] else 0, f["done"] + 1), f


def test_drain_timing_single_port():
    """Single-port pool: alone, a drain hands over ``n`` events in ``n + 5`` clocks and
    pushes go one a clock; met, they take turns without a gap, so the pool's port is used
    in every clock ``2 .. p + n + 1`` of a step of ``p`` back-to-back pushes (offered from
    the ``drain`` pulse, taken from the clock after, written from clock 3) and ``n``
    drained events (read from clock 2): two clocks per queued event."""
    config = event_core(neurons=8, compartments=2, event_queue=128, delay_slots=8)
    rng = random.Random(3)
    sizes = [rng.choice([0, 1, 5, 12]) for _ in range(60)]

    def drain_or_push(rng, t):  # steps alternate: pushes with delay 1, then their drain
        if t % 2:
            return []
        return [((t + 2) % 8, rng.randrange(8), rng.randrange(2), rng.randint(-9, 9))
                for _ in range(sizes[t])]

    _, facts = run_queue(config, 3, steps=60, single_port=True, batches=drain_or_push, p_valid=1.0,
                         p_ready=1.0)
    for f in facts:
        n, p = f["drained"], f["pushed"]
        assert not (n and p)
        if n:
            assert (f["done"], f["idle"]) == (n + DRAIN_LATENCY - 1, n + DRAIN_LATENCY), f
        elif p:
            assert f["idle"] == p + 3, f  # taken in clocks 1 .. p, written in 3 .. p + 2
    _, facts = run_queue(config, 4, steps=60, single_port=True, batch=(6, 16), p_valid=1.0, p_ready=1.0)
    both = [f for f in facts if f["drained"] and f["pushed"]]
    assert len(both) > 30
    for f in both:
        last = f["pushed"] + f["drained"] + 1
        # the last access is clock p + n + 1: a push's write (idle the next clock) or the
        # drain's last read (its event handed over 3 clocks later)
        assert f["done"] <= last + 3 and f["idle"] == max(last + 1, f["done"] + 1), f


def test_a_stall_delays_the_drain_by_its_length_at_most():
    """A consumer that is not ready for ``k`` clocks in a row, anywhere in a drain of
    ``n``, delays ``done`` from clock ``n + 4`` by at most ``k``: the walk fills the
    output FIFO meanwhile and goes on without a bubble."""
    config = event_core(neurons=8, compartments=2, event_queue=64, delay_slots=8)

    def drain_with_stall(n, start, k):
        dut = EventQueue(config)
        facts = {}

        async def testbench(ctx):
            ctx.set(dut.clear, 1)
            await ctx.tick()
            ctx.set(dut.clear, 0)
            ctx.set(dut.push.valid, 1)
            for i in range(n):
                ctx.set(dut.push.payload, {"slot": 1, "target": i % 8, "compartment": i % 2, "value": i})
                await ctx.tick()
            ctx.set(dut.push.valid, 0)
            await ctx.tick().repeat(3)
            assert not ctx.get(dut.busy)
            ctx.set(dut.slot, 1)
            ctx.set(dut.drain, 1)
            values = []
            for clock in range(n + k + 20):
                ctx.set(dut.drained.ready, not start <= clock < start + k)
                _, _, valid, ready, payload, done = await ctx.tick().sample(
                    dut.drained.valid, dut.drained.ready, dut.drained.payload, dut.done)
                ctx.set(dut.drain, 0)
                if valid and ready:
                    values.append(payload.value)
                if done:
                    facts["done"] = clock
                    break
            facts["values"] = values

        sim = Simulator(dut)
        sim.add_clock(1e-6)
        sim.add_testbench(testbench)
        sim.run()
        return facts

    for n in (1, 2, 6, 13):
        for start in range(0, n + DRAIN_LATENCY + 1, 2):
            for k in (1, 2, 5):
                facts = drain_with_stall(n, start, k)
                assert sorted(facts["values"]) == list(range(n)), (n, start, k, facts)
                late = facts["done"] - (n + DRAIN_LATENCY - 1)
                assert 0 <= late <= k, (n, start, k, facts)
                if start >= DRAIN_LATENCY and start + k <= n + DRAIN_LATENCY - 1:
                    assert late == k, (n, start, k, facts)  # a stall while events flow costs its length


def test_parameters_are_checked():
    with pytest.raises(ValidationError, match="EventQueue.config must be a CoreConfig, not None"):
        EventQueue(None)
    with pytest.raises(ValidationError, match="EventQueue.single_port must be True or False, not 1"):
        EventQueue(event_core(), single_port=1)
