# amaranth: UnusedElaboratable=no
"""The neuron update pipeline in the Amaranth simulator, against the plain model.

Every test streams inputs through ``NeuronUpdate`` with a producer and a consumer
testbench and compares every output, in order, with ``neuron_model.neuron_update``.
Random cases log their seed in the test id.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace

import pytest
from amaranth.sim import Simulator
from neuron_model import NeuronInput, NeuronOutput, neuron_update, random_inputs

from neurofab.errors import ValidationError
from neurofab.hdl.neuron import PARAMS_LAYOUT, NeuronUpdate

V_MIN = -(1 << 23)
V_MAX = (1 << 23) - 1


@dataclass
class StreamRun:
    """What one simulation saw: outputs in order, and on which cycle each transfer happened."""

    outputs: list[NeuronOutput] = field(default_factory=list)
    accepted: list[int] = field(default_factory=list)
    emitted: list[int] = field(default_factory=list)
    stalled_input_cycles: int = 0
    settle_waits: int = 0  # shared_params: clocks the producer waited for ``settled``


def run_stream(dut: NeuronUpdate, inputs: list[NeuronInput], *, seed: int = 0,
               p_valid: float = 1.0, p_ready: float = 1.0, ready_pattern=None) -> StreamRun:
    """Push ``inputs`` through ``dut`` and collect every output.

    The producer offers the next item with probability ``p_valid`` per cycle and, once it
    offers one, holds it until it is taken (the stream rule). The consumer raises
    ``o.ready`` with probability ``p_ready`` per cycle, or as ``ready_pattern(cycle)``.
    A ``shared_params`` pipeline gets each item's parameters on ``params``: before an
    item whose parameters differ from the ones there, the producer waits for
    ``settled`` and changes them at that clock's edge (``run.settle_waits`` counts the
    clocks it waited).
    """
    rng = random.Random(seed)
    run = StreamRun()
    shared = hasattr(dut, "params")
    params = [name for name, _ in PARAMS_LAYOUT]
    # A hang is a failure, not a timeout: the bound is in cycles, far above any valid run.
    cycle_limit = 100 * len(inputs) + 100

    async def producer(ctx):
        cycle = 0
        k = 0
        offering = False
        current = None  # the parameters on dut.params
        while k < len(inputs):
            if not offering and rng.random() < p_valid:
                item = inputs[k].as_fields()
                if shared:
                    wanted = {name: item.pop(name) for name in params}
                    if wanted != current:
                        ctx.set(dut.i.valid, 0)
                        while not ctx.get(dut.settled):
                            run.settle_waits += 1
                            cycle += 1
                            await ctx.tick()
                        ctx.set(dut.params, wanted)
                        current = wanted
                ctx.set(dut.i.payload, item)
                offering = True
            ctx.set(dut.i.valid, offering)
            _, _, valid, ready = await ctx.tick().sample(dut.i.valid, dut.i.ready)
            if valid and not ready:
                run.stalled_input_cycles += 1
            if valid and ready:
                run.accepted.append(cycle)
                k += 1
                offering = False
            cycle += 1
            assert cycle < cycle_limit, f"producer stuck after {k} of {len(inputs)} items"
        ctx.set(dut.i.valid, 0)

    async def consumer(ctx):
        cycle = 0
        while len(run.outputs) < len(inputs):
            ready = ready_pattern(cycle) if ready_pattern else rng.random() < p_ready
            ctx.set(dut.o.ready, ready)
            _, _, valid, ready, payload = await ctx.tick().sample(dut.o.valid, dut.o.ready, dut.o.payload)
            if valid and ready:
                run.outputs.append(NeuronOutput(tag=payload.tag, v=payload.v, r=payload.r, lfsr=payload.lfsr,
                                                spike=payload.spike, payload=payload.payload))
                run.emitted.append(cycle)
            cycle += 1
            assert cycle < cycle_limit, f"consumer got only {len(run.outputs)} of {len(inputs)} items"
        # Nothing more may come out: an extra item would be a duplicate.
        ctx.set(dut.o.ready, 1)
        for _ in range(2 * NeuronUpdate.LATENCY):
            _, _, valid = await ctx.tick().sample(dut.o.valid)
            assert not valid, "the pipeline produced more items than it was given"

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(producer)
    sim.add_testbench(consumer)
    sim.run()
    return run


def assert_matches_model(inputs: list[NeuronInput], outputs: list[NeuronOutput]) -> None:
    assert len(outputs) == len(inputs)
    for k, (x, got) in enumerate(zip(inputs, outputs, strict=True)):
        expected = neuron_update(x)
        assert got == expected, f"item {k}: input {x}\n  expected {expected}\n  got      {got}"


def base_input(**changes) -> NeuronInput:
    """A quiet, valid neuron (the API defaults) with the given fields changed."""
    fields = dict(tag=0, dendritic=0, noise=0, graded=0, v=0, r=0, lfsr=0xACE1, threshold=1000, leak=3,
                  resting=0, refrac=3, dend_threshold=500, a=(0, 0, 0, 0), s=0)
    fields.update(changes)
    return NeuronInput(**fields)


# Hand-worked cases: each is (name, input, the expected (v, r, spike, payload)), worked
# out from docs/model.md by hand, so a wrong model cannot hide behind agreeing RTL.
EDGE_CASES = [
    ("rest_stays", base_input(), (0, 0, 0, 0)),
    ("leak_down", base_input(v=500), (497, 0, 0, 0)),
    ("leak_up", base_input(v=-500), (-497, 0, 0, 0)),
    ("leak_stops_at_resting", base_input(v=2, resting=0, leak=65535), (0, 0, 0, 0)),
    ("leak_up_stops_at_resting", base_input(v=V_MIN, resting=V_MIN + 10, leak=65535), (V_MIN + 10, 0, 0, 0)),
    ("leak_zero", base_input(v=777, leak=0), (777, 0, 0, 0)),
    ("leak_max", base_input(v=100_000, leak=65535, threshold=V_MAX), (100_000 - 65535, 0, 0, 0)),
    ("leak_before_input", base_input(v=998, a=(5, 0, 0, 0)), (0, 3, 1, 0)),
    ("just_below_threshold", base_input(v=996, a=(3, 0, 0, 0)), (996, 0, 0, 0)),
    ("saturate_up", base_input(v=V_MAX, leak=0, threshold=V_MAX, resting=0, a=(1 << 30,) * 4, s=1 << 30),
     (0, 3, 1, 0)),
    ("saturate_up_no_spike", base_input(v=V_MAX - 5, leak=0, threshold=V_MAX, a=(1, 0, 0, 0)),
     (V_MAX - 4, 0, 0, 0)),
    ("saturate_down", base_input(v=V_MIN, leak=0, a=(-(1 << 31),) * 4, s=-(1 << 31)), (V_MIN, 0, 0, 0)),
    ("one_saturation_not_two", base_input(v=0, leak=0, a=(1 << 24, 0, 0, 0), s=-(1 << 24) + 5),
     (5, 0, 0, 0)),
    # A 32-bit accumulator would wrap these; the model sums exactly, then saturates once.
    ("no_wrap_positive", base_input(leak=0, a=((1 << 31) - 1,) * 4, s=-(1 << 31)), (0, 3, 1, 0)),
    ("no_wrap_negative", base_input(leak=0, a=(-(1 << 31),) * 4, s=(1 << 31) - 1), (V_MIN, 0, 0, 0)),
    ("refractory_discards_input", base_input(v=123, r=1, a=(10**6, 0, 0, 0), s=10**6), (0, 0, 0, 0)),
    ("refractory_counts_down", base_input(v=0, r=255, resting=-7), (-7, 254, 0, 0)),
    ("refractory_ignores_noise", base_input(r=2, noise=1, lfsr=0x00FF), (0, 1, 0, 0)),
    ("refrac_zero_fires_again", base_input(v=999, leak=0, refrac=0, a=(1, 0, 0, 0)), (0, 0, 1, 0)),
    ("refrac_max_load", base_input(v=999, leak=0, refrac=255, a=(1, 0, 0, 0)), (0, 255, 1, 0)),
    ("dendritic_at_threshold_passes", base_input(dendritic=1, leak=0, a=(0, 500, 499, 500)), (0, 3, 1, 0)),
    ("dendritic_below_blocked", base_input(dendritic=1, leak=0, a=(0, 499, 499, 499)), (0, 0, 0, 0)),
    ("dendritic_soma_never_gated", base_input(dendritic=1, leak=0, a=(-5, 499, 1000, -800)), (995, 0, 0, 0)),
    ("not_dendritic_sums_all", base_input(dendritic=0, leak=0, a=(0, 499, 499, 2)), (0, 3, 1, 0)),
    ("dendritic_zero_threshold", base_input(dendritic=1, leak=0, dend_threshold=0, a=(0, 0, -1, 7)),
     (7, 0, 0, 0)),
    ("graded_at_threshold", base_input(graded=1, leak=0, a=(1000, 0, 0, 0)), (0, 3, 1, 128)),
    ("graded_rounds_down", base_input(graded=1, leak=0, a=(1015, 0, 0, 0)), (0, 3, 1, 129)),
    ("graded_just_below_cap", base_input(graded=1, leak=0, a=(1000 + 126 * 8 + 7, 0, 0, 0)), (0, 3, 1, 254)),
    ("graded_at_cap", base_input(graded=1, leak=0, a=(1000 + 127 * 8, 0, 0, 0)), (0, 3, 1, 255)),
    ("graded_far_past_cap", base_input(graded=1, leak=0, s=1 << 30), (0, 3, 1, 255)),
    ("ungraded_payload_zero", base_input(graded=0, leak=0, s=1 << 30), (0, 3, 1, 0)),
    # lfsr 0x00FF advances to 0xB47F: noise (0x7F - 128) = -1.
    ("noise_minus_one", base_input(noise=1, leak=0, v=10, lfsr=0x00FF), (9, 0, 0, 0)),
    # lfsr 0x0100 advances to 0x0080: noise 0.
    ("noise_zero", base_input(noise=1, leak=0, v=10, lfsr=0x0100), (10, 0, 0, 0)),
    # lfsr 0x0000 stays 0: noise -128, saturating at the bottom.
    ("noise_saturates_down", base_input(noise=1, leak=0, v=V_MIN + 5, resting=V_MIN, lfsr=0),
     (V_MIN, 0, 0, 0)),
    # lfsr 0x01FE advances to 0x00FF: noise +127, and that crosses the threshold.
    ("noise_fires", base_input(noise=1, leak=0, v=873, lfsr=0x01FE), (0, 3, 1, 0)),
    ("noise_after_saturation", base_input(noise=1, leak=0, v=0, threshold=V_MAX, lfsr=0x0100, s=1 << 30),
     (0, 3, 1, 0)),
    ("threshold_max_unreachable_minus_noise",
     base_input(noise=1, leak=0, v=0, threshold=V_MAX, lfsr=0x00FF, s=1 << 30), (V_MAX - 1, 0, 0, 0)),
    # The saturation edges, seen through the graded payload ((v - threshold) >> 3 + 128):
    # a v of V_MAX, 40 above the threshold, pays 133.
    ("sum_exactly_max", base_input(graded=1, leak=0, threshold=V_MAX - 40, a=(V_MAX, 0, 0, 0)),
     (0, 3, 1, 133)),
    ("sum_one_past_max", base_input(graded=1, leak=0, threshold=V_MAX - 40, a=(V_MAX + 1, 0, 0, 0)),
     (0, 3, 1, 133)),
    ("sum_just_below_max", base_input(graded=1, leak=0, threshold=V_MAX - 40, a=(V_MAX - 8, 0, 0, 0)),
     (0, 3, 1, 132)),
    ("sum_exactly_min", base_input(leak=0, resting=V_MIN, a=(V_MIN, 0, 0, 0)), (V_MIN, 0, 0, 0)),
    ("sum_one_above_min", base_input(leak=0, resting=V_MIN, a=(V_MIN + 1, 0, 0, 0)), (V_MIN + 1, 0, 0, 0)),
    # lfsr 0x01FE advances to 0x00FF: noise +127 takes V_MAX - 3 past the top, to V_MAX.
    ("noise_saturates_up",
     base_input(noise=1, graded=1, leak=0, v=V_MAX - 3, threshold=V_MAX - 40, lfsr=0x01FE), (0, 3, 1, 133)),
    # Noise after a saturation, each end and each sign (lfsr 0x01FE: +127, 0x0100: 0,
    # 0x00FF: -1, 0x0000: -128).
    ("saturated_top_plus_noise",
     base_input(noise=1, graded=1, leak=0, threshold=V_MAX - 40, lfsr=0x01FE, s=1 << 30), (0, 3, 1, 133)),
    ("saturated_top_minus_128", base_input(noise=1, leak=0, threshold=V_MAX, lfsr=0x0000, s=1 << 30),
     (V_MAX - 128, 0, 0, 0)),
    ("saturated_bottom_minus_noise", base_input(noise=1, leak=0, lfsr=0x00FF, s=-(1 << 30)),
     (V_MIN, 0, 0, 0)),
    ("saturated_bottom_plus_noise", base_input(noise=1, leak=0, lfsr=0x01FE, s=-(1 << 30)),
     (V_MIN + 127, 0, 0, 0)),
    ("saturated_bottom_noise_zero", base_input(noise=1, leak=0, lfsr=0x0100, s=-(1 << 30)), (V_MIN, 0, 0, 0)),
    # The widest v - threshold, both ways (25 bits).
    ("fire_widest_excess", base_input(graded=1, leak=0, v=V_MAX, threshold=V_MIN, resting=V_MIN),
     (V_MIN, 3, 1, 255)),
    ("no_fire_widest_deficit", base_input(graded=1, leak=0, v=V_MIN, threshold=V_MAX, resting=V_MIN),
     (V_MIN, 0, 0, 0)),
    ("leak_down_lands_on_resting", base_input(v=503, leak=3, resting=500), (500, 0, 0, 0)),
    ("leak_up_lands_on_resting", base_input(v=497, leak=3, resting=500), (500, 0, 0, 0)),
    ("leak_down_one_short_of_resting", base_input(v=504, leak=3, resting=500), (501, 0, 0, 0)),
]


@pytest.mark.parametrize("name, x, expected", EDGE_CASES, ids=[c[0] for c in EDGE_CASES])
def test_model_edge_cases(name, x, expected):
    got = neuron_update(x)
    assert (got.v, got.r, got.spike, got.payload) == expected


def test_edge_cases_on_hardware():
    inputs = [replace(x, tag=k) for k, (_, x, _) in enumerate(EDGE_CASES)]
    run = run_stream(NeuronUpdate(), inputs)
    for (name, _, expected), got in zip(EDGE_CASES, run.outputs, strict=True):
        assert (got.v, got.r, got.spike, got.payload) == expected, name
    assert_matches_model(inputs, run.outputs)


WIDTHS = {
    "default": dict(input_width=32, stimulus_width=32, tag_width=16),
    "narrow": dict(input_width=20, stimulus_width=24, tag_width=0),
    "wide": dict(input_width=48, stimulus_width=40, tag_width=20),
}


@pytest.mark.parametrize("widths", list(WIDTHS), ids=list(WIDTHS))
@pytest.mark.parametrize("seed", [1, 2])
def test_random_updates_with_backpressure(widths, seed):
    """Thousands of random updates, random gaps on the input and random stalls on the output."""
    inputs = random_inputs(seed, 2000, **WIDTHS[widths])
    run = run_stream(NeuronUpdate(**WIDTHS[widths]), inputs, seed=seed, p_valid=0.8, p_ready=0.6)
    assert_matches_model(inputs, run.outputs)
    # The run really exercised what it claims to.
    assert run.stalled_input_cycles > 100
    expected = [neuron_update(x) for x in inputs]
    assert sum(e.spike for e in expected) > 200
    assert len({e.payload for e in expected if e.payload}) > 50


@pytest.mark.parametrize("seed", [1, 2])
def test_shared_params_match_model(seed):
    """``shared_params`` (the iCE40's profile cache): runs of neurons with one profile,
    random gaps and stalls, the parameters changed only when ``settled``: the model's
    results, and ``i`` and the stages hold no parameter field."""
    rng = random.Random(seed)
    inputs = random_inputs(seed, 600, input_width=20, stimulus_width=32, tag_width=12)
    profile = {}
    for k, x in enumerate(inputs):  # runs of 1 to 40 neurons with one profile
        if not profile or rng.random() < 0.08:
            profile = {name: getattr(x, name) for name, _ in PARAMS_LAYOUT}
        inputs[k] = replace(x, **profile)
    dut = NeuronUpdate(input_width=20, stimulus_width=32, tag_width=12, shared_params=True)
    assert not {name for name, _ in PARAMS_LAYOUT} & {name for name, _ in dut.i.payload.shape()}
    run = run_stream(dut, inputs, seed=seed, p_valid=0.9, p_ready=0.6)
    assert_matches_model(inputs, run.outputs)
    assert run.settle_waits > 30 and run.stalled_input_cycles > 30


def test_shared_params_settle_after_the_last_reader():
    """Full flow: ``settled`` rises as the last item reaches the last stage, LATENCY - 1
    clocks after it was accepted (the last stage's output register reads no parameter)."""
    inputs = random_inputs(5, 3, input_width=20, stimulus_width=32, tag_width=12)
    inputs = [replace(x, **{name: getattr(inputs[0], name) for name, _ in PARAMS_LAYOUT}) for x in inputs]
    dut = NeuronUpdate(input_width=20, stimulus_width=32, tag_width=12, shared_params=True)
    settled = []

    async def bench(ctx):
        first = inputs[0].as_fields()
        ctx.set(dut.params, {name: first[name] for name, _ in PARAMS_LAYOUT})
        ctx.set(dut.o.ready, 1)
        for clock in range(12):
            if clock < len(inputs):
                item = inputs[clock].as_fields()
                ctx.set(dut.i.payload, {k: v for k, v in item.items() if k not in first or k in
                                        {name for name, _ in dut.i.payload.shape()}})
            ctx.set(dut.i.valid, clock < len(inputs))
            settled.append(ctx.get(dut.settled))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    # items accepted on clocks 0, 1, 2; the last is in the last stage's register from clock 2 + 6 - 1
    assert settled == [1] + [0] * (2 + NeuronUpdate.LATENCY - 1) + [1] * (12 - 2 - NeuronUpdate.LATENCY)


def test_shared_params_must_be_a_bool():
    with pytest.raises(ValidationError, match="NeuronUpdate.shared_params"):
        NeuronUpdate(shared_params=1)


def test_full_throughput_and_latency():
    inputs = random_inputs(3, 500)
    run = run_stream(NeuronUpdate(), inputs)
    assert_matches_model(inputs, run.outputs)
    # One per clock in, one per clock out, LATENCY clocks apart.
    assert run.accepted == list(range(len(inputs)))
    assert run.emitted == [k + NeuronUpdate.LATENCY for k in range(len(inputs))]


def test_stall_mid_stream_holds_then_resumes():
    """``o.ready`` low for 40 cycles mid-stream: input is refused until it rises again."""
    inputs = random_inputs(4, 200)
    run = run_stream(NeuronUpdate(), inputs, ready_pattern=lambda cycle: not 50 <= cycle < 90)
    assert_matches_model(inputs, run.outputs)
    latency = NeuronUpdate.LATENCY
    # Flowing at one per clock, the pipeline holds exactly LATENCY items when it stalls.
    assert run.emitted[:50 - latency] == [k + latency for k in range(50 - latency)]
    assert not [c for c in run.accepted + run.emitted if 50 <= c < 90]
    assert run.accepted[49:51] == [49, 90]
    assert run.emitted[50 - latency - 1:50 - latency + 1] == [49, 90]
    assert run.emitted[-1] == len(inputs) - 1 + 40 + latency


def test_stall_from_start_fills_to_capacity():
    """Output not ready at first: exactly LATENCY items go in, then input waits."""
    inputs = random_inputs(6, 50)
    run = run_stream(NeuronUpdate(), inputs, ready_pattern=lambda cycle: cycle >= 20)
    assert_matches_model(inputs, run.outputs)
    latency = NeuronUpdate.LATENCY
    assert run.accepted[:latency + 1] == [*range(latency), 20]
    assert run.emitted[:3] == [20, 21, 22]


def test_one_item_at_a_time():
    """Items far apart: each comes out alone, LATENCY clocks after it went in."""
    inputs = random_inputs(5, 30)
    run = run_stream(NeuronUpdate(), inputs, seed=5, p_valid=0.05)
    assert_matches_model(inputs, run.outputs)
    assert [e - a for a, e in zip(run.accepted, run.emitted, strict=True)] == [NeuronUpdate.LATENCY] * 30
