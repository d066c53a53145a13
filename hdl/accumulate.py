"""Accumulate: the events arriving at the next step, added into their accumulator words.

Core v2 (docs/hardware.md): during step ``t`` two streams carry the events that arrive
at ``t + 1`` (``layouts.accumulator`` bank ``1 - t mod 2`` collects them): the fan-out's
delay-0 events (``FanOut.direct``) and the queue's drained slot (``EventQueue.drained``).
:class:`Accumulate` merges them into one read-modify-write a clock on that bank: add
``value`` into element ``compartment`` of word ``target``.

Sums are exact and do not depend on the order of the adds, as long as no partial sum
leaves the signed ``acc_bits`` range; the order here depends on timing, so jobs are
refused before they run where that could happen (``neurofab.emulator.capacity``, the
accumulator-range check). ``acc_overflow`` is the hardware's safety net behind it.
"""

from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import stream
from amaranth.lib.memory import ReadPort, WritePort
from amaranth.lib.wiring import In, Out

from .block import CoreBlock
from .config import CoreConfig
from .event_queue import STEP_BITS
from .fanout import delivery_layout
from .layouts import core_layouts

__all__ = ["Accumulate"]


class Accumulate(CoreBlock):
    """Adds the ``direct`` and ``drained`` events into accumulator words, one a clock.

    Parameters
    ----------
    config : CoreConfig
        ``neurons`` (words), ``compartments`` and ``acc_bits`` (``layouts.accumulator``).

    Members
    -------
    direct, drained : ``In(stream.Signature(delivery_layout(config)))``
        ``(target, compartment, value)``. Fixed arbitration, ``direct`` first:
        ``direct.ready`` is always high; ``drained.ready`` is high when ``direct.valid``
        is low. Neither ``ready`` depends on its own stream's ``valid``. Why this order:
        the fan-out's two outputs share one register, so a stalled ``direct`` event holds
        its pushes too; ``direct`` first keeps the fan-out at one synapse a clock while
        the queue's drain takes the clocks between (delay-0 events are a small share of a
        step's), so the fan-out and the drain overlap instead of running one after the
        other. Sums do not depend on the order (module docstring).
    step : ``In(STEP_BITS)``
        The current timestep ``t``, recorded by an overflow.
    clear : ``In(1)``
        Pulse (before a job): clear the error.
    acc_rd, acc_wr : read and write port of an accumulator bank (``layouts.accumulator``
        words, address = neuron). The read port may be transparent for the write port or
        not: the adds forward their own last write either way.
    busy : ``Out(1)``
        An event taken is not yet written. Low with both inputs' ``valid`` low: every
        event taken so far is in the bank.
    settling : ``Out(1)``
        No event taken in an earlier clock is still waiting for its word (a register):
        in a clock that takes no event, every event taken so far is written by the end
        of the next clock (``busy`` is low the clock after, or two after in word mode,
        whose write follows its add). The core ends a step on it a clock ahead.
    acc_overflow : ``Out(1)``; acc_overflow_step : ``Out(STEP_BITS)``
        Sticky error, cleared only by ``clear`` (or reset): an add whose sum left the
        signed ``acc_bits`` range (the wrapped sum is stored), and the ``step`` of the
        first; set at the end of the add's clock with ``config.spram``, else of its
        write's (a register between the adder and them), so by the time ``busy`` falls.

    Timing: an event taken in clock ``k`` has its word read in ``k``, registered straight
    off the bank in ``k + 1`` (before any logic: the bank's read mux is long), its sum
    added in ``k + 2`` into a register and written in ``k + 3`` (the bank's write port is
    far: nothing but the core's bank multiplexer between that register and it); an
    event a clock, so ``n`` events offered back to back are all written ``n +``
    :meth:`latency` ``= n + 3`` clocks after the first is taken. Adds to one word in
    clocks up to three apart add up (a later add takes the earlier words from
    registers, not from the bank, which has them only from ``k + 4``). The read port's
    ``en`` is high only in clocks that take an event. Reset drops an event not yet
    written.

    Forwarding: with ``config.spram`` (the iCE40, short of logic cells, at 30 MHz) the
    sum is written in the clock of its add (``k + 2``, :meth:`latency` 2), and the adds
    keep the last two adds' sums and compartments (an add changes one element of its
    word), not their whole words.
    """

    @staticmethod
    def latency(config: CoreConfig) -> int:
        """Clocks from taking an event to its write (inclusive of neither): 3, or 2 with
        ``config.spram``; ``n`` events back to back are written ``n + latency`` clocks
        after the first is taken."""
        return 2 if config.spram else 3

    def __init__(self, config: CoreConfig):
        self.checked(config)
        layouts = core_layouts(config)
        super().__init__(config, {
            "direct": In(stream.Signature(delivery_layout(config))),
            "drained": In(stream.Signature(delivery_layout(config))),
            "step": In(STEP_BITS),
            "clear": In(1),
            "acc_rd": In(ReadPort.Signature(addr_width=config.neuron_bits, shape=layouts.accumulator)),
            "acc_wr": In(WritePort.Signature(addr_width=config.neuron_bits, shape=layouts.accumulator)),
            "busy": Out(1),
            "settling": Out(1),
            "acc_overflow": Out(1),
            "acc_overflow_step": Out(STEP_BITS),
        })

    def elaborate(self, platform):
        m = Module()
        config = self._config
        bits = config.acc_bits

        # --- take: the direct stream first, then the drained one; read the word ----------
        # (direct first: a waiting direct event would stall the whole fan-out, see above)
        chosen = Signal(delivery_layout(config))
        m.d.comb += chosen.eq(Mux(self.direct.valid, self.direct.payload, self.drained.payload))
        taken = self.drained.valid | self.direct.valid
        m.d.comb += [
            self.direct.ready.eq(1),
            self.drained.ready.eq(~self.direct.valid),
            self.acc_rd.addr.eq(chosen.target),
            self.acc_rd.en.eq(taken),
        ]
        # --- register the word straight off the bank (its read mux is long) -------------
        reading = Signal()  # stage 2: the word of `fetched_event` is on acc_rd.data
        fetched_event = Signal(delivery_layout(config))
        m.d.sync += reading.eq(taken)
        m.d.comb += self.settling.eq(~reading)
        with m.If(taken):
            m.d.sync += fetched_event.eq(chosen)
        adding = Signal()  # stage 3: the word of `event` is in `fetched_word`
        event = Signal(delivery_layout(config))
        fetched_word = Signal.like(self.acc_wr.data)
        m.d.sync += adding.eq(reading)
        with m.If(reading):
            m.d.sync += [event.eq(fetched_event), fetched_word.eq(self.acc_rd.data)]

        # --- add: forward the last two clocks' writes, add into one element, write back ---
        # The word was read two clocks before this add: the writes of the two clocks since
        # (of the events just before) are not in it, so take the newer of theirs first.
        # Which of them hit this word is decided a clock ahead, as the word is fetched
        # (the event being added now is the next clock's last write, the last write the
        # next clock's one before), so no comparator stands before the adder.
        wrote = Signal()  # last clock wrote `last_word` to `last_target`
        last_target = Signal.like(event.target)
        if config.spram:
            total, new_word = self._add_forwarding_sums(m, event, fetched_event, fetched_word, adding, wrote,
                                                        last_target)
        else:
            # The sum goes into a register and is written the clock after (the bank's write
            # port is far, its data through the core's bank multiplexer), so the word was
            # read three clocks before this add: the last three adds' words are forwarded.
            last_word = Signal.like(self.acc_wr.data)  # the last add's, being written now
            last_word2 = Signal.like(self.acc_wr.data)  # the add before's
            last_word3 = Signal.like(self.acc_wr.data)  # and the one before that
            wrote2 = Signal()  # the clock before last added (into `last_target2`)
            last_target2 = Signal.like(event.target)
            hit1 = Signal()  # `last_word` is the word of `event`, newer than `fetched_word`
            hit2 = Signal()  # `last_word2` is
            hit3 = Signal()  # `last_word3` is
            m.d.sync += [
                hit1.eq(adding & (event.target == fetched_event.target)),
                hit2.eq(wrote & (last_target == fetched_event.target)),
                hit3.eq(wrote2 & (last_target2 == fetched_event.target)),
                wrote2.eq(wrote),
                last_target2.eq(last_target),
                last_word3.eq(last_word2),
            ]
            word = Signal.like(self.acc_wr.data)
            m.d.comb += word.eq(Mux(hit1, last_word,
                                    Mux(hit2, last_word2, Mux(hit3, last_word3, fetched_word))))
            total = Signal(signed(bits + 1))
            m.d.comb += total.eq(word[event.compartment] + event.value)
            new_word = Signal.like(word)
            for c in range(config.compartments):
                m.d.comb += new_word[c].eq(Mux(event.compartment == c, total[:bits], word[c]))
        if config.spram:
            m.d.comb += [
                self.acc_wr.addr.eq(event.target),
                self.acc_wr.data.eq(new_word),
                self.acc_wr.en.eq(adding),
                self.busy.eq(reading | adding),
            ]
        else:
            writing = Signal()  # the last add's word is written: `last_word` to `last_target`
            m.d.sync += writing.eq(adding)
            m.d.comb += [
                self.acc_wr.addr.eq(last_target),
                self.acc_wr.data.eq(last_word),
                self.acc_wr.en.eq(writing),
                self.busy.eq(reading | adding | writing),
            ]
        if config.spram:
            m.d.sync += wrote.eq(adding)
        else:
            m.d.sync += [wrote.eq(adding), last_word2.eq(last_word)]
        with m.If(adding):
            m.d.sync += last_target.eq(event.target)
            if not config.spram:
                m.d.sync += last_word.eq(new_word)
            fits = total[bits - 1] == total[bits]
            if config.spram:
                with m.If(~fits & ~self.acc_overflow):
                    m.d.sync += [self.acc_overflow.eq(1), self.acc_overflow_step.eq(self.step)]
        if not config.spram:
            # the add's overflow into a register first, the sticky error from it in the clock
            # of the sum's write (so the adder does not reach the step register's enables;
            # the step is the same: the step ends after the write)
            overflowed = Signal()
            m.d.sync += overflowed.eq(adding & (total[bits - 1] != total[bits]))
            with m.If(overflowed & ~self.acc_overflow):
                m.d.sync += [self.acc_overflow.eq(1), self.acc_overflow_step.eq(self.step)]
        with m.If(self.clear):
            m.d.sync += [self.acc_overflow.eq(0), self.acc_overflow_step.eq(0)]
        return m

    def _add_forwarding_sums(self, m, event, fetched_event, fetched_word, adding, wrote, last_target):
        """``config.spram``: the add, forwarding the last two writes' sums, not their words.

        An add changes one element of its word, so the word the bank will hold for
        ``event`` is ``fetched_word`` with the element each of the last two adds wrote
        into it (when it was the same word) replaced by that add's sum, the newer one
        winning on the same element: two sums of ``acc_bits`` and their compartments
        in registers instead of two whole words. Which element of which word each
        replaces is decided a clock ahead (one flag an element), as in the word mode.
        Returns the sum and the word to write.
        """
        config = self._config
        bits = config.acc_bits
        count = config.compartments
        last_sum = Signal(signed(bits))  # what the last add wrote into its element
        last_sum2 = Signal(signed(bits))  # what the add before it wrote
        last_comp = Signal.like(event.compartment)
        # hit1[c]: element c of `event`'s word is `last_sum`; hit2[c]: is `last_sum2` (if not hit1[c])
        hit1, hit2 = Signal(count), Signal(count)
        same1 = adding & (event.target == fetched_event.target)
        same2 = wrote & (last_target == fetched_event.target)
        m.d.sync += [
            hit1.eq(Cat(same1 & (event.compartment == c) for c in range(count))),
            hit2.eq(Cat(same2 & (last_comp == c) for c in range(count))),
        ]
        word = Signal.like(fetched_word)
        for c in range(count):
            m.d.comb += word[c].eq(Mux(hit1[c], last_sum, Mux(hit2[c], last_sum2, fetched_word[c])))
        total = Signal(signed(bits + 1))
        m.d.comb += total.eq(word[event.compartment] + event.value)
        new_word = Signal.like(word)
        for c in range(count):
            m.d.comb += new_word[c].eq(Mux(event.compartment == c, total[:bits], word[c]))
        m.d.sync += last_sum2.eq(last_sum)
        with m.If(adding):
            m.d.sync += [last_sum.eq(total[:bits]), last_comp.eq(event.compartment)]
        return total, new_word
