"""The neuron update pipeline: steps 2 to 5 of docs/model.md for one neuron per clock.

The core streams every neuron through :class:`NeuronUpdate` once per timestep: in go
the neuron's state word (``v``, ``r``, ``lfsr``), its parameters, its four compartment
input sums ``A_0 .. A_3`` and its stimulus sum ``S``; out come the new state word and
whether (and with which graded payload) the neuron spiked. The pipeline is four
register stages, each a :class:`wiring.Component` joined to the next by an
:mod:`amaranth.lib.stream`:

1. :class:`DendriteStage`: dendrite gating and ``I``, the LFSR advance, the refractory
   decision and the leak toward ``resting``;
2. :class:`IntegrateStage`: ``v = sat(v + I + S, 24)``, one saturation;
3. :class:`NoiseStage`: ``v = sat(v + ((lfsr & 0xFF) - 128), 24)`` when noise is on;
4. :class:`FireStage`: threshold, graded payload, reset and refractory load.

Every stage has the same handshake (see :class:`PipelineStage`), so the pipeline as a
whole accepts one neuron per clock while its output is taken, holds everything when it
is not, and never drops or repeats an item.

The payload layouts are functions of the pipeline's widths: :func:`update_input_layout`
and :func:`update_output_layout`. A refractory neuron is handled exactly as the model
says whatever its parameters: its ``I``, ``S`` and noise are discarded and it cannot
spike, so the block agrees with the model even on parameter sets the API would refuse.
"""

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from neurofab.errors import ValidationError

from .arith import V_BITS, dendrite_gate, graded_payload, saturate, toward_resting
from .layouts import NEURON_STATE_FIELDS, PROFILE_LAYOUT
from .lfsr import lfsr_advance, noise_term

__all__ = [
    "update_input_layout",
    "update_output_layout",
    "PipelineStage",
    "DendriteStage",
    "IntegrateStage",
    "NoiseStage",
    "FireStage",
    "NeuronUpdate",
]

# Every state and parameter field has the shape the memory words give it (one
# definition of every bit): the neuron word's state part and the parameter profile.
_STATE = NEURON_STATE_FIELDS
_PARAM = {name: PROFILE_LAYOUT[name].shape for name in ("threshold", "leak", "resting", "refrac",
                                                        "dend_threshold")}
PAYLOAD_BITS = 8  # graded payload g, 128 .. 255


def _check_width(owner: str, name: str, value, lo: int, hi: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise ValidationError(f"{owner}.{name}", f"must be an integer in {lo} .. {hi}, not {value!r}")
    return value


def _state_fields(tag_width: int) -> dict:
    """Fields every stage carries to the end: the tag and the parameters the last stage needs."""
    return {
        "tag": unsigned(tag_width),
        "refractory": unsigned(1),
        "r": _STATE["r"],
        "lfsr": _STATE["lfsr"],
        "threshold": _PARAM["threshold"],
        "resting": _PARAM["resting"],
        "refrac": _PARAM["refrac"],
        "graded": unsigned(1),
    }


_STATE_NAMES = tuple(_state_fields(0))


def update_input_layout(input_width: int, stimulus_width: int, tag_width: int) -> data.StructLayout:
    """Payload of :attr:`NeuronUpdate.i`: one neuron's state, parameters and inputs for one step.

    ========================  ==========================  ===============================
    field                     shape                       meaning
    ========================  ==========================  ===============================
    ``tag``                   ``unsigned(tag_width)``     passed through unchanged (the
                                                          neuron's address, typically)
    ``dendritic``             1 bit                       job flag: gate ``A_1 .. A_3``
    ``noise``                 1 bit                       job flag: add LFSR noise
    ``graded``                1 bit                       job flag: output the payload
    ``v``                     ``signed(24)``              membrane potential
    ``r``                     ``unsigned(8)``             refractory counter
    ``lfsr``                  ``unsigned(16)``            noise state, before this step
    ``threshold``             ``signed(24)``              spike threshold
    ``leak``                  ``unsigned(16)``            leak per step toward resting
    ``resting``               ``signed(24)``              resting potential
    ``refrac``                ``unsigned(8)``             refractory period
    ``dend_threshold``        ``signed(24)``              dendritic gate level
    ``a``                     4 x ``signed(input_width)`` compartment sums ``A_0 .. A_3``
    ``s``                     ``signed(stimulus_width)``  stimulus sum ``S``
    ========================  ==========================  ===============================

    The state and parameter fields take their shapes from ``layouts.NEURON_STATE_FIELDS``
    and ``layouts.PROFILE_LAYOUT``, so a neuron word and a profile word feed this block
    field by field. Any value of these shapes is computed as the model computes it,
    including parameter sets the API refuses (``threshold <= resting``, negative levels).
    """
    return data.StructLayout({
        "tag": unsigned(tag_width),
        "dendritic": unsigned(1),
        "noise": unsigned(1),
        "graded": unsigned(1),
        "v": _STATE["v"],
        "r": _STATE["r"],
        "lfsr": _STATE["lfsr"],
        **_PARAM,
        "a": data.ArrayLayout(signed(input_width), 4),
        "s": signed(stimulus_width),
    })


def update_output_layout(tag_width: int) -> data.StructLayout:
    """Payload of :attr:`NeuronUpdate.o`: the neuron's new state and its spike.

    ``tag`` is the input's; ``v``, ``r``, ``lfsr`` are the new state word; ``spike`` is
    1 when the neuron fired this step; ``payload`` is the graded payload ``g`` (128 ..
    255) when it fired with the ``graded`` flag, and 0 otherwise.
    """
    return data.StructLayout({
        "tag": unsigned(tag_width),
        "v": _STATE["v"],
        "r": _STATE["r"],
        "lfsr": _STATE["lfsr"],
        "spike": unsigned(1),
        "payload": unsigned(PAYLOAD_BITS),
    })


def _dendrite_output_layout(input_width: int, stimulus_width: int, tag_width: int) -> data.StructLayout:
    return data.StructLayout({
        **_state_fields(tag_width),
        "noise": unsigned(1),
        "v": signed(V_BITS),
        "i": signed(input_width + 2),  # four signed addends never need more than two extra bits
        "s": signed(stimulus_width),
    })


def _soma_layout(tag_width: int, *, noise: bool) -> data.StructLayout:
    fields = {**_state_fields(tag_width), "v": signed(V_BITS)}
    if noise:
        fields["noise"] = unsigned(1)
    return data.StructLayout(fields)


class PipelineStage(wiring.Component):
    """One register stage of a streaming pipeline: ``o.payload <= compute(i.payload)``.

    Subclasses implement :meth:`compute`, which adds the combinational logic from the
    input payload to the next output payload; this class owns the handshake.

    Members
    -------
    i : ``In(stream.Signature(in_layout))``
        Items to process.
    o : ``Out(stream.Signature(out_layout))``
        Processed items, in input order.

    Latency is one clock: an item accepted on one clock edge is on ``o`` from that edge
    on. Throughput is one item per clock while ``o.ready`` is high. The output register
    loads whenever it is empty or being emptied, so ``i.ready = ~o.valid | o.ready``:
    ``i.ready`` depends combinationally on ``o.ready`` (never on ``i.valid``), and when
    ``o`` stalls the stage holds its item and refuses new ones, so nothing is lost or
    repeated. Reset empties the stage (``o.valid`` low); the payload register resets to
    zero but is meaningless while ``o.valid`` is low.
    """

    def __init__(self, in_layout: data.Layout, out_layout: data.Layout):
        self._in_layout = in_layout
        self._out_layout = out_layout
        super().__init__({
            "i": In(stream.Signature(in_layout)),
            "o": Out(stream.Signature(out_layout)),
        })

    def compute(self, m: Module, i: data.View, o: data.View) -> None:
        """Add comb statements to ``m`` that drive every field of ``o`` from ``i``."""
        raise NotImplementedError

    @staticmethod
    def pass_through(m: Module, i: data.View, o: data.View, names) -> None:
        """Copy the named fields unchanged from ``i`` to ``o``."""
        for name in names:
            m.d.comb += o[name].eq(i[name])

    def elaborate(self, platform):
        m = Module()
        result = Signal(self._out_layout)
        self.compute(m, self.i.payload, result)

        load = ~self.o.valid | self.o.ready
        m.d.comb += self.i.ready.eq(load)
        with m.If(load):
            m.d.sync += [
                self.o.valid.eq(self.i.valid),
                self.o.payload.eq(result),
            ]
        return m


class DendriteStage(PipelineStage):
    """Stage 1: dendrites (step 2), noise source (step 4), refractory decision and leak (step 5).

    * ``i = A_0 + gate(A_1) + gate(A_2) + gate(A_3)``, where a distal compartment passes
      when ``dendritic`` is off or ``A_c >= dend_threshold``; exact in
      ``signed(input_width + 2)``.
    * ``lfsr`` advances once, refractory or not.
    * ``refractory = r > 0``; the carried ``r`` is ``r - 1`` then, else 0.
    * ``v`` becomes ``resting`` when refractory, else moves ``leak`` toward ``resting``.

    Handshake, latency and reset as :class:`PipelineStage`.
    """

    def __init__(self, *, input_width: int, stimulus_width: int, tag_width: int):
        super().__init__(update_input_layout(input_width, stimulus_width, tag_width),
                         _dendrite_output_layout(input_width, stimulus_width, tag_width))

    def compute(self, m, i, o):
        self.pass_through(m, i, o, ["tag", "threshold", "resting", "refrac", "graded", "noise", "s"])
        refractory = i.r != 0
        m.d.comb += [
            o.i.eq(i.a[0]
                   + dendrite_gate(i.a[1], i.dend_threshold, i.dendritic)
                   + dendrite_gate(i.a[2], i.dend_threshold, i.dendritic)
                   + dendrite_gate(i.a[3], i.dend_threshold, i.dendritic)),
            o.lfsr.eq(lfsr_advance(i.lfsr)),
            o.refractory.eq(refractory),
            o.r.eq(i.r - refractory),
        ]
        with m.If(refractory):
            m.d.comb += o.v.eq(i.resting)
        with m.Else():
            m.d.comb += o.v.eq(toward_resting(i.v, i.resting, i.leak))


class IntegrateStage(PipelineStage):
    """Stage 2: ``v = sat(v + I + S, 24)``, ``I + S`` added in full width, one saturation.

    A refractory neuron keeps ``v`` (already ``resting``): its ``I`` and ``S`` are
    discarded. Handshake, latency and reset as :class:`PipelineStage`.
    """

    def __init__(self, *, input_width: int, stimulus_width: int, tag_width: int):
        super().__init__(_dendrite_output_layout(input_width, stimulus_width, tag_width),
                         _soma_layout(tag_width, noise=True))

    def compute(self, m, i, o):
        self.pass_through(m, i, o, [*_STATE_NAMES, "noise"])
        # Amaranth widens every sum by a bit, so v + I + S is exact before the saturation.
        with m.If(i.refractory):
            m.d.comb += o.v.eq(i.v)
        with m.Else():
            m.d.comb += o.v.eq(saturate(i.v + i.i + i.s, V_BITS))


class NoiseStage(PipelineStage):
    """Stage 3: with ``noise``, ``v = sat(v + ((lfsr & 0xFF) - 128), 24)``, on the advanced LFSR.

    Skipped for a refractory neuron (noise belongs to the non-refractory soma update).
    Handshake, latency and reset as :class:`PipelineStage`.
    """

    def __init__(self, *, tag_width: int):
        super().__init__(_soma_layout(tag_width, noise=True), _soma_layout(tag_width, noise=False))

    def compute(self, m, i, o):
        self.pass_through(m, i, o, _STATE_NAMES)
        with m.If(i.noise & ~i.refractory):
            m.d.comb += o.v.eq(saturate(i.v + noise_term(i.lfsr), V_BITS))
        with m.Else():
            m.d.comb += o.v.eq(i.v)


class FireStage(PipelineStage):
    """Stage 4: threshold, graded payload, reset and refractory load.

    A non-refractory neuron with ``v >= threshold`` spikes: ``payload`` is
    ``min(255, 128 + ((v - threshold) >> 3))`` with ``graded`` (else 0), ``v`` becomes
    ``resting`` and ``r`` becomes ``refrac``. Handshake, latency and reset as
    :class:`PipelineStage`.
    """

    def __init__(self, *, tag_width: int):
        super().__init__(_soma_layout(tag_width, noise=False), update_output_layout(tag_width))

    def compute(self, m, i, o):
        self.pass_through(m, i, o, ["tag", "lfsr"])
        spike = ~i.refractory & (i.v >= i.threshold)
        m.d.comb += o.spike.eq(spike)
        with m.If(spike):
            m.d.comb += [
                o.v.eq(i.resting),
                o.r.eq(i.refrac),
                o.payload.eq(Mux(i.graded, graded_payload(i.v, i.threshold), 0)),
            ]
        with m.Else():
            m.d.comb += [
                o.v.eq(i.v),
                o.r.eq(i.r),
                o.payload.eq(0),
            ]


class NeuronUpdate(wiring.Component):
    """Steps 2 to 5 of docs/model.md for one neuron per clock, bit-exact.

    Parameters
    ----------
    input_width : int
        Width of each compartment sum ``A_c`` (signed), 2 .. 64. The model sums inputs
        exactly; the core that feeds this block must keep its sums in this width (or
        refuse the job).
    stimulus_width : int
        Width of the stimulus sum ``S`` (signed), 2 .. 64.
    tag_width : int
        Width of ``tag``, which rides along unchanged (0 .. 256): the neuron's address,
        and whatever else must meet the result (the neuron word's other fields).

    Members
    -------
    i : ``In(stream.Signature(update_input_layout(input_width, stimulus_width, tag_width)))``
        One neuron's state, parameters, inputs and job flags for this step.
    o : ``Out(stream.Signature(update_output_layout(tag_width)))``
        Its new state word, spike and graded payload, in input order.

    Latency is :attr:`LATENCY` (4) clocks: an item accepted on clock edge ``k`` is valid
    on ``o`` from edge ``k + 4``, if ``o`` was not stalled meanwhile. Throughput is one
    neuron per clock while ``o.ready`` is high. Backpressure: when ``o.ready`` is low
    the stages fill up and then hold; ``i.ready`` falls once all four are full.
    ``i.ready`` depends combinationally on ``o.ready`` through four stages (no
    combinational path from ``i.valid``). Nothing is dropped or repeated. Overflow:
    none is possible inside; ``v`` saturates to the signed 24-bit range exactly where the
    model saturates it. Reset empties the pipeline; items in flight are lost.
    """

    #: Clocks from acceptance on ``i`` to presentation on ``o``.
    LATENCY = 4

    def __init__(self, *, input_width: int = 32, stimulus_width: int = 32, tag_width: int = 16):
        owner = type(self).__name__
        self._input_width = _check_width(owner, "input_width", input_width, 2, 64)
        self._stimulus_width = _check_width(owner, "stimulus_width", stimulus_width, 2, 64)
        self._tag_width = _check_width(owner, "tag_width", tag_width, 0, 256)
        super().__init__({
            "i": In(stream.Signature(update_input_layout(input_width, stimulus_width, tag_width))),
            "o": Out(stream.Signature(update_output_layout(tag_width))),
        })

    @property
    def input_width(self) -> int:
        return self._input_width

    @property
    def stimulus_width(self) -> int:
        return self._stimulus_width

    @property
    def tag_width(self) -> int:
        return self._tag_width

    def elaborate(self, platform):
        m = Module()
        widths = dict(input_width=self._input_width, stimulus_width=self._stimulus_width,
                      tag_width=self._tag_width)
        m.submodules.dendrite = dendrite = DendriteStage(**widths)
        m.submodules.integrate = integrate = IntegrateStage(**widths)
        m.submodules.noise = noise = NoiseStage(tag_width=self._tag_width)
        m.submodules.fire = fire = FireStage(tag_width=self._tag_width)

        wiring.connect(m, wiring.flipped(self.i), dendrite.i)
        wiring.connect(m, dendrite.o, integrate.i)
        wiring.connect(m, integrate.o, noise.i)
        wiring.connect(m, noise.o, fire.i)
        wiring.connect(m, fire.o, wiring.flipped(self.o))
        return m
