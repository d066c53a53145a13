"""The neuron pass: phase 2 of a core's timestep, every neuron through the update pipeline.

docs/memory-map.md, "One core": "For every local neuron in order: read its neuron word,
its profile (by the word's profile index) and its accumulators (then clear them), add
the stimulus, update v, r, lfsr exactly as docs/model.md says, write the word back. A
neuron that spikes is remembered in a spike list, with its graded payload."

:class:`NeuronPass` does exactly that over memories it reaches through memory-port
interfaces (the core's top level owns the memories and connects their ports), and
feeds :class:`~neurofab.hdl.neuron.NeuronUpdate`. The stimulus sum ``S`` of each neuron
comes from a per-neuron stimulus memory, which the host keeps current (a proposal the
memory map does not have yet; see docs/hardware.md).
"""

from amaranth.hdl import Cat, Module, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import ReadPort, WritePort
from amaranth.lib.wiring import In, Out

from neurofab.errors import ValidationError

from .config import CoreConfig, addr_bits, count_bits
from .layouts import PROFILE_LAYOUT, core_layouts
from .neuron import NeuronUpdate

__all__ = ["UPDATED_FIELDS", "spike_layout", "NeuronPass"]

#: The neuron word's fields the pass rewrites; every other field is written back unchanged.
UPDATED_FIELDS = ("v", "r", "lfsr")


def spike_layout(config: CoreConfig) -> data.StructLayout:
    """One entry of the spike list: the local ``neuron`` and its graded ``payload`` (0 if not graded)."""
    return data.StructLayout({"neuron": unsigned(config.neuron_bits), "payload": unsigned(8)})


class NeuronPass(wiring.Component):
    """Steps every neuron ``0 .. count - 1`` of a core through one timestep's update.

    Parameters
    ----------
    config : CoreConfig
        The core's shape: ``neurons``, ``compartments``, ``profiles``, ``acc_bits`` and
        the neuron word layout (``layouts.core_layouts(config).neuron``).
    stimulus_width : int
        Width of a neuron's stimulus sum (signed), 24 .. 64.

    Members
    -------
    start : ``In(1)``
        Pulse while idle: begin a pass. ``count`` and the flags are sampled then and
        must hold until ``done``.
    count : ``In(count_bits(neurons))``
        Neurons to update, 0 .. ``neurons``; a pass with 0 finishes at once.
    dendritic, noise, graded : ``In(1)``
        The job's flags.
    busy : ``Out(1)``
        High from the clock after ``start`` until ``done``.
    done : ``Out(1)``
        One-clock pulse when every neuron's word has been written back (and every spike
        handed over).
    neuron_rd, neuron_wr : read and write port of the neuron memory (``In(ReadPort.Signature)``,
        ``In(WritePort.Signature)``: this block drives ``addr``, ``en``, and ``data`` of
        the write port). Word ``n`` is read once, and written once with new ``v``, ``r``,
        ``lfsr`` and every other field as read.
    profile_rd : read port of the profile table (``PROFILE_LAYOUT``).
    acc_rd, acc_wr : read and write port of the accumulators, ``acc[n * compartments + c]``,
        signed ``acc_bits``. Each is read once and then written 0.
    stim_rd : read port of the stimulus memory, one signed ``stimulus_width`` sum per neuron.
    spikes : ``Out(stream.Signature(spike_layout(config)))``
        ``(neuron, payload)`` of every neuron that spiked, in neuron order.

    Timing: a neuron takes ``3 + compartments`` clocks (word and stimulus, then profile,
    then one clock per accumulator, then the hand-over), and the update pipeline works
    on it while the next neuron is read; with ``spikes`` ready, a pass of ``n > 0``
    neurons takes exactly ``(3 + compartments) * n + NeuronUpdate.LATENCY + 1`` clocks
    from the ``start`` edge to ``done`` (2 for ``n = 0``). This is a first, plain
    sequencer: overlapping one neuron's accumulator reads with the next one's word read
    would bring it near ``compartments`` clocks a neuron.
    Read ports are enabled only in the clock that issues their read, so their data
    holds until it is used. When ``spikes`` stalls, the pipeline holds and the pass
    waits; nothing is lost. Reset abandons a pass (memories keep what was written).
    """

    def __init__(self, config: CoreConfig, *, stimulus_width: int = 32):
        if not isinstance(config, CoreConfig):
            raise ValidationError("NeuronPass.config", f"must be a CoreConfig, not {config!r}")
        if isinstance(stimulus_width, bool) or not isinstance(stimulus_width, int) \
                or not 24 <= stimulus_width <= 64:
            raise ValidationError("NeuronPass.stimulus_width",
                                  f"must be an integer in 24 .. 64, not {stimulus_width!r}")
        self._config = config
        self._stimulus_width = stimulus_width
        layouts = core_layouts(config)
        self._neuron_layout = layouts.neuron
        # What rides through the update pipeline beside the state: the neuron's index and
        # the word's other fields, to be written back as they were.
        self._tag_layout = data.StructLayout({
            "index": unsigned(config.neuron_bits),
            "kept": data.StructLayout({name: field.shape for name, field in layouts.neuron
                                       if name not in UPDATED_FIELDS}),
        })
        acc_addr = addr_bits(config.neurons * config.compartments)
        super().__init__({
            "start": In(1),
            "count": In(count_bits(config.neurons)),
            "dendritic": In(1),
            "noise": In(1),
            "graded": In(1),
            "busy": Out(1),
            "done": Out(1),
            "neuron_rd": In(ReadPort.Signature(addr_width=config.neuron_bits, shape=layouts.neuron)),
            "neuron_wr": In(WritePort.Signature(addr_width=config.neuron_bits, shape=layouts.neuron)),
            "profile_rd": In(ReadPort.Signature(addr_width=config.profile_bits, shape=PROFILE_LAYOUT)),
            "acc_rd": In(ReadPort.Signature(addr_width=acc_addr, shape=signed(config.acc_bits))),
            "acc_wr": In(WritePort.Signature(addr_width=acc_addr, shape=signed(config.acc_bits))),
            "stim_rd": In(ReadPort.Signature(addr_width=config.neuron_bits, shape=signed(stimulus_width))),
            "spikes": Out(stream.Signature(spike_layout(config))),
        })

    @property
    def config(self) -> CoreConfig:
        return self._config

    def elaborate(self, platform):
        m = Module()
        config = self._config
        compartments = config.compartments
        m.submodules.update = update = NeuronUpdate(
            input_width=config.acc_bits, stimulus_width=self._stimulus_width, tag_width=self._tag_layout.size)

        # --- fetch: one neuron at a time, reads in order -------------------------------
        neuron = Signal(config.neuron_bits + 1)  # index of the neuron being fetched
        count = Signal.like(self.count)
        flags = Signal(3)  # dendritic, noise, graded, held for the pass
        compartment = Signal(range(compartments + 1))
        sums = Signal(data.ArrayLayout(signed(config.acc_bits), 4))
        acc_base = Signal.like(self.acc_rd.addr)
        written = Signal.like(self.count)

        for port in (self.neuron_rd, self.profile_rd, self.acc_rd, self.stim_rd):
            m.d.comb += port.en.eq(0)
        m.d.comb += [
            self.neuron_rd.addr.eq(neuron),
            self.stim_rd.addr.eq(neuron),
            self.profile_rd.addr.eq(self.neuron_rd.data.profile),
            self.acc_rd.addr.eq(acc_base + compartment),
        ]

        word = self.neuron_rd.data
        profile = self.profile_rd.data
        payload = update.i.payload
        tag = data.View(self._tag_layout, payload.tag)
        m.d.comb += [
            payload.dendritic.eq(flags[0]),
            payload.noise.eq(flags[1]),
            payload.graded.eq(flags[2]),
            payload.v.eq(word.v),
            payload.r.eq(word.r),
            payload.lfsr.eq(word.lfsr),
            payload.threshold.eq(profile.threshold),
            payload.leak.eq(profile.leak),
            payload.resting.eq(profile.resting),
            payload.refrac.eq(profile.refrac),
            payload.dend_threshold.eq(profile.dend_threshold),
            payload.a.eq(sums),
            payload.s.eq(self.stim_rd.data),
            tag.index.eq(neuron),
        ]
        for name, _field in self._tag_layout["kept"].shape:
            m.d.comb += tag.kept[name].eq(word[name])

        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [
                        neuron.eq(0),
                        written.eq(0),
                        count.eq(self.count),
                        flags.eq(Cat(self.dendritic, self.noise, self.graded)),
                    ]
                    m.next = "NEXT"
            with m.State("NEXT"):
                m.d.comb += self.busy.eq(1)
                with m.If(neuron == count):
                    m.next = "DRAIN"
                with m.Else():
                    # Read the word and the stimulus; the accumulators follow the profile.
                    m.d.comb += [self.neuron_rd.en.eq(1), self.stim_rd.en.eq(1)]
                    m.d.sync += [
                        acc_base.eq(neuron * compartments),
                        compartment.eq(0),
                        sums.eq(0),
                    ]
                    m.next = "PROFILE"
            with m.State("PROFILE"):
                m.d.comb += [self.busy.eq(1), self.profile_rd.en.eq(1), self.acc_rd.en.eq(1)]
                m.next = "ACCUMULATORS"
            with m.State("ACCUMULATORS"):
                # Each clock: take the sum read last clock, clear it, read the next one.
                m.d.comb += [
                    self.busy.eq(1),
                    self.acc_wr.addr.eq(acc_base + compartment),
                    self.acc_wr.data.eq(0),
                    self.acc_wr.en.eq(1),
                ]
                with m.Switch(compartment):
                    for c in range(compartments):
                        with m.Case(c):
                            m.d.sync += sums[c].eq(self.acc_rd.data)
                m.d.sync += compartment.eq(compartment + 1)
                with m.If(compartment + 1 == compartments):
                    m.next = "OFFER"
                with m.Else():
                    m.d.comb += [self.acc_rd.en.eq(1), self.acc_rd.addr.eq(acc_base + compartment + 1)]
            with m.State("OFFER"):
                m.d.comb += [self.busy.eq(1), update.i.valid.eq(1)]
                with m.If(update.i.ready):
                    m.d.sync += neuron.eq(neuron + 1)
                    m.next = "NEXT"
            with m.State("DRAIN"):
                m.d.comb += self.busy.eq(1)
                with m.If(written == count):
                    m.d.comb += self.done.eq(1)
                    m.next = "IDLE"

        # --- write back and spike list: as results come out -----------------------------
        result = update.o.payload
        result_tag = data.View(self._tag_layout, result.tag)
        # A spike waits for room in the spike list; everything else is written at once.
        m.d.comb += update.o.ready.eq(~result.spike | self.spikes.ready)
        accepted = update.o.valid & update.o.ready
        m.d.comb += [
            self.neuron_wr.addr.eq(result_tag.index),
            self.neuron_wr.data.v.eq(result.v),
            self.neuron_wr.data.r.eq(result.r),
            self.neuron_wr.data.lfsr.eq(result.lfsr),
            self.neuron_wr.en.eq(accepted),
            self.spikes.valid.eq(update.o.valid & result.spike),
            self.spikes.payload.neuron.eq(result_tag.index),
            self.spikes.payload.payload.eq(result.payload),
        ]
        for name, _field in self._tag_layout["kept"].shape:
            m.d.comb += self.neuron_wr.data[name].eq(result_tag.kept[name])
        with m.If(accepted):
            m.d.sync += written.eq(written + 1)
        return m
