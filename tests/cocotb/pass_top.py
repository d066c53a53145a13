"""A Verilog top level for the cocotb bench of ``NeuronPass``: the pass and its memories.

The neuron words and profiles are the memories' initial contents (as a bitstream would
carry an image); the accumulators and stimulus sums are loaded through extra write
ports, and the neuron words and accumulators read back through extra read ports, as
the host link will do on a board.
"""

from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory, ReadPort, WritePort
from amaranth.lib.wiring import In, Out

from neurofab.hdl.config import CoreConfig, count_bits
from neurofab.hdl.layouts import PROFILE_LAYOUT, core_layouts
from neurofab.hdl.neuron_pass import NeuronPass, spike_layout

__all__ = ["PassTop"]


class PassTop(wiring.Component):
    """``NeuronPass`` over its own memories, with load and peek ports for a bench.

    Members
    -------
    start, count, dendritic, noise, graded, busy, done, spikes
        The pass's own members, passed through.
    acc_load, stim_load : write ports (``addr``, ``data``, ``en``) of the accumulator
        words (``layouts.accumulator``) and the stimulus memory (``layouts.stimulus``).
    neuron_peek, acc_peek : read ports (``addr``, ``en``; ``data`` one clock later) of the
        neuron words and the accumulator words.
    """

    def __init__(self, config: CoreConfig, words, profiles):
        self._config = config
        self._words = words
        self._profiles = profiles
        layouts = core_layouts(config)
        bits = config.neuron_bits
        super().__init__({
            "start": In(1),
            "count": In(count_bits(config.neurons)),
            "dendritic": In(1),
            "noise": In(1),
            "graded": In(1),
            "busy": Out(1),
            "done": Out(1),
            "spikes": Out(stream.Signature(spike_layout(config))),
            "acc_load": Out(WritePort.Signature(addr_width=bits, shape=layouts.accumulator)),
            "stim_load": Out(WritePort.Signature(addr_width=bits, shape=layouts.stimulus)),
            "neuron_peek": Out(ReadPort.Signature(addr_width=bits, shape=layouts.neuron)),
            "acc_peek": Out(ReadPort.Signature(addr_width=bits, shape=layouts.accumulator)),
        })

    def elaborate(self, platform):
        m = Module()
        config = self._config
        layouts = core_layouts(config)
        m.submodules.npass = npass = NeuronPass(config)
        m.submodules.neurons = neurons = Memory(shape=layouts.neuron, depth=config.neurons, init=self._words)
        m.submodules.profiles = profiles = Memory(shape=PROFILE_LAYOUT, depth=config.profiles,
                                                  init=self._profiles)
        m.submodules.accumulators = accumulators = Memory(shape=layouts.accumulator, depth=config.neurons,
                                                          init=[])
        m.submodules.stimulus = stimulus = Memory(shape=layouts.stimulus, depth=config.neurons, init=[])

        for name in ("start", "count", "dendritic", "noise", "graded"):
            m.d.comb += getattr(npass, name).eq(getattr(self, name))
        m.d.comb += [self.busy.eq(npass.busy), self.done.eq(npass.done)]
        wiring.connect(m, npass.spikes, wiring.flipped(self.spikes))

        wiring.connect(m, npass.neuron_rd, neurons.read_port())
        wiring.connect(m, npass.neuron_wr, neurons.write_port())
        wiring.connect(m, npass.profile_rd, profiles.read_port())
        wiring.connect(m, npass.acc_rd, accumulators.read_port())
        wiring.connect(m, npass.acc_wr, accumulators.write_port())
        wiring.connect(m, npass.stim_rd, stimulus.read_port())

        wiring.connect(m, wiring.flipped(self.acc_load), accumulators.write_port())
        wiring.connect(m, wiring.flipped(self.stim_load), stimulus.write_port())
        wiring.connect(m, wiring.flipped(self.neuron_peek), neurons.read_port())
        wiring.connect(m, wiring.flipped(self.acc_peek), accumulators.read_port())
        return m
