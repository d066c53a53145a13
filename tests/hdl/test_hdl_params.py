# amaranth: UnusedElaboratable=no
"""Construction-time checks of the HDL blocks: bad parameters name the field and the value.

(The first line silences Amaranth's warning about components that were refused in
``__init__`` and so, rightly, never elaborated.)
"""

from __future__ import annotations

import pytest

from neurofab.errors import ValidationError
from neurofab.hdl.config import get_preset
from neurofab.hdl.lfsr import Lfsr
from neurofab.hdl.neuron import NeuronUpdate
from neurofab.hdl.neuron_pass import NeuronPass


@pytest.mark.parametrize("name, value", [
    ("input_width", 1), ("input_width", 65), ("input_width", "32"), ("stimulus_width", 0),
    ("tag_width", -1), ("tag_width", 257), ("tag_width", True),
])
def test_neuron_update_rejects_bad_widths(name, value):
    with pytest.raises(ValidationError) as info:
        NeuronUpdate(**{name: value})
    assert info.value.path == f"NeuronUpdate.{name}"
    assert repr(value) in str(info.value)


@pytest.mark.parametrize("seed", [0, 65536, -1, 1.0, None])
def test_lfsr_rejects_bad_seed(seed):
    with pytest.raises(ValidationError) as info:
        Lfsr(seed)
    assert info.value.path == "Lfsr.seed"
    assert repr(seed) in str(info.value)


def test_neuron_update_keeps_its_widths():
    dut = NeuronUpdate(input_width=20, stimulus_width=24, tag_width=10)
    assert (dut.input_width, dut.stimulus_width, dut.tag_width) == (20, 24, 10)
    assert NeuronUpdate.LATENCY == 6


@pytest.mark.parametrize("kwargs, path, shown", [
    (dict(config="icebreaker"), "NeuronPass.config", "'icebreaker'"),
    (dict(config=None), "NeuronPass.config", "None"),
])
def test_neuron_pass_rejects_bad_parameters(kwargs, path, shown):
    with pytest.raises(ValidationError) as info:
        NeuronPass(**kwargs)
    assert info.value.path == path
    assert shown in str(info.value)


def test_neuron_pass_ports_follow_the_core_shape():
    config = get_preset("ulx3s-85f")
    dut = NeuronPass(config)
    assert len(dut.neuron_rd.addr) == config.neuron_bits == 10
    assert len(dut.acc_rd.addr) == 10  # one word of 4 compartments per neuron
    assert dut.acc_rd.data.shape().size == 4 * config.acc_bits
    assert len(dut.profile_rd.addr) == config.profile_bits
    assert len(dut.count) == 11  # 0 .. 1024
    # the iCE40 core's pass: 512 neurons, its profiles read as six 16-bit rows each
    ice = get_preset("icebreaker")
    dut = NeuronPass(ice)
    assert len(dut.neuron_rd.addr) == ice.neuron_bits == 9 and len(dut.count) == 10
    assert dut.acc_rd.data.shape().size == 4 * 20
    assert len(dut.profile_rd.addr) == (ice.profiles * 6 - 1).bit_length()
