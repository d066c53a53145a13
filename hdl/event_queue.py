"""The delay event queue: events in flight, pushed by the fan-out, drained one step ahead.

Core v2 (docs/hardware.md): during step ``t`` the fan-out pushes the step's events with
a delay of at least 1 (arrival slots ``t + 2 .. t + delay_slots``) while the queue
drains slot ``(t + 1) mod delay_slots`` (the events arriving at ``t + 1``) into the
accumulator bank that collects step ``t + 1``, both one event a clock, at once.

hdl/config.py's rule, as the hardware keeps it: a counter ``held`` counts +1 per push,
and the events drained in step ``t`` are subtracted **at the end of step ``t``**
(``step_end``), not as they leave, so the limit does not depend on how the two
concurrent streams interleave. A push that finds ``held == event_queue`` is dropped and
sets the sticky ``queue_overflow`` with its step. During the fan-out of step ``s`` the
queue therefore holds the events with arrival ``> s`` less the delay-0 events of step
``s`` (those never enter it): exactly what ``neurofab.emulator.capacity`` counts.

:class:`EventQueue` keeps three memories of its own, each a block RAM whose read data
goes straight into a register (a block RAM's output is slow: on the ECP5 it takes most
of a 10 ns clock, so no path runs from it through logic into another memory):

- the **pool**, ``event_queue`` words (``layouts.event``: ``value``, ``target``,
  ``compartment``, ``next2``, ``has_next2``), one list per arrival slot, each new event
  its slot's new head. A word's link ``next2`` points **two** places further along its
  list, so a walk that reads one word a clock knows each address two clocks ahead: the
  word read in clock ``c`` is in a register in clock ``c + 2``, when the address it
  links to is due. (A link to the next word would have to go from the pool's output
  back into its address within one clock.)
- the **arrival table**, one word per slot (``layouts.arrival``: ``head``, ``second``,
  ``has_second``: the list's first two events, the walk's first two addresses), with
  one read port that is not transparent. Whether a slot's list is empty is a register
  bit per slot, so a drain or a clear empties a list without a memory write.
- the **free FIFO** of pool indices a drain has read. A push takes its word from that
  FIFO, or, while it is empty, the next never-used word (``fresh``): allocation never
  reads the pool, so it does not compete with the drain for the pool's read port. The
  FIFO's block RAMs are read at an address register into a few head registers, which
  a push takes from (no push decision reaches the block RAMs), so a word is reusable
  (visible in the FIFO) three clocks after the drain's read of it. The pool holds
  ``held`` events less those read since the last ``step_end``, and only the last
  three of those can be not visible yet (a drain's ``done``, so its ``step_end``,
  comes at least three clocks after its last read): a push that is not an overflow
  always finds a word.

Beyond 2,048 words the pool and the free FIFO are kept in lanes a few bits wide, each
one block RAM deep (see ``_BLOCK_BITS``), so their outputs reach their registers
without a multiplexer between blocks.

A push goes through three stages, with a dual-port pool after an input register (the
fan-out's output is across the die: so the allocation decides from the queue's own
registers): A takes it (allocates its word, reads its slot's entry), B registers the
entry, C writes the word and the slot's new entry. Stages B and
C take an entry that the writes of the pushes ahead of them made after their read from
those writes' registers (forwarding). A drain reads its slot's entry (clock 0),
registers it (1), then reads the pool one word a clock from clock 2, each word into a
register and on into a six-entry output FIFO whose head is ``drained``; the walk reads
only while that FIFO holds fewer than four (then it has room for the words in flight),
so a stalled consumer never loses one.

With ``single_port=True`` the pool is one :class:`~neurofab.hdl.spram.SinglePortRAM`
(one read or one write a clock; SPRAM tiles on an iCE40UP): the drain's reads and the
pushes' writes share it, so pushes and drained events together take one clock each
(two clocks per queued event).
"""

from amaranth.hdl import Array, Cat, Elaboratable, Module, Mux, Shape, Signal, Value
from amaranth.lib import stream
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from neurofab.errors import ValidationError

from .block import CoreBlock
from .config import CoreConfig, addr_bits, count_bits
from .fanout import delivery_layout, event_layout
from .layouts import core_layouts
from .spram import NO_RW_CHECK, SinglePortRAM

__all__ = ["STEP_BITS", "DRAIN_LATENCY", "PUSH_LATENCY", "EventQueue"]

#: A timestep number: docs/model.md allows up to 10,000,000 steps (< 2^24).
STEP_BITS = 24

#: A drain of ``n > 0`` events with a ready consumer hands its last event over in clock
#: ``n + DRAIN_LATENCY - 1`` after the ``drain`` pulse (clock 0): ``n + 5`` clocks in all.
DRAIN_LATENCY = 5

#: A push offered (and, a dual-port pool's ``ready`` being always high, taken) in clock
#: ``k`` is written into the pool in clock ``k + PUSH_LATENCY``: the input register, stage
#: A (allocation, the slot's entry read), B (the entry registered), C (the write).
PUSH_LATENCY = 3

#: The free FIFO's head registers: its block RAMs' words land in these, and a pop takes the
#: oldest. Three keep one pop a clock (a read is decided a clock before its word lands).
_FREE_AHEAD = 3

#: Entries of the drain's output FIFO (its head is ``drained``), and how many it may hold
#: when the walk reads the pool: a read finds at most two words on their way (the pool's
#: output and the register after it), so it holds at most ``_OUT_ROOM - 1 + 3`` when its
#: word lands. Whether to read is a register (``out_count < _OUT_ROOM``, decided a clock
#: ahead), so neither the consumer's ``ready`` nor the words in flight reach the pool's
#: address. A read three words ahead keeps one event a clock after a stall.
_OUT_DEPTH = 6
_OUT_ROOM = 4


#: The deepest block RAM word of a few bits: ECP5 DP16KD 16,384 x 1 .. 4,096 x 4, then
#: 2,048 x 9 .. 512 x 36 (iCE40 EBR: 2,048 x 2 .. 256 x 16). A dual-port pool deeper
#: than :data:`_WIDE_DEPTH` is cut into lanes of ``_BLOCK_BITS // event_queue`` bits (a
#: power of two), so that each lane is one block deep: Yosys would otherwise stack
#: blocks in depth and select among their outputs in logic (the ECP5's 8,192-word pool
#: took 2,048 x 9 blocks four deep, and that multiplexer, far from the blocks, cost 4 ns
#: after their 5.8 ns output). Up to 2,048 words a block of either family holds the
#: whole depth in its own widest ratio, so the pool stays one memory.
_BLOCK_BITS = 16384
_WIDE_DEPTH = 2048


class _LanedRAM(Elaboratable):
    """A memory with one read and one write port, kept as lanes of a few bits each.

    ``raddr``, ``ren`` (``rdata`` is the word at ``raddr`` from the next clock, held
    while ``ren`` is low), ``waddr``, ``wdata``, ``we``. Not transparent. Lanes are
    ``_BLOCK_BITS // depth`` bits wide (rounded down to a power of two, at least one)
    beyond ``_WIDE_DEPTH`` words, else one lane holds the whole word.
    """

    def __init__(self, shape, depth, *, attrs=None):
        self.shape = shape
        self.depth = depth
        self.attrs = attrs or {}
        self.raddr = Signal(addr_bits(depth))
        self.ren = Signal()
        self.rdata = Signal(shape)
        self.waddr = Signal(addr_bits(depth))
        self.wdata = Signal(shape)
        self.we = Signal()

    @property
    def lane_bits(self) -> int:
        if self.depth <= _WIDE_DEPTH:
            return Shape.cast(self.shape).width
        fit = max(1, _BLOCK_BITS // self.depth)
        return 1 << (fit.bit_length() - 1)

    def elaborate(self, platform):
        m = Module()
        width = Shape.cast(self.shape).width
        rdata, wdata = Value.cast(self.rdata), Value.cast(self.wdata)
        for lane, lo in enumerate(range(0, width, self.lane_bits)):
            hi = min(width, lo + self.lane_bits)
            memory = Memory(shape=hi - lo, depth=self.depth, init=[], attrs=self.attrs)
            m.submodules[f"lane{lane}"] = memory
            rd = memory.read_port()
            wr = memory.write_port()
            m.d.comb += [
                rd.addr.eq(self.raddr), rd.en.eq(self.ren), rdata[lo:hi].eq(rd.data),
                wr.addr.eq(self.waddr), wr.data.eq(wdata[lo:hi]), wr.en.eq(self.we),
            ]
        return m


class EventQueue(CoreBlock):
    """Holds the events in flight; drains one arrival slot while taking pushes.

    Parameters
    ----------
    config : CoreConfig
        ``event_queue`` (the pool's capacity), ``delay_slots`` and the ``event`` /
        ``arrival`` layouts.
    single_port : bool
        Keep the pool in a single-port memory (one access a clock: iCE40 SPRAM) instead
        of one with a read and a write port.

    Members
    -------
    push : ``In(stream.Signature(event_layout(config)))``
        Events ``(slot, target, compartment, value)`` from the fan-out, ``slot`` never
        the slot being drained. One a clock; with a dual-port pool ``ready`` is always
        high (a single-port pool's is low in the clock of a ``drain`` pulse and while
        its turns hold a push; it never depends on ``valid``). An
        event that finds ``event_queue`` events held is dropped: the queue overflows
        (see below).
    drained : ``Out(stream.Signature(delivery_layout(config)))``
        ``(target, compartment, value)`` of every event of the slot being drained, one a
        clock while ``ready`` (a stall holds it; nothing is lost or repeated). ``valid``
        and the payload are registers.
    step : ``In(STEP_BITS)``
        The current timestep ``t``, recorded by an overflow; hold it during a step.
    drain : ``In(1)``
        Pulse while not ``busy``: drain arrival slot ``slot`` (``(t + 1) mod
        delay_slots`` in step ``t``). That clock reads the slot's entry (from a copy of
        the arrival table of its own), and with a single-port pool takes no push.
    slot : ``In(addr_bits(delay_slots))``
        The slot to drain; held until ``done``.
    step_end : ``In(1)``
        Pulse at the end of the step (the drain done, no push pending): ``held`` loses
        the events drained since the last ``step_end``.
    clear : ``In(1)``
        Pulse while not ``busy`` (before a job): empty every list, ``held`` 0, clear the
        error. Takes effect at that clock's edge.
    busy : ``Out(1)``
        A drain runs (including its last event not yet handed over) or a push is still
        being written, or a clear's ``done`` is due.
    settling : ``Out(1)``
        No drain runs, no push waits in stage B and no clear's ``done`` is due (from
        registers): in a clock that takes no push and has no ``drain`` or ``clear``
        pulse, ``busy`` is low from the next clock (a push in stage C is written in
        this one). The core ends a step on it a clock ahead.
    done : ``Out(1)``
        One-clock pulse in the clock that hands over a drain's last event (an empty
        slot: the clock after ``drain``), and in the clock after a ``clear``.
    held : ``Out(count_bits(event_queue))``
        The count above: pushes since the clear less the events drained before the last
        ``step_end``.
    queue_overflow : ``Out(1)``; queue_overflow_step : ``Out(STEP_BITS)``
        Sticky error, cleared only by ``clear`` (or reset), and the ``step`` of the
        first push that found ``held == event_queue``. That push and every later one
        until ``held`` falls are dropped.

    Timing, dual-port pool. A push is taken every clock into the input register, and
    written ``PUSH_LATENCY`` (3) clocks later (stage A the next clock, then B, C). A
    drain of ``n > 0`` events, its consumer always ready, hands its events over in clocks
    ``5 .. n + 4`` after the ``drain`` pulse (clock 0: the slot's table entry is read;
    1: it is registered; 2: its head is read from the pool; 3: the word is registered;
    4: it enters the output FIFO; ``DRAIN_LATENCY`` = 5), ``done``
    with the last; an empty slot gives ``done`` in clock 1; the queue is idle (``busy``
    low) from clock ``n + 5`` (2), or from the clock after the last push's write, ``p +
    3`` for ``p`` pushes taken in clocks ``0 .. p - 1``, if later. A consumer that stalls
    for ``k`` clocks in a row delays ``done`` by at most ``k`` clocks (the output FIFO
    keeps the walk going meanwhile).
    Single-port pool: in every clock in which both a drain read and a push write are
    due, one waits (they take turns); ``push.ready`` is low while a push in stage B
    cannot move on because the one in stage C waits. There is no gap: with ``p``
    back-to-back pushes offered from the ``drain`` pulse and a ready consumer, the
    pool's port is busy in every clock ``2 .. p + n + 1`` (``n > 0``, ``p > 0``).
    Reset empties the lists only together with a ``clear``.
    """

    def __init__(self, config: CoreConfig, *, single_port: bool = False):
        self.checked(config)
        if not isinstance(single_port, bool):
            raise ValidationError("EventQueue.single_port", f"must be True or False, not {single_port!r}")
        self._single_port = single_port
        super().__init__(config, {
            "push": In(stream.Signature(event_layout(config))),
            "drained": Out(stream.Signature(delivery_layout(config))),
            "step": In(STEP_BITS),
            "drain": In(1),
            "slot": In(addr_bits(config.delay_slots)),
            "step_end": In(1),
            "clear": In(1),
            "busy": Out(1),
            "settling": Out(1),
            "done": Out(1),
            "held": Out(count_bits(config.event_queue)),
            "queue_overflow": Out(1),
            "queue_overflow_step": Out(STEP_BITS),
        })

    @property
    def single_port(self) -> bool:
        return self._single_port

    def elaborate(self, platform):
        m = Module()
        config = self._config
        layouts = core_layouts(config)
        capacity = config.event_queue
        index_shape = layouts.event["next2"].shape
        event_shape = self.push.payload.shape()

        # --- memories ---------------------------------------------------------------------
        # Every memory here is NO_RW_CHECK: no read's word is used when it meets a write of
        # the same word in the same clock, so Yosys keeps no collision logic (a comparator
        # and a multiplexer after the block RAM, on the ECP5 the drain walk's critical path):
        # - arrival table: its reads are stage A's (a push's slot) and the drain's (the
        #   drained slot); its write is stage C's. A drain's slot is never a push's, and a
        #   stage A read of the slot C writes in that clock is replaced by the forwarded
        #   entry (``b_forward``), so that word is never used.
        # - pool: the drain reads only words linked into the drained slot's list; a push
        #   writes only a word allocated from the free FIFO or never used (``fresh``), which
        #   is in no list. A word enters the free FIFO when the drain reads it and is taken
        #   three clocks later at the earliest, so its write follows its last read.
        # - free FIFO: read every clock at ``free_next``; a write at ``free_last`` can meet
        #   that read only when the block RAMs hold no index to fetch (nothing written before
        #   this clock), so the word read is not fetched into the head; it is read again,
        #   written, in the next clock.
        # tests/hdl/test_hdl_event_queue.py checks the pool's and the arrival table's drain
        # reads against same-clock writes on random pushes and drains.
        m.submodules.arrivals = arrivals = Memory(shape=layouts.arrival, depth=config.delay_slots, init=[],
                                                  attrs=NO_RW_CHECK)
        arrival_wr = arrivals.write_port()
        # Not transparent (a block RAM as it is): pushes take the writes their read missed
        # from registers (below).
        entry_rd = arrivals.read_port()
        # The drain reads its slot's entry from a copy of its own (the same writes), so that
        # a push is taken in the drain pulse's clock too (dual-port pool): push.ready does
        # not wait for the drain, and no drain pulse reaches a push's allocation. The
        # drained slot is never a push's, so no read of the copy meets a write of its word.
        m.submodules.drain_arrivals = drain_arrivals = Memory(
            shape=layouts.arrival, depth=config.delay_slots, init=[], attrs=NO_RW_CHECK)
        drain_wr = drain_arrivals.write_port()
        drain_rd = drain_arrivals.read_port()
        # Not transparent either: an index becomes visible in the FIFO a clock after its
        # write, when a read of it sees the written word. In lanes, as the pool.
        m.submodules.free = free = _LanedRAM(index_shape, capacity, attrs=NO_RW_CHECK)
        if self._single_port:
            m.submodules.pool = pool = SinglePortRAM(shape=layouts.event, depth=capacity)
        else:
            m.submodules.pool = pool = _LanedRAM(layouts.event, capacity, attrs=NO_RW_CHECK)
        for port in (entry_rd, arrival_wr, drain_rd, drain_wr):
            m.d.comb += port.en.eq(0)

        nonempty = Signal(config.delay_slots)  # bit s: slot s's list has an event
        held = Signal(count_bits(capacity))
        fresh = Signal(count_bits(capacity))  # words 0 .. fresh - 1 have been used
        full = Signal()  # held == capacity, kept as a register: it gates every push
        free_count = Signal(count_bits(capacity))  # indices in the free FIFO's block RAMs
        free_any = Signal()  # an index in the FIFO's head registers, a register likewise
        freed = Signal()  # an index was written to the FIFO last clock: visible from the next
        free_next = Signal(range(capacity))  # the FIFO's next entry to read into the head
        free_last = Signal(range(capacity))  # where the FIFO's next entry goes
        head_index = Signal(index_shape)  # the FIFO's oldest entry, from its head registers
        unread = Signal(count_bits(capacity))  # held less those read since the last step_end
        m.d.comb += self.held.eq(held)

        def following(index):
            return Mux(index == capacity - 1, 0, index + 1)

        # --- the pool's accesses: stage C's write and the drain's read ---------------------
        write_due = Signal()  # stage C holds an event to write
        read_due = Signal()  # the drain wants the pool word at read_addr
        read_addr = Signal(index_shape)
        write_now = Signal()
        read_now = Signal()
        if self._single_port:
            push_turn = Signal()  # who goes first when both are due: they alternate
            m.d.comb += [
                write_now.eq(write_due & (~read_due | push_turn)),
                read_now.eq(read_due & ~write_now),
            ]
            with m.If(write_due & read_due):
                m.d.sync += push_turn.eq(~push_turn)
        else:
            m.d.comb += [write_now.eq(write_due), read_now.eq(read_due)]

        # --- push pipeline registers ------------------------------------------------------
        # B: taken last clock, its slot's entry on entry_rd.data. Its word is either the
        # free FIFO's head (kept as read, no logic after the memory) or `fresh`.
        b_valid = Signal()
        b_event = Signal(event_shape)
        b_free_index = Signal(index_shape)
        b_fresh_index = Signal(index_shape)
        b_use_fresh = Signal()
        b_forward = Signal()  # a write the entry read missed: b_forward_entry is newer
        b_forward_entry = Signal(layouts.arrival)
        # C: the entry in a register; the word and the slot's new entry are written.
        c_event = Signal(event_shape)
        c_addr = Signal(index_shape)
        # the arrival table's output as read, for stage C (one register with nothing between
        # it and the memory)
        c_entry = Signal(layouts.arrival)
        c_nonempty = Signal()  # the slot's list had an event when B looked
        c_forward = Signal()
        c_forward_entry = Signal(layouts.arrival)

        c_advance = ~write_due | write_now  # C's registers may take B's push
        b_advance = ~b_valid | c_advance  # B's may take a new push

        # stage C: the event becomes its slot's new head; its link is the old second
        was_nonempty = c_forward | c_nonempty
        old = Signal(layouts.arrival)
        m.d.comb += old.eq(Mux(c_forward, c_forward_entry, c_entry))
        word = Signal(layouts.event)
        new_entry = Signal(layouts.arrival)
        m.d.comb += [
            word.value.eq(c_event.value),
            word.target.eq(c_event.target),
            word.compartment.eq(c_event.compartment),
            word.next2.eq(old.second),
            word.has_next2.eq(was_nonempty & old.has_second),
            new_entry.head.eq(c_addr),
            new_entry.second.eq(old.head),
            new_entry.has_second.eq(was_nonempty),
        ]
        with m.If(write_now):
            m.d.comb += [
                arrival_wr.addr.eq(c_event.slot),
                arrival_wr.data.eq(new_entry),
                arrival_wr.en.eq(1),
                drain_wr.addr.eq(c_event.slot),
                drain_wr.data.eq(new_entry),
                drain_wr.en.eq(1),
            ]
            m.d.sync += nonempty.bit_select(c_event.slot, 1).eq(1)

        # stage A: allocate a word, read the slot's entry
        pushed = Signal()  # an event is taken and will be held
        pop = Signal()
        drain_start = Signal()  # the drain reads its slot's entry (single-port pool: no push)
        # a single-port pool takes no push in the drain pulse's clock (its turns start from a
        # quiet pool); a dual-port one takes pushes in every clock
        # A dual-port pool takes every push a clock after it is offered, from an input
        # register: `pushed` then comes from the queue's own registers (the fan-out's output
        # is across the die), and so do the allocation's pop and the free FIFO's address.
        waiting = Signal()  # the input register holds a push (dual-port pool), a register
        if self._single_port:
            offered = Signal()
            taken = self.push.payload
            m.d.comb += [
                self.push.ready.eq(b_advance & ~drain_start),
                offered.eq(self.push.valid & self.push.ready),
            ]
        else:
            offered = waiting
            taken = Signal.like(self.push.payload)
            m.d.comb += self.push.ready.eq(1)
            m.d.sync += [waiting.eq(self.push.valid), taken.eq(self.push.payload)]
        with m.If(offered):
            with m.If(full):
                with m.If(~self.queue_overflow):
                    m.d.sync += [self.queue_overflow.eq(1), self.queue_overflow_step.eq(self.step)]
            with m.Else():
                m.d.comb += [
                    pushed.eq(1),
                    entry_rd.addr.eq(taken.slot),
                    entry_rd.en.eq(1),
                    pop.eq(free_any),
                ]
                with m.If(~free_any):
                    m.d.sync += fresh.eq(fresh + 1)

        with m.If(b_advance):
            m.d.sync += [
                b_valid.eq(pushed),
                b_event.eq(taken),
                b_free_index.eq(head_index),
                b_fresh_index.eq(fresh),
                b_use_fresh.eq(~free_any),
                # the entry read in this clock misses stage C's write of this clock
                b_forward.eq(write_now & (c_event.slot == taken.slot)),
                b_forward_entry.eq(new_entry),
            ]
        with m.Elif(write_now & (c_event.slot == b_event.slot)):
            m.d.sync += [b_forward.eq(1), b_forward_entry.eq(new_entry)]

        with m.If(c_advance):
            m.d.sync += [
                write_due.eq(b_valid),
                c_event.eq(b_event),
                c_addr.eq(Mux(b_use_fresh, b_fresh_index, b_free_index)),
                c_entry.eq(entry_rd.data),
                c_nonempty.eq(nonempty.bit_select(b_event.slot, 1)),
            ]
            with m.If(write_now & (c_event.slot == b_event.slot)):
                m.d.sync += [c_forward.eq(1), c_forward_entry.eq(new_entry)]
            with m.Else():
                m.d.sync += [c_forward.eq(b_forward), c_forward_entry.eq(b_forward_entry)]

        # --- drain: the slot's entry, then one pool read a clock along the list -------------
        first = Signal()  # the slot's entry is on entry_rd.data
        start = Signal()  # the slot's entry is in `drain_entry`: its head is due
        slot_nonempty = Signal()  # the drained slot had an event (at the drain pulse)
        # the drained slot's entry, straight off its copy of the table (loaded in `first`)
        drain_entry = Signal(layouts.arrival)
        entry = drain_entry
        # the known addresses not read yet, in list order (at most two: an address is
        # known from the word two places before it, and that word has been read)
        known = Signal(range(3))
        known_next = Signal.like(known)
        known_any = Signal()  # known != 0, a register
        known0 = Signal(index_shape)
        known1 = Signal(index_shape)
        in_flight = Signal()  # a word read last clock is on the pool's output
        got = Signal()  # the word read two clocks ago is in `fetched`
        fetched = Signal(layouts.event)
        more = Signal()  # the word after the next to arrive in `fetched` exists
        out_count = Signal(range(_OUT_DEPTH + 1))
        delivery = delivery_layout(config)
        out_events = [Signal(delivery, name=f"out_event{i}") for i in range(_OUT_DEPTH)]
        out_last = [Signal(name=f"out_last{i}") for i in range(_OUT_DEPTH)]  # the slot's last event

        pool_data = pool.rdata

        # a word's link is due when the word arrives: used at once if nothing known waits
        link = fetched.next2
        linked = got & fetched.has_next2
        room = Signal(init=1)  # out_count < _OUT_ROOM, a register (set below)
        m.d.comb += [
            read_due.eq(start | (room & (known_any | linked))),
            read_addr.eq(Mux(start, entry.head, Mux(known_any, known0, link))),
        ]
        with m.If(start):
            m.d.sync += [
                start.eq(0),
                more.eq(entry.has_second),
                known0.eq(Mux(read_now, entry.second, entry.head)),
                known1.eq(entry.second),
            ]
            m.d.comb += known_next.eq(Mux(read_now, 0, 1) + entry.has_second)
        with m.Else():
            # in and out of the known addresses: the arriving link, the read address
            m.d.comb += known_next.eq(known)
            with m.Switch(Cat(read_now, linked)):
                with m.Case(0b01):  # read, nothing arrives
                    m.d.sync += known0.eq(known1)
                    m.d.comb += known_next.eq(known - 1)
                with m.Case(0b10):  # a link arrives, no read
                    with m.If(known == 0):
                        m.d.sync += known0.eq(link)
                    with m.Else():
                        m.d.sync += known1.eq(link)
                    m.d.comb += known_next.eq(known + 1)
                with m.Case(0b11):  # both: with none known the link was read at once
                    with m.If(known == 1):
                        m.d.sync += known0.eq(link)
                    with m.Elif(known == 2):
                        m.d.sync += [known0.eq(known1), known1.eq(link)]
        m.d.sync += [known.eq(known_next), known_any.eq(known_next != 0)]

        # a register, not the OR of the walk's state: it gates push.ready
        draining = Signal()  # from the drain pulse to the clock of its done
        m.d.comb += drain_start.eq(self.drain & ~draining)
        with m.If(drain_start):
            m.d.comb += [drain_rd.addr.eq(self.slot), drain_rd.en.eq(1)]
            m.d.sync += [
                draining.eq(1),
                first.eq(1),
                slot_nonempty.eq(nonempty.bit_select(self.slot, 1)),
                nonempty.bit_select(self.slot, 1).eq(0),
            ]
        with m.If(first):
            m.d.sync += [first.eq(0), start.eq(slot_nonempty), drain_entry.eq(drain_rd.data)]
            with m.If(~slot_nonempty):
                m.d.comb += self.done.eq(1)
                m.d.sync += draining.eq(0)

        m.d.sync += [in_flight.eq(read_now), got.eq(in_flight)]
        # every clock, so nothing but wire lies between the pool's output and `fetched`:
        # when `got` is high it holds the word read two clocks ago
        m.d.sync += fetched.eq(pool_data)
        with m.If(got):
            m.d.sync += more.eq(fetched.has_next2)

        # the output FIFO: entry 0 is `drained`; a fetched word joins behind the others
        take = self.drained.valid & self.drained.ready
        arriving = Signal(delivery)
        m.d.comb += [
            arriving.target.eq(fetched.target),
            arriving.compartment.eq(fetched.compartment),
            arriving.value.eq(fetched.value),
            self.drained.valid.eq(out_count != 0),
            self.drained.payload.eq(out_events[0]),
        ]
        with m.If(take):
            m.d.sync += [out_events[i].eq(out_events[i + 1]) for i in range(_OUT_DEPTH - 1)]
            m.d.sync += [out_last[i].eq(out_last[i + 1]) for i in range(_OUT_DEPTH - 1)]
        for i in range(_OUT_DEPTH):
            with m.If(got & (out_count == i + take)):
                m.d.sync += [out_events[i].eq(arriving), out_last[i].eq(~more)]
        next_count = Signal.like(out_count)
        m.d.comb += next_count.eq(out_count + got - take)
        m.d.sync += [out_count.eq(next_count), room.eq(next_count < _OUT_ROOM)]
        with m.If(take & out_last[0]):
            m.d.comb += self.done.eq(1)
            m.d.sync += draining.eq(0)

        # --- the free FIFO: a read word's index goes in; its head is in registers ----------
        # The block RAMs (lanes across the die) are read at `free_next`, a register, and
        # each word read lands straight in one of `_FREE_AHEAD` head registers; a pop takes
        # the oldest of them. So no decision of this clock reaches the block RAMs' address:
        # whether to read is decided from registers (an index written, room ahead), and a
        # pop (late: it depends on the push) only moves the head registers' pointers.
        m.d.comb += [free.waddr.eq(free_last), free.wdata.eq(read_addr), free.we.eq(read_now)]
        with m.If(read_now):
            m.d.sync += free_last.eq(following(free_last))
        ahead = [Signal(index_shape, name=f"free_ahead{i}") for i in range(_FREE_AHEAD)]
        ahead_first = Signal(range(_FREE_AHEAD))  # the oldest head register
        ahead_last = Signal(range(_FREE_AHEAD))  # where the word read last clock lands
        ahead_count = Signal(range(_FREE_AHEAD + 1))  # head registers holding an index
        fetching = Signal()  # the block RAMs' word of this clock is an index for the head
        stored = Signal()  # free_count != 0, a register
        fetch = Signal()
        # an index in the block RAMs (written last clock or before) and a head register for
        # it, counting the one on its way
        m.d.comb += [
            fetch.eq((stored | freed) & (ahead_count + fetching < _FREE_AHEAD)),
            free.raddr.eq(free_next),
            free.ren.eq(1),
            head_index.eq(Array(ahead)[ahead_first]),
        ]

        def step_ring(index):
            return Mux(index == _FREE_AHEAD - 1, 0, index + 1)

        with m.If(fetch):
            m.d.sync += free_next.eq(following(free_next))
        with m.If(fetching):
            for i, register in enumerate(ahead):
                with m.If(ahead_last == i):
                    m.d.sync += register.eq(free.rdata)
            m.d.sync += ahead_last.eq(step_ring(ahead_last))
        with m.If(pop):
            m.d.sync += ahead_first.eq(step_ring(ahead_first))
        # the counts after this clock, from registers; `fetch` and a pop only pick
        in_rams = Signal.like(free_count)
        m.d.comb += in_rams.eq(free_count + freed)
        landed = Signal.like(ahead_count)
        m.d.comb += landed.eq(ahead_count + fetching)
        m.d.sync += [
            freed.eq(read_now),
            fetching.eq(fetch),
            free_count.eq(Mux(fetch, in_rams - 1, in_rams)),
            stored.eq(Mux(fetch, in_rams > 1, in_rams != 0)),
            ahead_count.eq(Mux(pop, landed - 1, landed)),
            # a pop (there was an index) leaves one fewer
            free_any.eq(Mux(pop, landed > 1, landed != 0)),
        ]

        # --- the pool's port(s) -------------------------------------------------------------
        if self._single_port:
            m.d.comb += [
                pool.addr.eq(Mux(write_now, c_addr, read_addr)),
                pool.wdata.eq(word),
                pool.we.eq(write_now),
                pool.en.eq(read_now),
            ]
        else:
            m.d.comb += [
                pool.waddr.eq(c_addr), pool.wdata.eq(word), pool.we.eq(write_now),
                pool.raddr.eq(read_addr), pool.ren.eq(read_now),
            ]

        # --- held: +1 a push, less the step's drained events at step_end -------------------
        # `unread` is `held` less the events read since the last step_end, kept as a
        # counter of its own (+1 a push, -1 a read) so that step_end takes it as it is, with
        # no subtraction; the reads are counted a clock late, from `freed` (a register: the
        # read of the clock before), so that the walk's read decision does not reach its
        # adder (a step's last read comes at least three clocks before its step_end, and
        # the next drain's first after it). `step_end` and `pushed` come last (`pushed`
        # depends on `held` itself), only picking among sums and comparisons of registers.
        with m.If(self.step_end):
            m.d.sync += [
                held.eq(Mux(pushed, unread + 1, unread)),
                full.eq(Mux(pushed, unread == capacity - 1, unread == capacity)),
            ]
        with m.Else():
            m.d.sync += [
                held.eq(Mux(pushed, held + 1, held)),
                full.eq(Mux(pushed, held == capacity - 1, held == capacity)),
            ]
        m.d.sync += unread.eq(unread + pushed - freed)

        # --- clear ------------------------------------------------------------------------
        cleared = Signal()  # done is due: the clock after a clear
        m.d.sync += cleared.eq(self.clear)
        with m.If(cleared):
            m.d.comb += self.done.eq(1)
        with m.If(self.clear):
            m.d.sync += [
                nonempty.eq(0), held.eq(0), full.eq(0), unread.eq(0), fresh.eq(0), free_count.eq(0),
                free_any.eq(0), freed.eq(0), free_next.eq(0), free_last.eq(0), stored.eq(0),
                fetching.eq(0), ahead_first.eq(0), ahead_last.eq(0), ahead_count.eq(0), waiting.eq(0),
                b_valid.eq(0),
                write_due.eq(0),
                draining.eq(0), first.eq(0), start.eq(0), known.eq(0), in_flight.eq(0), got.eq(0),
                out_count.eq(0), room.eq(1), known_any.eq(0),
                self.queue_overflow.eq(0), self.queue_overflow_step.eq(0),
            ]

        m.d.comb += [
            self.busy.eq(draining | waiting | b_valid | write_due | cleared),
            self.settling.eq(~draining & ~waiting & ~b_valid & ~cleared),
        ]
        return m
