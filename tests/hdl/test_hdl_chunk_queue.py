# amaranth: UnusedElaboratable=no
"""The iCE40 chunked event queue (hdl/chunk_queue.py) in the Amaranth simulator, against a
plain Python model, and its SPRAM/EBR mapping under Yosys ``synth_ice40``.

A run is many timesteps of the iCE40 schedule: pulse ``drain`` of slot ``t mod D`` and
take ``drained`` with random stalls until ``done``; then push a batch of the step's events
(delays 0 .. D - 1, so slots ``t + 1 .. t + D``) with random gaps until the queue is idle.
All the while an aux client reads and writes the pool's rows above the events (random
gaps on the request and the response stream) and checks every response in order. The
model never looks at the hardware: after each drain the events exactly (a slot's list is
drained in push order), ``held`` in the clock of ``done`` and after every push, and the
sticky error with its step.
"""

from __future__ import annotations

import random
from collections import deque

import pytest
from amaranth.sim import Simulator

from neurofab.errors import ValidationError
from neurofab.hdl.chunk_queue import (
    DRAIN_LATENCY,
    POOL_DEPTH,
    ChunkedEventQueue,
)
from neurofab.hdl.config import CoreConfig
from neurofab.hdl.synthesis import synthesize


def chunk_core(*, neurons=8, compartments=2, delay_slots=8, event_queue=40, accumulator_banks=1, spram=True):
    """A small iCE40-style core (one accumulator bank, SPRAM) for the queue tests."""
    return CoreConfig(
        name="test", max_cores=1, neurons=neurons, compartments=compartments, profiles=4, synapse_words=128,
        axons=neurons, route_words=0, delay_slots=delay_slots, event_queue=event_queue, acc_bits=32,
        accumulator_banks=accumulator_banks, spram=spram)


class ChunkQueueModel:
    """The queue as config's rule for one bank states it, and the chunks its lists take.

    ``held`` is +1 a push and loses a drain's events with the drain; a push that finds
    ``held == event_queue`` is dropped and the first such push's step kept. A slot of
    ``k`` events takes ``ceil(k / chunk_events)`` chunks.
    """

    def __init__(self, config: CoreConfig, chunk_events: int):
        self.config = config
        self.chunk_events = chunk_events
        self.slots = [[] for _ in range(config.delay_slots)]
        self.held = 0
        self.queue_overflow_step = None
        self.peak_chunks = 0
        self.opened = 0  # chunks taken by pushes: beyond the pool's, reused from the free FIFO

    def push(self, step: int, event) -> bool:
        slot, target, compartment, value = event
        if self.held == self.config.event_queue:
            if self.queue_overflow_step is None:
                self.queue_overflow_step = step
            return False
        self.slots[slot].append((target, compartment, value))
        self.held += 1
        self.opened += len(self.slots[slot]) % self.chunk_events == 1  # its chunk's first row
        self.peak_chunks = max(self.peak_chunks, self.chunks_in_use())
        return True

    def drain(self, slot: int) -> list:
        events, self.slots[slot] = self.slots[slot], []
        self.held -= len(events)
        return events

    def chunks_in_use(self) -> int:
        return sum(-(-len(events) // self.chunk_events) for events in self.slots)


class AuxClient:
    """Random reads and writes of pool rows ``rows``, every read's response checked in order.

    The queue takes a request in the clock it is offered and answers a read in exactly
    the second clock after (``aux_valid``, ``aux_row``: no ``ready``, this client takes every row).
    Reads go only to rows written before (an unwritten SPRAM row is undefined).
    """

    def __init__(self, rng, rows, p_valid):
        self.rng, self.rows = rng, rows
        self.p_valid = p_valid
        self.clock = 0
        self.due = deque()  # (clock, row) of every read in flight
        self.words = {}
        self.offered = None
        self.reads = self.writes = self.responses = 0
        self.hot = [rows[0], rows[-1]] + [rng.choice(rows) for _ in range(4)]

    def drive(self, ctx, dut):
        if self.offered is None and self.rng.random() < self.p_valid:
            addr = self.rng.choice(self.hot) if self.rng.random() < 0.6 else self.rng.choice(self.rows)
            if addr in self.words and self.rng.random() < 0.6:
                self.offered = {"addr": addr, "write": 0, "data": self.rng.getrandbits(32)}
            else:
                self.offered = {"addr": addr, "write": 1, "data": self.rng.getrandbits(32)}
        ctx.set(dut.aux.valid, self.offered is not None)
        if self.offered is not None:
            ctx.set(dut.aux.payload, self.offered)

    def after_edge(self, taken, data_valid, data):
        """``taken``: aux.valid sampled at the edge; ``data_valid`` and ``data``: aux_valid, aux_row."""
        answer = bool(self.due) and self.due[0][0] == self.clock
        assert data_valid == answer, f"clock {self.clock}: aux_valid {data_valid}, a row due: {answer}"
        if answer:
            want = self.due.popleft()[1]
            assert data == want, f"aux response {data:#x}, the row holds {want:#x}"
            self.responses += 1
        if taken:
            request, self.offered = self.offered, None
            if request["write"]:
                self.words[request["addr"]] = request["data"]
                self.writes += 1
            else:
                self.due.append((self.clock + 2, self.words[request["addr"]]))
                self.reads += 1
        self.clock += 1


def random_batch(rng, config, t, size):
    """Step ``t``'s fan-out: delays 0 .. D - 1 (slots t + 1 .. t + D), slots bunched."""
    D = config.delay_slots
    hot = rng.randrange(D)
    events = []
    for _ in range(size):
        d = rng.choice([0, D - 1, hot, hot, rng.randrange(D), rng.randrange(min(D, 3))])
        value = rng.choice([rng.randint(-65280, 65279), -65280, 65279, 0])
        target, compartment = rng.randrange(config.neurons), rng.randrange(config.compartments)
        events.append(((t + 1 + d) % D, target, compartment, value))
    return events


def run_queue(config, seed, steps, *, pool_chunks, chunk_events, batch=(0, 12), batches=None, p_valid=0.7,
              p_ready=0.7, p_aux=0.0, clear_at=()):
    """Run ``steps`` steps; returns the model after the last step, per-step facts and the aux client.

    ``batches(rng, t, model)`` replaces the random batches. Facts per step: ``drained``
    and ``pushed`` (counts), ``done`` (the clock of ``done`` after the ``drain`` pulse,
    clock 0) and ``idle`` (the first clock of the push phase with ``busy`` low and
    nothing left to push; the first push is offered in clock 0).
    """
    rng = random.Random(seed)
    dut = ChunkedEventQueue(config, pool_chunks=pool_chunks, chunk_events=chunk_events)
    model = ChunkQueueModel(config, chunk_events)
    aux = AuxClient(rng, range(dut.event_rows, POOL_DEPTH), p_aux)
    D = config.delay_slots
    facts = []
    final = {}  # the model as the last step left it (a clear starts a new one)

    async def tick(ctx):
        """One clock: the aux client's inputs, the edge, the aux client's checks."""
        aux.drive(ctx, dut)
        sampled = await ctx.tick().sample(
            dut.aux.valid, dut.aux_valid, dut.aux_row,
            dut.push.ready, dut.drained.valid, dut.drained.ready, dut.drained.payload, dut.done, dut.busy,
            dut.held)
        a_valid, d_valid, d_payload = sampled[2:5]
        aux.after_edge(a_valid, d_valid, d_payload)
        return sampled[5:]

    async def clear(ctx):
        nonlocal model
        ctx.set(dut.clear, 1)
        *_, done, busy, _ = await tick(ctx)
        ctx.set(dut.clear, 0)
        assert not done
        *_, done, busy, held = await tick(ctx)
        assert done and busy and held == 0 and not ctx.get(dut.queue_overflow)
        model = ChunkQueueModel(config, chunk_events)

    async def testbench(ctx):
        await clear(ctx)
        for t in range(steps):
            if t in clear_at:
                await clear(ctx)
            slot = t % D
            ctx.set(dut.step, t)
            # --- the drain ---
            want = model.drain(slot)
            got, done_at, clock = [], None, 0
            ctx.set(dut.slot, slot)
            ctx.set(dut.drain, 1)
            while done_at is None:
                ctx.set(dut.drained.ready, rng.random() < p_ready)
                push_ready, out_valid, out_ready, out, done, busy, held = await tick(ctx)
                ctx.set(dut.drain, 0)
                assert not push_ready, f"seed={seed} step {t} clock {clock}: a push taken during a drain"
                if out_valid and out_ready:
                    got.append((out.target, out.compartment, out.value))
                if done:
                    done_at = clock
                    assert held == model.held, f"seed={seed} step {t}: held in the clock of done"
                clock += 1
                assert clock < 20 * len(want) + 50, f"seed={seed} step {t}: the drain never ended"
            assert got == want, f"seed={seed} step {t}: drained events"
            # --- the pushes ---
            events = batches(rng, t, model) if batches else random_batch(rng, config, t, rng.randint(*batch))
            pending, offered, clock = list(events), False, 0
            while True:
                offered = bool(pending) and (offered or rng.random() < p_valid)
                if offered:
                    s, target, compartment, value = pending[0]
                    ctx.set(dut.push.payload, {"slot": s, "target": target, "compartment": compartment,
                                               "value": value})
                ctx.set(dut.push.valid, offered)
                push_ready, out_valid, _, _, done, busy, _ = await tick(ctx)
                assert not out_valid and not done
                just_taken = offered and push_ready
                if just_taken:
                    model.push(t, pending.pop(0))
                    offered = False
                assert ctx.get(dut.held) == model.held, f"seed={seed} step {t} clock {clock}: held"
                clock += 1
                if not pending and not just_taken and not busy:
                    break
                assert clock < 20 * len(events) + 50, f"seed={seed} step {t}: never idle"
            ctx.set(dut.push.valid, 0)
            facts.append({"drained": len(want), "pushed": len(events), "done": done_at, "idle": clock - 1})
            assert ctx.get(dut.queue_overflow) == (model.queue_overflow_step is not None), f"seed={seed} {t}"
            if model.queue_overflow_step is not None:
                assert ctx.get(dut.queue_overflow_step) == model.queue_overflow_step, f"seed={seed}"

        final["model"] = model
        # the aux client's last responses, then a clear: every slot drains nothing
        ctx.set(dut.aux.valid, 0)
        aux.p_valid = 0.0
        for _ in range(3):
            await tick(ctx)
        assert not aux.due, f"seed={seed}: aux reads never answered"
        await clear(ctx)
        for s in range(D):
            ctx.set(dut.slot, s)
            ctx.set(dut.drain, 1)
            await tick(ctx)
            ctx.set(dut.drain, 0)
            _, valid, _, _, done, _, _ = await tick(ctx)
            assert done and not valid
            assert not ctx.get(dut.busy)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    return final["model"], facts, aux


# -- against the model --------------------------------------------------------------------

@pytest.mark.parametrize("seed, chunk_events", [(1, 4), (2, 2), (3, 8)])
def test_random_steps_with_aux_traffic_match_model(seed, chunk_events):
    """Random pushes and drains, random gaps on every stream, aux reads and writes all
    the while, a clear in the middle: every drained event exact, in push order."""
    config = chunk_core(neurons=8, compartments=3, delay_slots=8, event_queue=40)
    pool_chunks = config.event_queue // chunk_events + config.delay_slots + 1
    model, facts, aux = run_queue(config, seed, steps=90, pool_chunks=pool_chunks, chunk_events=chunk_events,
                                  batch=(0, 7), p_aux=0.35, clear_at=(45,))
    assert model.queue_overflow_step is None
    drained = sum(f["drained"] for f in facts)
    assert drained > 8 * pool_chunks, f"seed={seed}: the chunks were reused too little"
    assert max(f["drained"] for f in facts) > chunk_events, f"seed={seed}: no drain crossed chunks"
    assert aux.reads > 100 and aux.writes > 100 and aux.responses == aux.reads


@pytest.mark.parametrize("seed", [4, 5])
def test_queue_overflow_is_sticky_with_its_step(seed):
    """A small queue overflows: the first step is kept, dropped events never come out."""
    config = chunk_core(neurons=6, compartments=2, delay_slots=4, event_queue=12)
    model, facts, _ = run_queue(config, seed, steps=40, pool_chunks=9, chunk_events=4, batch=(3, 12),
                                p_aux=0.2)
    assert model.queue_overflow_step is not None, f"seed={seed}: the case never overflowed"


def test_overflow_at_the_exact_push():
    """``held`` loses a drain's events with the drain: a queue of 7 holding 7 drains 3 at
    step 2, takes 3 pushes and drops the 4th, at step 2."""
    config = chunk_core(neurons=4, compartments=1, delay_slots=4, event_queue=7)

    def batches(rng, t, model):
        if t == 0:  # 3 arriving at 2, 4 at 3: 7 held
            return [(2, 0, 0, 1), (2, 1, 0, 2), (2, 2, 0, 3), (3, 0, 0, 4), (3, 1, 0, 5), (3, 2, 0, 6),
                    (3, 3, 0, 7)]
        if t == 1:  # full: dropped, the error's step is 1
            return [(0, 3, 0, 8)]
        return []

    model, facts, _ = run_queue(config, 0, steps=5, pool_chunks=9, chunk_events=2, batches=batches,
                                p_valid=1.0, p_ready=1.0)
    assert model.queue_overflow_step == 1
    assert [f["drained"] for f in facts] == [0, 0, 3, 4, 0]

    def batches2(rng, t, model):
        if t == 0:
            return [(2, 0, 0, 1), (2, 1, 0, 2), (2, 2, 0, 3), (3, 0, 0, 4), (3, 1, 0, 5), (3, 2, 0, 6)]
        if t == 2:  # 3 drained: 3 held; 4 more fit, the 5th is dropped
            return [(3, 3, 0, 9)] * 3 + [(0, 1, 0, 10), (1, 2, 0, 11)]
        return []

    model, facts, _ = run_queue(config, 0, steps=6, pool_chunks=9, chunk_events=2, batches=batches2,
                                p_valid=1.0, p_ready=1.0)
    assert model.queue_overflow_step == 2
    assert [f["drained"] for f in facts] == [0, 0, 3, 6, 1, 0]


# -- the physical bound -------------------------------------------------------------------

def adversarial_batches(config, chunk_events):
    """Each step fills the queue to ``event_queue`` exactly, every event opening a new
    chunk where it can (an empty slot or a full tail) and else filling the fullest tail:
    the most chunks ``event_queue`` events can take."""
    D, C = config.delay_slots, chunk_events

    def batches(rng, t, model):
        counts = [len(events) for events in model.slots]
        events = []
        for _ in range(config.event_queue - model.held):
            opening = [s for s in range(D) if counts[s] % C == 0]
            if opening:
                s = rng.choice(opening)
            else:
                s = max(range(D), key=lambda s: (counts[s] % C, rng.random()))
            counts[s] += 1
            events.append((s, rng.randrange(config.neurons), rng.randrange(config.compartments),
                           rng.randint(-65280, 65279)))
        return events

    return batches


@pytest.mark.parametrize("chunk_events, delay_slots, pool_chunks, steps", [
    (4, 8, 16, 32), (2, 16, 32, 64),
    (64, 64, 224, 70),  # docs/ice40-plan.md's pool: event_queue 10,176, 222 of 224 chunks in use
], ids=["C4-D8", "C2-D16", "plan"])
def test_physical_bound_holds_against_the_worst_pattern(chunk_events, delay_slots, pool_chunks, steps):
    """``event_queue`` at the constructor's bound, ``(pool_chunks - D - 1) * C``, and a
    pattern that spreads it over as many chunks as it can: every event still comes out
    right (a push that found no chunk would overwrite a held one), and the pattern takes
    more chunks than ``event_queue / C``, so it is adversarial."""
    config = chunk_core(neurons=512, compartments=4, delay_slots=delay_slots,
                        event_queue=(pool_chunks - delay_slots - 1) * chunk_events)
    model, facts, _ = run_queue(config, 11, steps=steps, pool_chunks=pool_chunks,
                                chunk_events=chunk_events, batches=adversarial_batches(config, chunk_events),
                                p_valid=0.9, p_ready=0.8, p_aux=0.1)
    assert model.queue_overflow_step is None
    # the most chunks event_queue events in D slots can take: one each, then C more per chunk
    most = delay_slots + (config.event_queue - delay_slots) // chunk_events
    assert model.peak_chunks == most > config.event_queue // chunk_events
    # every chunk was used, and then many taken from the free FIFO
    assert model.opened > pool_chunks + delay_slots, model.opened


# -- exact clocks ---------------------------------------------------------------------------

def test_clocks_of_drains_and_pushes_uncontended():
    """No aux traffic, ready streams: a drain of ``n`` ends (``done``) in clock ``n + 3``
    (an empty slot: 1), ``p`` pushes leave the queue idle from clock ``p + 1``."""
    config = chunk_core(delay_slots=8, event_queue=96)
    _, facts, _ = run_queue(config, 7, steps=60, pool_chunks=33, chunk_events=4, batch=(0, 20), p_valid=1.0,
                            p_ready=1.0)
    assert DRAIN_LATENCY == 4
    assert sum(f["drained"] > 8 for f in facts) > 10
    for f in facts:
        n, p = f["drained"], f["pushed"]
        assert f["done"] == (n + DRAIN_LATENCY - 1 if n else 1), f
        assert f["idle"] == (p + 1 if p else 0), f


def scripted(config, *, pool_chunks, chunk_events, pushes, aux_clocks, stall=()):
    """``pushes`` events (slot, target, compartment, value) from clock 0 back to back, then
    a drain of slot 1; aux writes offered in the clocks ``aux_clocks`` (counted from the
    first push, and again from the ``drain`` pulse), the consumer not ready in the clocks
    ``stall`` (from the pulse). Returns (idle clock after the pushes, done clock, values)."""
    dut = ChunkedEventQueue(config, pool_chunks=pool_chunks, chunk_events=chunk_events)
    facts = {}

    async def testbench(ctx):
        ctx.set(dut.clear, 1)
        await ctx.tick()
        ctx.set(dut.clear, 0)
        await ctx.tick()
        pending = list(pushes)
        for clock in range(4 * len(pushes) + 20):
            offered = bool(pending)
            ctx.set(dut.aux.valid, clock in aux_clocks)
            ctx.set(dut.aux.payload, {"addr": POOL_DEPTH - 1, "write": 1, "data": clock})
            if pending:
                s, target, compartment, value = pending[0]
                ctx.set(dut.push.payload, {"slot": s, "target": target, "compartment": compartment,
                                           "value": value})
            ctx.set(dut.push.valid, bool(pending))
            *_, ready, busy = await ctx.tick().sample(dut.push.ready, dut.busy)
            just_taken = offered and ready
            if just_taken:
                pending.pop(0)
            if not pending and not just_taken and not busy:
                facts["idle"] = clock
                break
        ctx.set(dut.push.valid, 0)
        ctx.set(dut.slot, 1)
        ctx.set(dut.drain, 1)
        values = []
        for clock in range(4 * len(pushes) + 20):
            ctx.set(dut.aux.valid, clock in aux_clocks)
            ctx.set(dut.drained.ready, clock not in stall)
            *_, valid, ready, payload, done = await ctx.tick().sample(
                dut.drained.valid, dut.drained.ready, dut.drained.payload, dut.done)
            ctx.set(dut.drain, 0)
            if valid and ready:
                values.append(payload.value)
            if done:
                facts["done"] = clock
                break
        ctx.set(dut.aux.valid, 0)
        facts["values"] = values

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    return facts["idle"], facts["done"], facts["values"]


def test_each_aux_access_delays_pushes_and_drains_by_one_clock():
    """An aux access takes the pool's port in its clock: ``k`` of them among the push
    writes (clocks 1 .. p) or the drain's reads (clocks 2 .. n + 1) delay the end by
    exactly ``k``."""
    config = chunk_core(delay_slots=4, event_queue=32)
    for n in (1, 3, 9):
        pushes = [(1, i % 8, i % 2, i) for i in range(n)]
        alone = scripted(config, pool_chunks=13, chunk_events=4, pushes=pushes, aux_clocks=())
        assert alone == (n + 1, n + 3, list(range(n)))
        rng = random.Random(n)
        for k in (1, 2, n):
            aux_clocks = set(rng.sample(range(2, n + 2), min(k, n)))
            idle, done, values = scripted(config, pool_chunks=13, chunk_events=4, pushes=pushes,
                                          aux_clocks=aux_clocks)
            # each aux access in a clock with a write (from 1) or a read (from 2) due
            # pushes the last of them back one clock
            last_write, last_read = n, n + 1
            for c in sorted(aux_clocks):
                last_write += 1 <= c <= last_write
                last_read += 2 <= c <= last_read
            assert last_read == n + 1 + len(aux_clocks)  # every one of them met a read
            assert values == list(range(n)), (n, aux_clocks)
            assert done == last_read + 2, (n, aux_clocks, done)
            assert idle == last_write + 1, (n, aux_clocks, idle)


def test_a_stall_delays_the_drain_by_its_length_at_most():
    """A consumer not ready ``k`` clocks in a row delays ``done`` by at most ``k``, and by
    exactly ``k`` while events flow."""
    config = chunk_core(delay_slots=4, event_queue=32)
    for n in (1, 2, 6, 13):
        pushes = [(1, i % 8, i % 2, i) for i in range(n)]
        for start in range(0, n + DRAIN_LATENCY, 3):
            for k in (1, 4):
                _, done, values = scripted(config, pool_chunks=13, chunk_events=4, pushes=pushes,
                                           aux_clocks=(), stall=set(range(start, start + k)))
                assert values == list(range(n)), (n, start, k)
                late = done - (n + DRAIN_LATENCY - 1)
                assert 0 <= late <= k, (n, start, k, done)
                if start >= DRAIN_LATENCY and start + k <= n + DRAIN_LATENCY - 1:
                    assert late == k, (n, start, k, done)


def test_aux_reads_one_a_clock_each_answered_in_its_second_clock():
    """Back-to-back aux reads: one taken a clock, each row ``valid`` in exactly the second
    clock after its read and held on the payload until the next read's row; writes and
    idle clocks between reads give no response."""
    config = chunk_core(delay_slots=4, event_queue=32)
    dut = ChunkedEventQueue(config, pool_chunks=13, chunk_events=4)
    base = dut.event_rows

    async def testbench(ctx):
        for i in range(8):  # write rows base .. base + 7
            ctx.set(dut.aux.valid, 1)
            ctx.set(dut.aux.payload, {"addr": base + i, "write": 1, "data": 0x1000 + i})
            *_, valid = await ctx.tick().sample(dut.aux_valid)
            assert not valid
        # reads in clocks 0 .. 7 (rows base + 7 .. base), a write in 8, a read in 10
        answers = []
        for clock in range(14):
            row = base + (7 - clock if clock < 8 else 2)
            ctx.set(dut.aux.valid, clock < 8 or clock in (8, 10))
            ctx.set(dut.aux.payload, {"addr": row, "write": int(clock == 8), "data": 0x2000})
            *_, valid, payload = await ctx.tick().sample(dut.aux_valid, dut.aux_row)
            if valid:
                answers.append((clock, payload))
            elif clock == 11:  # the gap after the last of 0 .. 7: the last row stays on the payload
                assert payload == 0x1000
        assert answers == [(c + 2, 0x1000 + 7 - c) for c in range(8)] + [(12, 0x2000)]

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()


# -- parameters ---------------------------------------------------------------------------

def test_parameters_are_checked():
    with pytest.raises(ValidationError, match="ChunkedEventQueue.config must be a CoreConfig, not None"):
        ChunkedEventQueue(None, pool_chunks=224)
    with pytest.raises(ValidationError, match="core.accumulator_banks must be 1 .*not 2"):
        ChunkedEventQueue(chunk_core(accumulator_banks=2), pool_chunks=60, chunk_events=4)
    with pytest.raises(ValidationError, match="core.spram must be true .*not False"):
        ChunkedEventQueue(chunk_core(spram=False), pool_chunks=60, chunk_events=4)
    with pytest.raises(ValidationError,
                       match=r"core.event_queue must be at most .* = \(16 - 8 - 1\) \* 4 = 28 .*not 29"):
        ChunkedEventQueue(chunk_core(delay_slots=8, event_queue=29), pool_chunks=16, chunk_events=4)
    ChunkedEventQueue(chunk_core(delay_slots=8, event_queue=28), pool_chunks=16, chunk_events=4)
    with pytest.raises(ValidationError,
                       match="ChunkedEventQueue.chunk_events must be a power of two from 2, not 3"):
        ChunkedEventQueue(chunk_core(), pool_chunks=60, chunk_events=3)
    with pytest.raises(ValidationError, match="ChunkedEventQueue.chunk_events .*not 1"):
        ChunkedEventQueue(chunk_core(), pool_chunks=60, chunk_events=1)
    with pytest.raises(ValidationError,
                       match=r"ChunkedEventQueue.pool_chunks must be an integer in 10 \.\. 256 .*not 257"):
        ChunkedEventQueue(chunk_core(), pool_chunks=257, chunk_events=2)
    with pytest.raises(ValidationError, match="ChunkedEventQueue.pool_chunks .*not 9"):
        ChunkedEventQueue(chunk_core(), pool_chunks=9, chunk_events=4)
    with pytest.raises(ValidationError, match="ChunkedEventQueue.pool_chunks 256 chunks of 128 events are "
                       "32768 rows, more than the pool's 16384"):
        ChunkedEventQueue(chunk_core(), pool_chunks=256, chunk_events=128)
    with pytest.raises(ValidationError,
                       match="core.neurons 65536 neurons x 4 compartments make a 35-bit event"):
        ChunkedEventQueue(chunk_core(neurons=1 << 16, compartments=4), pool_chunks=60, chunk_events=4)
    with pytest.raises(ValidationError,
                       match="ChunkedEventQueue.primitive must be True, False or None, not 1"):
        ChunkedEventQueue(chunk_core(), pool_chunks=60, chunk_events=4, primitive=1)


# -- synth_ice40 --------------------------------------------------------------------------------

def test_icebreaker_queue_maps_to_two_sprams_and_few_ebr(record_property):
    """docs/ice40-plan.md's queue: 512 neurons x 4 compartments, 64 slots, 8,192 events in
    224 chunks of 64: the pool is 2 SB_SPRAM256KA, the links, free FIFO and arrival table
    at most 4 SB_RAM40_4K."""
    config = chunk_core(neurons=512, compartments=4, delay_slots=64, event_queue=8192)
    dut = ChunkedEventQueue(config, pool_chunks=224, chunk_events=64, primitive=True)
    report = synthesize(dut, family="ice40", top="chunk_queue")
    record_property("synthesis", report.summary())
    print(report.summary())
    assert report.cells.get("SB_SPRAM256KA", 0) == 2, report.cells
    assert report.brams <= 4, report.summary()
    assert report.dsps == 0, report.summary()
