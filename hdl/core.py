"""One neuromorphic core: its memories, the blocks of a timestep, and the controller.

:class:`Core` owns every memory of a single core (docs/memory-map.md, "One core") and
runs one timestep per ``step`` command. Step ``t`` reads its input sums from
accumulator bank ``b = t mod 2`` while the other bank collects step ``t + 1``'s, so
everything of a step runs at once (docs/hardware.md draws it):

- :class:`~neurofab.hdl.neuron_pass.NeuronPass` updates neurons ``0 .. count - 1``, one
  a clock, reading and zeroing bank ``b``; its spikes go to the host and, through a
  FIFO as deep as the core has neurons, to
- :class:`~neurofab.hdl.fanout.FanOut`, one synapse a clock: delay-0 events straight to
  :class:`~neurofab.hdl.accumulate.Accumulate`, the rest into
- :class:`~neurofab.hdl.event_queue.EventQueue`, which meanwhile drains the events that
  arrive at ``t + 1`` into :class:`~neurofab.hdl.accumulate.Accumulate`, which adds
  each into bank ``1 - b``.

The step ends when all of them are idle; a step of ``n`` neurons and ``E`` events takes
about ``max(n, E)`` clocks plus the pipelines' latencies. Routes to other cores and the
learning sweep are not part of this core yet (docs/hardware.md).

The host reaches every memory through one word-wide port (``host_*``) while the core
is idle, the way a host link will: to load an image, keep the stimulus sums current
and read the state back.
"""

from amaranth.hdl import Cat, Module, Mux, Signal, Value, signed
from amaranth.lib import stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.memory import Memory as RAM
from amaranth.lib.wiring import In, Out

from neurofab.errors import ValidationError

from .accumulate import Accumulate
from .block import CoreBlock
from .config import CoreConfig, addr_bits, count_bits
from .event_queue import STEP_BITS, EventQueue
from .fanout import FanOut
from .layouts import Memory, core_layouts
from .neuron_pass import NeuronPass, spike_layout
from .spram import NO_RW_CHECK

__all__ = ["core_members", "pass_and_status", "SYNAPSE_READ_LATENCY", "SYNAPSE_BANK_BITS",
           "SYNAPSE_PART_BITS", "CYCLE_BITS", "HOST_MEMORIES", "HOST_READ_LATENCY", "SPIKE_FIFO_LATENCY",
           "host_word_bits",
           "host_addr_bits", "Core"]

#: clocks from a host read's address (``host_re``) to its word on ``host_rdata``: the
#: memory's read, a register per memory (for the synapse memory its part's), a register
#: behind the memory multiplexer (for the synapse memory one per bank, behind the part
#: multiplexer), then the output register (on ECP5 the 24-part and memory multiplexers
#: were the critical path in one clock, with 2 clocks and then with 3)
HOST_READ_LATENCY = 4

#: clocks from a spike of the pass to the fan-out: the spike FIFO's write and read, then a
#: register (the FIFO's word is its block RAM's output, too slow to address the axon table)
SPIKE_FIFO_LATENCY = 3

#: clocks from the fan-out's synapse read to its word: the part's address register, the
#: block RAM, the part's data register, the part multiplexer's register (within a bank),
#: the bank multiplexer's register
SYNAPSE_READ_LATENCY = 5

#: address bits of one synapse memory bank (16,384 words), the part multiplexer's reach
SYNAPSE_BANK_BITS = 14

#: address bits of one synapse memory part (2,048 words: one row of DP16KD in 2K x 9)
SYNAPSE_PART_BITS = 11

#: width of the per-step cycle counter
CYCLE_BITS = 32

#: the memories the host port reaches (``layouts.Memory`` numbers); ``ROUTE`` joins them
#: with the multi-core router, ``SYNAPSE_ORDER`` stays on the host
HOST_MEMORIES = (Memory.PROFILE, Memory.NEURON, Memory.AXON, Memory.SYNAPSE, Memory.STIMULUS,
                 Memory.ACCUMULATOR)


def _size(shape) -> int:
    return shape.size if hasattr(shape, "size") else shape.width


def host_word_bits(config: CoreConfig) -> int:
    """Width of the host port's data: the widest word of any memory it reaches."""
    layouts = core_layouts(config)
    return max(_size(layouts.for_memory(m)) for m in HOST_MEMORIES)


def host_addr_bits(config: CoreConfig) -> int:
    """Width of the host port's address: the deepest memory's."""
    layouts = core_layouts(config)
    return max(addr_bits(layouts.depth(m)) for m in HOST_MEMORIES)


def step_horizon(m: Module, config: CoreConfig, t, timesteps):
    """``min(delay_slots, T - 1 - t)``, and 0 in the last step (``t + 1 >= T``): the fan-out's
    ``horizon`` for step ``t`` (an event arriving at ``t + 1 + delay >= T`` is not made), for
    every core top, from one subtraction."""
    ahead = Signal(signed(STEP_BITS + 1))  # T - 1 - t
    m.d.comb += ahead.eq(timesteps - 1 - t)
    return Mux(ahead <= 0, 0, Mux(ahead > config.delay_slots, config.delay_slots, ahead))


def pass_and_status(core, npass, queue, accumulate, count, flags) -> list:
    """What both core tops drive alike: the pass's count and the job's flags (``flags``:
    dendritic, noise, graded, latched at ``step``), and the core's status outputs from its
    queue and accumulate (events held, the sticky overflows and their steps)."""
    return [
        npass.count.eq(count),
        npass.dendritic.eq(flags[0]),
        npass.noise.eq(flags[1]),
        npass.graded.eq(flags[2]),
        core.events_held.eq(queue.held),
        core.queue_overflow.eq(queue.queue_overflow),
        core.queue_overflow_step.eq(queue.queue_overflow_step),
        core.acc_overflow.eq(accumulate.acc_overflow),
        core.acc_overflow_step.eq(accumulate.acc_overflow_step),
    ]


def core_members(config: CoreConfig, *, host_word: int, host_addr: int) -> dict:
    """The members of every core top (:class:`Core`, ``SpramCore``): one host-facing contract.

    ``host_word`` and ``host_addr`` are the widths of the host port's data and address,
    which follow from the memories a top keeps (see :class:`Core`'s members).
    """
    return {
        "clear": In(1),
        "step": In(1),
        "count": In(count_bits(config.neurons)),
        "timesteps": In(STEP_BITS),
        "dendritic": In(1),
        "noise": In(1),
        "graded": In(1),
        "busy": Out(1),
        "done": Out(1),
        "t": Out(STEP_BITS),
        "cycles": Out(CYCLE_BITS),
        "events_held": Out(count_bits(config.event_queue)),
        "queue_overflow": Out(1),
        "queue_overflow_step": Out(STEP_BITS),
        "acc_overflow": Out(1),
        "acc_overflow_step": Out(STEP_BITS),
        "spikes": Out(stream.Signature(spike_layout(config))),
        "host_memory": In(Memory),
        "host_addr": In(host_addr),
        "host_wdata": In(host_word),
        "host_we": In(1),
        "host_re": In(1),
        "host_rdata": Out(host_word),
    }


class Core(CoreBlock):
    """A single core: memories, neuron pass, fan-out, event queue, accumulate, controller.

    Parameters
    ----------
    config : CoreConfig
        The core's shape (``max_cores`` must be 1: routes are not built yet).

    Members
    -------
    clear : ``In(1)``
        Pulse while idle: before a job, empty the event queue, clear its errors, zero
        both accumulator banks and set ``t`` to 0 (the other memories keep their
        contents). Takes ``max(neurons, queue clear) + 2`` clocks.
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
        Clocks of the last step, from the ``step`` edge to ``done`` inclusive.
    events_held : ``Out(count_bits(event_queue))``
        Events in flight (the queue's count, see :class:`EventQueue`).
    queue_overflow, acc_overflow : ``Out(1)``; ``queue_overflow_step``, ``acc_overflow_step`` :
        ``Out(STEP_BITS)``: the sticky errors and their steps.
    spikes : ``Out(stream.Signature(spike_layout(config)))``
        ``(neuron, payload)`` of each spike of the step, in neuron order, from a FIFO as
        deep as the core has neurons; a stall holds the step's end, not the pass.
    host_memory : ``In(layouts.Memory)``; host_addr : ``In(host_addr_bits(config))``;
    host_wdata : ``In(host_word_bits(config))``; host_we, host_re : ``In(1)``;
    host_rdata : ``Out(host_word_bits(config))``
        While not ``busy``: ``host_we`` writes word ``host_addr`` of ``host_memory`` (the
        low bits of ``host_wdata``) at the clock edge; ``host_re`` reads it, the word on
        ``host_rdata`` from the ``HOST_READ_LATENCY``-th (4th) clock after (the memory's
        read, a register per memory or for the synapse memory its part's, a register behind
        the memory's or the synapse bank's multiplexer, then the output register) until
        the next read; reads may follow each other every clock. ``ACCUMULATOR`` word
        ``bank * neurons + n`` is neuron ``n``'s in ``bank``.
    """

    #: see :data:`HOST_READ_LATENCY`
    host_read_latency = HOST_READ_LATENCY

    def __init__(self, config: CoreConfig):
        self.checked(config)
        if config.max_cores != 1:
            raise ValidationError("Core.config", f"must be a single-core shape (max_cores 1; routes "
                                  f"between cores are not built), not max_cores {config.max_cores}")
        super().__init__(config, core_members(config, host_word=host_word_bits(config),
                                               host_addr=host_addr_bits(config)))

    def elaborate(self, platform):
        m = Module()
        config = self._config
        layouts = core_layouts(config)
        n_max = config.neurons

        m.submodules.npass = npass = NeuronPass(config)
        m.submodules.fanout = fanout = FanOut(config, syn_latency=SYNAPSE_READ_LATENCY)
        m.submodules.queue = queue = EventQueue(config)
        m.submodules.accumulate = accumulate = Accumulate(config)
        m.submodules.spike_fifo = fifo = SyncFIFOBuffered(width=spike_layout(config).size, depth=n_max)

        host = ~self.busy
        # a step runs: the blocks own the memories' ports. A register, high in RUN only (in
        # START the blocks latch their inputs and touch no memory), so that a host write
        # registered in the clock of the ``step`` pulse still lands (below).
        running = Signal()
        finished = Signal()  # the step's end: a one-clock pulse (the controller, below)
        bank = Signal()  # the bank step t reads: t mod 2

        # --- memories: one read and one write port each ------------------------------------
        names = {Memory.PROFILE: "profile", Memory.NEURON: "neuron", Memory.AXON: "axon",
                 Memory.STIMULUS: "stimulus"}
        rd, wr = {}, {}
        for which, name in names.items():
            ram = RAM(shape=layouts.for_memory(which), depth=layouts.depth(which), init=[], attrs=NO_RW_CHECK)
            m.submodules[f"{name}_memory"] = ram
            rd[which], wr[which] = ram.read_port(), ram.write_port()
        banks = []
        for b in range(2):
            ram = RAM(shape=layouts.accumulator, depth=n_max, init=[], attrs=NO_RW_CHECK)
            m.submodules[f"acc{b}_memory"] = ram
            banks.append((ram.read_port(), ram.write_port()))

        # Every memory is NO_RW_CHECK (no collision logic after its block RAMs): no read's
        # word is used when it meets a write of the same word in the same clock.
        # - profile, axon, stimulus, synapse parts: only the host writes them, and the core
        #   is idle then; a host read of the word its registered write (below) writes in
        #   that clock takes the written word from the write's registers instead.
        # - neuron memory, the pass's accumulator bank: the pass reads each word once and
        #   writes it after its read (NeuronPass), so a write meets no read of its word.
        # - Accumulate's bank: a read that meets the write of the same word (an add two
        #   clocks before) is replaced by the forwarded sum (Accumulate's forwarding).
        # - a clear's zeroing writes with no read.
        # tests/hdl/test_hdl_core.py checks the neuron memory's and the pass's bank's reads
        # against same-clock writes on every step it runs.

        # the host's side: a write is registered (address, data and one enable per memory,
        # per synapse part) and lands at the next clock edge, so nothing but a register
        # drives the block RAMs' write ports from the host (they are spread over the die);
        # a read goes to the memories at once
        host_rd_en = Signal()
        host_wr_en = Signal()
        m.d.comb += [host_rd_en.eq(host & self.host_re), host_wr_en.eq(host & self.host_we)]
        acc_bank = Signal()  # the host's accumulator address is in bank 1
        acc_index = Signal(addr_bits(n_max))
        m.d.comb += [
            acc_bank.eq(self.host_addr >= n_max),
            acc_index.eq(Mux(acc_bank, self.host_addr - n_max, self.host_addr)),
        ]
        widths = {which: _size(layouts.for_memory(which)) for which in HOST_MEMORIES}
        w_memory = Signal(Memory)  # the registered write
        w_addr = Signal.like(self.host_addr)
        w_acc_index = Signal.like(acc_index)
        w_data = Signal.like(self.host_wdata)  # the low bits the memory keeps, the rest 0
        w_en = {which: Signal(name=f"host_{which.name.lower()}_we") for which in HOST_MEMORIES}
        w_acc_en = [Signal(name=f"host_acc{b}_we") for b in range(2)]
        m.d.sync += [w_memory.eq(self.host_memory), w_addr.eq(self.host_addr), w_acc_index.eq(acc_index)]
        with m.Switch(self.host_memory):
            for which, width in widths.items():
                with m.Case(which):
                    m.d.sync += w_data.eq(self.host_wdata[:width])
        for which, en in w_en.items():
            m.d.sync += en.eq(host_wr_en & (self.host_memory == which))
        for b, en in enumerate(w_acc_en):
            m.d.sync += en.eq(host_wr_en & (self.host_memory == Memory.ACCUMULATOR) & (acc_bank == b))
        w_any = Signal()  # a registered write lands at this clock's edge
        m.d.comb += w_any.eq(Cat(*w_en.values()).any())

        def connect_read(port, user, select, host_select, addr):
            """``user`` (a ReadPort-like interface of a block) while ``select``, else the host."""
            if user is not None:
                m.d.comb += user.data.eq(port.data)
            with m.If(select):
                if user is not None:
                    m.d.comb += [port.addr.eq(user.addr), port.en.eq(user.en)]
            with m.Else():
                m.d.comb += [port.addr.eq(addr), port.en.eq(host_rd_en & host_select)]

        def connect_write(port, user, select, host_en):
            with m.If(select):
                if user is not None:
                    m.d.comb += [port.addr.eq(user.addr), port.data.eq(user.data), port.en.eq(user.en)]
            with m.Else():
                m.d.comb += [port.addr.eq(w_addr), port.data.eq(w_data), port.en.eq(host_en)]

        users = {
            Memory.PROFILE: (npass.profile_rd, None),
            Memory.NEURON: (npass.neuron_rd, npass.neuron_wr),
            Memory.AXON: (fanout.axon_rd, None),
            Memory.STIMULUS: (npass.stim_rd, None),
        }
        for which, (user_rd, user_wr) in users.items():
            selected = self.host_memory == which
            connect_read(rd[which], user_rd, running, selected, self.host_addr)
            connect_write(wr[which], user_wr, running, w_en[which])

        # accumulator banks: bank ``bank`` is the pass's, the other Accumulate's; a clear
        # zeroes both through their write ports
        zeroing = Signal()  # a register: high in CLEAR (the controller below)
        zero_addr = Signal(addr_bits(n_max))
        acc_host = self.host_memory == Memory.ACCUMULATOR
        # Who writes each bank, as registers set with the controller's state (below):
        # Accumulate (running, the other bank than the pass's) or the host (neither running
        # nor zeroing). The pass and a clear write 0, so a bank's write data is one LUT a
        # bit: Accumulate's word, the host's, or 0.
        acc_owns = [Signal(name=f"acc{b}_accumulate_owns") for b in range(2)]
        host_owns = Signal(init=1)
        for b, (port_rd, port_wr) in enumerate(banks):
            mine = bank == b  # the pass's bank this step
            m.d.comb += port_wr.data.eq(Mux(acc_owns[b], accumulate.acc_wr.data, Mux(host_owns, w_data, 0)))
            with m.If(running & mine):
                m.d.comb += [
                    port_rd.addr.eq(npass.acc_rd.addr), port_rd.en.eq(npass.acc_rd.en),
                    port_wr.addr.eq(npass.acc_wr.addr), port_wr.en.eq(npass.acc_wr.en),
                ]
            with m.Elif(running):
                m.d.comb += [
                    port_rd.addr.eq(accumulate.acc_rd.addr), port_rd.en.eq(accumulate.acc_rd.en),
                    port_wr.addr.eq(accumulate.acc_wr.addr), port_wr.en.eq(accumulate.acc_wr.en),
                ]
            with m.Elif(zeroing):
                m.d.comb += [port_wr.addr.eq(zero_addr), port_wr.en.eq(1)]
            with m.Else():
                selected = acc_host & (acc_bank == b)
                m.d.comb += [
                    port_rd.addr.eq(acc_index), port_rd.en.eq(host_rd_en & selected),
                    port_wr.addr.eq(w_acc_index), port_wr.en.eq(w_acc_en[b]),
                ]
        m.d.comb += [
            npass.acc_rd.data.eq(Mux(bank, banks[1][0].data, banks[0][0].data)),
            accumulate.acc_rd.data.eq(Mux(bank, banks[0][0].data, banks[1][0].data)),
        ]

        # --- the synapse memory: parts by depth, each behind its own registers --------------
        # A part is 2,048 words (``SYNAPSE_PART_BITS``): one row of DP16KD in 2K x 9, so no
        # depth multiplexer stands between a block RAM and the register its word goes into
        # (Yosys picks 2K x 9 for a deeper memory too, and then multiplexes 8 rows: that
        # multiplexer, off the block RAMs' slow clock-to-out, was the critical path). For
        # the fan-out, each part registers its own copy of the read address (its block RAMs
        # read every clock) (``keep``, and each copy loads only for its own part, so Yosys cannot merge them:
        # one register driving all 144 DP16KD was pure routing across the die), its word
        # goes straight into a register, a registered multiplexer picks the part within
        # its bank (``SYNAPSE_BANK_BITS``) and another the bank: ``SYNAPSE_READ_LATENCY``
        # (5). The host, while the core is idle, addresses the block RAMs directly (read
        # and write, so a write is in before any later read), and its word comes from the
        # parts' registers, in the clock the other memories' words are in theirs.
        syn_layout = layouts.synapse
        syn_depth = layouts.depth(Memory.SYNAPSE)
        syn_bits = addr_bits(syn_depth)
        bank_bits = max(syn_bits - 4, min(SYNAPSE_BANK_BITS, syn_bits))  # 16 banks at most
        part_bits = min(SYNAPSE_PART_BITS, bank_bits)
        n_parts = -(-syn_depth // (1 << part_bits))
        per_bank = 1 << (bank_bits - part_bits)  # parts in a bank
        n_syn_banks = -(-n_parts // per_bank)
        syn_host = self.host_memory == Memory.SYNAPSE
        run_rd = fanout.syn_rd.en  # a fan-out read (only while running)
        host_syn_rd = host_rd_en & syn_host
        # the part of each read, along the pipeline: issued (from the address register on
        # for the fan-out), on the block RAM's output, in the part's register
        part_of = Signal(range(max(2, n_parts)))
        m.d.comb += part_of.eq(Mux(running, fanout.syn_rd.addr[part_bits:syn_bits],
                                   self.host_addr[part_bits:syn_bits]) if n_parts > 1 else 0)
        sel_issued = Signal.like(part_of)
        sel_bram = Signal.like(part_of)
        sel_reg = Signal.like(part_of)
        with m.If(Mux(running, run_rd, host_syn_rd)):  # the part of the last read
            m.d.sync += sel_issued.eq(part_of)
        m.d.sync += [sel_bram.eq(sel_issued), sel_reg.eq(sel_bram)]
        # The parts' block RAMs read in every clock (enable 1): only the host's address, behind
        # one multiplexer a part, comes from the host in the clock of its read (its word is due
        # two clocks on), no enable decoded from ``host_re``. The parts' word registers load
        # in every clock of a step once the fan-out has read the part, and while idle only in
        # the clock after a host synapse read (``host_syn_took``, a register), so the host's
        # word stays until its next read.
        host_syn_took = Signal()
        m.d.sync += host_syn_took.eq(host_syn_rd)
        part_outs = []
        for p in range(n_parts):
            depth = min(1 << part_bits, syn_depth - (p << part_bits))
            ram = RAM(shape=syn_layout, depth=depth, init=[], attrs=NO_RW_CHECK)
            m.submodules[f"synapse_memory{p}"] = ram
            port_rd, port_wr = ram.read_port(), ram.write_port()
            hit = (fanout.syn_rd.addr[part_bits:syn_bits] == p) if n_parts > 1 else 1
            w_hit = (self.host_addr[part_bits:syn_bits] == p) if n_parts > 1 else 1
            part_we = Signal(name=f"syn{p}_host_we")  # the registered host write's, for this part
            m.d.sync += part_we.eq(host_wr_en & syn_host & w_hit)
            keep = {"keep": 1}
            r_addr = Signal(part_bits, name=f"syn{p}_rd_addr", attrs=keep)
            out = Signal(syn_layout.size, name=f"syn{p}_data")
            # ``running`` for this part alone (one flip-flop driving every part's address
            # multiplexer crossed the die): set with the first address of a step in the part
            # (its address register loads then, and is read from the next clock), cleared
            # with ``running`` at the step's end; its own set condition keeps it a register of
            # its own
            fanout_owns = Signal(name=f"syn{p}_fanout_owns")
            with m.If(finished):
                m.d.sync += fanout_owns.eq(0)
            with m.Elif(running & hit):
                m.d.sync += fanout_owns.eq(1)
            with m.If(fanout_owns | host_syn_took):
                m.d.sync += out.eq(Value.cast(port_rd.data))
            # each copy loads only for its own part: copies with different enables are
            # different flip-flops, which Yosys cannot merge (``keep`` alone did not stop it).
            # It loads whenever the fan-out's address is in its part, read or not (so the
            # fan-out's read decision does not reach these enables): the block RAMs use it in
            # the next clock only, and a word is taken only after a read (``sel_issued``).
            with m.If(running & hit):
                m.d.sync += r_addr.eq(fanout.syn_rd.addr[:part_bits])
            m.d.comb += [
                port_rd.addr.eq(Mux(fanout_owns, r_addr, self.host_addr[:part_bits])),
                port_rd.en.eq(1),
                port_wr.addr.eq(w_addr[:part_bits]),
                port_wr.data.eq(w_data[:syn_layout.size]),
                port_wr.en.eq(part_we),
            ]
            part_outs.append(out)
        # the fan-out's word: the part within its bank, then the bank, each registered
        bank_outs = [Signal(syn_layout.size, name=f"syn_bank{b}_data") for b in range(n_syn_banks)]
        sel_bank = Signal(range(max(2, n_syn_banks)))
        m.d.sync += sel_bank.eq(sel_reg // per_bank if n_syn_banks > 1 else 0)
        for b, bank_out in enumerate(bank_outs):
            with m.Switch(sel_reg % per_bank if per_bank > 1 else 0):
                for i, out in enumerate(part_outs[b * per_bank:(b + 1) * per_bank]):
                    with m.Case(i):
                        m.d.sync += bank_out.eq(out)
        syn_data = Signal(syn_layout.size)
        with m.Switch(sel_bank):
            for b, bank_out in enumerate(bank_outs):
                with m.Case(b):
                    m.d.sync += syn_data.eq(bank_out)
        m.d.comb += fanout.syn_rd.data.eq(syn_data)
        # the host's read data, in two registered stages behind the words' registers (from
        # the second clock after the read): first each bank's synapse word (its part picked
        # within the bank) and the other memories' word (the memory picked), then the
        # synapse bank or the other word, and a word written in the read's clock, into
        # ``host_rdata``. In one clock the 24-part and the memory multiplexers were ECP5's
        # critical path.
        read_from = Signal(Memory)  # from the clock after the read: its memory's word is out
        read_bank = Signal()
        pick = Signal(Memory)  # from the second clock: its word is in the registers
        pick_bank = Signal()
        # a read of the word the registered write writes in the same clock: the memory's
        # word is undefined (NO_RW_CHECK), the written word is in ``w_data``
        read_written = Signal()
        read_written_word = Signal.like(w_data)
        pick_written = Signal()
        pick_written_word = Signal.like(w_data)
        with m.If(host_rd_en):
            m.d.sync += [
                read_from.eq(self.host_memory), read_bank.eq(acc_bank),
                read_written.eq(w_any & (w_memory == self.host_memory) & (w_addr == self.host_addr)),
                read_written_word.eq(w_data),
            ]
        m.d.sync += [pick.eq(read_from), pick_bank.eq(read_bank), pick_written.eq(read_written),
                     pick_written_word.eq(read_written_word)]
        words = {}
        for which, name in names.items():
            words[which] = Signal(len(Value.cast(rd[which].data)), name=f"host_{name}_word")
            m.d.sync += words[which].eq(Value.cast(rd[which].data))
        acc_words = [Signal(layouts.accumulator.size, name=f"host_acc{b}_word") for b in range(2)]
        for word, (port_rd, _) in zip(acc_words, banks, strict=True):
            m.d.sync += word.eq(Value.cast(port_rd.data))
        # stage 1 (from the third clock)
        other_word = Signal.like(self.host_rdata)
        with m.Switch(pick):
            for which, word in words.items():
                with m.Case(which):
                    m.d.sync += other_word.eq(word)
            with m.Case(Memory.ACCUMULATOR):
                m.d.sync += other_word.eq(Mux(pick_bank, acc_words[1], acc_words[0]))
        syn_host_banks = [Signal(syn_layout.size, name=f"host_syn_bank{b}_word") for b in range(n_syn_banks)]
        for b, bank_word in enumerate(syn_host_banks):
            with m.Switch(sel_bram % per_bank if per_bank > 1 else 0):
                for i, out in enumerate(part_outs[b * per_bank:(b + 1) * per_bank]):
                    with m.Case(i):
                        m.d.sync += bank_word.eq(out)
        host_bank = Signal(range(max(2, n_syn_banks)))
        from_synapse = Signal()
        written = Signal()
        written_word = Signal.like(w_data)
        m.d.sync += [host_bank.eq(sel_bram // per_bank if n_syn_banks > 1 else 0),
                     from_synapse.eq(pick == Memory.SYNAPSE),
                     written.eq(pick_written), written_word.eq(pick_written_word)]
        # stage 2: into the output register (from the fourth clock)
        host_word = Signal.like(self.host_rdata)
        m.d.comb += host_word.eq(other_word)
        with m.If(from_synapse):
            with m.Switch(host_bank):
                for b, bank_word in enumerate(syn_host_banks):
                    with m.Case(b):
                        m.d.comb += host_word.eq(bank_word)
        with m.If(written):
            m.d.comb += host_word.eq(written_word)
        m.d.sync += self.host_rdata.eq(host_word)

        # --- spikes: into two FIFOs as deep as the core has neurons, one for the fan-out and
        # one for the host. A step has at most ``count`` spikes and ends only when both are
        # empty, so neither can fill: the pass's spike stream is always ready, and the
        # pipeline's stall logic (a ready chain through every stage to the memories'
        # enables) is constant and disappears in synthesis. A slow host holds the step, not
        # the pass.
        m.submodules.host_fifo = host_fifo = SyncFIFOBuffered(width=spike_layout(config).size, depth=n_max)
        spikes = npass.spikes
        m.d.comb += [
            spikes.ready.eq(1),
            fifo.w_data.eq(spikes.payload),
            fifo.w_en.eq(spikes.valid),
            host_fifo.w_data.eq(spikes.payload),
            host_fifo.w_en.eq(spikes.valid),
            self.spikes.payload.eq(host_fifo.r_data),
            self.spikes.valid.eq(host_fifo.r_rdy),
            host_fifo.r_en.eq(self.spikes.ready),
        ]
        # the fan-out's spikes through a register: the FIFO's word is its block RAM's output
        # (5.8 ns clock-to-out on ECP5), which went on into the axon table's read address
        spike_valid = Signal()
        spike_word = Signal.like(fifo.r_data)
        m.d.comb += [
            fanout.spikes.payload.eq(spike_word),
            fanout.spikes.valid.eq(spike_valid),
            fifo.r_en.eq(~spike_valid | fanout.spikes.ready),
        ]
        with m.If(fifo.r_en & fifo.r_rdy):
            m.d.sync += [spike_valid.eq(1), spike_word.eq(fifo.r_data)]
        with m.Elif(fanout.spikes.ready):
            m.d.sync += spike_valid.eq(0)
        wiring.connect(m, fanout.push, queue.push)
        wiring.connect(m, fanout.direct, accumulate.direct)
        wiring.connect(m, queue.drained, accumulate.drained)

        # --- the controller ---------------------------------------------------------------
        slot = Signal(range(config.delay_slots))  # t mod delay_slots
        next_slot = Signal.like(slot)  # (t + 1) mod delay_slots: the slot drained in step t
        horizon = Signal.like(fanout.horizon)
        cycles = Signal(CYCLE_BITS)
        count = Signal.like(self.count)
        flags = Signal(3)
        pass_done = Signal()
        drain_done = Signal()
        m.d.comb += [
            next_slot.eq(Mux(slot == config.delay_slots - 1, 0, slot + 1)),
            queue.step.eq(self.t),
            queue.slot.eq(next_slot),
            accumulate.step.eq(self.t),
            fanout.slot.eq(slot),
            fanout.horizon.eq(horizon),
            fanout.graded.eq(flags[2]),
            *pass_and_status(self, npass, queue, accumulate, count, flags),
        ]
        m.d.sync += cycles.eq(cycles + 1)
        # every spike written to the FIFO is counted in its level from the next clock, and
        # the pass's last spike is handed over in the clock before its ``done`` (a register)
        # the step's end, decided a clock ahead into a register (the blocks' busy signals are
        # far apart on the die, and the end reaches the queue's counters, the step and the
        # banks), in the clock the step would have ended in with the end decided in it:
        # once the pass and the drain are done and every block is idle, nothing starts
        # again before the next step. The pass's ``done`` counts in the clock it comes (its
        # last spike is in the FIFOs' levels by then); the drain's ``done`` hands its last
        # event to Accumulate, which reads its word from the next clock, so it counts from
        # its register. With the fan-out idle Accumulate takes no event and the queue no
        # push, and their ``settling`` says their last writes come by the next clock: the
        # step's ``done`` clock, while the bank is still Accumulate's.
        settled_blocks = ((fifo.level == 0) & ~spike_valid & (host_fifo.level == 0) & ~fanout.busy
                          & accumulate.settling & queue.settling)

        # high in START only, as a register of its own: the queue's drain pulse reaches its
        # push.ready and the free FIFO's address in the same clock, so no decode of the
        # controller's state goes before it
        starting = Signal()
        m.d.sync += starting.eq(0)
        m.d.comb += [npass.start.eq(starting), queue.drain.eq(starting)]
        # ``busy`` (out of IDLE; it gates every host access) and ``zeroing`` (CLEAR) are
        # registers likewise, set and cleared with the state's changes
        busy = Signal()
        m.d.comb += self.busy.eq(busy)
        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.clear):
                    m.d.comb += [queue.clear.eq(1), accumulate.clear.eq(1)]
                    m.d.sync += [self.t.eq(0), slot.eq(0), bank.eq(0), zero_addr.eq(0), busy.eq(1),
                                 zeroing.eq(1), host_owns.eq(0)]
                    m.next = "CLEAR"
                with m.Elif(self.step):
                    m.d.sync += [
                        cycles.eq(1),
                        count.eq(self.count),
                        flags.eq(Cat(self.dendritic, self.noise, self.graded)),
                        horizon.eq(step_horizon(m, config, self.t, self.timesteps)),
                        pass_done.eq(0),
                        drain_done.eq(0),
                        finished.eq(0),
                        starting.eq(1),
                        busy.eq(1),
                    ]
                    m.next = "START"
            with m.State("CLEAR"):
                m.d.sync += zero_addr.eq(Mux(zero_addr == n_max - 1, zero_addr, zero_addr + 1))
                with m.If((zero_addr == n_max - 1) & ~queue.busy):
                    m.d.comb += self.done.eq(1)
                    m.d.sync += [busy.eq(0), zeroing.eq(0), host_owns.eq(1)]
                    m.next = "IDLE"
            with m.State("START"):
                # the blocks latch their inputs in this clock; their reads start in the next
                m.d.sync += [running.eq(1), host_owns.eq(0), acc_owns[0].eq(bank), acc_owns[1].eq(~bank)]
                m.next = "RUN"
            with m.State("RUN"):
                with m.If(npass.done):
                    m.d.sync += pass_done.eq(1)
                with m.If(queue.done):
                    m.d.sync += drain_done.eq(1)
                # a one-clock pulse: the step's end acts on it alone, with no decode of the state
                m.d.sync += finished.eq(~finished & (pass_done | npass.done) & drain_done & settled_blocks)
                with m.If(finished):
                    m.next = "IDLE"
        with m.If(finished):
            m.d.comb += [self.done.eq(1), queue.step_end.eq(1)]
            m.d.sync += [
                running.eq(0),
                busy.eq(0),
                host_owns.eq(1),
                acc_owns[0].eq(0),
                acc_owns[1].eq(0),
                self.t.eq(self.t + 1),
                slot.eq(next_slot),
                bank.eq(~bank),
                self.cycles.eq(cycles + 1),
            ]
        return m
