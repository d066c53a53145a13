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

The iCE40 core (docs/ice40-plan.md) has one accumulator bank, so every event is pushed
(delay 0 into slot ``t + 1``), and its memories are single-port SPRAMs: the synapse
words without ``compartment`` in one 32-bit SPRAM, the axon entries and the packed
compartments in rows of the event queue's pool SPRAM, which the fan-out reads through
the queue's aux port (``layouts.spram_regions``; :class:`FanOut`'s "SPRAM mode").
"""

from typing import NamedTuple

from amaranth.hdl import Cat, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, stream
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.memory import ReadPort
from amaranth.lib.wiring import In, Out

from neurofab.errors import ValidationError

from .block import CoreBlock
from .config import CoreConfig, addr_bits
from .layouts import (
    COMPARTMENT_ROW_LAYOUT,
    COMPARTMENTS_PER_ROW,
    EVENT_VALUE_BITS,
    SPRAM_ROW_BITS,
    SPRAM_ROWS,
    core_layouts,
    spram_regions,
    spram_synapse_layout,
)
from .neuron_pass import spike_layout

__all__ = ["GRADED_SHIFT", "delivery_layout", "event_layout", "arrival_slot", "graded_value", "graded_select",
           "FanOut"]

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
    return graded_select(weight, weight * payload.as_unsigned(), graded)


def graded_select(weight, product, graded):
    """:func:`graded_value` from ``product = weight * payload`` computed (and registered) before.

    ``product`` is ``signed(25)`` (Amaranth widens a signed 16 x unsigned 8 product).
    """
    return Mux(graded, product >> GRADED_SHIFT, weight).as_signed()[:EVENT_VALUE_BITS].as_signed()


class _AuxFront(NamedTuple):
    """What the SPRAM mode's front end gives the walk (see ``FanOut._elaborate_aux_front``)."""

    entry_valid: Value  #: an axon entry waits for the walk
    entry: data.View  #: its ``layouts.axon`` entry
    entry_payload: Value  #: its spike's payload
    entry_nonempty: Value  #: its ``syn_count`` is not 0
    take: Signal  #: driven by the walk: takes the entry this clock
    rows: SyncFIFO  #: the compartment rows arrived, in the order the walk needs them
    busy: Value  #: a spike is in the front end


class FanOut(CoreBlock):
    """Turns each spike into one event per synapse of its axon: ``direct`` or ``push``.

    Two memory systems, chosen by ``config.spram``: the *memory mode* (core v2, the
    ECP5: the axon table and the synapse memory behind read ports) and the *SPRAM mode*
    (the iCE40, docs/ice40-plan.md: the synapse SPRAM behind a read port, the axon
    entries and the compartment rows read through the event queue's shared ``aux``
    port). Independently, ``config.accumulator_banks == 1`` pushes every event.

    Parameters
    ----------
    config : CoreConfig
        The core's shape: the axon and synapse word layouts (``layouts.core_layouts``;
        in SPRAM mode ``layouts.spram_synapse_layout`` and ``layouts.spram_regions``,
        whose refusals of a config that does not fit the SPRAMs this raises),
        ``delay_slots``, ``accumulator_banks``, ``spram``.
    syn_latency : int
        Clocks (>= 1) from a synapse read (``syn_rd.en`` high with ``syn_rd.addr``) to its
        word on ``syn_rd.data``, valid in exactly that clock: 1 for a plain read port,
        more for a pipelined memory (Core's banked synapse memory: 4). The word need not
        be held afterwards: the fan-out takes every word the clock it arrives.

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
    axon_rd : memory mode only: read port of the axon table (``layouts.axon``); entry
        ``neuron`` is read once per spike.
    aux_req : SPRAM mode only: ``Out(stream.Signature(unsigned(14)))``
        The pool SPRAM row to read (``layouts.spram_regions``): ``axon_base + neuron``
        once per spike, and ``compartment_base + r`` for each compartment row ``r`` its
        synapses span, once per spike. Reads only (the Core drives the queue's ``write``
        and ``data`` 0). ``valid`` and ``payload`` are registers, and a request once
        offered is held unchanged until taken; the queue may make ``ready`` depend on
        ``valid``.
    aux_rsp : SPRAM mode only: ``In(stream.Signature(unsigned(32)))``
        The row of each read, in request order, any number (>= 1) of clocks after its
        request was taken. ``ready`` is always high: a request is offered only when its
        row has room (at most :data:`AXON_AHEAD` axon rows and :data:`ROWS_AHEAD`
        compartment rows requested and not yet used).
    syn_rd : read port of the synapse memory, ``syn_latency`` clocks deep: of
        ``layouts.synapse`` words (memory mode) or 32-bit ``layouts.spram_synapse_layout``
        words (SPRAM mode); words ``syn_base .. syn_base + syn_count - 1`` are read once
        each, in order.
    direct : ``Out(stream.Signature(delivery_layout(config)))``
        ``(target, compartment, value)`` of every synapse with ``delay == 0`` (when
        ``horizon > 0``): arrival ``t + 1``, for the accumulator bank of step ``t + 1``.
        With ``accumulator_banks == 1``: never valid (those events are pushed).
    push : ``Out(stream.Signature(event_layout(config)))``
        ``(slot, target, compartment, value)`` of every synapse with ``1 <= delay <
        horizon`` (``0 <= delay < horizon`` with ``accumulator_banks == 1``), ``slot =
        (t + 1 + delay) mod delay_slots``: for the event queue.
        Both streams carry their events in spike order and within a spike in
        synapse-memory order (interleaved as the synapses come); ``value`` is fixed from
        the weight and the spike's payload as read now.
    busy : ``Out(1)``
        High while a spike is accepted but not all of its events have been handed over.
        With ``spikes.valid`` low, ``busy`` low means every spike so far is fully fanned out.

    Timing, memory mode (every memory's data is registered before any logic reads it,
    and the graded product has a stage of its own, for the clock rate): the clock that
    takes a spike reads its axon entry; the next clock registers it; from the clock after that the walk
    reads the spike's synapse words, one a clock. A synapse word read in clock ``k`` is
    written into a small FIFO in ``k + L`` (``L = syn_latency``, taken off the read port),
    its product and arrival slot are registered in ``k + L + 1``, and its event is in the
    output register, offered on ``direct`` or ``push``, from ``k + L + 3``: a spike's first
    event is offered :attr:`latency` (:data:`FanOut.LATENCY` (6) ``- 1 + L``) clocks after
    the spike is taken. The axon entries of the
    next spikes are read and registered while the current spike is walked, so the walk
    starts the next spike's synapses in the clock after the current spike's last one: a
    spike costs ``max(syn_count, 1)`` clocks with spikes waiting, one clock per synapse,
    and a spike with no synapse one clock.

    Timing, SPRAM mode (``Lr``: clocks from an aux request taken to its row on
    ``aux_rsp``; the chunked queue's is 2). A spike is taken into the request register
    as its axon row request, when that register is free (empty or its request taken
    this clock), no compartment row is due (one waits to be requested and has room:
    compartment rows go first), and fewer than
    :data:`AXON_AHEAD` spikes' axon rows are in flight or waiting. A row requester takes
    the axon entries in order as they arrive, requests the spike's compartment rows
    ``syn_base >> 4 .. (syn_base + syn_count - 1) >> 4`` (none for an empty list; at
    most :data:`ROWS_AHEAD` requested and not yet used by the walk), and hands the entry
    to the walk (through a 2-entry FIFO).
    The walk is the memory mode's, but the first synapse of a spike and each one at an
    address that is a multiple of 16 waits for its compartment row. With everything idle
    and the port free, a spike taken in clock ``a`` has its axon row requested in
    ``a + 1``, its first compartment row in ``a + 4 + Lr``, its first synapse read in
    ``a + 5 + 2 Lr``, and its first event offered in ``a +``
    :meth:`spram_latency` ``(Lr)`` ``= a + 8 + 2 Lr + L``.
    **Port clocks.** A spike of ``F`` synapses takes ``1 + R + F`` clocks of the shared
    port: its axon row, its ``R = ceil((syn_base mod 16 + F) / 16)`` compartment rows
    (0 when ``F = 0``; ``R <= ceil(F / 16) + 1``), and its ``F`` pushes (with one bank;
    with two, delay-0 events leave on ``direct`` and take no port clock). The row
    requester and the walk run ahead of the port (``1 + R`` and ``F`` clocks a spike),
    so with spikes waiting and a port that takes the fan-out's requests first and a
    push in every other clock it is free, the port is never idle from the first push to
    the last while every spike has at least 2 synapses and ``Lr <= 2`` (tested; the
    chunked queue's is 2): ``F`` events of a spike cost exactly ``F + 1 + R <= F + 1 +
    ceil(F / 16) + 1`` port clocks. (At ``Lr = 3`` the two row credits run out now and
    then: at most one idle clock in 885 on the test's burst.) Before the first push the port
    idles only while the first spike's entry, rows and words travel (at most ``2 Lr +
    L`` clocks). Spikes of 0 or 1 synapse leave idle clocks (their axon rows wait on
    the two axon credits, a round trip of the port each): at ``Lr = 2``, 32 spikes with
    none use the port in 32 of 77 clocks, 32 with one synapse in 96 of 109. Two
    credits of each kind (not more) because each is a FIFO entry of 8 + 29 or 32
    flip-flops and its multiplexers: four and three cost 135 LUTs and 119 flip-flops
    more on the iCE40, for a step a few clocks shorter only when lists are empty.

    Backpressure: the two outputs share one register (an event is on ``direct`` or on
    ``push``, never both); a stall of the stream it is on holds it, then the product
    stage and the synapse-word FIFO (SPRAM mode: the product stage moves on into a skid
    register behind the output register while that one stalls, and holds only while the
    skid register is full, so no stage before the output register sees either output's
    ``ready``; the events, their order and a ready output's throughput are the same);
    the reads in flight never stall (the memory's pipeline has no enable to hold): a
    read is issued only while the reads issued and not yet taken out of the FIFO are
    fewer than its ``L + 2`` words, so every word in flight has room when it lands, and
    one read a clock keeps going while the outputs take one event a clock. Past that the
    walk holds, then the registered axon entry, the axon entry in its read port's data,
    and last ``spikes`` (SPRAM mode: then the entries for the walk, the row requester,
    the axon entries arrived, and the request register, which also holds while the port
    does not take it; the rows and entries in flight always have room). The other stream
    is not offered anything meanwhile, so events leave in synapse order. Nothing is lost
    or repeated. ``spikes.ready`` is computed from registers only (it never depends on
    ``spikes.valid`` nor on either output's ``ready``; in SPRAM mode it also depends on
    ``aux_req.ready``).
    Overflow: none; a dropped event (``delay >= horizon``) is the model's rule, not an
    overflow. Reset abandons the spikes taken and not yet fanned out (in SPRAM mode
    also the aux reads in flight: reset the queue's aux port with it).
    """

    #: clocks from taking a spike to its first event offered (outputs ready, walk free)
    LATENCY = 6
    #: SPRAM mode: :data:`LATENCY` with an aux response latency of 0 (see :meth:`spram_latency`)
    SPRAM_LATENCY = 9
    #: SPRAM mode: axon rows requested ahead of the row requester (their responses' room)
    AXON_AHEAD = 2
    #: SPRAM mode: compartment rows requested ahead of the walk (their responses' room)
    ROWS_AHEAD = 2

    def __init__(self, config: CoreConfig, syn_latency: int = 1):
        self.checked(config)
        if not isinstance(syn_latency, int) or isinstance(syn_latency, bool) or syn_latency < 1:
            raise ValidationError("FanOut.syn_latency", f"must be an int >= 1, not {syn_latency!r}")
        self._syn_latency = syn_latency
        layouts = core_layouts(config)
        if config.spram:
            spram_regions(config)  # refuses a config whose SPRAM words or rows do not fit
            memories = {
                "aux_req": Out(stream.Signature(unsigned(addr_bits(SPRAM_ROWS)))),
                "aux_rsp": In(stream.Signature(unsigned(SPRAM_ROW_BITS))),
                "syn_rd": In(ReadPort.Signature(addr_width=config.synapse_addr_bits,
                                                shape=spram_synapse_layout(config))),
            }
        else:
            memories = {
                "axon_rd": In(ReadPort.Signature(addr_width=config.axon_bits, shape=layouts.axon)),
                "syn_rd": In(ReadPort.Signature(addr_width=config.synapse_addr_bits, shape=layouts.synapse)),
            }
        super().__init__(config, {
            "spikes": In(stream.Signature(spike_layout(config))),
            "slot": In(addr_bits(config.delay_slots)),
            "horizon": In(range(config.delay_slots + 1)),
            "graded": In(1),
            **memories,
            "direct": Out(stream.Signature(delivery_layout(config))),
            "push": Out(stream.Signature(event_layout(config))),
            "busy": Out(1),
        })

    @property
    def syn_latency(self) -> int:
        """Clocks from a synapse read (``syn_rd.en``) to its word on ``syn_rd.data``."""
        return self._syn_latency

    @property
    def latency(self) -> int:
        """Memory mode: clocks from a spike taken to its first event: ``LATENCY - 1 + syn_latency``."""
        return self.LATENCY - 1 + self._syn_latency

    def spram_latency(self, aux_latency: int) -> int:
        """SPRAM mode: clocks from taking a spike to its first event offered (all idle, the
        port free), with aux rows ``aux_latency`` clocks after their requests are taken:
        ``SPRAM_LATENCY - 1 + syn_latency + 2 * aux_latency``."""
        return self.SPRAM_LATENCY - 1 + self._syn_latency + 2 * aux_latency

    def elaborate(self, platform):
        m = Module()
        config = self._config
        layouts = core_layouts(config)
        synapse_layout = layouts.synapse
        spram = config.spram

        # --- the stages, from the spikes to the outputs ---------------------------------
        if spram:
            # The aux front end (the SPRAM mode's A and B) drives the walk's entry signals.
            front = self._elaborate_aux_front(m)
            entry_valid, entry, entry_payload = front.entry_valid, front.entry, front.entry_payload
            entry_nonempty = front.entry_nonempty
            front_busy = front.busy
        else:
            # A: an axon entry on axon_rd.data (read last clock, or held with en low).
            axon_valid = Signal()
            axon_payload = Signal(8)
            # B: the registered axon entry, waiting for the walk.
            entry_valid = Signal()
            entry_payload = Signal(8)
            entry = Signal(layouts.axon)
            entry_nonempty = entry.syn_count != 0
        # The walk: the synapse address to read next and how many are left of the spike.
        walk_payload = Signal(8)
        cursor = Signal(layouts.axon["syn_base"].shape)
        left = Signal(layouts.axon["syn_count"].shape)
        # C: the synapse reads in flight, ``syn_latency`` clocks; the spike's payload
        # travels with its synapse. Nothing in flight stalls: a read is issued only when
        # the words FIFO (D) is sure to have room for it.
        latency = self._syn_latency
        flight_valid = [Signal(name=f"flight_valid_{i}") for i in range(latency)]
        flight_payload = [Signal(8, name=f"flight_payload_{i}") for i in range(latency)]
        if spram:
            # the compartment, taken from its row when the read is issued, travels too
            flight_compartment = [Signal(synapse_layout["compartment"].shape, name=f"flight_compartment_{i}")
                                  for i in range(latency)]
        # D: the synapse words that arrived, a FIFO with room for every read in flight
        # plus the one at its head (one read a clock while stage E takes one a clock).
        depth = latency + 1
        # only the fields an event needs (not ``elig`` nor ``plastic``), and the payload
        kept = data.StructLayout({name: synapse_layout[name].shape
                                  for name in ("target", "compartment", "weight", "delay")})
        m.submodules.words = words = SyncFIFO(width=kept.size + 8, depth=depth)
        pending = Signal(range(depth + 1))  # reads issued and not yet taken out of D
        word_valid = Signal()
        word = Signal(kept)
        word_payload = Signal(8)
        m.d.comb += [
            word_valid.eq(words.r_rdy),
            word.eq(words.r_data[:kept.size]),
            word_payload.eq(words.r_data[kept.size:]),
        ]
        # E: the product and everything else an event needs, registered.
        calc_valid = Signal()  # and delay < horizon: stage E holds events only
        calc_direct = Signal()
        calc_slot = Signal(event_layout(config)["slot"].shape)
        calc_target = Signal.like(word.target)
        calc_compartment = Signal.like(word.compartment)
        calc_product = Signal(signed(len(word.weight) + 9))  # signed 16 x unsigned 8
        # F: the output register, an event for ``direct`` (is_direct) or ``push``.
        out_valid = Signal()
        is_direct = Signal()
        out_event = Signal(event_layout(config))
        # SPRAM mode: G, the skid register behind F. E moves on whenever G is empty (into F,
        # or into G while F stalls), so no stage before F sees the outputs' ``ready``: the
        # queue's ``push.ready`` (itself behind its aux port) ends at F's and G's enables
        # instead of running through the walk into the synapse SPRAM (iCE40: its critical
        # path, host_re -> the queue's aux -> push.ready -> the walk -> the SPRAM, 40.7 ns).
        skid = spram
        if skid:
            skid_valid = Signal()
            skid_direct = Signal()  # a constant 0 with one bank (calc_direct is)
            skid_event = Signal(event_layout(config))

        # Each stage takes new contents when it is empty or its contents move on.
        out_ready = Mux(is_direct, self.direct.ready, self.push.ready)
        take_out = ~out_valid | out_ready
        take_calc = ~calc_valid | (~skid_valid if skid else take_out)
        pop = word_valid & take_calc  # stage D moves on into E
        # The walk takes the registered axon entry once it has issued every synapse before.
        # ``walk_free`` (``left == 0``) is a register of its own, and whether the entry has
        # synapses comes with it (SPRAM mode: from the row requester), so no 15-bit compare
        # stands between the walk's registers and a read (iCE40: two LUT levels off its
        # critical path, ``left`` to the synapse SPRAM).
        walk_free = Signal(init=1)
        load = walk_free & entry_valid
        next_addr = Mux(walk_free, entry.syn_base, cursor)
        remaining = Mux(walk_free, entry.syn_count, left)  # with this read's synapse, when it issues
        work = Mux(walk_free, entry_valid & entry_nonempty, 1)
        # a word leaving D this clock frees the room of a read issued now
        issue = work & ((pending < depth) | pop)
        if spram:
            # The compartment rows of a spike arrive in the order its synapses need them:
            # the first synapse of a spike, and every one at a multiple of 16, takes the
            # next row; the others use the row the walk holds.
            rows = front.rows
            row = Signal(SPRAM_ROW_BITS)
            # a spike loaded into the walk before its first row was there: its first
            # synapse (at ``cursor`` now) still takes a new row
            fresh = Signal()
            new_row = walk_free | fresh | (cursor[:addr_bits(COMPARTMENTS_PER_ROW)] == 0)
            issue = issue & (~new_row | rows.r_rdy)
            # select in both rows, then pick: two 16:1 selects of 2 bits, not a 32-bit mux first
            element = next_addr[:addr_bits(COMPARTMENTS_PER_ROW)]
            compartment = Mux(new_row, data.View(COMPARTMENT_ROW_LAYOUT, rows.r_data)[element],
                              data.View(COMPARTMENT_ROW_LAYOUT, row)[element])
            m.d.comb += [
                rows.r_en.eq(issue & new_row),
                front.take.eq(load),
            ]
            with m.If(issue & new_row):
                m.d.sync += row.eq(rows.r_data)
            with m.If(issue):
                m.d.sync += fresh.eq(0)
            with m.Elif(load):
                m.d.sync += fresh.eq(1)
        else:
            take_axon = axon_valid & (~entry_valid | load)  # stage A moves on into B

        for port in (self.syn_rd,) if spram else (self.axon_rd, self.syn_rd):
            m.d.comb += port.en.eq(0)
        if spram:
            spikes_side = []
        else:
            front_busy = axon_valid | entry_valid
            spikes_side = [
                self.spikes.ready.eq(~axon_valid | ~entry_valid | load),
                self.axon_rd.addr.eq(self.spikes.payload.neuron),
            ]
        # with one accumulator bank every event is pushed: ``direct`` is never valid
        banked = config.accumulator_banks == 2
        m.d.comb += [
            *spikes_side,
            self.syn_rd.addr.eq(next_addr),
            self.busy.eq(front_busy | ~walk_free | (pending != 0) | calc_valid | out_valid
                         | (skid_valid if skid else 0)),
            *([self.direct.valid.eq(out_valid & is_direct)] if banked else []),
            self.push.valid.eq(out_valid & ~is_direct),
            *([self.direct.payload.target.eq(out_event.target),
               self.direct.payload.compartment.eq(out_event.compartment),
               self.direct.payload.value.eq(out_event.value)] if banked else []),
            self.push.payload.eq(out_event),
        ]

        if not spram:
            # A: take a spike, read its axon entry
            with m.If(self.spikes.valid & self.spikes.ready):
                m.d.comb += self.axon_rd.en.eq(1)
                m.d.sync += [axon_valid.eq(1), axon_payload.eq(self.spikes.payload.payload)]
            with m.Elif(take_axon):
                m.d.sync += axon_valid.eq(0)

            # B: register the axon entry straight off the read port
            with m.If(take_axon):
                m.d.sync += [entry_valid.eq(1), entry.eq(self.axon_rd.data), entry_payload.eq(axon_payload)]
            with m.Elif(load):
                m.d.sync += entry_valid.eq(0)

        # the walk: one synapse read a clock
        with m.If(load):
            m.d.sync += walk_payload.eq(entry_payload)
        with m.If(issue):
            m.d.comb += self.syn_rd.en.eq(1)
            m.d.sync += [
                cursor.eq(next_addr + 1),
                left.eq(remaining - 1),
                walk_free.eq(remaining == 1),
            ]
        with m.Elif(load):  # a spike with no synapse leaves the walk free
            m.d.sync += [cursor.eq(entry.syn_base), left.eq(entry.syn_count), walk_free.eq(~entry_nonempty)]

        # C: the reads in flight, a shift register as long as the read latency
        m.d.sync += [flight_valid[0].eq(issue),
                     flight_payload[0].eq(Mux(walk_free, entry_payload, walk_payload))]
        for i in range(1, latency):
            m.d.sync += [flight_valid[i].eq(flight_valid[i - 1]), flight_payload[i].eq(flight_payload[i - 1])]
        if spram:
            m.d.sync += flight_compartment[0].eq(compartment)
            for i in range(1, latency):
                m.d.sync += flight_compartment[i].eq(flight_compartment[i - 1])
            landed = {**{name: self.syn_rd.data[name] for name in kept.members if name != "compartment"},
                      "compartment": flight_compartment[-1]}
        else:
            landed = {name: self.syn_rd.data[name] for name in kept.members}

        # D: every word arriving goes into the FIFO (``pending`` guarantees the room)
        m.d.comb += [
            words.w_en.eq(flight_valid[-1]),
            words.w_data.eq(Cat(*(landed[name] for name in kept.members), flight_payload[-1])),
            words.r_en.eq(pop),
        ]
        m.d.sync += pending.eq(pending + issue - pop)

        # E: the product (a DSP) and the arrival slot; late arrivals are dropped here
        with m.If(take_calc):
            m.d.sync += calc_valid.eq(word_valid & (word.delay < self.horizon))
            with m.If(word_valid):
                if config.accumulator_banks == 2:
                    m.d.sync += calc_direct.eq(word.delay == 0)
                m.d.sync += [
                    calc_slot.eq(arrival_slot(self.slot, word.delay, config.delay_slots)),
                    calc_target.eq(word.target),
                    calc_compartment.eq(word.compartment),
                    # ``w * 128 >> 7 == w``: one product for both kinds of spike, and no
                    # weight register beside it
                    calc_product.eq(word.weight * Mux(self.graded, word_payload, 1 << GRADED_SHIFT)),
                ]

        # F: the output register (SPRAM mode: from G first, which E's event then waits behind)
        calc_event = Signal(event_layout(config))
        m.d.comb += [
            calc_event.slot.eq(calc_slot),
            calc_event.target.eq(calc_target),
            calc_event.compartment.eq(calc_compartment),
            calc_event.value.eq((calc_product >> GRADED_SHIFT).as_signed()[:EVENT_VALUE_BITS]),
        ]
        if skid:
            with m.If(take_out):
                m.d.sync += [out_valid.eq(skid_valid | calc_valid), skid_valid.eq(0)]
                with m.If(skid_valid):
                    m.d.sync += [is_direct.eq(skid_direct), out_event.eq(skid_event)]
                with m.Elif(calc_valid):
                    m.d.sync += [is_direct.eq(calc_direct), out_event.eq(calc_event)]
            with m.Elif(~skid_valid):  # F stalls: E's event, if any, moves into G
                m.d.sync += [skid_valid.eq(calc_valid), skid_direct.eq(calc_direct),
                             skid_event.eq(calc_event)]
        else:
            with m.If(take_out):
                m.d.sync += out_valid.eq(calc_valid)
                with m.If(calc_valid):
                    m.d.sync += [is_direct.eq(calc_direct), out_event.eq(calc_event)]
        return m

    def _elaborate_aux_front(self, m: Module):
        """The SPRAM mode's front end: spikes to axon entries and compartment rows over ``aux``.

        Returns an :class:`_AuxFront`: the next spike's axon entry for the walk and the
        signal the walk drives to take it, the FIFO of compartment rows arrived (the walk
        pops it), and whether the front end holds anything.
        """
        config = self._config
        axon = core_layouts(config).axon
        regions = spram_regions(config)
        row_select = addr_bits(COMPARTMENTS_PER_ROW)
        max_rows = -(-config.synapse_words // COMPARTMENTS_PER_ROW) + 1
        # The request register: what aux_req offers, from registers only, held until taken.
        req_valid = Signal()
        req_addr = Signal(len(self.aux_req.payload))
        req_row = Signal()  # a compartment row (else an axon row)
        # The payloads of the spikes whose axon rows are requested or arrived and not yet
        # taken by the row requester, in order: its level is the axon rows' credit count.
        m.submodules.payloads = payloads = SyncFIFO(width=8, depth=self.AXON_AHEAD)
        m.submodules.entries = entries = SyncFIFO(width=axon.size, depth=self.AXON_AHEAD)
        # what each request in flight is, in order (responses come in order)
        m.submodules.kinds = kinds = SyncFIFO(width=1, depth=self.AXON_AHEAD + self.ROWS_AHEAD)
        # the row requester: the compartment rows of the last entry it took, left to request
        row_addr = Signal(len(self.aux_req.payload))
        rows_left = Signal(range(max_rows + 1))
        # the compartment rows requested or arrived and not yet taken by the walk: credits
        m.submodules.rows = rows = SyncFIFO(width=SPRAM_ROW_BITS, depth=self.ROWS_AHEAD)
        rows_out = Signal(range(self.ROWS_AHEAD + 1))
        # the entries taken by the row requester, with their payloads and whether they have
        # synapses, for the walk
        m.submodules.walks = walks = SyncFIFO(width=axon.size + 8 + 1, depth=2)

        fire = req_valid & self.aux_req.ready
        load_req = ~req_valid | fire
        want_row = (rows_left != 0) & (rows_out < self.ROWS_AHEAD)
        load_row = load_req & want_row
        load_axon = load_req & ~want_row & self.spikes.valid & payloads.w_rdy
        m.d.comb += [
            self.aux_req.valid.eq(req_valid),
            self.aux_req.payload.eq(req_addr),
            self.aux_rsp.ready.eq(1),  # every response has room: credits are taken with its request
            self.spikes.ready.eq(load_req & ~want_row & payloads.w_rdy),
        ]
        with m.If(load_req):
            m.d.sync += [req_valid.eq(load_row | load_axon), req_row.eq(want_row)]
        with m.If(load_row):
            m.d.sync += req_addr.eq(row_addr)
        with m.Elif(load_axon):
            m.d.sync += req_addr.eq(regions.axon_base + self.spikes.payload.neuron)
        m.d.comb += [
            payloads.w_en.eq(load_axon),
            payloads.w_data.eq(self.spikes.payload.payload),
            kinds.w_en.eq(fire),
            kinds.w_data.eq(req_row),
        ]

        # the responses, sorted by their kind
        m.d.comb += [
            kinds.r_en.eq(self.aux_rsp.valid),
            entries.w_en.eq(self.aux_rsp.valid & ~kinds.r_data),
            entries.w_data.eq(self.aux_rsp.payload),
            rows.w_en.eq(self.aux_rsp.valid & kinds.r_data),
            rows.w_data.eq(self.aux_rsp.payload),
        ]

        # The row requester takes an entry once the last one's rows are all requested:
        # rows ``syn_base >> 4 .. (syn_base + syn_count - 1) >> 4`` of the compartment region.
        taken = data.View(axon, entries.r_data)
        take = (rows_left == 0) & entries.r_rdy & walks.w_rdy
        spanned = (taken.syn_base[:row_select] + taken.syn_count + (COMPARTMENTS_PER_ROW - 1)) >> row_select
        m.d.comb += [
            entries.r_en.eq(take),
            payloads.r_en.eq(take),
            walks.w_en.eq(take),
            walks.w_data.eq(Cat(entries.r_data, payloads.r_data, taken.syn_count != 0)),
        ]
        with m.If(take):
            m.d.sync += [
                rows_left.eq(Mux(taken.syn_count == 0, 0, spanned)),
                row_addr.eq(regions.compartment_base + (taken.syn_base >> row_select)),
            ]
        with m.Elif(load_row):
            m.d.sync += [rows_left.eq(rows_left - 1), row_addr.eq(row_addr + 1)]
        m.d.sync += rows_out.eq(rows_out + load_row - rows.r_en)

        take_entry = Signal()
        m.d.comb += walks.r_en.eq(take_entry)
        return _AuxFront(
            entry_valid=walks.r_rdy,
            entry=data.View(axon, walks.r_data[:axon.size]),
            entry_payload=walks.r_data[axon.size:axon.size + 8],
            entry_nonempty=walks.r_data[axon.size + 8],
            take=take_entry,
            rows=rows,
            busy=req_valid | payloads.r_rdy | (rows_left != 0) | (rows_out != 0) | walks.r_rdy,
        )
