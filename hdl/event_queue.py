"""The delay event queue: spikes in flight, and phase 1 (the drain) of a core's timestep.

hdl/config.py: "The queue is one shared pool: after the fan-out of step ``s`` [...] the
events held by a core, i.e. those with arrival ``> s``, must number at most
``event_queue``; otherwise the core overflows at step ``s`` [...]. An accumulator holds
a signed ``acc_bits``-bit sum; a sum that leaves that range while draining overflows
the same way."

:class:`EventQueue` keeps one pool of ``event_queue`` words (``layouts.event``) and one
list per arrival slot (``layouts.arrival``: ``head``, ``tail``, ``nonempty``), both
memories of its own, and reaches the accumulators through ports of the core's.

How the lists work (every operation one clock, no search):

- **Push** puts the event at the *head* of its slot's list: its ``next`` is the old
  head, and the slot's ``tail`` changes only when the list was empty. Sums are exact,
  so the order of a slot's events does not matter.
- **Allocation** takes the head of the free list, or, while the free list is empty, the
  next never-used word (``fresh``). The free list's length is ``fresh - held``, so no
  flag is needed. The ``next`` of the free list's head is kept on the pool's read port,
  read ahead: a pop reads the following one.
- **Drain** of a slot walks its list from ``head`` to ``tail``, one event a clock,
  adding each into its accumulator, then splices the whole list onto the free list
  (one write: ``tail.next = free head``).
"""

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory, ReadPort, WritePort
from amaranth.lib.wiring import In, Out

from neurofab.errors import ValidationError

from .config import CoreConfig, addr_bits, count_bits
from .fanout import event_layout
from .layouts import core_layouts

__all__ = ["STEP_BITS", "EventQueue"]

#: A timestep number: docs/model.md allows up to 10,000,000 steps (< 2^24).
STEP_BITS = 24


class EventQueue(wiring.Component):
    """Holds the events in flight and adds each step's arrivals into the accumulators.

    Parameters
    ----------
    config : CoreConfig
        ``event_queue`` (the pool's capacity), ``delay_slots``, ``neurons``,
        ``compartments``, ``acc_bits`` and the ``event``/``arrival`` layouts.

    Members
    -------
    push : ``In(stream.Signature(event_layout(config)))``
        Events from the fan-out engine, ``(slot, target, compartment, value)``. Ready
        (always) while no drain or clear runs or starts. An event that finds ``event_queue`` events
        held is not held: the queue overflows (see below).
    step : ``In(STEP_BITS)``
        The current timestep ``t``, recorded by an error; hold it during a drain and the
        pushes of a step.
    drain : ``In(1)``
        Pulse while not ``busy``: add the events of arrival slot ``slot`` into the
        accumulators and free them.
    slot : ``In(addr_bits(delay_slots))``
        ``t mod delay_slots`` for ``drain``; held until ``done``.
    clear : ``In(1)``
        Pulse while not ``busy``: empty every list and clear both errors (before a job).
    busy : ``Out(1)``
        A drain or clear runs, or a push is still being written.
    done : ``Out(1)``
        One-clock pulse when a drain (every accumulator written) or a clear is finished.
    held : ``Out(count_bits(event_queue))``
        Events held now.
    queue_overflow, acc_overflow : ``Out(1)``
        Sticky errors, cleared only by ``clear`` (or reset).
    queue_overflow_step, acc_overflow_step : ``Out(STEP_BITS)``
        The ``step`` at which each error first happened.
    acc_rd, acc_wr : read and write port of the accumulators ``acc[n * compartments + c]``
        (signed ``acc_bits``), used only while draining.

    Errors. *Queue overflow*: a push while ``event_queue`` events are held; the event is
    dropped (every later one too, until a drain frees room) and the error records
    ``step``. Since a drain of step ``t`` frees every event arriving at ``t`` before the
    fan-out of ``t`` pushes, the events held during the fan-out of ``s`` are exactly those
    arriving after ``s``, as the config's rule counts them. *Accumulator overflow*: a
    partial sum (accumulator plus event, in the order the drain adds them) outside the
    signed ``acc_bits`` range; the wrapped sum is stored and the error records ``step``.
    With accumulators cleared by the neuron pass every step, no partial sum can leave
    the range when ``event_queue * 65280 < 2^(acc_bits - 1)`` (every hardware preset).

    Timing. A push is taken every clock (written in the next one). A drain of ``n > 0``
    events takes ``n + 4`` clocks from the ``drain`` edge to ``done`` inclusive: the
    slot's entry, one clock per event, the splice, the read-ahead of the free list; an
    empty slot 2. A clear takes ``delay_slots`` clocks. Reset empties every list only
    together with a ``clear`` (the arrival memory is not reset).
    """

    def __init__(self, config: CoreConfig):
        if not isinstance(config, CoreConfig):
            raise ValidationError("EventQueue.config", f"must be a CoreConfig, not {config!r}")
        self._config = config
        acc_addr = addr_bits(config.neurons * config.compartments)
        super().__init__({
            "push": In(stream.Signature(event_layout(config))),
            "step": In(STEP_BITS),
            "drain": In(1),
            "slot": In(addr_bits(config.delay_slots)),
            "clear": In(1),
            "busy": Out(1),
            "done": Out(1),
            "held": Out(count_bits(config.event_queue)),
            "queue_overflow": Out(1),
            "queue_overflow_step": Out(STEP_BITS),
            "acc_overflow": Out(1),
            "acc_overflow_step": Out(STEP_BITS),
            "acc_rd": In(ReadPort.Signature(addr_width=acc_addr, shape=signed(config.acc_bits))),
            "acc_wr": In(WritePort.Signature(addr_width=acc_addr, shape=signed(config.acc_bits))),
        })

    @property
    def config(self) -> CoreConfig:
        return self._config

    def elaborate(self, platform):
        m = Module()
        config = self._config
        layouts = core_layouts(config)
        capacity = config.event_queue

        m.submodules.pool = pool = Memory(shape=layouts.event, depth=capacity, init=[])
        m.submodules.arrivals = arrivals = Memory(shape=layouts.arrival, depth=config.delay_slots, init=[])
        pool_wr = pool.write_port()
        pool_rd = pool.read_port()
        arrival_wr = arrivals.write_port()
        # A push reads its slot's entry while the previous push writes it: see that write.
        arrival_rd = arrivals.read_port(transparent_for=(arrival_wr,))
        for port in (pool_rd, arrival_rd):
            m.d.comb += port.en.eq(0)

        held = Signal(count_bits(capacity))
        fresh = Signal(count_bits(capacity))  # words 0 .. fresh - 1 have been used at least once
        free_head = Signal(layouts.event["next"].shape)
        m.d.comb += self.held.eq(held)

        # --- push: allocate and read the slot's entry; next clock, link and write --------
        pushing = Signal()  # stage 2: an event to write this clock
        push_addr = Signal.like(free_head)
        push_slot = Signal.like(self.push.payload.slot)
        push_event = Signal.like(self.push.payload)
        idle = Signal()
        m.d.comb += self.push.ready.eq(idle & ~self.drain & ~self.clear)
        with m.If(self.push.valid & self.push.ready):
            with m.If(held == capacity):
                with m.If(~self.queue_overflow):
                    m.d.sync += [self.queue_overflow.eq(1), self.queue_overflow_step.eq(self.step)]
                m.d.sync += pushing.eq(0)
            with m.Else():
                m.d.comb += [arrival_rd.addr.eq(self.push.payload.slot), arrival_rd.en.eq(1)]
                with m.If(held < fresh):  # the free list is not empty: pop its head
                    free_next = pool_rd.data.next
                    m.d.comb += [pool_rd.addr.eq(free_next), pool_rd.en.eq(1)]
                    m.d.sync += [push_addr.eq(free_head), free_head.eq(free_next)]
                with m.Else():
                    m.d.sync += [push_addr.eq(fresh), fresh.eq(fresh + 1)]
                m.d.sync += [
                    held.eq(held + 1),
                    pushing.eq(1),
                    push_slot.eq(self.push.payload.slot),
                    push_event.eq(self.push.payload),
                ]
        with m.Else():
            m.d.sync += pushing.eq(0)

        old = arrival_rd.data
        with m.If(pushing):
            m.d.comb += [
                arrival_wr.addr.eq(push_slot),
                arrival_wr.data.head.eq(push_addr),
                arrival_wr.data.tail.eq(Mux(old.nonempty, old.tail, push_addr)),
                arrival_wr.data.nonempty.eq(1),
                arrival_wr.en.eq(1),
                pool_wr.addr.eq(push_addr),
                pool_wr.data.value.eq(push_event.value),
                pool_wr.data.target.eq(push_event.target),
                pool_wr.data.compartment.eq(push_event.compartment),
                pool_wr.data.next.eq(old.head),
                pool_wr.en.eq(1),
            ]

        # --- drain: walk the slot's list; each event's accumulator is added one clock later
        head = Signal.like(free_head)
        tail = Signal.like(free_head)
        current = Signal.like(free_head)  # the event whose word is on pool_rd.data
        adding = Signal()  # stage 2 of the drain: an accumulator's value is on acc_rd.data
        add_addr = Signal.like(self.acc_rd.addr)
        add_value = Signal.like(push_event.value)
        # The write one clock before the read of the same accumulator is not yet in the
        # read's data: forward it.
        last_addr = Signal.like(self.acc_rd.addr)
        last_sum = Signal(signed(config.acc_bits))
        last_wrote = Signal()

        event = pool_rd.data
        m.d.comb += [
            self.acc_rd.addr.eq(event.target * config.compartments + event.compartment),
            self.acc_rd.en.eq(0),
        ]
        base = Mux(last_wrote & (last_addr == add_addr), last_sum, self.acc_rd.data)
        total = Signal(signed(config.acc_bits + 1))
        m.d.comb += total.eq(base + add_value)
        m.d.sync += last_wrote.eq(adding)
        with m.If(adding):
            m.d.comb += [self.acc_wr.addr.eq(add_addr), self.acc_wr.data.eq(total), self.acc_wr.en.eq(1)]
            m.d.sync += [last_addr.eq(add_addr), last_sum.eq(total)]
            fits = total[config.acc_bits - 1] == total[config.acc_bits]
            with m.If(~fits & ~self.acc_overflow):
                m.d.sync += [self.acc_overflow.eq(1), self.acc_overflow_step.eq(self.step)]

        clear_slot = Signal(range(config.delay_slots))
        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += idle.eq(1)
                m.d.sync += adding.eq(0)
                with m.If(self.clear):
                    m.d.sync += clear_slot.eq(0)
                    m.next = "CLEAR"
                with m.Elif(self.drain):
                    m.d.comb += [arrival_rd.addr.eq(self.slot), arrival_rd.en.eq(1)]
                    m.next = "FIRST"
            with m.State("FIRST"):
                entry = arrival_rd.data
                with m.If(entry.nonempty):
                    m.d.comb += [
                        pool_rd.addr.eq(entry.head), pool_rd.en.eq(1),
                        arrival_wr.addr.eq(self.slot), arrival_wr.data.eq(0), arrival_wr.en.eq(1),
                    ]
                    m.d.sync += [head.eq(entry.head), tail.eq(entry.tail), current.eq(entry.head)]
                    m.next = "WALK"
                with m.Else():
                    m.d.comb += self.done.eq(1)
                    m.next = "IDLE"
            with m.State("WALK"):
                m.d.comb += self.acc_rd.en.eq(1)
                m.d.sync += [
                    adding.eq(1),
                    add_addr.eq(self.acc_rd.addr),
                    add_value.eq(event.value),
                    held.eq(held - 1),
                ]
                with m.If(current == tail):
                    m.next = "SPLICE"
                with m.Else():
                    m.d.comb += [pool_rd.addr.eq(event.next), pool_rd.en.eq(1)]
                    m.d.sync += current.eq(event.next)
            with m.State("SPLICE"):
                # The drained list goes in front of the free list (the last add is written now).
                m.d.comb += [pool_wr.addr.eq(tail), pool_wr.data.next.eq(free_head), pool_wr.en.eq(1)]
                m.d.sync += [free_head.eq(head), adding.eq(0)]
                m.next = "READ_AHEAD"
            with m.State("READ_AHEAD"):
                # Pops need the new free head's next on the pool's read port.
                m.d.comb += [pool_rd.addr.eq(free_head), pool_rd.en.eq(1), self.done.eq(1)]
                m.next = "IDLE"
            with m.State("CLEAR"):
                m.d.comb += [arrival_wr.addr.eq(clear_slot), arrival_wr.data.eq(0), arrival_wr.en.eq(1)]
                m.d.sync += [
                    clear_slot.eq(clear_slot + 1), held.eq(0), fresh.eq(0),
                    self.queue_overflow.eq(0), self.acc_overflow.eq(0),
                    self.queue_overflow_step.eq(0), self.acc_overflow_step.eq(0),
                ]
                with m.If(clear_slot == config.delay_slots - 1):
                    m.d.comb += self.done.eq(1)
                    m.next = "IDLE"

        m.d.comb += self.busy.eq(~idle | pushing)
        return m
