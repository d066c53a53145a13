"""The neuron pass: every neuron of a core through the update pipeline, one per clock.

docs/memory-map.md, "One core": "For every local neuron in order: read its neuron word,
its profile (by the word's profile index) and its accumulators (then clear them), add
the stimulus, update v, r, lfsr exactly as docs/model.md says, write the word back. A
neuron that spikes is remembered in a spike list, with its graded payload."

:class:`NeuronPass` does exactly that over memories it reaches through memory-port
interfaces (the core's top level owns the memories and connects their ports), one
neuron issued per clock, fully pipelined (Core v2, issue #4): a neuron's word is read
on one clock, its profile (addressed by the word's ``profile`` field), its accumulator
word (every compartment's sum in one word, ``layouts.core_layouts(config).accumulator``)
and its stimulus sum (``layouts.STIMULUS_BITS``) two clocks later (the word is registered
first), and the neuron enters :class:`~neurofab.hdl.neuron.NeuronUpdate` two clocks after
that (those words are registered first too), while the words of the neurons behind it
are being read. The pass writes the accumulator word 0 as the
neuron enters the update, and the neuron word back as the neuron leaves it. With
``config.spram`` (the iCE40) the words are read together and enter the update straight
off the memories, which share one cached profile (:class:`NeuronPass`, "Profile cache").
"""

from amaranth.hdl import Cat, Module, Signal, unsigned
from amaranth.lib import data, stream
from amaranth.lib.memory import ReadPort, WritePort
from amaranth.lib.wiring import In, Out

from .block import CoreBlock
from .config import CoreConfig, addr_bits, count_bits
from .layouts import PROFILE_LAYOUT, STIMULUS_BITS, core_layouts
from .neuron import PARAMS_LAYOUT, NeuronUpdate

__all__ = ["UPDATED_FIELDS", "PROFILE_ROW_BITS", "PROFILE_ROWS", "spike_layout", "profile_rows",
           "NeuronPass"]

#: The neuron word's fields the pass rewrites; every other field is written back unchanged.
UPDATED_FIELDS = ("v", "r", "lfsr")

#: The profile cache's table (``config.spram``): a profile is this many rows of
#: ``PROFILE_ROW_BITS``, low bits first (``PROFILE_LAYOUT``, 96 bits, in 6 x 16).
PROFILE_ROW_BITS = 16
PROFILE_ROWS = -(-PROFILE_LAYOUT.size // PROFILE_ROW_BITS)


def profile_rows(profile: int) -> list[int]:
    """The ``PROFILE_ROWS`` rows of one profile (its ``PROFILE_LAYOUT`` bits as an int),
    row ``r`` being bits ``16 r .. 16 r + 15``: profile ``p`` is rows ``p * 6 .. p * 6 + 5``
    of the cache mode's table."""
    mask = (1 << PROFILE_ROW_BITS) - 1
    return [(profile >> (PROFILE_ROW_BITS * r)) & mask for r in range(PROFILE_ROWS)]


def spike_layout(config: CoreConfig) -> data.StructLayout:
    """One entry of the spike list: the local ``neuron`` and its graded ``payload`` (0 if not graded)."""
    return data.StructLayout({"neuron": unsigned(config.neuron_bits), "payload": unsigned(8)})


class NeuronPass(CoreBlock):
    """Steps every neuron ``0 .. count - 1`` of a core through one timestep's update.

    Parameters
    ----------
    config : CoreConfig
        The core's shape: ``neurons``, ``compartments``, ``profiles``, ``acc_bits`` and
        the word layouts (``layouts.core_layouts(config)``: ``neuron``, ``accumulator``,
        ``stimulus``).

    Members
    -------
    start : ``In(1)``
        Pulse while idle or on the clock of ``done`` (ignored while ``busy`` otherwise):
        begin a pass. ``count`` and the flags
        are sampled on that clock; the flags must also hold until ``done`` (the pass
        registers them, but the core changes them only between steps anyway).
    count : ``In(count_bits(neurons))``
        Neurons to update, 0 .. ``neurons``.
    dendritic, noise, graded : ``In(1)``
        The job's flags.
    busy : ``Out(1)``
        High from the clock after ``start`` until ``done``, inclusive.
    done : ``Out(1)``
        One-clock pulse (a register) on the clock after the last neuron's word was
        written back and its spike, if any, handed over.
    neuron_rd, neuron_wr : read and write port of the neuron memory (``layouts.neuron``,
        depth ``neurons``; ``In(ReadPort.Signature)``, ``In(WritePort.Signature)``: this
        block drives ``addr``, ``en`` and the write port's ``data``). Word ``n`` is read
        once, and written once with new ``v``, ``r``, ``lfsr`` and every other field as read.
    profile_rd : read port of the profile table (``PROFILE_LAYOUT``, depth ``profiles``),
        addressed by the ``profile`` field of the word read two clocks before (registered
        in between). With ``config.spram`` (the profile cache, below): a read port of
        ``unsigned(PROFILE_ROW_BITS)`` words, depth ``profiles * PROFILE_ROWS``, profile
        ``p`` in rows ``p * 6 .. p * 6 + 5``, low bits first (:func:`profile_rows`).
    acc_rd, acc_wr : read and write port of the accumulator bank of this step
        (``layouts.accumulator``: one word per neuron, element ``c`` the signed
        ``acc_bits`` sum of compartment ``c``; depth ``neurons``). Word ``n`` is read
        once and written 0 once, on the clock the neuron enters the update pipeline
        (after its read), so the bank is all zero over ``0 .. count - 1`` after the pass.
    stim_rd : read port of the stimulus memory (``layouts.stimulus``, signed
        ``STIMULUS_BITS``, depth ``neurons``). Read once per neuron (with the profile
        cache: again after a miss, like the neuron and accumulator words).
    spikes : ``Out(stream.Signature(spike_layout(config)))``
        ``(neuron, payload)`` of every neuron that spiked, in neuron order. ``valid``
        comes from a register and never depends on ``ready``.

    Timing: neuron ``k`` (``k = 0 .. count - 1``) is issued on clock ``k + 1`` after the
    ``start`` edge (clock 1 is the clock right after it): its word read then and
    registered straight off the memory on clock ``k + 2``; its profile (addressed from
    that register), accumulator and stimulus reads on clock ``k + 3``, their words
    registered straight off their memories on ``k + 4``; it enters the update pipeline
    (and its accumulator word is written 0) on clock ``k + 5``, and its word is written
    back (and its spike offered) on clock ``k + 5 + NeuronUpdate.LATENCY``. No logic
    stands between a memory's read data and the register it loads (an ECP5 DP16KD's
    clock-to-out is most of a 10 ns clock), but for the core's accumulator bank pick.
    With ``spikes`` always ready a pass of ``n > 0`` neurons therefore raises ``done`` on
    clock ``n + LATENCY`` after the ``start`` edge, :attr:`LATENCY` ``=
    NeuronUpdate.LATENCY + 5 = 11``; a pass of 0 raises it on clock 1. Throughput is one
    neuron per clock.

    Profile cache (``config.spram``: the iCE40, whose profile table cannot have block
    RAMs 96 bits wide of its own, shares one 16-bit EBR, and whose logic cells are
    few): the pass keeps one profile in a 96-bit register, which every stage of the
    update reads as its shared parameters (``NeuronUpdate(shared_params=True)``: no
    stage carries a parameter), and no register stands between a block RAM and the
    update (the iCE40 runs at 30 MHz, not the ECP5's 100). Neuron ``k`` is issued on
    clock ``k + 1``: its word, accumulator word and stimulus are read together, all
    addressed by ``k``; on clock ``k + 2`` it enters the update straight off the
    ports' data (its accumulator word written 0), and its word is written back on
    ``k + 2 + NeuronUpdate.LATENCY``: :attr:`SPRAM_LATENCY` ``= NeuronUpdate.LATENCY +
    2 = 8`` in place of :attr:`LATENCY` (:meth:`latency` picks by ``config``). A neuron
    whose word names another profile than the cached one (or any, first in a pass: the
    cache is emptied at ``start``, the host may have rewritten the table) is a miss on
    clock ``k + 2``: it does not enter the update and nothing is issued (its words were
    only read, so replaying it is safe); the pass waits until the neurons ahead of it
    have left every stage that reads the cache (``NeuronUpdate.settled``, and at least
    5 clocks, the drain of a neuron just ahead), reads the 6 rows of its profile into
    the register, one a clock, and issues the missed neuron again on the clock after
    the last row read. Every neuron behind a miss is :attr:`RELOAD` ``= 12`` clocks
    later than without it (the miss, 5 clocks of drain, 6 rows): a pass of ``count >
    0`` neurons whose profile changes ``k - 1`` times along ``0 .. count - 1`` (``k``
    loads, the first counted) raises ``done`` on clock ``count + SPRAM_LATENCY + k *
    RELOAD`` with ``spikes`` always ready. The missed neuron's words are read again
    (every write is still once per neuron: a pass of ``k`` loads reads ``count + k``
    neuron, accumulator and stimulus words); a stall can delay the drain by a clock,
    and a stall while the update pipeline has a gap behind a miss may cost no clock,
    so each stalled clock adds at most one.

    Backpressure: a spike that finds ``spikes`` not ready holds the update pipeline,
    and through its ``i.ready`` the read stages: while held, every read port's ``en``
    stays low (so its ``data`` holds the word read), no write is made and no neuron is
    issued; nothing is lost or repeated, and the pass resumes where it stood. A stall
    of ``s`` clocks makes the pass ``s`` clocks longer. Reset abandons a pass (the
    memories keep what was written).
    """

    #: Clocks a pass of ``n > 0`` neurons takes beyond ``n`` (``start`` edge to ``done``).
    LATENCY = NeuronUpdate.LATENCY + 5
    #: ``config.spram``: clocks a pass of ``n > 0`` neurons takes beyond ``n`` and its
    #: profile loads (no register between a block RAM and the update: issue, then the update).
    SPRAM_LATENCY = NeuronUpdate.LATENCY + 2
    #: Profile cache (``config.spram``): a miss reads its first row no sooner than this
    #: many clocks after the one following it (the neuron just ahead has then left the
    #: update's stages that read the cache), so that every load takes the same clocks.
    _DRAIN = NeuronUpdate.LATENCY - 2
    #: Profile cache (``config.spram``): clocks each profile load adds to a pass.
    RELOAD = 1 + (NeuronUpdate.LATENCY - 1) + PROFILE_ROWS

    @classmethod
    def latency(cls, config: CoreConfig) -> int:
        """Clocks a pass of ``n > 0`` neurons takes beyond ``n`` (and, with
        ``config.spram``, beyond its profile loads' ``RELOAD`` each) for ``config``."""
        return cls.SPRAM_LATENCY if config.spram else cls.LATENCY

    def __init__(self, config: CoreConfig):
        self.checked(config)
        layouts = core_layouts(config)
        # What rides through the update pipeline beside the state: the neuron's index,
        # whether it is the pass's last one, and the word's other fields, to be written
        # back as they were. (With the profile cache the results come out in neuron
        # order, 0 .. count - 1, so a counter at the end has the index instead.)
        kept = data.StructLayout({name: field.shape for name, field in layouts.neuron
                                  if name not in UPDATED_FIELDS})
        self._tag_layout = data.StructLayout({"kept": kept} if config.spram else {
            "index": unsigned(config.neuron_bits),
            "last": unsigned(1),
            "kept": kept,
        })
        bits = config.neuron_bits
        super().__init__(config, {
            "start": In(1),
            "count": In(count_bits(config.neurons)),
            "dendritic": In(1),
            "noise": In(1),
            "graded": In(1),
            "busy": Out(1),
            "done": Out(1),
            "neuron_rd": In(ReadPort.Signature(addr_width=bits, shape=layouts.neuron)),
            "neuron_wr": In(WritePort.Signature(addr_width=bits, shape=layouts.neuron)),
            "profile_rd": In(ReadPort.Signature(addr_width=addr_bits(config.profiles * PROFILE_ROWS),
                                                shape=unsigned(PROFILE_ROW_BITS)) if config.spram else
                             ReadPort.Signature(addr_width=config.profile_bits, shape=PROFILE_LAYOUT)),
            "acc_rd": In(ReadPort.Signature(addr_width=bits, shape=layouts.accumulator)),
            "acc_wr": In(WritePort.Signature(addr_width=bits, shape=layouts.accumulator)),
            "stim_rd": In(ReadPort.Signature(addr_width=bits, shape=layouts.stimulus)),
            "spikes": Out(stream.Signature(spike_layout(config))),
        })

    def elaborate(self, platform):
        if self._config.spram:
            return self._elaborate_cached()
        m = Module()
        config = self._config
        m.submodules.update = update = NeuronUpdate(
            input_width=config.acc_bits, stimulus_width=STIMULUS_BITS, tag_width=self._tag_layout.size)

        # --- issue: one neuron a clock, its word read ---------------------------------
        issuing = Signal()  # neurons are left to issue
        neuron = Signal(config.neuron_bits)  # the next one
        last = Signal.like(self.count)  # count - 1: the pass's last neuron
        flags = Signal(3)  # dendritic, noise, graded, held for the pass
        # Every block-RAM output goes straight into a register, before any logic (an
        # ECP5 DP16KD's clock-to-out is most of a 10 ns clock): stage 1, the word is in
        # neuron_rd.data; stage 2, it is in a register; stage 3, profile (addressed from
        # that register), accumulator and stimulus words are in their ports' data;
        # stage 4, they are in registers, and the neuron enters the update.
        s_valid = [None, Signal(name="s1_valid"), Signal(name="s2_valid"), Signal(name="s3_valid"),
                   Signal(name="s4_valid")]
        s_index = [None, *(Signal(config.neuron_bits, name=f"s{k}_index") for k in range(1, 5))]
        s_last = [None, *(Signal(name=f"s{k}_last") for k in range(1, 5))]
        s2_word = Signal.like(self.neuron_rd.data)
        s3_word = Signal.like(self.neuron_rd.data)
        s4_word = Signal.like(self.neuron_rd.data)
        s4_profile = Signal(PROFILE_LAYOUT)
        s4_acc = Signal.like(self.acc_rd.data)
        s4_stim = Signal.like(self.stim_rd.data)

        # Everything before the update pipeline moves together, when its last stage is
        # empty or handed over; otherwise every read port's data and register holds.
        advance = ~s_valid[4] | update.i.ready

        # The pass after this one may start on the clock of this one's done.
        idle = ~self.busy | self.done
        with m.If(self.done):
            m.d.sync += self.busy.eq(0)
        with m.If(self.start & idle):
            m.d.sync += self._begin(neuron, last, issuing, flags)

        issue = issuing
        m.d.comb += [
            self.neuron_rd.addr.eq(neuron),
            self.neuron_rd.en.eq(issue & advance),
        ]
        with m.If(advance):
            m.d.sync += [
                s_valid[1].eq(issue),
                s_index[1].eq(neuron),
                s_last[1].eq(neuron == last),
            ]
            with m.If(issue):
                m.d.sync += [
                    neuron.eq(neuron + 1),
                    issuing.eq(neuron != last),  # an equality, not a carry chain
                ]
            for k in range(2, 5):
                m.d.sync += [s_valid[k].eq(s_valid[k - 1]), s_index[k].eq(s_index[k - 1]),
                             s_last[k].eq(s_last[k - 1])]
            m.d.sync += [
                # stage 1 -> 2: the word, straight off its memory
                s2_word.eq(self.neuron_rd.data),
                s3_word.eq(s2_word),
                s4_word.eq(s3_word),
                # stage 3 -> 4: profile, accumulators and stimulus, straight off theirs
                s4_profile.eq(self.profile_rd.data),
                s4_acc.eq(self.acc_rd.data),
                s4_stim.eq(self.stim_rd.data),
            ]

        # --- stage 2: read what the word points to -------------------------------------
        m.d.comb += [
            self.acc_rd.addr.eq(s_index[2]),
            self.stim_rd.addr.eq(s_index[2]),
        ]
        for port in (self.acc_rd, self.stim_rd):
            m.d.comb += port.en.eq(s_valid[2] & advance)
        m.d.comb += [self.profile_rd.addr.eq(s2_word.profile),
                     self.profile_rd.en.eq(s_valid[2] & advance)]

        # --- stage 4: into the update pipeline; the accumulators are cleared ----------
        word = s4_word
        profile = s4_profile
        payload = update.i.payload
        tag = data.View(self._tag_layout, payload.tag)
        m.d.comb += [
            update.i.valid.eq(s_valid[4]),
            *self._feed(update, word, flags, s4_acc, s4_stim),
            payload.threshold.eq(profile.threshold),
            payload.leak.eq(profile.leak),
            payload.resting.eq(profile.resting),
            payload.refrac.eq(profile.refrac),
            payload.dend_threshold.eq(profile.dend_threshold),
            tag.index.eq(s_index[4]),
            tag.last.eq(s_last[4]),
            self.acc_wr.addr.eq(s_index[4]),
            self.acc_wr.data.eq(0),
            self.acc_wr.en.eq(s_valid[4] & update.i.ready),
        ]

        self._write_back(m, update, idle)
        return m

    def _elaborate_cached(self):
        """``config.spram``: the profile cache, and no register between a block RAM and
        the update (see the class docstring)."""
        m = Module()
        config = self._config
        m.submodules.update = update = NeuronUpdate(
            input_width=config.acc_bits, stimulus_width=STIMULUS_BITS, tag_width=self._tag_layout.size,
            shared_params=True)

        issuing = Signal()  # neurons are left to issue
        neuron = Signal(config.neuron_bits)  # the next one
        last = Signal.like(self.count)  # count - 1: the pass's last neuron
        flags = Signal(3)  # dendritic, noise, graded, held for the pass
        # Stage 1 is the issue: the neuron's word, accumulator word and stimulus are read
        # together (all addressed by the neuron's index; the profile is the cache's).
        # Stage 2: they are on the ports' data, and the neuron enters the update from there.
        s2_valid = Signal()
        s2_index = Signal(config.neuron_bits)
        word = self.neuron_rd.data

        # The profile cache: one profile in a register, the update's shared parameters.
        cache = Signal(PROFILE_LAYOUT)
        cache_index = Signal(config.profile_bits)
        cache_valid = Signal()
        miss = Signal()  # stage 2's neuron needs another profile than the cached one
        m.d.comb += miss.eq(s2_valid & ~(cache_valid & (word.profile == cache_index)))
        # A reload: wait until the neurons ahead of the miss have left every stage that
        # reads the cache (``_DRAIN`` clocks after the miss at most, without stalls, and
        # the update pipeline ``settled``), read the 6 rows into it, one a clock, then
        # issue the missed neuron again.
        wait = Signal(range(self._DRAIN + 1))
        row = Signal(range(PROFILE_ROWS + 1), init=PROFILE_ROWS)  # the next row to read; 6: none
        row_addr = Signal.like(self.profile_rd.addr)
        got = Signal()  # a row read last clock is on profile_rd.data
        got_row = Signal(range(PROFILE_ROWS))
        reading = (row != PROFILE_ROWS) & (wait == 0) & update.settled
        m.d.comb += [self.profile_rd.addr.eq(row_addr), self.profile_rd.en.eq(reading)]
        with m.If(wait != 0):
            m.d.sync += wait.eq(wait - 1)
        with m.If(reading):
            m.d.sync += [row.eq(row + 1), row_addr.eq(row_addr + 1)]
        m.d.sync += [got.eq(reading), got_row.eq(row)]
        with m.If(got):
            with m.Switch(got_row):
                for r in range(PROFILE_ROWS):
                    with m.Case(r):
                        bits = cache.as_value()[r * PROFILE_ROW_BITS:(r + 1) * PROFILE_ROW_BITS]
                        m.d.sync += bits.eq(self.profile_rd.data)

        # Stage 2 moves on when it is empty, its neuron enters the update, or it missed.
        advance = ~s2_valid | miss | update.i.ready
        issue = issuing & ~miss & (row == PROFILE_ROWS)
        idle = ~self.busy | self.done
        with m.If(self.done):
            m.d.sync += self.busy.eq(0)
        with m.If(miss):
            m.d.sync += [
                cache_index.eq(word.profile), cache_valid.eq(1),
                wait.eq(self._DRAIN), row.eq(0), row_addr.eq(word.profile * PROFILE_ROWS),
                neuron.eq(s2_index), issuing.eq(1),
            ]
        with m.If(self.start & idle):  # last: over the reload's own updates
            m.d.sync += [
                *self._begin(neuron, last, issuing, flags),
                # the host may have rewritten the table between passes
                cache_valid.eq(0), wait.eq(0), row.eq(PROFILE_ROWS),
            ]
        for port in (self.neuron_rd, self.acc_rd, self.stim_rd):
            m.d.comb += [port.addr.eq(neuron), port.en.eq(issue & advance)]
        with m.If(advance):
            m.d.sync += [s2_valid.eq(issue), s2_index.eq(neuron)]
            with m.If(issue):
                m.d.sync += [
                    neuron.eq(neuron + 1),
                    issuing.eq(neuron != last),  # an equality, not a carry chain
                ]

        # --- stage 2: into the update pipeline; the accumulators are cleared ------------
        acc = self.acc_rd.data
        m.d.comb += [
            update.i.valid.eq(s2_valid & ~miss),
            *self._feed(update, word, flags, acc, self.stim_rd.data),
            self.acc_wr.addr.eq(s2_index),
            self.acc_wr.data.eq(0),
            self.acc_wr.en.eq(s2_valid & ~miss & update.i.ready),
        ]
        for name, _field in PARAMS_LAYOUT:
            m.d.comb += update.params[name].eq(cache[name])

        # Results come out in neuron order (a missed neuron never entered the update).
        written = Signal(config.neuron_bits)  # the neuron whose result is next
        with m.If(update.o.valid & update.o.ready):
            m.d.sync += written.eq(written + 1)
        with m.If(self.start & idle):  # last: over the count's own update
            m.d.sync += written.eq(0)
        self._write_back(m, update, idle, written, written == last)
        return m

    def _feed(self, update: NeuronUpdate, word, flags, acc, stim) -> list:
        """A neuron into the update (both modes): the job's flags, the neuron word's state,
        its accumulator sums and stimulus, and the word's kept fields in the tag (written
        back unchanged)."""
        payload = update.i.payload
        tag = data.View(self._tag_layout, payload.tag)
        return [
            payload.dendritic.eq(flags[0]),
            payload.noise.eq(flags[1]),
            payload.graded.eq(flags[2]),
            payload.v.eq(word.v),
            payload.r.eq(word.r),
            payload.lfsr.eq(word.lfsr),
            # Compartments beyond the core's are 0: they add nothing, and a zero gated
            # compartment adds 0 whatever the gate decides.
            [payload.a[c].eq(acc[c]) for c in range(self._config.compartments)],
            payload.s.eq(stim),
            [tag.kept[name].eq(word[name]) for name, _field in self._tag_layout["kept"].shape],
        ]

    def _begin(self, neuron, last, issuing, flags) -> list:
        """A pass's start (both modes): busy, issuing from neuron 0 to ``count - 1`` (none if
        ``count`` is 0), the run's feature flags latched for the whole pass."""
        return [
            self.busy.eq(1),
            neuron.eq(0),
            last.eq(self.count - 1),
            issuing.eq(self.count != 0),
            flags.eq(Cat(self.dendritic, self.noise, self.graded)),
        ]

    def _write_back(self, m: Module, update: NeuronUpdate, idle, index=None, is_last=None) -> None:
        """The pass's tail in either mode: words written back and spikes offered as the
        update pipeline's results come out, and ``done``. The result's neuron and whether
        it is the pass's last are its tag's, or ``index`` and ``is_last`` when given."""
        # --- write back and spike list: as results come out -----------------------------
        result = update.o.payload
        result_tag = data.View(self._tag_layout, result.tag)
        if index is None:
            index, is_last = result_tag.index, result_tag.last
        # A spike waits for room in the spike list; everything else is written at once.
        m.d.comb += update.o.ready.eq(~result.spike | self.spikes.ready)
        accepted = update.o.valid & update.o.ready
        m.d.comb += [
            self.neuron_wr.addr.eq(index),
            self.neuron_wr.data.v.eq(result.v),
            self.neuron_wr.data.r.eq(result.r),
            self.neuron_wr.data.lfsr.eq(result.lfsr),
            self.neuron_wr.en.eq(accepted),
            self.spikes.valid.eq(update.o.valid & result.spike),
            self.spikes.payload.neuron.eq(index),
            self.spikes.payload.payload.eq(result.payload),
        ]
        for name, _field in self._tag_layout["kept"].shape:
            m.d.comb += self.neuron_wr.data[name].eq(result_tag.kept[name])

        # done: after the last write, or at once for an empty pass.
        m.d.sync += self.done.eq((accepted & is_last) | (self.start & idle & (self.count == 0)))
