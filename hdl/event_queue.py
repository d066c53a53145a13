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

:class:`EventQueue` keeps three memories of its own:

- the **pool**, ``event_queue`` words (``layouts.event``: ``value``, ``target``,
  ``compartment``, ``next``), one linked list per arrival slot;
- the **arrival table**, one word per slot (``layouts.arrival``: ``head``, ``tail``;
  whether a slot's list is empty is a register bit per slot, so a drain or a clear
  empties a list without a memory write; its ``nonempty`` field is written, never
  read), with one read port that is not transparent, so it maps to a block RAM;
- the **free FIFO** of pool indices a drain has read. A push takes its word from that
  FIFO, or, while it is empty, the next never-used word (``fresh``): allocation never
  reads the pool, so it does not compete with the drain for the pool's read port, and a
  word is reusable the clock after the drain has read it. The pool itself holds at most
  ``held`` events, so a push that is not an overflow always finds a word.

With ``single_port=True`` the pool is one single-port memory (one read or one write a
clock, as iCE40 SPRAM): the drain's reads and the pushes' writes share it, so pushes
and drained events together take one clock each (two clocks per queued event).
"""

from amaranth.hdl import Elaboratable, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from neurofab.errors import ValidationError

from .config import CoreConfig, addr_bits, count_bits
from .fanout import delivery_layout, event_layout
from .layouts import core_layouts

__all__ = ["STEP_BITS", "DRAIN_LATENCY", "EventQueue"]

#: A timestep number: docs/model.md allows up to 10,000,000 steps (< 2^24).
STEP_BITS = 24

#: A drain of ``n > 0`` events with a ready consumer hands its last event over in clock
#: ``n + DRAIN_LATENCY - 1`` after the ``drain`` pulse (clock 0): ``n + 3`` clocks in all.
DRAIN_LATENCY = 3


class _SinglePortRAM(Elaboratable):
    """A single-port memory as iCE40 SPRAM behaves (the interface of ``hdl/spram.py``).

    ``addr``, ``wdata``, ``we`` (write at the edge), ``en`` (read: ``rdata`` is the word
    at ``addr`` from the next clock). One operation a clock: ``we`` and ``en`` are never
    high together. ``rdata`` is not relied upon after a clock without a read.
    """

    def __init__(self, shape, depth):
        self.memory = Memory(shape=shape, depth=depth, init=[])
        self.addr = Signal(addr_bits(depth))
        self.wdata = Signal(shape)
        self.we = Signal()
        self.en = Signal()
        self.rdata = Signal(shape)

    def elaborate(self, platform):
        m = Module()
        m.submodules.memory = self.memory
        rd = self.memory.read_port()
        wr = self.memory.write_port()
        m.d.comb += [
            rd.addr.eq(self.addr), rd.en.eq(self.en & ~self.we),
            wr.addr.eq(self.addr), wr.data.eq(self.wdata), wr.en.eq(self.we),
            self.rdata.eq(rd.data),
        ]
        return m


class EventQueue(wiring.Component):
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
        the slot being drained. One a clock; with a dual-port pool ``ready`` is high
        except in the clock of a ``drain`` pulse (it does not depend on ``valid``). An
        event that finds ``event_queue`` events held is dropped: the queue overflows
        (see below).
    drained : ``Out(stream.Signature(delivery_layout(config)))``
        ``(target, compartment, value)`` of every event of the slot being drained, one a
        clock while ``ready`` (a stall holds it; nothing is lost or repeated).
    step : ``In(STEP_BITS)``
        The current timestep ``t``, recorded by an overflow; hold it during a step.
    drain : ``In(1)``
        Pulse while not ``busy``: drain arrival slot ``slot`` (``(t + 1) mod
        delay_slots`` in step ``t``). That clock reads the slot's entry and takes no push.
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

    Timing, dual-port pool. A push is taken every clock and written in the next. A drain
    of ``n > 0`` events, its consumer always ready, hands its events over in clocks
    ``3 .. n + 2`` after the ``drain`` pulse (clock 0: the slot's table entry is read;
    clock 1: its head; ``DRAIN_LATENCY`` = 3), ``done`` with the last; an empty slot
    gives ``done`` in clock 1; the queue is idle (``busy`` low) from clock ``n + 3`` (2),
    or from the clock after the last push's write, ``p + 2`` for ``p`` pushes taken in
    clocks ``1 .. p``, if later. Single-port pool: in every clock in which both a drain
    read and a push write are due, one waits (they take turns), and ``push.ready`` is
    low while a push waits; there is no gap, so with ``p`` back-to-back pushes offered
    from the ``drain`` pulse and a ready consumer the pool's port is busy in every clock
    ``1 .. p + n`` (``n > 0``). Reset empties the lists only together with a ``clear``.
    """

    def __init__(self, config: CoreConfig, *, single_port: bool = False):
        if not isinstance(config, CoreConfig):
            raise ValidationError("EventQueue.config", f"must be a CoreConfig, not {config!r}")
        if not isinstance(single_port, bool):
            raise ValidationError("EventQueue.single_port", f"must be True or False, not {single_port!r}")
        self._config = config
        self._single_port = single_port
        super().__init__({
            "push": In(stream.Signature(event_layout(config))),
            "drained": Out(stream.Signature(delivery_layout(config))),
            "step": In(STEP_BITS),
            "drain": In(1),
            "slot": In(addr_bits(config.delay_slots)),
            "step_end": In(1),
            "clear": In(1),
            "busy": Out(1),
            "done": Out(1),
            "held": Out(count_bits(config.event_queue)),
            "queue_overflow": Out(1),
            "queue_overflow_step": Out(STEP_BITS),
        })

    @property
    def config(self) -> CoreConfig:
        return self._config

    @property
    def single_port(self) -> bool:
        return self._single_port

    def elaborate(self, platform):
        m = Module()
        config = self._config
        layouts = core_layouts(config)
        capacity = config.event_queue
        index_shape = layouts.event["next"].shape

        # --- memories ---------------------------------------------------------------------
        m.submodules.arrivals = arrivals = Memory(shape=layouts.arrival, depth=config.delay_slots, init=[])
        arrival_wr = arrivals.write_port()
        # One read port, not transparent (a block RAM as it is): the drain's start reads
        # it in a clock that takes no push, and a push whose slot the previous push is
        # writing in the same clock takes that entry from registers (below).
        entry_rd = arrivals.read_port()
        m.submodules.free = free = Memory(shape=index_shape, depth=capacity, init=[])
        free_wr = free.write_port()
        free_rd = free.read_port(transparent_for=(free_wr,))
        if self._single_port:
            m.submodules.pool = pool = _SinglePortRAM(layouts.event, capacity)
        else:
            m.submodules.pool = pool = Memory(shape=layouts.event, depth=capacity, init=[])
            pool_rd = pool.read_port()
            pool_wr = pool.write_port()
        for port in (entry_rd, arrival_wr, free_wr):
            m.d.comb += port.en.eq(0)

        nonempty = Signal(config.delay_slots)  # bit s: slot s's list has an event
        held = Signal(count_bits(capacity))
        fresh = Signal(count_bits(capacity))  # words 0 .. fresh - 1 have been used
        free_count = Signal(count_bits(capacity))
        free_first = Signal(range(capacity))  # the FIFO's oldest entry
        free_last = Signal(range(capacity))  # where the FIFO's next entry goes
        drained_count = Signal(count_bits(capacity))  # drained since the last step_end
        m.d.comb += self.held.eq(held)

        def following(index):
            return Mux(index == capacity - 1, 0, index + 1)

        # --- the pool's accesses: the push's write and the drain's read ---------------------
        write_due = Signal()  # stage B of a push holds an event to write
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

        # --- push, stage A: allocate a word, read the slot's entry --------------------------
        pushed = Signal()  # an event is taken and will be held
        write_addr = Signal(index_shape)
        write_event = Signal.like(self.push.payload)
        pop = Signal()
        drain_start = Signal()  # the drain reads its slot's entry: no push this clock
        m.d.comb += self.push.ready.eq((~write_due | write_now) & ~drain_start)
        with m.If(self.push.valid & self.push.ready):
            with m.If(held == capacity):
                with m.If(~self.queue_overflow):
                    m.d.sync += [self.queue_overflow.eq(1), self.queue_overflow_step.eq(self.step)]
            with m.Else():
                m.d.comb += [
                    pushed.eq(1),
                    entry_rd.addr.eq(self.push.payload.slot),
                    entry_rd.en.eq(1),
                ]
                with m.If(free_count != 0):
                    m.d.comb += pop.eq(1)
                    m.d.sync += write_addr.eq(free_rd.data)
                with m.Else():
                    m.d.sync += [write_addr.eq(fresh), fresh.eq(fresh + 1)]
                m.d.sync += write_event.eq(self.push.payload)
        with m.If(self.push.ready):
            m.d.sync += write_due.eq(pushed)

        # --- push, stage B: the event becomes its slot's new head ---------------------------
        # The entry read in stage A misses a write of the same clock: the previous push's,
        # when it went to the same slot. Then that push's entry comes from registers.
        stale = Signal()
        written_head = Signal(index_shape)
        written_tail = Signal(index_shape)
        old_head = Mux(stale, written_head, entry_rd.data.head)
        old_tail = Mux(stale, written_tail, entry_rd.data.tail)
        was_nonempty = nonempty.bit_select(write_event.slot, 1)
        new_tail = Signal(index_shape)
        word = Signal(layouts.event)
        m.d.comb += [
            new_tail.eq(Mux(was_nonempty, old_tail, write_addr)),
            word.value.eq(write_event.value),
            word.target.eq(write_event.target),
            word.compartment.eq(write_event.compartment),
            word.next.eq(old_head),
        ]
        with m.If(pushed):
            m.d.sync += [
                stale.eq(write_now & (write_event.slot == self.push.payload.slot)),
                written_head.eq(write_addr),
                written_tail.eq(new_tail),
            ]
        with m.If(write_now):
            m.d.comb += [
                arrival_wr.addr.eq(write_event.slot),
                arrival_wr.data.head.eq(write_addr),
                arrival_wr.data.tail.eq(new_tail),
                arrival_wr.data.nonempty.eq(1),
                arrival_wr.en.eq(1),
            ]
            m.d.sync += nonempty.bit_select(write_event.slot, 1).eq(1)

        # --- drain: the slot's entry, then one pool read a clock along the list -------------
        first = Signal()  # the slot's entry is on drain_entry_rd.data
        walking = Signal()  # reads of the list are not finished
        fetched = Signal()  # the word of `current` is read (stage 1)
        current = Signal(index_shape)
        tail = Signal(index_shape)
        waiting = Signal()  # a read of read_addr is due but was not granted yet
        waiting_addr = Signal(index_shape)
        out_last = Signal()  # the drained register holds the slot's last event

        if self._single_port:
            # SPRAM's output is defined only the clock after a read: keep the word.
            just_read = Signal()
            kept = Signal(layouts.event)
            event = Signal(layouts.event)
            m.d.sync += just_read.eq(read_now)
            m.d.comb += event.eq(Mux(just_read, pool.rdata, kept))
            m.d.sync += kept.eq(event)
        else:
            event = pool_rd.data

        take = ~self.drained.valid | self.drained.ready
        consume = fetched & take
        at_tail = current == tail
        entry = entry_rd.data
        slot_nonempty = nonempty.bit_select(self.slot, 1)
        m.d.comb += [
            read_due.eq((first & slot_nonempty) | waiting | (consume & ~at_tail)),
            read_addr.eq(Mux(first, entry.head, Mux(waiting, waiting_addr, event.next))),
        ]

        m.d.comb += drain_start.eq(self.drain & ~first & ~walking & ~self.drained.valid)
        with m.If(drain_start):
            m.d.comb += [entry_rd.addr.eq(self.slot), entry_rd.en.eq(1)]
            m.d.sync += first.eq(1)
        with m.If(first):
            m.d.sync += first.eq(0)
            with m.If(slot_nonempty):
                m.d.sync += [walking.eq(1), tail.eq(entry.tail), nonempty.bit_select(self.slot, 1).eq(0)]
            with m.Else():
                m.d.comb += self.done.eq(1)

        with m.If(read_now):
            m.d.sync += [fetched.eq(1), current.eq(read_addr), waiting.eq(0)]
        with m.Else():
            with m.If(consume):
                m.d.sync += fetched.eq(0)
            with m.If(read_due):
                m.d.sync += [waiting.eq(1), waiting_addr.eq(read_addr)]

        with m.If(take):
            m.d.sync += self.drained.valid.eq(consume)
        with m.If(consume):
            m.d.sync += [
                self.drained.payload.target.eq(event.target),
                self.drained.payload.compartment.eq(event.compartment),
                self.drained.payload.value.eq(event.value),
                out_last.eq(at_tail),
                # the word is read: it may take a push from the next clock on
                free_last.eq(following(free_last)),
            ]
            m.d.comb += [free_wr.addr.eq(free_last), free_wr.data.eq(current), free_wr.en.eq(1)]
            with m.If(at_tail):
                m.d.sync += walking.eq(0)
        with m.If(self.drained.valid & self.drained.ready & out_last):
            m.d.comb += self.done.eq(1)

        # --- the free FIFO's head is always on free_rd.data ---------------------------------
        next_first = Signal.like(free_first)
        m.d.comb += [
            next_first.eq(Mux(pop, following(free_first), free_first)),
            free_rd.addr.eq(next_first),
            free_rd.en.eq(1),
        ]
        m.d.sync += [free_first.eq(next_first), free_count.eq(free_count + consume - pop)]

        # --- the pool's port(s) -------------------------------------------------------------
        if self._single_port:
            m.d.comb += [
                pool.addr.eq(Mux(write_now, write_addr, read_addr)),
                pool.wdata.eq(word),
                pool.we.eq(write_now),
                pool.en.eq(read_now),
            ]
        else:
            m.d.comb += [
                pool_wr.addr.eq(write_addr), pool_wr.data.eq(word), pool_wr.en.eq(write_now),
                pool_rd.addr.eq(read_addr), pool_rd.en.eq(read_now),
            ]

        # --- held: +1 a push, less the step's drained events at step_end -------------------
        with m.If(self.step_end):
            m.d.sync += [held.eq(held + pushed - drained_count), drained_count.eq(consume)]
        with m.Else():
            m.d.sync += [held.eq(held + pushed), drained_count.eq(drained_count + consume)]

        # --- clear ------------------------------------------------------------------------
        cleared = Signal()  # done is due: the clock after a clear
        m.d.sync += cleared.eq(self.clear)
        with m.If(cleared):
            m.d.comb += self.done.eq(1)
        with m.If(self.clear):
            m.d.sync += [
                nonempty.eq(0), held.eq(0), fresh.eq(0), free_count.eq(0), free_first.eq(0),
                free_last.eq(0), drained_count.eq(0), write_due.eq(0), first.eq(0), walking.eq(0),
                fetched.eq(0), waiting.eq(0), self.drained.valid.eq(0),
                self.queue_overflow.eq(0), self.queue_overflow_step.eq(0),
            ]

        m.d.comb += self.busy.eq(first | walking | self.drained.valid | write_due | cleared)
        return m
