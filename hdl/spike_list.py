"""The spike list of one step: written by the neuron pass, read by the fan-out and the host.

On the iCE40 core (:class:`~neurofab.hdl.spram_core.SpramCore`) a step's spikes go to two
readers: the fan-out, which turns each into its events, and the host, which reports them.
Core v2 keeps two FIFOs as deep as the core has neurons for that (3 EBR each at 512
neurons); :class:`SpikeList` keeps the step's spikes once, in one block RAM of
``neurons`` entries, and gives each reader its own read pointer into it, so that at 512
neurons it takes 2 EBR (256 x 16 mode) instead of 6.

An entry is the spike's ``neuron`` and its graded payload stored as ``g - 128`` in
:data:`PAYLOAD_STORED_BITS` bits: a graded payload is ``128 .. 255`` (``NeuronUpdate``),
and without the ``graded`` flag it is 0, which the reader restores from the flag instead
of storing it. So an entry is ``neuron_bits + 7`` bits (16 at 512 neurons).
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, stream
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .block import CoreBlock
from .config import CoreConfig, count_bits
from .neuron import PAYLOAD_BITS
from .neuron_pass import spike_layout
from .spram import NO_RW_CHECK

__all__ = ["PAYLOAD_STORED_BITS", "OUT_DEPTH", "entry_layout", "SpikeList"]

#: Bits of a stored payload: a graded payload ``g`` is ``128 .. 255``, stored as ``g - 128``
PAYLOAD_STORED_BITS = PAYLOAD_BITS - 1

#: Entries of each reader's output buffer (its head is the stream's payload): a reader
#: reads ahead while its buffer has room for every word in flight, counted from registers
#: only (a reader's ``ready`` never reaches the memory's address), and three entries keep
#: one spike a clock to a reader that is always ready.
OUT_DEPTH = 3


def entry_layout(config: CoreConfig) -> data.StructLayout:
    """One stored spike: ``neuron`` and ``stored`` (the graded payload less 128, else 0)."""
    return data.StructLayout({"neuron": unsigned(config.neuron_bits),
                              "stored": unsigned(PAYLOAD_STORED_BITS)})


class SpikeList(CoreBlock):
    """A step's spikes in one block RAM, read in order by two readers: fan-out first, host second.

    Parameters
    ----------
    config : CoreConfig
        ``neurons`` (the list's depth: a step has at most one spike a neuron) and
        ``neuron_bits``.

    Members
    -------
    clear : ``In(1)``
        Pulse before a step: the list is empty from the next clock (both readers' places
        and every spike not yet handed over are dropped). The memory is not written.
    graded : ``In(1)``
        The job's flag, held while spikes are read: an entry's payload is ``128 +
        stored`` with it, 0 without.
    spikes : ``In(stream.Signature(spike_layout(config)))``
        The pass's spikes, in order, at most ``neurons`` between two ``clear`` pulses.
        ``ready`` is always 1: a spike is written in the clock it is ``valid`` (so the
        pass never stalls). ``payload`` must be 0 or ``128 .. 255``.
    fanout, host : ``Out(stream.Signature(spike_layout(config)))``
        Every spike written since the last ``clear``, in order, on each stream (each
        spike once on each). ``valid`` and ``payload`` come from registers; neither
        reader's ``ready`` reaches the memory, nor the other reader.
    busy : ``Out(1)``
        A spike written is not yet handed over on both streams. Low with ``spikes.valid``
        low: both readers have every spike so far.
    written : ``Out(count_bits(neurons))``
        Spikes written since the last ``clear``.

    Timing: the memory has one read port, shared by the readers one read a clock; the
    fan-out reads whenever it has a spike to read and room for it in its buffer, the host
    in every other clock. A spike written in clock ``c`` is read from clock ``c + 1`` and
    offered from clock ``c + 3`` at the earliest. A reader with ``ready`` always high
    and nothing ahead of it in the port receives one spike a clock; the host's reads wait
    one clock for each read of the fan-out's. Neither reader ever waits for the other's
    ``ready``. Overflow: none (at most ``neurons`` spikes a step; more between two
    ``clear`` pulses is a wrong use, and the extra ones overwrite the first). Reset
    empties the list.
    """

    def __init__(self, config: CoreConfig):
        self.checked(config)
        layout = spike_layout(config)
        super().__init__(config, {
            "clear": In(1),
            "graded": In(1),
            "spikes": In(stream.Signature(layout)),
            "fanout": Out(stream.Signature(layout)),
            "host": Out(stream.Signature(layout)),
            "busy": Out(1),
            "written": Out(count_bits(config.neurons)),
        })

    def elaborate(self, platform):
        m = Module()
        config = self._config
        entry = entry_layout(config)
        # a read never meets the write of its word (entries below ``written`` are read, the
        # one at ``written`` is written): no logic for a collision (NO_RW_CHECK)
        memory = Memory(shape=entry, depth=config.neurons, init=[], attrs=NO_RW_CHECK)
        m.submodules.memory = memory
        rd, wr = memory.read_port(), memory.write_port()

        # --- the writer: one spike a clock, never stalled --------------------------------
        written = Signal(count_bits(config.neurons))
        m.d.comb += [
            self.spikes.ready.eq(1),
            self.written.eq(written),
            wr.addr.eq(written),
            wr.data.neuron.eq(self.spikes.payload.neuron),
            # g - 128 is g's low 7 bits for 128 <= g <= 255; 0 (not graded) stores 0
            wr.data.stored.eq(self.spikes.payload.payload[:PAYLOAD_STORED_BITS]),
            wr.en.eq(self.spikes.valid),
        ]
        with m.If(self.spikes.valid):
            m.d.sync += written.eq(written + 1)

        # --- the readers: a place in the list, a read in flight, an output buffer -------
        readers = []
        for name in ("fanout", "host"):
            place = Signal(count_bits(config.neurons), name=f"{name}_place")  # next entry to read
            in_flight = Signal(name=f"{name}_in_flight")  # read last clock: on rd.data now
            count = Signal(range(OUT_DEPTH + 1), name=f"{name}_count")
            entries = [Signal(entry, name=f"{name}_entry{i}") for i in range(OUT_DEPTH)]
            # room for one more read beside the one in flight, from registers only
            room = Mux(in_flight, count < OUT_DEPTH - 1, count < OUT_DEPTH)
            wants = Signal(name=f"{name}_wants")
            m.d.comb += wants.eq((place != written) & room)
            readers.append((getattr(self, name), place, in_flight, count, entries, wants))

        fanout_reads = readers[0][5]
        host_reads = Signal()
        m.d.comb += host_reads.eq(readers[1][5] & ~fanout_reads)  # the fan-out's reads go first
        reading = Signal()
        m.d.comb += [
            reading.eq(fanout_reads | host_reads),
            rd.addr.eq(Mux(fanout_reads, readers[0][1], readers[1][1])),
            rd.en.eq(reading),
        ]

        busy = Const(0)
        for (port, place, in_flight, count, entries, _), issued in zip(readers, (fanout_reads, host_reads),
                                                                       strict=True):
            take = port.valid & port.ready
            head = entries[0]
            m.d.comb += [
                port.valid.eq(count != 0),
                port.payload.neuron.eq(head.neuron),
                port.payload.payload.eq(Mux(self.graded, Cat(head.stored, Const(1, 1)), 0)),
            ]
            m.d.sync += in_flight.eq(issued)
            with m.If(issued):
                m.d.sync += place.eq(place + 1)
            with m.If(take):
                m.d.sync += [entries[i].eq(entries[i + 1]) for i in range(OUT_DEPTH - 1)]
            for i in range(OUT_DEPTH):
                with m.If(in_flight & (count == i + take)):
                    m.d.sync += entries[i].eq(rd.data)
            m.d.sync += count.eq(count + in_flight - take)
            busy = busy | (place != written) | in_flight | (count != 0)
            with m.If(self.clear):
                m.d.sync += [place.eq(0), in_flight.eq(0), count.eq(0)]
        m.d.comb += self.busy.eq(busy)
        with m.If(self.clear):
            m.d.sync += written.eq(0)
        return m
