# amaranth: UnusedElaboratable=no
"""Accumulate over a real accumulator bank in the Amaranth simulator, against ``AccumulatorModel``.

Two producers (``direct`` and ``drained``) offer random events with random gaps, many
on one hot word so that adds to one word come back to back; after every step the whole
bank and the sticky error are compared with ``core_model.AccumulatorModel``. The bank's
read port is non-transparent (the adds must forward their own writes) or transparent.
Clock counts and the arbitration are pinned exactly. Every test runs both forwarding
schemes: whole words (the ECP5 cores) and single sums (``config.spram``, the iCE40).
"""

from __future__ import annotations

import random
from dataclasses import replace

import pytest
from amaranth.hdl import Elaboratable, Module
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.sim import Simulator
from core_model import AccumulatorModel, event_core

from neurofab.errors import ValidationError
from neurofab.hdl.accumulate import Accumulate
from neurofab.hdl.layouts import core_layouts


class AccumulateBench(Elaboratable):
    def __init__(self, config, transparent):
        self.dut = Accumulate(config)
        self.bank = Memory(shape=core_layouts(config).accumulator, depth=config.neurons, init=[])
        self.transparent = transparent

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = self.dut
        m.submodules.bank = self.bank
        wr = self.bank.write_port()
        rd = self.bank.read_port(transparent_for=(wr,) if self.transparent else ())
        wiring.connect(m, self.dut.acc_rd, rd)
        wiring.connect(m, self.dut.acc_wr, wr)
        return m


def shaped(config, spram: bool):
    """``config`` as the iCE40's (``spram``: one bank, sums forwarded) or as it is."""
    return replace(config, spram=True, accumulator_banks=1) if spram else config


def random_events(rng, config, size, sign=0):
    """``(target, compartment, value)``; ``sign`` +1/-1 keeps every value of that sign."""
    hot = rng.randrange(config.neurons)
    out = []
    for _ in range(size):
        value = rng.choice([rng.randint(-65280, 65279), -65280, 65279, 0, rng.randint(-5, 5)])
        if sign:
            value = sign * abs(value)
        out.append((rng.choice([hot, hot, hot, rng.randrange(config.neurons)]),
                    rng.randrange(config.compartments), value))
    return out


def run_accumulate(config, seed, batches, *, transparent=False, p_valid=0.7):
    """Offer ``batches[t] = (direct events, drained events)`` at step ``t``; returns the model,
    and per step the clocks each stream's events were taken in and the first idle clock."""
    rng = random.Random(seed)
    bench = AccumulateBench(config, transparent)
    dut = bench.dut
    model = AccumulatorModel(config)
    facts = []

    def word(n):
        return [bench.bank.data[n][c] for c in range(config.compartments)]

    async def testbench(ctx):
        ctx.set(dut.clear, 1)
        await ctx.tick()
        ctx.set(dut.clear, 0)
        for n in range(config.neurons):  # the bank starts at zero (the core's clear)
            assert [ctx.get(v) for v in word(n)] == [0] * config.compartments
        for t, (direct, drained) in enumerate(batches):
            ctx.set(dut.step, t)
            queues = {"direct": list(direct), "drained": list(drained)}
            offered = {"direct": False, "drained": False}
            taken = {"direct": [], "drained": []}
            history = []  # (settling, took, busy) of every clock
            clock = 0
            while True:
                for name in ("direct", "drained"):
                    stream = getattr(dut, name)
                    offered[name] = bool(queues[name]) and (offered[name] or rng.random() < p_valid)
                    if offered[name]:
                        target, compartment, value = queues[name][0]
                        ctx.set(stream.payload,
                                {"target": target, "compartment": compartment, "value": value})
                    ctx.set(stream.valid, offered[name])
                _, _, d_ready, r_ready, busy, settling = await ctx.tick().sample(
                    dut.direct.ready, dut.drained.ready, dut.busy, dut.settling)
                took = False
                for name, ready in (("direct", d_ready), ("drained", r_ready)):
                    if offered[name] and ready:
                        model.add(t, *queues[name].pop(0))
                        taken[name].append(clock)
                        offered[name], took = False, True
                history.append((settling, took, busy))
                if not (queues["direct"] or queues["drained"] or took or busy):
                    break
                clock += 1
                assert clock < 4 * (len(direct) + len(drained)) + 50, "never idle"
            ctx.set(dut.direct.valid, 0)
            ctx.set(dut.drained.valid, 0)
            facts.append({"taken": taken, "idle": clock})
            # `settling` in a clock that takes no event: every write done by the end of the
            # next clock (unless that one takes an event): `busy` low two clocks on
            assert history[-1][0], f"seed={seed} step {t}: idle but not settling"
            for c, (settled, took, _) in enumerate(history):
                if settled and not took and (c + 1 == len(history) or not history[c + 1][1]):
                    assert c + 2 >= len(history) or not history[c + 2][2], f"seed={seed} step {t} clock {c}"
            for n in range(config.neurons):
                assert [ctx.get(v) for v in word(n)] == model.words[n], f"seed={seed} step {t} word {n}"
            assert ctx.get(dut.acc_overflow) == (model.acc_overflow_step is not None), f"seed={seed}"
            if model.acc_overflow_step is not None:
                assert ctx.get(dut.acc_overflow_step) == model.acc_overflow_step, f"seed={seed}"
        ctx.set(dut.clear, 1)
        await ctx.tick()
        assert not ctx.get(dut.acc_overflow) and ctx.get(dut.acc_overflow_step) == 0

    sim = Simulator(bench)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    return model, facts


@pytest.mark.parametrize("spram", [False, True], ids=["words", "sums"])
@pytest.mark.parametrize("transparent", [False, True], ids=["read-first", "transparent"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sums_match_model(seed, transparent, spram):
    """Random interleavings of both streams, hot words hit back to back: every word exact."""
    rng = random.Random(seed)
    shape = dict(neurons=rng.choice([1, 5, 8]), compartments=rng.choice([1, 3, 4]), acc_bits=32)
    config = shaped(event_core(**shape), spram)
    batches = [(random_events(rng, config, rng.randint(0, 12)),
                random_events(rng, config, rng.randint(0, 12))) for _ in range(40)]
    model, _ = run_accumulate(config, seed, batches, transparent=transparent)
    assert model.acc_overflow_step is None
    assert any(abs(v) > 65280 for w in model.words for v in w), "sums never grew past one event"


@pytest.mark.parametrize("spram", [False, True], ids=["words", "sums"])
@pytest.mark.parametrize("seed,sign", [(4, 1), (5, -1)])
def test_overflow_is_sticky_with_its_step(seed, sign, spram):
    """18-bit sums that are never cleared leave the range at the model's step (values of one
    sign: the step does not depend on the order of the adds); the stored sums wrap."""
    rng = random.Random(seed)
    config = shaped(event_core(neurons=2, compartments=2, acc_bits=18), spram)
    batches = [(random_events(rng, config, rng.randint(0, 3), sign),
                random_events(rng, config, rng.randint(0, 3), sign)) for _ in range(12)]
    model, _ = run_accumulate(config, seed, batches)
    assert model.acc_overflow_step is not None and model.acc_overflow_step > 0, f"seed={seed}"


@pytest.mark.parametrize("spram", [False, True], ids=["words", "sums"])
def test_one_event_a_clock_direct_first(spram):
    """Both streams offered back to back: ``direct`` goes first, one event a clock in all,
    and ``n`` events are written ``n + latency`` clocks after the first is taken (3; 2 for
    the iCE40, whose sums are written in the clock of their add)."""
    config = shaped(event_core(neurons=4, compartments=2), spram)
    rng = random.Random(6)
    for n_direct, n_drained in ((5, 0), (0, 5), (4, 7), (9, 2)):
        batch = (random_events(rng, config, n_direct), random_events(rng, config, n_drained))
        _, facts = run_accumulate(config, 6, [batch], p_valid=1.0)
        (f,) = facts
        assert f["taken"]["direct"] == list(range(n_direct))
        assert f["taken"]["drained"] == list(range(n_direct, n_direct + n_drained))
        assert f["idle"] == n_direct + n_drained + Accumulate.latency(config)
    assert Accumulate.latency(config) == (2 if spram else 3)


def test_config_is_checked():
    with pytest.raises(ValidationError, match="Accumulate.config must be a CoreConfig, not 3"):
        Accumulate(3)
