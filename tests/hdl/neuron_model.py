"""A plain Python model of the neuron update pipeline, and the stimulus that tests it.

:func:`neuron_update` is steps 2 to 5 of docs/model.md for one neuron and one step,
written from the spec in plain integers, with the same inputs and outputs as
``neurofab.hdl.neuron.NeuronUpdate``. The Amaranth simulator tests and the cocotb bench
both check the hardware against it, and tests/hdl/test_hdl_model.py checks it against
the project's reference model (tests/reference.py).

:func:`random_inputs` draws update inputs that hit the edges the spec cares about
(saturation at +-2^23, refractory 0/1/255, leak 0/65535, dendritic gating at exactly
``dend_threshold``, the graded payload cap) as well as plain random ones, over the
whole range of every field's shape.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass

__all__ = [
    "NeuronInput",
    "NeuronOutput",
    "sat",
    "lfsr_step",
    "neuron_update",
    "random_input",
    "random_inputs",
]

V_MIN = -(1 << 23)
V_MAX = (1 << 23) - 1
THRESHOLD_MAX = (1 << 23) - 1


@dataclass(frozen=True)
class NeuronInput:
    """One item on ``NeuronUpdate.i``; field meanings as ``update_input_layout``."""

    tag: int
    dendritic: int
    noise: int
    graded: int
    v: int
    r: int
    lfsr: int
    threshold: int
    leak: int
    resting: int
    refrac: int
    dend_threshold: int
    a: tuple[int, int, int, int]
    s: int

    def as_fields(self) -> dict:
        """The fields as a dict that ``update_input_layout(...).const()`` accepts."""
        fields = asdict(self)
        fields["a"] = list(self.a)
        return fields


@dataclass(frozen=True)
class NeuronOutput:
    """One item on ``NeuronUpdate.o``; field meanings as ``update_output_layout``."""

    tag: int
    v: int
    r: int
    lfsr: int
    spike: int
    payload: int


def sat(x: int, bits: int) -> int:
    """Clamp ``x`` to the signed range of ``bits`` bits."""
    return max(-(1 << (bits - 1)), min((1 << (bits - 1)) - 1, x))


def lfsr_step(lfsr: int) -> int:
    """``b = lfsr & 1; lfsr >>= 1; if b: lfsr ^= 0xB400``."""
    return (lfsr >> 1) ^ (0xB400 if lfsr & 1 else 0)


def neuron_update(x: NeuronInput) -> NeuronOutput:
    """Steps 2 to 5 of docs/model.md for one neuron, one timestep."""
    # 2. Dendrites.
    if x.dendritic:
        current = x.a[0] + sum(a for a in x.a[1:] if a >= x.dend_threshold)
    else:
        current = sum(x.a)
    # 4. The LFSR advances every step, refractory or not; noise uses the advanced value.
    lfsr = lfsr_step(x.lfsr)
    # 5. Soma.
    if x.r > 0:
        return NeuronOutput(tag=x.tag, v=x.resting, r=x.r - 1, lfsr=lfsr, spike=0, payload=0)
    v = x.v
    if v > x.resting:
        v = max(x.resting, v - x.leak)
    elif v < x.resting:
        v = min(x.resting, v + x.leak)
    v = sat(v + current + x.s, 24)
    if x.noise:
        v = sat(v + ((lfsr & 0xFF) - 128), 24)
    if v >= x.threshold:
        payload = min(255, 128 + ((v - x.threshold) >> 3)) if x.graded else 0
        return NeuronOutput(tag=x.tag, v=x.resting, r=x.refrac, lfsr=lfsr, spike=1, payload=payload)
    return NeuronOutput(tag=x.tag, v=v, r=0, lfsr=lfsr, spike=0, payload=0)


def _signed_range(bits: int) -> tuple[int, int]:
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def _pick(rng: random.Random, edges: list[int], lo: int, hi: int, p_edge: float = 0.3) -> int:
    """An edge value (clipped into range) with probability ``p_edge``, else uniform in lo .. hi."""
    if rng.random() < p_edge:
        return max(lo, min(hi, rng.choice(edges)))
    return rng.randint(lo, hi)


def random_input(rng: random.Random, *, input_width: int = 32, stimulus_width: int = 32,
                 tag_width: int = 16, tag: int | None = None) -> NeuronInput:
    """One update input, biased toward the model's edge cases.

    Most draws have valid parameters (``threshold > resting``) and inputs of a scale
    that lands ``v`` near ``threshold``, so spikes, payloads and refractory loads are
    frequent; the rest use the full range of every field, where saturation dominates.
    """
    a_lo, a_hi = _signed_range(input_width)
    s_lo, s_hi = _signed_range(stimulus_width)
    full_range = rng.random() < 0.25

    if full_range:
        # Any value of the fields' shapes, even what the API refuses (threshold <= 0).
        threshold = _pick(rng, [1, 2, THRESHOLD_MAX, 0, -1, V_MIN], V_MIN, V_MAX)
        resting = _pick(rng, [V_MIN, V_MAX, 0, -1], V_MIN, V_MAX)
        v = _pick(rng, [V_MIN, V_MAX, threshold, threshold - 1, resting], V_MIN, V_MAX)
        scale_a, scale_s = a_hi, s_hi
    else:
        threshold = _pick(rng, [1, 1000, THRESHOLD_MAX], 1, THRESHOLD_MAX, p_edge=0.2)
        low = rng.choice([V_MIN, threshold - 100_000, threshold - 2000])
        resting = rng.randint(max(V_MIN, low), threshold - 1)
        v = _pick(rng, [resting, threshold, threshold - 1, V_MIN, V_MAX], V_MIN, V_MAX, p_edge=0.4)
        scale_a = min(a_hi, rng.choice([0, 100, 2000, 1 << 20, a_hi]))
        scale_s = min(s_hi, rng.choice([0, 100, 2000, 1 << 22, s_hi]))
        if rng.random() < 0.7:
            # Just below to well past the threshold: spikes with every graded payload.
            v = max(V_MIN, min(V_MAX, threshold + rng.randint(-300, 1200)))
            scale_a, scale_s = min(a_hi, 100), min(s_hi, 100)

    if full_range:
        dend_threshold = _pick(rng, [0, 1, V_MAX, V_MIN, -1], V_MIN, V_MAX)
    else:
        # The gate level is of the inputs' scale, so that gating decides something.
        dend_threshold = _pick(rng, [0, 1, THRESHOLD_MAX, 500], 0, max(1, min(THRESHOLD_MAX, scale_a)))
    a = []
    for _ in range(4):
        value = rng.randint(-scale_a, scale_a)
        if rng.random() < 0.25:
            # Exactly at, just below and just above the gate level.
            value = dend_threshold + rng.choice([-1, 0, 0, 1])
        if rng.random() < 0.05:
            value = rng.choice([a_lo, a_hi])
        a.append(max(a_lo, min(a_hi, value)))
    s = max(s_lo, min(s_hi, rng.randint(-scale_s, scale_s)))
    if rng.random() < 0.05:
        s = rng.choice([s_lo, s_hi, 0])

    return NeuronInput(
        tag=rng.randrange(1 << tag_width) if tag is None else tag,
        dendritic=rng.randrange(2),
        noise=rng.randrange(2),
        graded=rng.randrange(2),
        v=v,
        r=rng.choice([0, 0, 0, 0, 0, 0, 1, 2, 255, rng.randrange(256)]),
        lfsr=_pick(rng, [1, 0xACE1, 0xFFFF, 0x8000, 0x0080, 0x00FF], 0, 0xFFFF, p_edge=0.2),
        threshold=threshold,
        leak=rng.choice([0, 1, 3, 65535, rng.randint(0, 50), rng.randint(0, 50), rng.randint(0, 65535)]),
        resting=resting,
        refrac=rng.choice([0, 1, 255, rng.randrange(256)]),
        dend_threshold=dend_threshold,
        a=tuple(a),
        s=s,
    )


def random_inputs(seed: int, count: int, **widths) -> list[NeuronInput]:
    """``count`` inputs from :func:`random_input`, reproducible from ``seed``; tags count up."""
    rng = random.Random(seed)
    tag_width = widths.get("tag_width", 16)
    return [random_input(rng, tag=k % (1 << tag_width), **widths) for k in range(count)]
