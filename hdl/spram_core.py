"""The iCE40 core: one accumulator bank, synapses and the event pool in SPRAM.

:class:`SpramCore` is :class:`~neurofab.hdl.core.Core` for the iCE40UP5K
(docs/ice40-plan.md): a :class:`~neurofab.hdl.config.CoreConfig` with ``spram`` True and
``accumulator_banks == 1``. It offers exactly Core's ports and host-facing contract, but
for what the host port's memory numbers address (the physical memories, below) and a read
in the clock of a write (undefined here). Inside, block RAM holds one accumulator bank, so
a step ``t`` runs in two phases instead of everything at once:

1. **Drain.** :class:`~neurofab.hdl.chunk_queue.ChunkedEventQueue` drains arrival slot
   ``t mod delay_slots`` (the events arriving at ``t``) into the bank through
   :class:`~neurofab.hdl.accumulate.Accumulate`, one event a clock.
2. **Pass and fan-out.** When the drain is done, :class:`~neurofab.hdl.neuron_pass.NeuronPass`
   updates neurons ``0 .. count - 1``, one a clock, reading and zeroing the bank; its
   spikes go into :class:`~neurofab.hdl.spike_list.SpikeList`, read by the host and by
   :class:`~neurofab.hdl.fanout.FanOut`, which pushes **every** event into the queue,
   delay 0 included (slot ``t + 1``, drained at the start of step ``t + 1``).

The step ends when every block is idle and the host has taken every spike.

Size (icebreaker shape, ``synth_ice40 -dsp``, the ``NO_RW_CHECK`` step of
:func:`~neurofab.hdl.synthesis.synthesize`): 3,100 LUT4, 2,264 flip-flops, 704 carries,
30 of 30 EBR, 4 of 4 SPRAM, 1 DSP. Placed and routed in ``SerialHarness`` on the UP5K
(``bench/hdl.py --preset icebreaker``: ``place_and_route_ice40``, sg48, seed 1, 30 MHz
asked): 4,975 of 5,280 logic cells (the harness's shift registers included), 32.0 MHz;
the critical path is Accumulate's add (its event register through the forwarded-sum
multiplexer, the 20-bit adder and the word's element multiplexer) through the bank's
write multiplexer into the bank's ``WDATA``, 31.2 ns.

Memories. Block RAM (EBR): the accumulator bank, the neuron words, the stimulus sums, the
profile table, the spike list and the queue's links, free list and arrival table. SPRAM:
the synapse words (:func:`~neurofab.hdl.layouts.spram_synapse_layout`, one 32-bit
:class:`~neurofab.hdl.spram.SinglePortRAM`), and the queue's 32-bit pool, whose rows above
the events hold the axon entries and the packed compartment rows
(:func:`~neurofab.hdl.layouts.spram_regions`). That pool has one port: the queue's aux
port reaches those rows, for the fan-out while a step runs and for the host while idle.

The host port reaches the **physical** memories (the host packs an image's logical words
into them with :func:`~neurofab.hdl.layouts.spram_image`): ``host_memory`` is a
``layouts.Memory`` number as for Core, with these meanings:

=================== ================================ ========================================
``host_memory``     word ``host_addr``               width
=================== ================================ ========================================
``PROFILE``         row ``6 p + r`` of profile ``p``  ``neuron_pass.PROFILE_ROW_BITS`` (bits
                    (``profile_rows``)               ``16 r ..`` of its ``PROFILE_LAYOUT``)
``NEURON``          neuron ``n``'s word              ``layouts.neuron``
``AXON``            axon ``a``'s row (pool SPRAM     32 (``layouts.axon`` in the low bits)
                    row ``axon_base + a``)
``SYNAPSE``         synapse SPRAM row ``k``          32 (``spram_synapse_layout``)
``COMPARTMENT``     compartment row ``r`` (pool      32 (``layouts.COMPARTMENT_ROW_LAYOUT``)
                    SPRAM row ``compartment_base +
                    r``)
``STIMULUS``        neuron ``n``'s stimulus sum      ``layouts.STIMULUS_BITS``
``ACCUMULATOR``     neuron ``n``'s accumulator word  ``layouts.accumulator`` (one bank only)
=================== ================================ ========================================
"""

from amaranth.hdl import Cat, Module, Mux, Shape, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.memory import Memory as RAM

from neurofab.errors import ValidationError

from .accumulate import Accumulate
from .block import CoreBlock
from .chunk_queue import AUX_ADDR_BITS, ChunkedEventQueue
from .config import CoreConfig, addr_bits
from .core import core_members, pass_and_status, step_horizon
from .fanout import FanOut
from .layouts import (
    CHUNK_EVENTS,
    SPRAM_ROW_BITS,
    Memory,
    core_layouts,
    spram_regions,
    spram_synapse_layout,
)
from .neuron_pass import PROFILE_ROW_BITS, PROFILE_ROWS, NeuronPass
from .spike_list import SpikeList
from .spram import NO_RW_CHECK, SinglePortRAM

__all__ = ["SYNAPSE_READ_LATENCY", "HOST_READ_LATENCY", "HOST_MEMORIES", "NO_RW_CHECK", "profile_rows",
           "host_depth", "host_word_bits", "host_addr_bits", "SpramCore"]

#: Clocks from the fan-out's synapse read to its word: the SPRAM's read
SYNAPSE_READ_LATENCY = 1

#: clocks from a host read's address to its word on ``host_rdata`` (Core's is longer, with
#: registered multiplexer stages for the ECP5's timing; the iCE40's critical path is not there)
HOST_READ_LATENCY = 2

#: The memories the host port reaches, in ``layouts.Memory`` numbers
HOST_MEMORIES = (Memory.PROFILE, Memory.NEURON, Memory.AXON, Memory.SYNAPSE, Memory.COMPARTMENT,
                 Memory.STIMULUS, Memory.ACCUMULATOR)


# Here no block reads a word in the clock it is written (the pass reads a neuron's words
# clocks before it writes them back; Accumulate forwards its own last two writes over the
# word it read), and the host reads and writes one at a time: every block RAM is
# NO_RW_CHECK (re-exported here for the callers that import it from this module).


def profile_rows(config: CoreConfig) -> int:
    """Words of the profile table a profile takes: ``neuron_pass.PROFILE_ROWS`` rows of
    ``PROFILE_ROW_BITS``, low bits first (the pass's profile cache, ``config.spram``)."""
    SpramCore.checked(config)
    return PROFILE_ROWS


def _widths(config: CoreConfig) -> dict:
    layouts = core_layouts(config)
    return {
        Memory.PROFILE: PROFILE_ROW_BITS,
        Memory.NEURON: layouts.neuron.size,
        Memory.AXON: SPRAM_ROW_BITS,
        Memory.SYNAPSE: SPRAM_ROW_BITS,
        Memory.COMPARTMENT: SPRAM_ROW_BITS,
        Memory.STIMULUS: Shape.cast(layouts.stimulus).width,
        Memory.ACCUMULATOR: layouts.accumulator.size,
    }


def host_depth(config: CoreConfig, memory: Memory) -> int:
    """Words of ``memory`` (one of :data:`HOST_MEMORIES`) as the host port addresses them."""
    regions = spram_regions(config)
    return {
        Memory.PROFILE: config.profiles * profile_rows(config),
        Memory.NEURON: config.neurons,
        Memory.AXON: config.axons,
        Memory.SYNAPSE: config.synapse_words,
        Memory.COMPARTMENT: regions.compartment_rows,
        Memory.STIMULUS: config.neurons,
        Memory.ACCUMULATOR: config.neurons,
    }[memory]


def host_word_bits(config: CoreConfig) -> int:
    """Width of the host port's data: the widest word of any memory it reaches."""
    return max(_widths(config).values())


def host_addr_bits(config: CoreConfig) -> int:
    """Width of the host port's address: the deepest memory's."""
    return max(addr_bits(host_depth(config, m)) for m in HOST_MEMORIES)


class SpramCore(CoreBlock):
    """The iCE40 core: Core's contract over one accumulator bank and SPRAM (module doc).

    Parameters
    ----------
    config : CoreConfig
        ``spram`` True, ``accumulator_banks`` 1, ``max_cores`` 1, and a shape whose SPRAM
        rows fit (:func:`~neurofab.hdl.layouts.spram_regions`).
    primitive : bool or None
        The SPRAMs' form (:class:`~neurofab.hdl.spram.SinglePortRAM`): ``None`` (default)
        ``SB_SPRAM256KA`` tiles on an iCE40UP platform and ``lib.memory`` elsewhere,
        ``True`` tiles always (``synth_ice40`` without a platform).

    Members
    -------
    clear : ``In(1)``
        Pulse while idle: before a job, empty the event queue, clear its errors, zero the
        accumulator bank, empty the spike list and set ``t`` to 0 (the other memories
        keep their contents). ``done`` comes ``neurons`` clocks after the pulse.
    step : ``In(1)``
        Pulse while idle: run timestep ``t``, then ``t += 1``.
    count : ``In(count_bits(neurons))``
        Local neurons (the pass updates ``0 .. count - 1``).
    timesteps : ``In(STEP_BITS)``
        ``T``: an event arriving at ``t >= T`` is not made.
    dendritic, noise, graded : ``In(1)``
        The job's flags. Inputs are sampled at ``step`` and must hold until ``done``.
    busy : ``Out(1)``
        A clear or a step runs (the host port is ignored then).
    done : ``Out(1)``
        One-clock pulse at the end of a clear or a step.
    t : ``Out(STEP_BITS)``
        Steps run since the last clear.
    cycles : ``Out(CYCLE_BITS)``
        Clocks of the last step, from the ``step`` edge to ``done`` inclusive, from the
        clock after ``done`` until the next ``step`` (it is the step's own counter, so
        it counts up while a step runs; a clear leaves it).
    events_held : ``Out(count_bits(event_queue))``
        Events in flight (the queue's ``held``): after step ``s`` the events with arrival
        ``> s``, delay-0 ones included (``CoreConfig``'s rule for one bank).
    queue_overflow, acc_overflow : ``Out(1)``; ``queue_overflow_step``, ``acc_overflow_step`` :
        ``Out(STEP_BITS)``: the sticky errors and the step that ran when each was first
        raised (a push of step ``s``'s fan-out that found the queue full; an add of
        step ``s``'s drain that left the ``acc_bits`` range).
    spikes : ``Out(stream.Signature(spike_layout(config)))``
        ``(neuron, payload)`` of each spike of the step, in neuron order, from the spike
        list; a stall holds the step's end, not the pass.
    host_memory : ``In(layouts.Memory)``; host_addr : ``In(host_addr_bits(config))``;
    host_wdata : ``In(host_word_bits(config))``; host_we, host_re : ``In(1)``;
    host_rdata : ``Out(host_word_bits(config))``
        While not ``busy``: ``host_we`` writes word ``host_addr`` of ``host_memory`` (the
        low bits of ``host_wdata``; the memories and numbers of the module doc) at the
        clock edge; ``host_re`` reads it, the word (zero above its width) on ``host_rdata``
        from the second clock after until the next read (``AXON`` and ``COMPARTMENT``
        rows come through the queue's aux port, whose read is on its response register in
        exactly that clock); reads and writes may follow each other every clock. A read in
        the clock of a write to the same memory gives an undefined word (Core: the old
        word of a block RAM); see :data:`NO_RW_CHECK`.

    Step timing (``cycles``, the host always taking spikes). With nothing arriving and no
    spike a step takes exactly ``count + NeuronPass.SPRAM_LATENCY + 4`` clocks. The drain of
    ``E_t > 0`` arriving events adds ``E_t + 5`` (an event a clock, the drain's pipeline,
    and Accumulate's two clocks to write the last: the pass starts after that). The fan-out works under the
    pass: the spike of neuron ``g`` reaches it ``g`` clocks after the pass's first, and
    a spike of ``F`` synapses costs it at most ``max(F, 1) + F // 16 + 2`` clocks of the
    pool's port (a push a synapse, the axon row, the compartment rows). So a step takes
    at most ``E_t + 7 + NeuronPass.SPRAM_LATENCY + max(count, max_i (g_i + sum_{j >= i}
    cost_j)) + 16`` clocks over its spikes ``i`` in order (tests/hdl/test_hdl_spram_core.py
    checks every step against it); with spikes spread over the pass, about
    ``E_t + max(count, 1.1 E + 2 S) + 34`` for ``E`` events made by ``S`` spikes. A host
    that stalls ``spikes`` delays only the step's end: the fan-out reads the spike list
    first and never waits for the host.
    """

    #: see :data:`HOST_READ_LATENCY`
    host_read_latency = HOST_READ_LATENCY

    def __init__(self, config: CoreConfig, *, primitive: bool | None = None):
        self.checked(config)
        if primitive is not None and not isinstance(primitive, bool):
            raise ValidationError("SpramCore.primitive", f"must be True, False or None, not {primitive!r}")
        self._primitive = primitive
        if not config.spram:
            raise ValidationError("core.spram", f"must be true for SpramCore (the iCE40 memory system), "
                                  f"not {config.spram!r}")
        if config.accumulator_banks != 1:
            raise ValidationError("core.accumulator_banks", "must be 1 for SpramCore (one bank: drain, then "
                                  f"the pass), not {config.accumulator_banks}")
        if config.max_cores != 1:
            raise ValidationError("core.max_cores", f"must be 1 for SpramCore (routes between cores are "
                                  f"not built), not {config.max_cores}")
        spram_regions(config)  # refuses a shape whose SPRAM words or rows do not fit
        super().__init__(config, core_members(config, host_word=host_word_bits(config),
                                               host_addr=host_addr_bits(config)))

    def elaborate(self, platform):
        m = Module()
        config = self._config
        layouts = core_layouts(config)
        regions = spram_regions(config)
        n_max = config.neurons

        m.submodules.npass = npass = NeuronPass(config)
        m.submodules.fanout = fanout = FanOut(config, syn_latency=SYNAPSE_READ_LATENCY)
        m.submodules.queue = queue = ChunkedEventQueue(config, pool_chunks=regions.pool_chunks,
                                                       chunk_events=CHUNK_EVENTS, primitive=self._primitive)
        m.submodules.accumulate = accumulate = Accumulate(config)
        m.submodules.spike_list = spike_list = SpikeList(config)

        # `busy` and `running` are registers, set and cleared with the controller's state
        # (not decoded from it): the host's accesses, gated by `busy`, reach the queue's
        # aux port and through it the pushes' write, a LUT level shorter (timing)
        host = ~self.busy
        running = Signal()  # a step runs (START, DRAIN, PASS): the blocks own the memories' ports
        host_rd = Signal()
        host_wr = Signal()
        m.d.comb += [host_rd.eq(host & self.host_re), host_wr.eq(host & self.host_we)]

        def selected(which):
            return self.host_memory == which

        # --- block RAM: the pass's memories, one read and one write port each ---------------
        shapes = {
            Memory.PROFILE: (npass.profile_rd.data.shape(), host_depth(config, Memory.PROFILE)),
            Memory.NEURON: (layouts.neuron, n_max),
            Memory.STIMULUS: (layouts.stimulus, n_max),
        }
        users = {
            Memory.PROFILE: (npass.profile_rd, None),
            Memory.NEURON: (npass.neuron_rd, npass.neuron_wr),
            Memory.STIMULUS: (npass.stim_rd, None),
        }
        rd = {}
        for which, (shape, depth) in shapes.items():
            ram = RAM(shape=shape, depth=depth, init=[], attrs=NO_RW_CHECK)
            m.submodules[f"{which.name.lower()}_memory"] = ram
            port_rd, port_wr = ram.read_port(), ram.write_port()
            rd[which] = port_rd
            user_rd, user_wr = users[which]
            m.d.comb += user_rd.data.eq(port_rd.data)
            if user_wr is None:  # only the host writes: no multiplexer in front of the port
                m.d.comb += [port_wr.addr.eq(self.host_addr), port_wr.data.eq(self.host_wdata),
                             port_wr.en.eq(host_wr & selected(which))]
            with m.If(running):
                m.d.comb += [port_rd.addr.eq(user_rd.addr), port_rd.en.eq(user_rd.en)]
                if user_wr is not None:
                    m.d.comb += [port_wr.addr.eq(user_wr.addr), port_wr.data.eq(user_wr.data),
                                 port_wr.en.eq(user_wr.en)]
            with m.Else():
                m.d.comb += [port_rd.addr.eq(self.host_addr), port_rd.en.eq(host_rd & selected(which))]
                if user_wr is not None:
                    m.d.comb += [port_wr.addr.eq(self.host_addr), port_wr.data.eq(self.host_wdata),
                                 port_wr.en.eq(host_wr & selected(which))]

        # --- the accumulator bank: Accumulate in the drain, the pass after it ---------------
        # Their uses never overlap: the pass starts only once Accumulate has written the
        # drain's last event (the controller), so each port follows whichever block
        # enables it.
        acc_ram = RAM(shape=layouts.accumulator, depth=n_max, init=[], attrs=NO_RW_CHECK)
        m.submodules.accumulator_memory = acc_ram
        acc_rd, acc_wr = acc_ram.read_port(), acc_ram.write_port()
        rd[Memory.ACCUMULATOR] = acc_rd
        zeroing = Signal()
        zero_addr = Signal(addr_bits(n_max))
        m.d.comb += [npass.acc_rd.data.eq(acc_rd.data), accumulate.acc_rd.data.eq(acc_rd.data)]
        with m.If(running):
            with m.If(accumulate.acc_rd.en):
                m.d.comb += [acc_rd.addr.eq(accumulate.acc_rd.addr), acc_rd.en.eq(1)]
            with m.Else():
                m.d.comb += [acc_rd.addr.eq(npass.acc_rd.addr), acc_rd.en.eq(npass.acc_rd.en)]
            with m.If(accumulate.acc_wr.en):
                m.d.comb += [acc_wr.addr.eq(accumulate.acc_wr.addr), acc_wr.data.eq(accumulate.acc_wr.data),
                             acc_wr.en.eq(1)]
            with m.Else():
                m.d.comb += [acc_wr.addr.eq(npass.acc_wr.addr), acc_wr.data.eq(npass.acc_wr.data),
                             acc_wr.en.eq(npass.acc_wr.en)]
        with m.Elif(zeroing):
            m.d.comb += [acc_wr.addr.eq(zero_addr), acc_wr.data.eq(0), acc_wr.en.eq(1)]
        with m.Else():
            m.d.comb += [
                acc_rd.addr.eq(self.host_addr), acc_rd.en.eq(host_rd & selected(Memory.ACCUMULATOR)),
                acc_wr.addr.eq(self.host_addr), acc_wr.data.eq(self.host_wdata),
                acc_wr.en.eq(host_wr & selected(Memory.ACCUMULATOR)),
            ]

        # --- the synapse SPRAM: the fan-out's reads while running, the host's otherwise ------
        # every word is taken the clock after its read (the fan-out's FIFO, `read_word`): no hold
        synapses = SinglePortRAM(shape=SPRAM_ROW_BITS, depth=config.synapse_words, primitive=self._primitive,
                                 hold=False)
        m.submodules.synapse_memory = synapses
        syn_bits = addr_bits(config.synapse_words)
        m.d.comb += [
            fanout.syn_rd.data.eq(synapses.rdata[:spram_synapse_layout(config).size]),
            synapses.wdata.eq(self.host_wdata),  # only the host writes (``we`` is its alone)
        ]
        with m.If(running):
            # it reads every clock: the fan-out takes a word only the clock after its own
            # read, so its walk's decision (`syn_rd.en`) need not reach the tiles (timing)
            m.d.comb += [synapses.addr.eq(fanout.syn_rd.addr), synapses.en.eq(1)]
        with m.Else():
            m.d.comb += [
                synapses.addr.eq(self.host_addr[:syn_bits]),
                synapses.we.eq(host_wr & selected(Memory.SYNAPSE)),
                synapses.en.eq(host_rd & selected(Memory.SYNAPSE)),
            ]

        # --- the pool SPRAM's aux port: the fan-out's row reads, or the host's accesses ------
        # The host's accesses are made only while idle and the fan-out's only while a step
        # runs; the queue answers a read in exactly its second clock after, so the host's
        # last reads may be answered in a step's first clocks: those rows are the host's
        # (`read2_aux`), the others the fan-out's.
        host_aux = Signal()  # the host addresses an aux row now
        aux_row = Signal(AUX_ADDR_BITS)
        m.d.comb += [
            host_aux.eq(selected(Memory.AXON) | selected(Memory.COMPARTMENT)),
            aux_row.eq(Mux(selected(Memory.AXON), regions.axon_base, regions.compartment_base)
                       + self.host_addr),
        ]
        m.d.comb += queue.aux.payload.data.eq(self.host_wdata)  # the fan-out only reads
        # The fan-out requests nothing while idle (it is empty then) and the host accesses
        # nothing while busy: `valid` is their OR, no multiplexer on `running`, and only
        # the host writes.
        m.d.comb += [
            queue.aux.valid.eq(fanout.aux_req.valid | (host_aux & (host_rd | host_wr))),
            queue.aux.payload.addr.eq(Mux(running, fanout.aux_req.payload, aux_row)),
            queue.aux.payload.write.eq(host_wr),
            fanout.aux_req.ready.eq(1),  # the queue takes an aux access every clock
        ]

        # --- the host's read data -----------------------------------------------------------
        # Each read's memory rides two stages beside its data: the block RAMs and the synapse
        # SPRAM have their word the clock after the read, registered here into `read_word`;
        # an aux row is on the queue's response register the clock after that, passed
        # through, and kept in `read_word` until the next read (a block RAM's word of the
        # next read, due a clock later, is loaded after it in the same clock and wins).
        read1 = Signal()  # a read was issued last clock, from `read1_from`
        read1_from = Signal(Memory)
        read2_aux = Signal()  # the read before last was of an aux row: it is on the queue's aux_row now
        read_word = Signal.like(self.host_rdata)
        m.d.sync += [
            read1.eq(host_rd),
            read2_aux.eq(read1 & ((read1_from == Memory.AXON) | (read1_from == Memory.COMPARTMENT))),
        ]
        m.d.comb += [
            fanout.aux_rsp.payload.eq(queue.aux_row),
            fanout.aux_rsp.valid.eq(queue.aux_valid & ~read2_aux),
        ]
        with m.If(host_rd):
            m.d.sync += read1_from.eq(self.host_memory)
        with m.If(read2_aux):
            m.d.sync += read_word.eq(queue.aux_row)
        with m.If(read1):
            with m.Switch(read1_from):
                for which, port in rd.items():
                    with m.Case(which):
                        m.d.sync += read_word.eq(Value.cast(port.data).as_unsigned())
                with m.Case(Memory.SYNAPSE):
                    m.d.sync += read_word.eq(synapses.rdata)
                with m.Default():  # an aux row: zero, so its word is the row alone (below)
                    m.d.sync += read_word.eq(0)
        # In the clock an aux row is answered `read_word` is zero: the row is ORed into its
        # low bits (one LUT a bit; the bits above the row's are `read_word`'s alone).
        aux_now = Mux(read2_aux, queue.aux_row, 0)
        m.d.comb += self.host_rdata.eq(read_word | aux_now)

        # --- spikes: the pass into the list, the list to the fan-out and the host -----------
        wiring.connect(m, npass.spikes, spike_list.spikes)
        wiring.connect(m, spike_list.fanout, fanout.spikes)
        wiring.connect(m, spike_list.host, wiring.flipped(self.spikes))
        wiring.connect(m, fanout.push, queue.push)
        wiring.connect(m, queue.drained, accumulate.drained)
        # one bank: the fan-out pushes every event, ``direct`` is never valid
        m.d.comb += accumulate.direct.valid.eq(0)

        # --- the controller ---------------------------------------------------------------
        slot = Signal(range(config.delay_slots))  # t mod delay_slots: drained at step t
        horizon = Signal.like(fanout.horizon)
        cycles = self.cycles  # counts the step's clocks; holds while idle
        count = Signal.like(self.count)
        flags = Signal(3)
        pass_done = Signal()
        drain_done = Signal()
        m.d.comb += [
            queue.step.eq(self.t),
            queue.slot.eq(slot),
            accumulate.step.eq(self.t),
            fanout.slot.eq(slot),
            fanout.horizon.eq(horizon),
            fanout.graded.eq(flags[2]),
            spike_list.graded.eq(flags[2]),
            *pass_and_status(self, npass, queue, accumulate, count, flags),
        ]
        with m.If(running):  # START, DRAIN, PASS: clocks 2 .. of the step, done included
            m.d.sync += cycles.eq(cycles + 1)
        idle_blocks = ~spike_list.busy & ~fanout.busy & ~queue.busy & ~accumulate.busy

        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.clear):
                    m.d.comb += [queue.clear.eq(1), accumulate.clear.eq(1), spike_list.clear.eq(1)]
                    m.d.sync += [self.t.eq(0), slot.eq(0), zero_addr.eq(0), self.busy.eq(1)]
                    m.next = "CLEAR"
                with m.Elif(self.step):
                    m.d.sync += [
                        cycles.eq(1),
                        count.eq(self.count),
                        flags.eq(Cat(self.dendritic, self.noise, self.graded)),
                        horizon.eq(step_horizon(m, config, self.t, self.timesteps)),
                        pass_done.eq(0),
                        drain_done.eq(0),
                        self.busy.eq(1),
                        running.eq(1),
                    ]
                    m.next = "START"
            with m.State("CLEAR"):
                m.d.comb += zeroing.eq(1)
                m.d.sync += zero_addr.eq(Mux(zero_addr == n_max - 1, zero_addr, zero_addr + 1))
                with m.If((zero_addr == n_max - 1) & ~queue.busy):
                    m.d.comb += self.done.eq(1)
                    m.d.sync += self.busy.eq(0)
                    m.next = "IDLE"
            with m.State("START"):
                # the drain of slot t; the last step's spikes leave the list
                m.d.comb += [queue.drain.eq(1), spike_list.clear.eq(1)]
                m.next = "DRAIN"
            with m.State("DRAIN"):
                with m.If(queue.done):
                    m.d.sync += drain_done.eq(1)
                # the pass reads the bank: it starts when the drain's last event is written
                # (an empty drain: in the clock of its done; else two clocks after it, when
                # Accumulate has added the event the queue handed over with its done)
                with m.If((queue.done | drain_done) & ~queue.drained.valid & ~accumulate.busy):
                    m.d.comb += npass.start.eq(1)
                    m.next = "PASS"
            with m.State("PASS"):
                with m.If(npass.done):
                    m.d.sync += pass_done.eq(1)
                # every spike written is counted by the list from the clock after it, and the
                # pass's last spike is handed over by its done: so from the clock after done
                with m.If(pass_done & idle_blocks):
                    m.d.comb += self.done.eq(1)
                    m.d.sync += [
                        self.t.eq(self.t + 1),
                        slot.eq(Mux(slot == config.delay_slots - 1, 0, slot + 1)),
                        self.busy.eq(0),
                        running.eq(0),
                    ]
                    m.next = "IDLE"
        return m

