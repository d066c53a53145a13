"""The iCE40 event queue: each arrival slot a list of chunks in one single-port SPRAM pool.

On the iCE40UP5K (docs/ice40-plan.md, ``CoreConfig.accumulator_banks == 1`` and
``spram``) a step ``t`` first drains slot ``t mod delay_slots`` (the events arriving at
``t``) into the one accumulator bank, then runs the pass with the fan-out under it, which
pushes **every** event, delay 0 included (slots ``t + 1 .. t + delay_slots``). Drain and
pushes never overlap in time: the core sequences them.

An event is a 28-bit word (``delivery_layout``: target, compartment, value) with no link:
a 41-bit word with a per-event link would need a third SPRAM lane. So the lists are
**chunked**: the pool's rows ``0 .. pool_chunks * chunk_events - 1`` are ``pool_chunks``
chunks of ``chunk_events`` consecutive rows (row ``chunk * chunk_events + offset``), and
each slot's list is a list of chunks. Kept beside the pool, in block RAM (EBR):

- the **arrival table**, one entry per slot (``head`` chunk, ``tail`` chunk, ``fill``:
  the offset of the next event in the tail chunk, ``full``: the tail chunk is full, so
  that a push's row needs no arithmetic after the table); whether a slot holds anything is a
  register bit per slot, so a drain or a clear empties a list without a memory write;
- the **chunk links**, ``link[c]``: the chunk after ``c`` in its slot's list;
- the **free-chunk FIFO**: chunks a drain has read to the end.

A push appends at its slot's tail: at ``fill`` of the tail chunk, or, when the slot
is empty or its tail chunk full, at offset 0 of a new chunk: a never-used one while any
are left (``fresh``), else the free FIFO's head. A drain walks the list one row a clock
and puts each chunk into the free FIFO in the clock of its last read.

**Physical bound.** When a push needs a chunk, each of the ``delay_slots`` lists wastes
less than one chunk (its partly filled tail), so ``held`` events occupy fewer than
``held / chunk_events + delay_slots`` chunks; the constructor requires ``event_queue <=
(pool_chunks - delay_slots - 1) * chunk_events``, which leaves a chunk for every push
that is not an overflow, and one to spare. Every freed chunk is in the free FIFO by the
drain's ``done``, so pushes, which come after it, find it there.

The pool's rows above the event rows belong to the **aux** port's users (the fan-out's
axon and compartment rows, written by the host): the pool is one
:class:`~neurofab.hdl.spram.SinglePortRAM` of :data:`POOL_DEPTH` x :data:`POOL_WIDTH`
(two SPRAM tiles side by side on an iCE40UP), one access a clock, shared in this order
of priority: an aux access, then a push's write or a drain's read (never both due at
once).

Size (tests/hdl/test_hdl_chunk_queue.py, Yosys ``synth_ice40``) at the plan's shape, 512
neurons x 4 compartments, 64 slots, 224 chunks of 64 events: 2 ``SB_SPRAM256KA``, 4
``SB_RAM40_4K``, 600 LUT4 and 347 flip-flops (64 of them the slots' empty bits, 32 the aux
response, 87 the drain's output buffer; the block RAMs are ``NO_RW_CHECK`` and the pool
has no hold register, ``SinglePortRAM(hold=False)``). Placed and routed alone in
``SerialHarness`` on the UP5K (nextpnr-ice40, seed 1): 39.2 MHz, measured before those
two (730 LUT4, 551 flip-flops then).
"""

from amaranth.hdl import Cat, Module, Mux, Shape, Signal, unsigned
from amaranth.lib import data, stream
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from neurofab.errors import ValidationError

from .block import CoreBlock
from .config import CoreConfig, addr_bits, count_bits
from .event_queue import STEP_BITS
from .fanout import delivery_layout, event_layout
from .spram import NO_RW_CHECK, SinglePortRAM

__all__ = ["POOL_DEPTH", "POOL_WIDTH", "AUX_ADDR_BITS", "DRAIN_LATENCY", "aux_layout", "ChunkedEventQueue"]

#: Rows of the pool: two SPRAM tiles side by side (16,384 x 16 each)
POOL_DEPTH = 16384
#: Bits of a pool row: an event's ``delivery_layout`` word in the low bits
POOL_WIDTH = 32
#: Bits of an aux address: any pool row
AUX_ADDR_BITS = addr_bits(POOL_DEPTH)

#: A drain of ``n > 0`` events with a ready consumer and no aux traffic hands its last
#: event over in clock ``n + DRAIN_LATENCY - 1`` after the ``drain`` pulse (clock 0).
DRAIN_LATENCY = 4

#: Entries of the drain's output buffer (its head is ``drained``): the walk reads while
#: the buffer has room for every word in flight, counted from registers only, so the
#: consumer's ``ready`` never reaches the pool's address. Three keep one event a clock.
_OUT_DEPTH = 3

#: Widest chunk index: the links and the free FIFO are 8-bit words (512 x 8 EBR mode)
_MAX_POOL_CHUNKS = 256


def aux_layout() -> data.StructLayout:
    """One aux request: read (``write`` 0) or write ``data`` to pool row ``addr``."""
    return data.StructLayout({
        "addr": unsigned(AUX_ADDR_BITS),
        "write": unsigned(1),
        "data": unsigned(POOL_WIDTH),
    })


def _is_power_of_two(n) -> bool:
    return isinstance(n, int) and not isinstance(n, bool) and n > 0 and n & (n - 1) == 0


class ChunkedEventQueue(CoreBlock):
    """Holds the events in flight of an iCE40 core; drains one arrival slot, takes pushes.

    Parameters
    ----------
    config : CoreConfig
        ``accumulator_banks`` must be 1 and ``spram`` True. ``event_queue`` (the limit
        of ``held``) within the physical bound (module doc), ``delay_slots``.
    pool_chunks : int
        Chunks of the pool, ``delay_slots + 2 .. 256``.
    chunk_events : int
        Rows per chunk, a power of two from 2; ``pool_chunks * chunk_events <=
        POOL_DEPTH``.
    primitive : bool or None
        The pool's :class:`~neurofab.hdl.spram.SinglePortRAM` ``primitive``: ``None``
        (default) builds SPRAM tiles for an iCE40UP platform, ``True`` always (e.g. for
        ``synth_ice40`` without a platform), ``False`` never.

    Members
    -------
    push : ``In(stream.Signature(event_layout(config)))``
        Events ``(slot, target, compartment, value)`` from the fan-out, ``slot`` never
        the slot being drained. One a clock; ``ready`` is low from a ``drain`` pulse
        (that clock included) until its ``done``, after a ``clear`` until its ``done``,
        and in a clock in which the last push taken still waits for the pool (an aux
        access took it); it does not depend on ``push.valid`` (it does on ``aux.valid``
        and ``drain``, through those conditions). A push that finds
        ``held == event_queue`` is taken and dropped: the queue overflows (below).
    drained : ``Out(stream.Signature(delivery_layout(config)))``
        ``(target, compartment, value)`` of every event of the slot being drained, one a
        clock while ``ready``; a stall holds it, nothing is lost or repeated. ``valid``
        and the payload are registers. Events come in push order.
    step : ``In(STEP_BITS)``
        The current timestep, recorded by an overflow; hold it during a step.
    drain : ``In(1)``
        Pulse while not ``busy``: drain arrival slot ``slot`` (``t mod delay_slots`` at
        the start of step ``t``). That clock reads the slot's entry and takes no push.
    slot : ``In(addr_bits(delay_slots))``
        The slot to drain; read in the clock of the ``drain`` pulse.
    clear : ``In(1)``
        Pulse while not ``busy`` (before a job): empty every list and the free FIFO,
        ``held`` 0, clear the error. Takes effect at that clock's edge. The aux port and
        the pool's contents are untouched.
    busy : ``Out(1)``
        A drain runs (until the clock of its ``done``), a push taken is not written yet,
        or a clear's ``done`` is due.
    done : ``Out(1)``
        One-clock pulse in the clock that hands over a drain's last event (an empty
        slot: the clock after ``drain``), and in the clock after a ``clear``.
    held : ``Out(count_bits(event_queue))``
        +1 a push taken and not dropped, -1 a drain's read of an event from the pool: a
        drain's events are all subtracted by the clock of its ``done``. So after the
        fan-out of step ``s`` the queue holds the events with arrival ``> s``, delay-0
        ones included (config's rule for ``accumulator_banks == 1``).
    queue_overflow : ``Out(1)``; queue_overflow_step : ``Out(STEP_BITS)``
        Sticky error, cleared only by ``clear`` (or reset), and the ``step`` of the first
        push that found ``held == event_queue``. Every push that finds it is dropped.
    aux : ``In(stream.Signature(aux_layout()))``
        A read or a write of any pool row (``addr`` < :data:`POOL_DEPTH`), for the
        fan-out's axon and compartment rows above the events. ``ready`` is always high:
        an access is taken in every clock it is ``valid``. It has the pool's port before
        pushes and drain reads, which wait a clock for each aux access.
    aux_valid : ``Out(1)``; aux_row : ``Out(32)``
        The row of each aux read, in order: ``aux_valid`` is high in exactly the second
        clock after the read (a read in clock ``c`` is answered in clock ``c + 2`` only; a
        write gives no answer), with the row on ``aux_row``, which holds it until the next
        read's row. Both are registers. There is no buffer and no ``ready``: the
        user takes the row in that clock (the fan-out has room for every row it asks
        for; the host reads one word at a time).

    Timing (clocks numbered from 0; no aux traffic unless said). A drain of ``n > 0``
    events with a ready consumer: clock 0 reads the slot's entry, 1 registers it, the
    pool is read in clocks ``2 .. n + 1`` (one port clock an event), event ``i`` is
    handed over in clock ``i + 4`` (``DRAIN_LATENCY`` = 4), ``done`` with the last in
    clock ``n + 3``; an empty slot gives ``done`` in clock 1. ``busy`` is low from the
    clock after ``done``. ``p`` pushes offered back to back from clock 0 are taken in
    clocks ``0 .. p - 1`` and written in ``1 .. p`` (one port clock a push); ``busy``
    is low from clock ``p + 1``. With aux accesses: every aux access taken in a clock
    in which a push's write or a drain's read is due delays it, and everything behind
    it, by exactly one clock (``done`` by one clock per aux access taken in clocks
    ``2 .. n + 1 + k``, ``k`` of them, with a ready consumer). An aux read in clock
    ``c`` is on ``aux_row`` in ``c + 2``; the aux port takes one access every clock. A
    ``drained`` consumer that stalls ``k`` clocks in a row delays ``done`` by at most
    ``k``. Reset empties the lists as a ``clear`` does (the pool's rows keep their
    contents, undefined after power-up).
    """

    def __init__(self, config: CoreConfig, *, pool_chunks: int, chunk_events: int = 64,
                 primitive: bool | None = None):
        self.checked(config)
        if primitive is not None and not isinstance(primitive, bool):
            raise ValidationError("ChunkedEventQueue.primitive",
                                  f"must be True, False or None, not {primitive!r}")
        if config.accumulator_banks != 1:
            raise ValidationError("core.accumulator_banks", "must be 1 for the chunked (iCE40) queue, "
                                  f"not {config.accumulator_banks}")
        if not config.spram:
            raise ValidationError("core.spram",
                                  f"must be true for the chunked (iCE40) queue, not {config.spram!r}")
        if not _is_power_of_two(chunk_events) or chunk_events < 2:
            raise ValidationError("ChunkedEventQueue.chunk_events",
                                  f"must be a power of two from 2, not {chunk_events!r}")
        low = config.delay_slots + 2
        if (isinstance(pool_chunks, bool) or not isinstance(pool_chunks, int)
                or not low <= pool_chunks <= _MAX_POOL_CHUNKS):
            raise ValidationError("ChunkedEventQueue.pool_chunks",
                                  f"must be an integer in {low} .. {_MAX_POOL_CHUNKS} (delay_slots + 2 "
                                  f"and 8-bit chunk links), not {pool_chunks!r}")
        if pool_chunks * chunk_events > POOL_DEPTH:
            raise ValidationError("ChunkedEventQueue.pool_chunks",
                                  f"{pool_chunks} chunks of {chunk_events} events are "
                                  f"{pool_chunks * chunk_events} rows, more than the pool's {POOL_DEPTH}")
        bound = (pool_chunks - config.delay_slots - 1) * chunk_events
        if config.event_queue > bound:
            raise ValidationError("core.event_queue",
                                  f"must be at most (pool_chunks - delay_slots - 1) * chunk_events = "
                                  f"({pool_chunks} - {config.delay_slots} - 1) * {chunk_events} = {bound} "
                                  f"(a chunk always free for a push), not {config.event_queue}")
        word_bits = Shape.cast(delivery_layout(config)).width
        if word_bits > POOL_WIDTH:
            raise ValidationError("core.neurons",
                                  f"{config.neurons} neurons x {config.compartments} compartments make a "
                                  f"{word_bits}-bit event, wider than the pool's {POOL_WIDTH}-bit rows")
        self._pool_chunks = pool_chunks
        self._chunk_events = chunk_events
        self._primitive = primitive
        super().__init__(config, {
            "push": In(stream.Signature(event_layout(config))),
            "drained": Out(stream.Signature(delivery_layout(config))),
            "step": In(STEP_BITS),
            "drain": In(1),
            "slot": In(addr_bits(config.delay_slots)),
            "clear": In(1),
            "busy": Out(1),
            "done": Out(1),
            "held": Out(count_bits(config.event_queue)),
            "queue_overflow": Out(1),
            "queue_overflow_step": Out(STEP_BITS),
            "aux": In(stream.Signature(aux_layout())),
            "aux_valid": Out(1),
            "aux_row": Out(POOL_WIDTH),
        })

    @property
    def pool_chunks(self) -> int:
        return self._pool_chunks

    @property
    def chunk_events(self) -> int:
        return self._chunk_events

    @property
    def event_rows(self) -> int:
        """Pool rows ``0 .. event_rows - 1`` hold events; the rows above are the aux users'."""
        return self._pool_chunks * self._chunk_events

    def elaborate(self, platform):
        m = Module()
        config = self._config
        chunks, per_chunk = self._pool_chunks, self._chunk_events
        capacity = config.event_queue
        chunk_shape = unsigned(max(1, addr_bits(chunks)))
        offset_bits = addr_bits(per_chunk)
        entry_layout = data.StructLayout({"head": chunk_shape, "tail": chunk_shape,
                                          "fill": unsigned(offset_bits), "full": unsigned(1)})
        delivery = delivery_layout(config)

        # --- memories ---------------------------------------------------------------------
        # every row read is taken the clock after (the drain's buffer, the aux responses): no hold
        m.submodules.pool = pool = SinglePortRAM(shape=POOL_WIDTH, depth=POOL_DEPTH,
                                                   primitive=self._primitive, hold=False)
        # No read here uses a word written in its clock (NO_RW_CHECK): a push's entry read
        # that meets stage B's write of its slot takes B's entry from registers instead
        # (`b_forward`); links are read by drains and written by pushes, which never meet;
        # the free FIFO's head is read again every clock and popped only by pushes, at
        # least two clocks after a drain's last write.
        m.submodules.arrivals = arrivals = Memory(shape=entry_layout, depth=config.delay_slots, init=[],
                                                  attrs=NO_RW_CHECK)
        entry_rd, entry_wr = arrivals.read_port(), arrivals.write_port()
        m.submodules.links = links = Memory(shape=chunk_shape, depth=chunks, init=[], attrs=NO_RW_CHECK)
        link_rd, link_wr = links.read_port(), links.write_port()
        m.submodules.free = free = Memory(shape=chunk_shape, depth=chunks, init=[], attrs=NO_RW_CHECK)
        free_rd, free_wr = free.read_port(), free.write_port()
        m.d.comb += [entry_rd.en.eq(0), entry_wr.en.eq(0), link_wr.en.eq(0), free_wr.en.eq(0)]

        def row(chunk, offset):  # chunk_events is a power of two: no multiplier
            return Cat(offset, chunk)

        nonempty = Signal(config.delay_slots)  # bit s: slot s's list has an event
        held = Signal(count_bits(capacity))
        full = Signal()  # held == capacity, kept as a register: it gates every push
        m.d.comb += self.held.eq(held)

        # --- the pool's port: aux first, then a push's write or a drain's read ---------------
        aux_now = Signal()
        write_due = Signal()  # stage B holds a push (pushes and drain reads never meet)
        read_due = Signal()  # the drain wants the row at its walk's position
        write_now = Signal()
        read_now = Signal()
        m.d.comb += [
            aux_now.eq(self.aux.valid),  # ready is always high
            write_now.eq(write_due & ~aux_now),
            read_now.eq(read_due & ~aux_now),
        ]

        # --- pushes: A takes one and reads its slot's entry; B appends it ---------------------
        cleared = Signal()  # a clear's done is due
        draining = Signal()  # from the drain pulse to the clock of its done
        drain_start = Signal()
        m.d.comb += drain_start.eq(self.drain & ~draining)
        b_valid = write_due
        b_event = Signal(event_layout(config))
        b_forward = Signal()  # B's entry is b_forward_entry: the write A's read missed
        b_forward_entry = Signal(entry_layout)
        fresh = Signal(range(chunks + 1))  # chunks 0 .. fresh - 1 have been used
        fresh_left = Signal(init=1)  # fresh < chunks, as a register
        pop = Signal()
        pushed = Signal()
        b_advance = ~b_valid | write_now
        m.d.comb += self.push.ready.eq(b_advance & ~draining & ~self.drain & ~cleared)

        with m.If(self.push.valid & self.push.ready):
            with m.If(full):
                with m.If(~self.queue_overflow):
                    m.d.sync += [self.queue_overflow.eq(1), self.queue_overflow_step.eq(self.step)]
            with m.Else():
                m.d.comb += [pushed.eq(1), entry_rd.addr.eq(self.push.payload.slot), entry_rd.en.eq(1)]

        # The empty bits: B sets its slot's, a drain's start clears its slot's, and A reads
        # its push's slot's bit into B's register (B's write of the same slot in that clock
        # is forwarded, as the entry is). Pushes and drains never meet, so one decoder
        # serves both writes (two cost about 100 more LUT4s at 64 slots); the reads keep a
        # multiplexer each, off the index's own multiplexer (iCE40: 27 -> 32 MHz). B sets
        # the bit in every clock it holds its push, not only in the clock of its write, so
        # the port's arbitration (an aux access first) stays out of the 64 enables: a push
        # that reads the bit early finds its slot's entry still due from B, which is the
        # forwarded case, since A takes a push only in a clock in which B writes or is empty.
        write_index = Signal.like(b_event.slot)
        m.d.comb += write_index.eq(Mux(drain_start, self.slot, b_event.slot))
        with m.If(b_valid | drain_start):
            m.d.sync += nonempty.bit_select(write_index, 1).eq(~drain_start)
        b_indexed = Signal()  # the slot's bit as A read it
        b_nonempty = b_forward | b_indexed

        # stage B: the slot's entry (as read, or forwarded), the row to write, the new entry
        old = Signal(entry_layout)
        m.d.comb += old.eq(Mux(b_forward, b_forward_entry, entry_rd.data))
        new_chunk_due = Signal()
        new_chunk = Signal(chunk_shape)
        new_entry = Signal(entry_layout)
        m.d.comb += [
            new_chunk_due.eq(~b_nonempty | old.full),
            new_chunk.eq(Mux(fresh_left, fresh, free_rd.data)),
            new_entry.head.eq(Mux(b_nonempty, old.head, new_chunk)),
            new_entry.tail.eq(Mux(new_chunk_due, new_chunk, old.tail)),
            new_entry.fill.eq(Mux(new_chunk_due, 0, old.fill)),  # this push's row, then + 1
        ]
        # the entry as stored: the fill after this push, and whether it filled the chunk
        stored_entry = Signal(entry_layout)
        m.d.comb += [
            stored_entry.head.eq(new_entry.head),
            stored_entry.tail.eq(new_entry.tail),
            stored_entry.fill.eq(new_entry.fill + 1),
            stored_entry.full.eq(new_entry.fill == per_chunk - 1),
        ]
        with m.If(write_now):
            m.d.comb += [entry_wr.addr.eq(b_event.slot), entry_wr.data.eq(stored_entry), entry_wr.en.eq(1)]
            with m.If(new_chunk_due):
                with m.If(fresh_left):
                    m.d.sync += [fresh.eq(fresh + 1), fresh_left.eq(fresh != chunks - 1)]
                with m.Else():
                    m.d.comb += pop.eq(1)
                with m.If(b_nonempty):  # the old tail links to the new chunk
                    m.d.comb += [link_wr.addr.eq(old.tail), link_wr.data.eq(new_chunk), link_wr.en.eq(1)]
        with m.If(b_advance):
            m.d.sync += [
                b_valid.eq(pushed),
                b_event.eq(self.push.payload),
                # the entry read this clock misses B's write of this clock
                b_forward.eq(write_now & (b_event.slot == self.push.payload.slot)),
                b_forward_entry.eq(stored_entry),
                b_indexed.eq(nonempty.bit_select(self.push.payload.slot, 1)),
            ]

        # --- drain: the slot's entry, then one pool read a clock along its chunks -----------
        first = Signal()  # the slot's entry is on entry_rd.data
        slot_nonempty = Signal()
        walking = Signal()  # rows are left to read
        d_chunk = Signal(chunk_shape)
        d_offset = Signal(offset_bits)
        d_tail = Signal(chunk_shape)
        d_last = Signal(offset_bits)
        d_in_flight = Signal()  # an event row read last clock is on pool.rdata
        d_in_flight_last = Signal()  # ... and it is the slot's last
        out_count = Signal(range(_OUT_DEPTH + 1))
        out_events = [Signal(delivery, name=f"out_event{i}") for i in range(_OUT_DEPTH)]
        out_last = [Signal(name=f"out_last{i}") for i in range(_OUT_DEPTH)]

        with m.If(drain_start):
            m.d.comb += [entry_rd.addr.eq(self.slot), entry_rd.en.eq(1)]
            m.d.sync += [
                draining.eq(1),
                first.eq(1),
                slot_nonempty.eq(nonempty.bit_select(self.slot, 1)),
            ]
        with m.If(first):
            entry = entry_rd.data
            m.d.sync += [
                first.eq(0),
                walking.eq(slot_nonempty),
                d_chunk.eq(entry.head),
                d_offset.eq(0),
                d_tail.eq(entry.tail),
                d_last.eq(entry.fill - 1),  # a full tail's fill is 0: its last is the top row
            ]
            with m.If(~slot_nonempty):
                m.d.comb += self.done.eq(1)
                m.d.sync += draining.eq(0)

        # the link of the current chunk is on link_rd.data from the clock after the walk
        # enters it, before its last row (chunks have 2 rows at least) is read
        m.d.comb += [link_rd.addr.eq(d_chunk), link_rd.en.eq(1)]
        room = Mux(d_in_flight, out_count < _OUT_DEPTH - 1, out_count < _OUT_DEPTH)
        last_row = Signal()
        chunk_end = Signal()
        m.d.comb += [
            read_due.eq(walking & room),
            last_row.eq((d_chunk == d_tail) & (d_offset == d_last)),
            chunk_end.eq(d_offset == per_chunk - 1),
        ]
        with m.If(read_now):
            with m.If(last_row):
                m.d.sync += walking.eq(0)
            with m.Elif(chunk_end):
                m.d.sync += [d_chunk.eq(link_rd.data), d_offset.eq(0)]
            with m.Else():
                m.d.sync += d_offset.eq(d_offset + 1)
        m.d.sync += [d_in_flight.eq(read_now), d_in_flight_last.eq(read_now & last_row)]

        # the drain's output buffer: entry 0 is `drained`; a row read joins behind the others
        take = self.drained.valid & self.drained.ready
        arriving = Signal(delivery)
        m.d.comb += [
            arriving.eq(pool.rdata[:Shape.cast(delivery).width]),
            self.drained.valid.eq(out_count != 0),
            self.drained.payload.eq(out_events[0]),
        ]
        with m.If(take):
            m.d.sync += [out_events[i].eq(out_events[i + 1]) for i in range(_OUT_DEPTH - 1)]
            m.d.sync += [out_last[i].eq(out_last[i + 1]) for i in range(_OUT_DEPTH - 1)]
        for i in range(_OUT_DEPTH):
            with m.If(d_in_flight & (out_count == i + take)):
                m.d.sync += [out_events[i].eq(arriving), out_last[i].eq(d_in_flight_last)]
        m.d.sync += out_count.eq(out_count + d_in_flight - take)
        with m.If(take & out_last[0]):
            m.d.comb += self.done.eq(1)
            m.d.sync += draining.eq(0)

        # --- the free FIFO: a chunk goes in with its last read; its head is on free_rd.data --
        # No count and no empty flag: only a push pops, and only once every chunk has been
        # used (fresh first), when the physical bound leaves one in the FIFO. A chunk written
        # in clock c is on free_rd.data from c + 2 (the read is not transparent); a drain's
        # done, after which pushes may come, is at least two clocks after its last read.
        free_first = Signal(chunk_shape)
        free_last = Signal(chunk_shape)

        def following(index):
            return Mux(index == chunks - 1, 0, index + 1)

        freeing = read_now & (last_row | chunk_end)
        m.d.comb += [free_wr.addr.eq(free_last), free_wr.data.eq(d_chunk), free_wr.en.eq(freeing)]
        with m.If(freeing):
            m.d.sync += free_last.eq(following(free_last))
        next_first = Signal.like(free_first)
        m.d.comb += [
            next_first.eq(Mux(pop, following(free_first), free_first)),
            free_rd.addr.eq(next_first),
            free_rd.en.eq(1),
        ]
        m.d.sync += free_first.eq(next_first)

        # --- aux: requests take the port first; each read's row is registered once --------
        # No response buffer: every consumer takes the row in its one clock (the fan-out has
        # room for each row it asks for, the host one read at a time), so the port never
        # waits for them and its three rows of buffer (96 flip-flops) are gone.
        a_in_flight = Signal()  # an aux read last clock: its row is on pool.rdata
        a_valid = Signal()
        a_word = Signal(POOL_WIDTH)
        m.d.comb += [self.aux.ready.eq(1), self.aux_valid.eq(a_valid), self.aux_row.eq(a_word)]
        m.d.sync += [a_in_flight.eq(aux_now & ~self.aux.payload.write), a_valid.eq(a_in_flight)]
        with m.If(a_in_flight):
            m.d.sync += a_word.eq(pool.rdata)

        event_word = Signal(delivery)
        m.d.comb += [
            event_word.target.eq(b_event.target),
            event_word.compartment.eq(b_event.compartment),
            event_word.value.eq(b_event.value),
        ]
        with m.If(aux_now):
            m.d.comb += [
                pool.addr.eq(self.aux.payload.addr),
                pool.wdata.eq(self.aux.payload.data),
                pool.we.eq(self.aux.payload.write),
            ]
        with m.Elif(write_now):
            m.d.comb += [
                pool.addr.eq(row(new_entry.tail, new_entry.fill)),
                pool.wdata.eq(event_word),
                pool.we.eq(1),
            ]
        with m.Else():
            m.d.comb += pool.addr.eq(row(d_chunk, d_offset))
        # The pool reads in every clock it is not written: each reader takes its row only
        # in the clock after its own read (`a_in_flight`, `d_in_flight`), so no enable runs
        # from the port's arbitration to the tiles' chip selects (timing, for read current).
        m.d.comb += pool.en.eq(1)

        # --- held: +1 a push, -1 a drain's read -------------------------------------------
        next_held = Signal.like(held)
        m.d.comb += next_held.eq(held + pushed - read_now)
        m.d.sync += [held.eq(next_held), full.eq(next_held == capacity)]

        # --- clear ------------------------------------------------------------------------
        m.d.sync += cleared.eq(self.clear)
        with m.If(cleared):
            m.d.comb += self.done.eq(1)
        with m.If(self.clear):
            m.d.sync += [
                nonempty.eq(0), held.eq(0), full.eq(0), fresh.eq(0), fresh_left.eq(1),
                free_first.eq(0), free_last.eq(0),
                b_valid.eq(0), draining.eq(0), first.eq(0), walking.eq(0), d_in_flight.eq(0),
                out_count.eq(0), self.queue_overflow.eq(0), self.queue_overflow_step.eq(0),
            ]

        m.d.comb += self.busy.eq(draining | b_valid | cleared)
        return m
