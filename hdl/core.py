"""One neuromorphic core: its memories, the three blocks of a timestep, and the controller.

:class:`Core` owns every memory of a single core (docs/memory-map.md, "One core") and
runs one timestep per ``step`` command:

1. **Drain**: :class:`~neurofab.hdl.event_queue.EventQueue` adds the events of arrival
   slot ``t mod delay_slots`` into the accumulators;
2. **Neuron pass**: :class:`~neurofab.hdl.neuron_pass.NeuronPass` updates every neuron
   and lists the spikes;
3. **Fan-out**: :class:`~neurofab.hdl.fanout.FanOut` turns each spike into events that
   the queue holds until their arrival step.

Phases 2 and 3 overlap: the pass's spike list is a stream straight into the fan-out
(and, through a fork, out to the host), since the fan-out touches neither the neuron
memory nor the accumulators that the pass works on. The step ends when the pass has
written its last neuron and the fan-out and the queue are idle. The learning sweep and
routes to other cores are not part of this core yet (docs/hardware.md).

The host reaches every memory through one word-wide port (``host_*``) while the core
is idle, the way a host link will: to load an image, keep the stimulus sums current
and read the state back.
"""

from amaranth.hdl import Cat, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import enum, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from neurofab.errors import ValidationError

from .config import CoreConfig, addr_bits, count_bits
from .event_queue import STEP_BITS, EventQueue
from .fanout import FanOut
from .layouts import PROFILE_LAYOUT, core_layouts
from .neuron_pass import NeuronPass, spike_layout

__all__ = ["HostMemory", "CYCLE_BITS", "host_word_bits", "host_addr_bits", "Core"]

#: width of the per-step cycle counters
CYCLE_BITS = 32


class HostMemory(enum.Enum, shape=unsigned(3)):
    """The memories the host port reaches; numbered as ``layouts.Memory`` for the image's.

    ``STIMULUS`` (one signed stimulus sum per neuron) and ``ACCUMULATOR`` are the core's
    runtime memories; their numbers belong with ``layouts.Memory`` once the memory map
    lists them.
    """

    PROFILE = 0
    NEURON = 1
    AXON = 2
    SYNAPSE = 3
    STIMULUS = 6
    ACCUMULATOR = 7


def _depths(config: CoreConfig) -> dict:
    return {
        HostMemory.PROFILE: config.profiles,
        HostMemory.NEURON: config.neurons,
        HostMemory.AXON: config.axons,
        HostMemory.SYNAPSE: config.synapse_words,
        HostMemory.STIMULUS: config.neurons,
        HostMemory.ACCUMULATOR: config.accumulators,
    }


def _shapes(config: CoreConfig, stimulus_width: int) -> dict:
    layouts = core_layouts(config)
    return {
        HostMemory.PROFILE: PROFILE_LAYOUT,
        HostMemory.NEURON: layouts.neuron,
        HostMemory.AXON: layouts.axon,
        HostMemory.SYNAPSE: layouts.synapse,
        HostMemory.STIMULUS: signed(stimulus_width),
        HostMemory.ACCUMULATOR: signed(config.acc_bits),
    }


def host_word_bits(config: CoreConfig, stimulus_width: int = 32) -> int:
    """Width of the host port's data: the widest word of any memory it reaches."""
    return max(_size(shape) for shape in _shapes(config, stimulus_width).values())


def host_addr_bits(config: CoreConfig) -> int:
    """Width of the host port's address: the deepest memory's."""
    return max(addr_bits(depth) for depth in _depths(config).values())


def _size(shape) -> int:
    return shape.size if hasattr(shape, "size") else shape.width


class Core(wiring.Component):
    """A single core: memories, drain, neuron pass, fan-out, and the step controller.

    Parameters
    ----------
    config : CoreConfig
        The core's shape (``max_cores`` must be 1: routes are not built yet).
    stimulus_width : int
        Width of a neuron's stimulus sum (signed), 24 .. 64.

    Members
    -------
    clear : ``In(1)``
        Pulse while idle: before a job, empty the event queue, clear its errors and set
        the step counter ``t`` to 0 (the memories keep their contents).
    step : ``In(1)``
        Pulse while idle: run timestep ``t`` (drain, neuron pass with fan-out), then
        ``t += 1``.
    count : ``In(count_bits(neurons))``
        Local neurons (the pass updates ``0 .. count - 1``).
    timesteps : ``In(STEP_BITS)``
        ``T``: an event arriving at ``t >= T`` is not queued.
    dendritic, noise, graded : ``In(1)``
        The job's flags. Inputs are sampled at ``step`` and must hold until ``done``.
    busy : ``Out(1)``
        A clear or a step runs (the host port is ignored then).
    done : ``Out(1)``
        One-clock pulse at the end of a clear or a step.
    t : ``Out(STEP_BITS)``
        Steps run since the last clear.
    cycles, drain_cycles : ``Out(CYCLE_BITS)``
        Clocks of the last step, from the ``step`` edge to ``done`` inclusive, and of its
        drain phase.
    events_held : ``Out(count_bits(event_queue))``
        Events in flight now.
    queue_overflow, acc_overflow : ``Out(1)``; ``queue_overflow_step``, ``acc_overflow_step`` :
        ``Out(STEP_BITS)``: the event queue's sticky errors and their steps (see
        :class:`~neurofab.hdl.event_queue.EventQueue`).
    spikes : ``Out(stream.Signature(spike_layout(config)))``
        ``(neuron, payload)`` of each spike of the step, in neuron order; a stall holds the
        step.
    host_memory : ``In(HostMemory)``; host_addr : ``In(host_addr_bits(config))``;
    host_wdata : ``In(host_word_bits(config))``; host_we, host_re : ``In(1)``;
    host_rdata : ``Out(host_word_bits(config))``
        While not ``busy``: ``host_we`` writes word ``host_addr`` of ``host_memory`` (the
        low bits of ``host_wdata``) at the clock edge; ``host_re`` reads it, the word on
        ``host_rdata`` from the next clock until the next read.

    Cycle budget of step ``t`` (clocks from ``step`` to ``done`` inclusive), ``n`` neurons,
    ``c`` compartments, ``E`` events draining, ``S`` spikes with ``K`` synapses in all:
    ``1`` (start) + drain (``E + 4``, or 2 when the slot is empty) + pass
    (``(3 + c) * n + 5``) + the fan-out's tail after the pass, + 1 (done). The fan-out
    runs under the pass (``max(syn_count, 2)`` clocks a spike) and adds clocks only when
    a spike's synapses outlast the neurons still to update.
    """

    def __init__(self, config: CoreConfig, *, stimulus_width: int = 32):
        if not isinstance(config, CoreConfig):
            raise ValidationError("Core.config", f"must be a CoreConfig, not {config!r}")
        if config.max_cores != 1:
            raise ValidationError("Core.config", f"must be a single-core shape (max_cores 1; routes "
                                  f"between cores are not built), not max_cores {config.max_cores}")
        if isinstance(stimulus_width, bool) or not isinstance(stimulus_width, int) \
                or not 24 <= stimulus_width <= 64:
            raise ValidationError("Core.stimulus_width",
                                  f"must be an integer in 24 .. 64, not {stimulus_width!r}")
        self._config = config
        self._stimulus_width = stimulus_width
        word = host_word_bits(config, stimulus_width)
        super().__init__({
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
            "drain_cycles": Out(CYCLE_BITS),
            "events_held": Out(count_bits(config.event_queue)),
            "queue_overflow": Out(1),
            "queue_overflow_step": Out(STEP_BITS),
            "acc_overflow": Out(1),
            "acc_overflow_step": Out(STEP_BITS),
            "spikes": Out(stream.Signature(spike_layout(config))),
            "host_memory": In(HostMemory),
            "host_addr": In(host_addr_bits(config)),
            "host_wdata": In(word),
            "host_we": In(1),
            "host_re": In(1),
            "host_rdata": Out(word),
        })

    @property
    def config(self) -> CoreConfig:
        return self._config

    def elaborate(self, platform):
        m = Module()
        config = self._config
        shapes = _shapes(config, self._stimulus_width)
        depths = _depths(config)

        m.submodules.npass = npass = NeuronPass(config, stimulus_width=self._stimulus_width)
        m.submodules.fanout = fanout = FanOut(config)
        m.submodules.queue = queue = EventQueue(config)

        # --- memories: one read and one write port each, shared by phase ------------------
        phase_drain = Signal()
        phase_pass = Signal()  # the pass and the fan-out under it
        host = ~self.busy
        memories, read_ports, write_ports = {}, {}, {}
        for which in HostMemory:
            memory = Memory(shape=shapes[which], depth=depths[which], init=[])
            m.submodules[f"{which.name.lower()}_memory"] = memory
            memories[which] = memory
            read_ports[which] = memory.read_port()
            write_ports[which] = memory.write_port()
            m.d.comb += read_ports[which].en.eq(0)

        def share_read(which, users):
            """``users``: (select, ReadPort-like interface); the data goes to all of them."""
            port = read_ports[which]
            for _, user in users:
                m.d.comb += user.data.eq(port.data)
            for i, (select, user) in enumerate(users):
                with (m.If if i == 0 else m.Elif)(select):
                    m.d.comb += [port.addr.eq(user.addr), port.en.eq(user.en)]

        def share_write(which, users):
            port = write_ports[which]
            for i, (select, user) in enumerate(users):
                with (m.If if i == 0 else m.Elif)(select):
                    m.d.comb += [port.addr.eq(user.addr), port.data.eq(user.data), port.en.eq(user.en)]

        host_target = {which: host & (self.host_memory == which) for which in HostMemory}
        host_rd = {which: _HostRead(self, which, shapes[which]) for which in HostMemory}
        host_wr = {which: _HostWrite(self, which, shapes[which]) for which in HostMemory}
        for which in HostMemory:
            m.d.comb += [
                host_rd[which].addr.eq(self.host_addr),
                host_rd[which].en.eq(host_target[which] & self.host_re),
                host_wr[which].addr.eq(self.host_addr),
                host_wr[which].data.eq(self.host_wdata),
                host_wr[which].en.eq(host_target[which] & self.host_we),
            ]

        N, P, A, Y, S, C = (HostMemory.NEURON, HostMemory.PROFILE, HostMemory.AXON, HostMemory.SYNAPSE,
                            HostMemory.STIMULUS, HostMemory.ACCUMULATOR)
        share_read(N, [(phase_pass, npass.neuron_rd), (host, host_rd[N])])
        share_write(N, [(phase_pass, npass.neuron_wr), (host, host_wr[N])])
        share_read(P, [(phase_pass, npass.profile_rd), (host, host_rd[P])])
        share_write(P, [(host, host_wr[P])])
        share_read(S, [(phase_pass, npass.stim_rd), (host, host_rd[S])])
        share_write(S, [(host, host_wr[S])])
        share_read(C, [(phase_drain, queue.acc_rd), (phase_pass, npass.acc_rd), (host, host_rd[C])])
        share_write(C, [(phase_drain, queue.acc_wr), (phase_pass, npass.acc_wr), (host, host_wr[C])])
        share_read(A, [(phase_pass, fanout.axon_rd), (host, host_rd[A])])
        share_write(A, [(host, host_wr[A])])
        share_read(Y, [(phase_pass, fanout.syn_rd), (host, host_rd[Y])])
        share_write(Y, [(host, host_wr[Y])])

        # the host's read data: the memory it last read
        read_from = Signal(HostMemory)
        with m.If(self.host_re & host):
            m.d.sync += read_from.eq(self.host_memory)
        with m.Switch(read_from):
            for which in HostMemory:
                with m.Case(which):
                    m.d.comb += self.host_rdata.eq(Value.cast(read_ports[which].data))

        # --- the spike list: to the fan-out and to the host, each taking every spike ------
        to_fanout, to_host = Signal(), Signal()  # taken already by that side
        spikes = npass.spikes
        m.d.comb += [
            fanout.spikes.payload.eq(spikes.payload),
            self.spikes.payload.eq(spikes.payload),
            fanout.spikes.valid.eq(spikes.valid & ~to_fanout),
            self.spikes.valid.eq(spikes.valid & ~to_host),
            spikes.ready.eq((to_fanout | fanout.spikes.ready) & (to_host | self.spikes.ready)),
        ]
        with m.If(spikes.valid & spikes.ready):
            m.d.sync += [to_fanout.eq(0), to_host.eq(0)]
        with m.Else():
            with m.If(fanout.spikes.valid & fanout.spikes.ready):
                m.d.sync += to_fanout.eq(1)
            with m.If(self.spikes.valid & self.spikes.ready):
                m.d.sync += to_host.eq(1)
        wiring.connect(m, fanout.events, queue.push)

        # --- the controller ---------------------------------------------------------------
        slot = Signal(range(config.delay_slots))
        horizon = Signal.like(fanout.horizon)
        cycles = Signal(CYCLE_BITS)
        finish = Signal()  # the step's last clock
        count = Signal.like(self.count)
        flags = Signal(3)
        m.d.comb += [
            queue.step.eq(self.t),
            queue.slot.eq(slot),
            fanout.slot.eq(slot),
            fanout.horizon.eq(horizon),
            fanout.graded.eq(flags[2]),
            npass.count.eq(count),
            npass.dendritic.eq(flags[0]),
            npass.noise.eq(flags[1]),
            npass.graded.eq(flags[2]),
            self.events_held.eq(queue.held),
            self.queue_overflow.eq(queue.queue_overflow),
            self.queue_overflow_step.eq(queue.queue_overflow_step),
            self.acc_overflow.eq(queue.acc_overflow),
            self.acc_overflow_step.eq(queue.acc_overflow_step),
        ]
        # events arriving at t + 1 + delay >= T are not queued: delay < T - 1 - t
        ahead = Signal(STEP_BITS)  # T - 1 - t, where t < T
        m.d.comb += ahead.eq(self.timesteps - 1 - self.t)
        last_step = self.t + 1 >= self.timesteps  # no event of this step arrives before T
        m.d.sync += cycles.eq(cycles + 1)

        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.clear):
                    m.d.comb += queue.clear.eq(1)
                    m.d.sync += [self.t.eq(0), slot.eq(0)]
                    m.next = "CLEAR"
                with m.Elif(self.step):
                    m.d.comb += queue.drain.eq(1)
                    m.d.sync += [
                        cycles.eq(1),
                        count.eq(self.count),
                        flags.eq(Cat(self.dendritic, self.noise, self.graded)),
                        horizon.eq(Mux(last_step, 0,
                                       Mux(ahead > config.delay_slots, config.delay_slots, ahead))),
                    ]
                    m.next = "DRAIN"
            with m.State("CLEAR"):
                m.d.comb += self.busy.eq(1)
                with m.If(queue.done):
                    m.d.comb += self.done.eq(1)
                    m.next = "IDLE"
            with m.State("DRAIN"):
                m.d.comb += [self.busy.eq(1), phase_drain.eq(1)]
                with m.If(queue.done):
                    # the pass latches its inputs in this clock; its reads start in the next
                    m.d.comb += npass.start.eq(1)
                    m.d.sync += self.drain_cycles.eq(cycles + 1)
                    m.next = "PASS"
            with m.State("PASS"):
                m.d.comb += [self.busy.eq(1), phase_pass.eq(1)]
                with m.If(npass.done):
                    with m.If(~fanout.busy & ~queue.busy):
                        m.d.comb += finish.eq(1)
                        m.next = "IDLE"
                    with m.Else():
                        m.next = "FAN_OUT"
            with m.State("FAN_OUT"):
                m.d.comb += [self.busy.eq(1), phase_pass.eq(1)]
                with m.If(~fanout.busy & ~queue.busy):
                    m.d.comb += finish.eq(1)
                    m.next = "IDLE"
        with m.If(finish):
            m.d.comb += self.done.eq(1)
            m.d.sync += [
                self.t.eq(self.t + 1),
                slot.eq(Mux(slot == config.delay_slots - 1, 0, slot + 1)),
                self.cycles.eq(cycles + 1),
            ]
        return m


class _HostRead:
    """The host's side of a shared read port: ``addr``, ``en`` from the host, ``data`` to it."""

    def __init__(self, core, which, shape):
        self.addr = Signal(addr_bits(_depths(core.config)[which]), name=f"host_{which.name.lower()}_raddr")
        self.en = Signal(name=f"host_{which.name.lower()}_ren")
        self.data = Signal(shape, name=f"host_{which.name.lower()}_rdata")


class _HostWrite:
    """The host's side of a shared write port: the low bits of ``host_wdata`` as the word."""

    def __init__(self, core, which, shape):
        self.addr = Signal(addr_bits(_depths(core.config)[which]), name=f"host_{which.name.lower()}_waddr")
        self.en = Signal(name=f"host_{which.name.lower()}_wen")
        self.data = Signal(shape, name=f"host_{which.name.lower()}_wdata")
