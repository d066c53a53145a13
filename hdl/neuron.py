"""The neuron update pipeline: steps 2 to 5 of docs/model.md for one neuron per clock.

The core streams every neuron through :class:`NeuronUpdate` once per timestep: in go
the neuron's state word (``v``, ``r``, ``lfsr``), its parameters, its four compartment
input sums ``A_0 .. A_3`` and its stimulus sum ``S``; out come the new state word and
whether (and with which graded payload) the neuron spiked. The pipeline is six
register stages, each a :class:`wiring.Component` joined to the next by an
:mod:`amaranth.lib.stream`, each with at most one carry chain (an adder or a
comparison) and a few LUTs of muxing between its registers, so the core clocks at
30 MHz on an iCE40UP5K and 100 MHz on an ECP5:

1. :class:`GateStage`: dendrite gates of ``A_1 .. A_3``, ``A_0 + S``, the two leak
   candidates ``v - leak``, ``v + leak`` and ``v``'s side of ``resting``; the LFSR
   advance and the refractory decision;
2. :class:`LeakStage`: the leaked ``v`` (clamped at ``resting``; ``resting`` when
   refractory), and the first level of the input sum;
3. :class:`SumStage`: ``I + S`` summed exactly (0 when refractory);
4. :class:`IntegrateStage`: ``x = v + I + S``, exact;
5. :class:`NoiseStage`: ``v = sat(x, 24)``, one saturation, and then
   ``v = sat(v + ((lfsr & 0xFF) - 128), 24)`` when noise is on;
6. :class:`FireStage`: threshold, graded payload, reset and refractory load.

Every stage has the same handshake (see :class:`PipelineStage`), so the pipeline as a
whole accepts one neuron per clock while its output is taken, holds everything when it
is not, and never drops or repeats an item.

The payload layouts are functions of the pipeline's widths: :func:`update_input_layout`
and :func:`update_output_layout`. A refractory neuron is handled exactly as the model
says whatever its parameters: its ``I``, ``S`` and noise are discarded and it cannot
spike, so the block agrees with the model even on parameter sets the API would refuse.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from neurofab.errors import ValidationError

from .arith import V_BITS, dendrite_gate
from .layouts import NEURON_STATE_FIELDS, PROFILE_LAYOUT
from .lfsr import lfsr_advance, noise_term

__all__ = [
    "PARAMS_LAYOUT",
    "update_input_layout",
    "update_output_layout",
    "PipelineStage",
    "GateStage",
    "LeakStage",
    "SumStage",
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


def _saturate_fast(value, width: int) -> Value:
    """``sat(value, width)`` (as ``arith.saturate``) without a comparator's carry chain.

    ``value`` fits ``signed(width)`` exactly when its bits from ``width - 1`` up are all
    equal (all copies of the sign); otherwise it lies beyond the end its sign points to.
    That is a LUT reduction and a mux, so it can follow an adder in the same stage.
    """
    value = Value.cast(value)
    if len(value) <= width:
        return value.as_signed()
    top = value[width - 1:]
    fits = ~top.any() | top.all()
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    return Mux(fits, value[:width], Mux(value[-1], lo, hi))[:width].as_signed()


def _carried(tag_width: int, shared: bool = False) -> dict:
    """Fields every stage carries to the end: the tag, and what the last stages need
    (with ``shared`` parameters, none of the parameters: every stage reads them from
    :attr:`NeuronUpdate.params`)."""
    params = {} if shared else {
        "threshold": _PARAM["threshold"],
        "resting": _PARAM["resting"],
        "refrac": _PARAM["refrac"],
    }
    return {
        "tag": unsigned(tag_width),
        "refractory": unsigned(1),
        "r": _STATE["r"],
        "lfsr": _STATE["lfsr"],
        **params,
        "graded": unsigned(1),
    }


_CARRIED = tuple(_carried(0))
_CARRIED_SHARED = tuple(_carried(0, shared=True))

#: The parameters of :attr:`NeuronUpdate.params` (``shared_params``): one profile for
#: every neuron in the pipeline.
PARAMS_LAYOUT = data.StructLayout(_PARAM)


def _sum_width(input_width: int, stimulus_width: int) -> int:
    """Width that holds ``A_0 + S`` exactly."""
    return max(input_width, stimulus_width) + 1


def update_input_layout(input_width: int, stimulus_width: int, tag_width: int,
                        shared: bool = False) -> data.StructLayout:
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
    With ``shared`` parameters the five parameter fields are not here (they are
    :attr:`NeuronUpdate.params`).
    """
    return data.StructLayout({
        "tag": unsigned(tag_width),
        "dendritic": unsigned(1),
        "noise": unsigned(1),
        "graded": unsigned(1),
        "v": _STATE["v"],
        "r": _STATE["r"],
        "lfsr": _STATE["lfsr"],
        **({} if shared else _PARAM),
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


def _gate_layout(input_width: int, stimulus_width: int, tag_width: int,
                 shared: bool = False) -> data.StructLayout:
    return data.StructLayout({
        **_carried(tag_width, shared),
        "noise": unsigned(1),
        "gated": data.ArrayLayout(signed(input_width), 3),  # A_1 .. A_3 after their gates
        "soma_in": signed(_sum_width(input_width, stimulus_width)),  # A_0 + S
        # v -+ leak, exact: v is signed 24 and leak unsigned 16, so 25 bits hold both
        "down": signed(V_BITS + 1),
        "up": signed(V_BITS + 1),
        "above": unsigned(1),  # v > resting
        "below": unsigned(1),  # v < resting
    })


def _leak_layout(input_width: int, stimulus_width: int, tag_width: int,
                 shared: bool = False) -> data.StructLayout:
    return data.StructLayout({
        **_carried(tag_width, shared),
        "noise": unsigned(1),
        "v": signed(V_BITS),
        "distal": signed(input_width + 1),  # gate(A_1) + gate(A_2)
        "proximal": signed(_sum_width(input_width, stimulus_width) + 1),  # gate(A_3) + A_0 + S
    })


def _sum_layout(input_width: int, stimulus_width: int, tag_width: int,
                shared: bool = False) -> data.StructLayout:
    return data.StructLayout({
        **_carried(tag_width, shared),
        "noise": unsigned(1),
        "v": signed(V_BITS),
        "total": signed(_sum_width(input_width, stimulus_width) + 2),  # I + S, exact
    })


def _integrate_layout(input_width: int, stimulus_width: int, tag_width: int,
                      shared: bool = False) -> data.StructLayout:
    return data.StructLayout({
        **_carried(tag_width, shared),
        "noise": unsigned(1),
        "x": signed(_sum_width(input_width, stimulus_width) + 3),  # v + I + S, exact
    })


def _soma_layout(tag_width: int, shared: bool = False) -> data.StructLayout:
    return data.StructLayout({**_carried(tag_width, shared), "v": signed(V_BITS)})


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

    With ``shared`` parameters the stage has a third member, ``params :
    In(PARAMS_LAYOUT)``, which it reads instead of parameter fields of ``i`` (and does
    not carry): it must hold while an item is on ``i``.
    """

    def __init__(self, in_layout: data.Layout, out_layout: data.Layout, shared: bool = False):
        self._in_layout = in_layout
        self._out_layout = out_layout
        self._shared = shared
        members = {
            "i": In(stream.Signature(in_layout)),
            "o": Out(stream.Signature(out_layout)),
        }
        if shared:
            members["params"] = In(PARAMS_LAYOUT)
        super().__init__(members)

    def param(self, i: data.View, name: str) -> Value:
        """Parameter ``name`` of the item on ``i``: its field, or the shared ``params``'."""
        return self.params[name] if self._shared else i[name]

    @property
    def carried(self) -> tuple:
        """The fields every stage carries to the end (:func:`_carried`)."""
        return _CARRIED_SHARED if self._shared else _CARRIED

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


class GateStage(PipelineStage):
    """Stage 1: dendrite gates (step 2), noise source (step 4), refractory decision and leak inputs.

    * ``gated[c - 1] = gate(A_c)`` for ``c = 1 .. 3``: ``A_c`` passes when ``dendritic``
      is off or ``A_c >= dend_threshold``, else 0;
    * ``soma_in = A_0 + S``, exact;
    * ``down = v - leak``, ``up = v + leak``, exact; ``above = v > resting``,
      ``below = v < resting``;
    * ``lfsr`` advances once, refractory or not;
    * ``refractory = r > 0``; the carried ``r`` is ``r - 1`` then, else 0.

    Each output is one comparison or one adder (all side by side). Handshake, latency
    and reset as :class:`PipelineStage`.
    """

    def __init__(self, *, input_width: int, stimulus_width: int, tag_width: int, shared: bool = False):
        super().__init__(update_input_layout(input_width, stimulus_width, tag_width, shared),
                         _gate_layout(input_width, stimulus_width, tag_width, shared), shared)

    def compute(self, m, i, o):
        self.pass_through(m, i, o, ["tag", "graded", "noise"] if self._shared else
                          ["tag", "threshold", "resting", "refrac", "graded", "noise"])
        refractory = i.r != 0
        leak, resting = self.param(i, "leak"), self.param(i, "resting")
        m.d.comb += [
            [o.gated[c - 1].eq(dendrite_gate(i.a[c], self.param(i, "dend_threshold"), i.dendritic))
             for c in (1, 2, 3)],
            o.soma_in.eq(i.a[0] + i.s),
            o.down.eq(i.v - leak),
            o.up.eq(i.v + leak),
            o.above.eq(i.v > resting),
            o.below.eq(i.v < resting),
            o.lfsr.eq(lfsr_advance(i.lfsr)),
            o.refractory.eq(refractory),
            o.r.eq(i.r - refractory),
        ]


class LeakStage(PipelineStage):
    """Stage 2: the leak toward ``resting`` (step 5), and the first level of the input sum.

    ``v`` becomes ``resting`` when refractory; else ``max(resting, v - leak)`` when
    ``v > resting``, ``min(resting, v + leak)`` when ``v < resting``, and ``v`` (which
    is ``resting``) otherwise. ``distal = gate(A_1) + gate(A_2)``, ``proximal = gate(A_3)
    + A_0 + S``, both exact. Handshake, latency and reset as :class:`PipelineStage`.
    """

    def __init__(self, *, input_width: int, stimulus_width: int, tag_width: int, shared: bool = False):
        super().__init__(_gate_layout(input_width, stimulus_width, tag_width, shared),
                         _leak_layout(input_width, stimulus_width, tag_width, shared), shared)

    def compute(self, m, i, o):
        self.pass_through(m, i, o, [*self.carried, "noise"])
        resting = self.param(i, "resting")
        leak_down = ~i.refractory & i.above & (i.down > resting)
        leak_up = ~i.refractory & i.below & (i.up < resting)
        m.d.comb += [
            o.v.eq(Mux(leak_down, i.down, Mux(leak_up, i.up, resting))),
            o.distal.eq(i.gated[0] + i.gated[1]),
            o.proximal.eq(i.gated[2] + i.soma_in),
        ]


class SumStage(PipelineStage):
    """Stage 3: ``total = I + S``, exact; 0 for a refractory neuron, whose inputs are discarded.

    Handshake, latency and reset as :class:`PipelineStage`.
    """

    def __init__(self, *, input_width: int, stimulus_width: int, tag_width: int, shared: bool = False):
        super().__init__(_leak_layout(input_width, stimulus_width, tag_width, shared),
                         _sum_layout(input_width, stimulus_width, tag_width, shared), shared)

    def compute(self, m, i, o):
        self.pass_through(m, i, o, [*self.carried, "noise", "v"])
        m.d.comb += o.total.eq(Mux(i.refractory, 0, i.distal + i.proximal))


class IntegrateStage(PipelineStage):
    """Stage 4: ``x = v + I + S``, exact (its saturation is the next stage's).

    A refractory neuron arrives with ``v = resting`` and ``I + S = 0``, so ``x`` is
    ``resting``. Only the adder is here: the saturation's reduction and mux would follow
    the widest carry chain of the pipeline. Handshake, latency and reset as
    :class:`PipelineStage`.
    """

    def __init__(self, *, input_width: int, stimulus_width: int, tag_width: int, shared: bool = False):
        super().__init__(_sum_layout(input_width, stimulus_width, tag_width, shared),
                         _integrate_layout(input_width, stimulus_width, tag_width, shared), shared)

    def compute(self, m, i, o):
        self.pass_through(m, i, o, [*self.carried, "noise"])
        m.d.comb += o.x.eq(i.v + i.total)


class NoiseStage(PipelineStage):
    """Stage 5: ``v = sat(x, 24)``, then with ``noise`` ``v = sat(v + ((lfsr & 0xFF) - 128), 24)``.

    The noise uses the advanced LFSR and is skipped for a refractory neuron (it belongs
    to the non-refractory soma update). The two saturations are not done one after the
    other: with ``n`` the noise, ``sat(sat(x) + n)`` is ``sat(x + n)`` when ``x`` is in
    range, and otherwise the top end (``hi``, or ``hi + n`` for ``n < 0``) or the bottom
    end (``lo``, or ``lo + n`` for ``n >= 0``), which are bit patterns of ``n``'s byte.
    So the one carry chain (``x[:24] + n``) runs beside the range check of ``x``.
    Handshake, latency and reset as :class:`PipelineStage`.
    """

    def __init__(self, *, input_width: int, stimulus_width: int, tag_width: int, shared: bool = False):
        super().__init__(_integrate_layout(input_width, stimulus_width, tag_width, shared),
                         _soma_layout(tag_width, shared), shared)

    def compute(self, m, i, o):
        self.pass_through(m, i, o, self.carried)
        x = i.x
        top = x[V_BITS - 1:]
        in_range = ~top.any() | top.all()
        hi, lo = (1 << (V_BITS - 1)) - 1, -(1 << (V_BITS - 1))
        saturated = Mux(in_range, x[:V_BITS], Mux(x[-1], lo, hi))

        byte = i.lfsr[:8]
        negative = ~byte[7]  # n = byte - 128 < 0
        # n < 0: hi + n = 0x7FFF7F + byte, byte < 128 (an 8-bit sum under a constant top).
        top_plus_n = Cat((byte[:7] + 0x7F)[:8], Const(0x7FFF, 16))
        # n >= 0: lo + n = 0x800000 + byte[:7].
        bottom_plus_n = Cat(byte[:7], Const(0, 16), Const(1, 1))
        noisy = Mux(in_range, _saturate_fast(x[:V_BITS].as_signed() + noise_term(i.lfsr), V_BITS),
                    Mux(x[-1], Mux(negative, lo, bottom_plus_n), Mux(negative, top_plus_n, hi)))
        m.d.comb += o.v.eq(Mux(i.noise & ~i.refractory, noisy, saturated))


class FireStage(PipelineStage):
    """Stage 6: threshold, graded payload, reset and refractory load.

    A non-refractory neuron with ``v >= threshold`` spikes: ``payload`` is
    ``min(255, 128 + ((v - threshold) >> 3))`` with ``graded`` (else 0), ``v`` becomes
    ``resting`` and ``r`` becomes ``refrac``. One subtraction ``d = v - threshold``
    (exact in 25 bits) decides both: the spike is ``d``'s sign bit clear, and the
    payload is 255 when ``d >= 1016`` (a bit of ``d[10:24]`` set, or ``d[3:10]`` all
    ones), else ``128 + d[3:10]``, which are bits, not adders. Handshake, latency and
    reset as :class:`PipelineStage`.
    """

    def __init__(self, *, tag_width: int, shared: bool = False):
        super().__init__(_soma_layout(tag_width, shared), update_output_layout(tag_width), shared)

    def compute(self, m, i, o):
        self.pass_through(m, i, o, ["tag", "lfsr"])
        excess = Signal(signed(V_BITS + 1))
        m.d.comb += excess.eq(i.v - self.param(i, "threshold"))
        spike = ~i.refractory & ~excess[-1]
        # With a spike, 0 <= excess < 2^24: the payload is in its bits.
        payload = Mux(excess[10:V_BITS].any(), 255, Cat(excess[3:10], Const(1, 1)))
        m.d.comb += o.spike.eq(spike)
        with m.If(spike):
            m.d.comb += [
                o.v.eq(self.param(i, "resting")),
                o.r.eq(self.param(i, "refrac")),
                o.payload.eq(Mux(i.graded, payload, 0)),
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
    shared_params : bool
        False (default): every neuron brings its own parameters in ``i`` and each stage
        carries the ones later stages need. True (the iCE40's profile cache): every
        neuron in the pipeline has the same parameters, :attr:`params`, which the stages
        read where they need them; ``i`` has no parameter fields and no stage carries
        one (about 330 flip-flops fewer).

    Members
    -------
    i : ``In(stream.Signature(update_input_layout(input_width, stimulus_width, tag_width)))``
        One neuron's state, parameters, inputs and job flags for this step.
    o : ``Out(stream.Signature(update_output_layout(tag_width)))``
        Its new state word, spike and graded payload, in input order.
    params : ``In(PARAMS_LAYOUT)`` (only with ``shared_params``)
        The parameters of every neuron in the pipeline. They may change only at a clock
        edge with ``settled`` high (and no item offered on ``i``).
    settled : ``Out(1)`` (only with ``shared_params``)
        No stage before the last holds an item, so none will read ``params`` again: a
        change of ``params`` at this clock's edge affects only items accepted after it.

    Latency is :attr:`LATENCY` (6) clocks: an item accepted on clock edge ``k`` is valid
    on ``o`` from edge ``k + 6``, if ``o`` was not stalled meanwhile. Throughput is one
    neuron per clock while ``o.ready`` is high. Backpressure: when ``o.ready`` is low
    the stages fill up and then hold; ``i.ready`` falls once all six are full.
    ``i.ready`` depends combinationally on ``o.ready`` through the six stages (an OR of
    their valids; no combinational path from ``i.valid``). Nothing is dropped or
    repeated. Overflow: none is possible inside; ``v`` saturates to the signed 24-bit
    range exactly where the model saturates it. Reset empties the pipeline; items in
    flight are lost. Timing: each stage holds at most one carry chain (adder or
    comparison) followed by LUT-level muxing.
    """

    #: Clocks from acceptance on ``i`` to presentation on ``o``.
    LATENCY = 6

    def __init__(self, *, input_width: int = 32, stimulus_width: int = 32, tag_width: int = 16,
                 shared_params: bool = False):
        owner = type(self).__name__
        self._input_width = _check_width(owner, "input_width", input_width, 2, 64)
        self._stimulus_width = _check_width(owner, "stimulus_width", stimulus_width, 2, 64)
        self._tag_width = _check_width(owner, "tag_width", tag_width, 0, 256)
        if not isinstance(shared_params, bool):
            raise ValidationError(f"{owner}.shared_params", f"must be true or false, not {shared_params!r}")
        self._shared = shared_params
        in_layout = update_input_layout(input_width, stimulus_width, tag_width, shared_params)
        members = {
            "i": In(stream.Signature(in_layout)),
            "o": Out(stream.Signature(update_output_layout(tag_width))),
        }
        if shared_params:
            members.update(params=In(PARAMS_LAYOUT), settled=Out(1))
        super().__init__(members)

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
        shared = dict(shared=True) if self._shared else {}
        stages = [
            GateStage(**widths, **shared),
            LeakStage(**widths, **shared),
            SumStage(**widths, **shared),
            IntegrateStage(**widths, **shared),
            NoiseStage(**widths, **shared),
            FireStage(tag_width=self._tag_width, **shared),
        ]
        upstream = wiring.flipped(self.i)
        for stage in stages:
            m.submodules[type(stage).__name__.removesuffix("Stage").lower()] = stage
            wiring.connect(m, upstream, stage.i)
            upstream = stage.o
            if self._shared:
                m.d.comb += stage.params.eq(self.params)
        wiring.connect(m, upstream, wiring.flipped(self.o))
        if self._shared:
            # the last stage's output register holds a finished item: it reads no parameter
            m.d.comb += self.settled.eq(~Cat(stage.o.valid for stage in stages[:-1]).any())
        assert len(stages) == self.LATENCY
        return m
