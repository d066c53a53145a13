"""The fan-out engine: a core's spikes into synaptic events, one synapse word a clock.

docs/memory-map.md, "One core": "For every spiking neuron ``i``: the synapses of axon
``i`` (axon table entry ``i``: ``syn_base``, ``syn_count``) become events on this core
[...]. An event is ``(target, compartment, value)`` with ``value = weight``, or
``(weight * g) >> 7`` with graded spikes, fixed now, queued for arrival step
``t + 1 + delay`` (not queued when that is ``>= T``)."

:class:`FanOut` does that for one core, one synapse per clock, over the axon table and
the synapse memory it reaches through read ports. Core v2 (docs/hardware.md) splits its
output: an event with delay 0 arrives at ``t + 1``, the very next step, so it goes
straight to :class:`~neurofab.hdl.accumulate.Accumulate` on ``direct`` (into the
accumulator bank that collects step ``t + 1``) and never takes room in the event queue;
every other event goes on ``push`` to :class:`~neurofab.hdl.event_queue.EventQueue` with
its arrival slot. Routes to other cores are not part of it (the single-core boards have
none; see docs/hardware.md, "Still to build").
"""

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import ReadPort
from amaranth.lib.wiring import In, Out

from neurofab.errors import ValidationError

from .config import CoreConfig, addr_bits
from .layouts import EVENT_VALUE_BITS, core_layouts
from .neuron_pass import spike_layout

__all__ = ["GRADED_SHIFT", "delivery_layout", "event_layout", "arrival_slot", "graded_value", "FanOut"]

#: docs/model.md: "with graded spikes ``(w * g) >> 7``"
GRADED_SHIFT = 7


def delivery_layout(config: CoreConfig) -> data.StructLayout:
    """One event on its way into an accumulator: ``FanOut.direct`` and ``EventQueue.drained``.

    ``target`` (local neuron), ``compartment`` and ``value`` (signed 17) are the fields
    of the queue's ``layouts.event`` word of the same names: add ``value`` into element
    ``compartment`` of accumulator word ``target``.
    """
    layouts = core_layouts(config)
    return data.StructLayout({
        "target": layouts.event["target"].shape,
        "compartment": layouts.event["compartment"].shape,
        "value": signed(EVENT_VALUE_BITS),
    })


def event_layout(config: CoreConfig) -> data.StructLayout:
    """One event on its way into the event queue (``FanOut.push``, ``EventQueue.push``).

    ``slot`` is the arrival slot ``(t + 1 + delay) mod delay_slots``; ``target``,
    ``compartment`` and ``value`` are :func:`delivery_layout`'s.
    """
    return data.StructLayout({
        "slot": unsigned(addr_bits(config.delay_slots)),
        **{name: field.shape for name, field in delivery_layout(config)},
    })


def arrival_slot(slot, delay, delay_slots: int):
    """``(slot + 1 + delay) mod delay_slots`` for ``slot, delay < delay_slots``: one compare, no divider."""
    ahead = slot + 1 + delay  # < 2 * delay_slots
    return Mux(ahead >= delay_slots, ahead - delay_slots, ahead)[:max(1, addr_bits(delay_slots))]


def graded_value(weight, payload, graded):
    """``(weight * payload) >> 7`` (arithmetic) with ``graded``, else ``weight``: ``signed(17)``.

    ``weight`` is signed 16, ``payload`` unsigned 8, so the product lies in
    -8,355,840 .. 8,355,585 and the shifted value in -65,280 .. 65,279.
    """
    product = weight * payload.as_unsigned()  # signed(25): Amaranth widens mixed-sign products
    return Mux(graded, product >> GRADED_SHIFT, weight).as_signed()[:EVENT_VALUE_BITS].as_signed()


class FanOut(wiring.Component):
    """Turns each spike into one event per synapse of its axon: ``direct`` or ``push``.

    Parameters
    ----------
    config : CoreConfig
        The core's shape: the axon and synapse word layouts (``layouts.core_layouts``),
        ``delay_slots``.

    Members
    -------
    spikes : ``In(stream.Signature(spike_layout(config)))``
        ``(neuron, payload)``: a spike of local neuron ``neuron`` with graded payload
        ``payload`` (ignored unless ``graded``).
    slot : ``In(addr_bits(delay_slots))``
        ``t mod delay_slots`` of the step whose spikes these are.
    horizon : ``In(range(delay_slots + 1))``
        ``min(delay_slots, T - 1 - t)``: a synapse with ``delay >= horizon`` would arrive at
        a step ``>= T`` and gives no event. ``slot``, ``horizon`` and ``graded`` must hold
        while ``busy``.
    graded : ``In(1)``
        The job's flag: event value ``(w * g) >> 7`` instead of ``w``.
    axon_rd : read port of the axon table (``layouts.axon``); entry ``neuron`` is read once
        per spike.
    syn_rd : read port of the synapse memory (``layouts.synapse``); words ``syn_base ..
        syn_base + syn_count - 1`` are read once each, in order.
    direct : ``Out(stream.Signature(delivery_layout(config)))``
        ``(target, compartment, value)`` of every synapse with ``delay == 0`` (when
        ``horizon > 0``): arrival ``t + 1``, for the accumulator bank of step ``t + 1``.
    push : ``Out(stream.Signature(event_layout(config)))``
        ``(slot, target, compartment, value)`` of every synapse with ``1 <= delay <
        horizon``, ``slot = (t + 1 + delay) mod delay_slots``: for the event queue.
        Both streams carry their events in spike order and within a spike in
        synapse-memory order (interleaved as the synapses come); ``value`` is fixed from
        the weight and the spike's payload as read now.
    busy : ``Out(1)``
        High while a spike is accepted but not all of its events have been handed over.
        With ``spikes.valid`` low, ``busy`` low means every spike so far is fully fanned out.

    Timing: the clock that takes a spike reads its axon entry; the next clock receives
    it and reads the first synapse word, and from then on one synapse word is read per
    clock while the outputs take them. An event is offered 2 clocks after its synapse
    word is read (the read, then the output register), so a spike's first event is on
    ``direct`` or ``push`` 3 clocks after the spike is taken. The next spike is taken in
    the clock that reads the last synapse of the current one (or 2 clocks after the
    current one for a spike with no synapse or one): a spike costs ``max(syn_count, 2)``
    clocks, one clock per synapse for every spike with at least two.

    Backpressure: the two outputs share one register (an event is on ``direct`` or on
    ``push``, never both); a stall of the stream it is on holds it, then the synapse word
    in the read port's data (its read enable stays low), then the walk. The other stream
    is not offered anything meanwhile, so events leave in synapse order. Nothing is lost
    or repeated. ``spikes.ready`` never depends on ``spikes.valid``.
    Overflow: none; a dropped event (``delay >= horizon``) is the model's rule, not an
    overflow. Reset abandons the spike being walked.
    """

    def __init__(self, config: CoreConfig):
        if not isinstance(config, CoreConfig):
            raise ValidationError("FanOut.config", f"must be a CoreConfig, not {config!r}")
        self._config = config
        layouts = core_layouts(config)
        super().__init__({
            "spikes": In(stream.Signature(spike_layout(config))),
            "slot": In(addr_bits(config.delay_slots)),
            "horizon": In(range(config.delay_slots + 1)),
            "graded": In(1),
            "axon_rd": In(ReadPort.Signature(addr_width=config.axon_bits, shape=layouts.axon)),
            "syn_rd": In(ReadPort.Signature(addr_width=config.synapse_addr_bits, shape=layouts.synapse)),
            "direct": Out(stream.Signature(delivery_layout(config))),
            "push": Out(stream.Signature(event_layout(config))),
            "busy": Out(1),
        })

    @property
    def config(self) -> CoreConfig:
        return self._config

    def elaborate(self, platform):
        m = Module()
        config = self._config
        layouts = core_layouts(config)

        # Walk state: the synapse address to read next and how many are left.
        loading = Signal()  # the axon entry read last clock is on axon_rd.data now
        walk_payload = Signal(8)  # payload of the spike being walked
        cursor = Signal(layouts.axon["syn_base"].shape)
        left = Signal(layouts.axon["syn_count"].shape)
        # Stage 1: the synapse word on syn_rd.data, not yet turned into an event.
        fetched = Signal()
        fetched_payload = Signal(8)  # the spike's payload travels with its synapse
        # Stage 2: the output register, an event for ``direct`` (is_direct) or ``push``.
        out_valid = Signal()
        is_direct = Signal()
        out_event = Signal(event_layout(config))

        out_ready = Mux(is_direct, self.direct.ready, self.push.ready)
        take_output = ~out_valid | out_ready
        consume = fetched & take_output  # stage 1 moves on (to an event, or dropped)
        # The clock that receives the axon entry already reads its first synapse.
        axon = self.axon_rd.data
        next_addr = Mux(loading, axon.syn_base, cursor)
        remaining = Mux(loading, axon.syn_count, left)
        issue = (remaining != 0) & (~fetched | consume)

        for port in (self.axon_rd, self.syn_rd):
            m.d.comb += port.en.eq(0)
        m.d.comb += [
            self.spikes.ready.eq(~loading & ((left == 0) | ((left == 1) & issue))),
            self.axon_rd.addr.eq(self.spikes.payload.neuron),
            self.syn_rd.addr.eq(next_addr),
            self.busy.eq(loading | (left != 0) | fetched | out_valid),
            self.direct.valid.eq(out_valid & is_direct),
            self.push.valid.eq(out_valid & ~is_direct),
            self.direct.payload.target.eq(out_event.target),
            self.direct.payload.compartment.eq(out_event.compartment),
            self.direct.payload.value.eq(out_event.value),
            self.push.payload.eq(out_event),
        ]

        with m.If(self.spikes.valid & self.spikes.ready):
            m.d.comb += self.axon_rd.en.eq(1)
            m.d.sync += [loading.eq(1), walk_payload.eq(self.spikes.payload.payload)]
        with m.Else():
            m.d.sync += loading.eq(0)

        with m.If(issue):
            m.d.comb += self.syn_rd.en.eq(1)
            m.d.sync += [cursor.eq(next_addr + 1), left.eq(remaining - 1), fetched_payload.eq(walk_payload)]
        with m.Elif(loading):
            m.d.sync += [cursor.eq(axon.syn_base), left.eq(axon.syn_count)]

        with m.If(issue):
            m.d.sync += fetched.eq(1)
        with m.Elif(consume):
            m.d.sync += fetched.eq(0)

        synapse = self.syn_rd.data
        with m.If(take_output):
            m.d.sync += out_valid.eq(consume & (synapse.delay < self.horizon))
            with m.If(consume):
                m.d.sync += [
                    is_direct.eq(synapse.delay == 0),
                    out_event.slot.eq(arrival_slot(self.slot, synapse.delay, config.delay_slots)),
                    out_event.target.eq(synapse.target),
                    out_event.compartment.eq(synapse.compartment),
                    out_event.value.eq(graded_value(synapse.weight, fetched_payload, self.graded)),
                ]
        return m
