# amaranth: UnusedElaboratable=no
"""The single-port RAM (hdl/spram.py): the lib.memory form in the Amaranth simulator, and
the SB_SPRAM256KA form's mapping under Yosys ``synth_ice40``.

The plain model here (:class:`SinglePortModel`, :func:`random_operations`) is also the
model of the cocotb bench (tests/cocotb/test_cocotb_spram.py), which runs the SPRAM form on
Verilator with Yosys's ``cells_sim.v``: both forms are held to the same clock-by-clock
contract, and the model never looks at the hardware.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest
from amaranth.hdl import Fragment, Instance, Module, Value, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from neurofab.errors import ValidationError
from neurofab.hdl.config import addr_bits
from neurofab.hdl.spram import MAX_DEPTH, SPRAM_DEPTH, SinglePortRAM, spram_tiles
from neurofab.hdl.synthesis import synthesize

__all__ = ["Operation", "SinglePortModel", "random_operations"]


@dataclass(frozen=True)
class Operation:
    """The inputs of one clock."""

    addr: int
    wdata: int
    we: bool
    en: bool


class SinglePortModel:
    """What ``rdata`` shows after each clock edge; ``None`` where the contract leaves it undefined.

    A write stores (and reads nothing, whatever ``en``); a read without a write loads the
    word onto ``rdata``; otherwise ``rdata`` holds. A word never written reads undefined.
    """

    def __init__(self):
        self.words: dict[int, int] = {}
        self.rdata: int | None = None

    def clock(self, op: Operation) -> int | None:
        if op.we:
            self.words[op.addr] = op.wdata
        elif op.en:
            self.rdata = self.words.get(op.addr)
        return self.rdata


def random_operations(seed: int, count: int, *, depth: int, width: int) -> list[Operation]:
    """``count`` clocks of random traffic: reads, writes (some with ``en`` high too), idles.

    Half the addresses come from a few hot words (tile edges among them), so reads find
    written words, a word is often rewritten right after it is read (the hold rule), and
    consecutive accesses switch banks; the rest are uniform over ``depth``.
    """
    rng = random.Random(seed)
    edges = {0, depth - 1, min(SPRAM_DEPTH - 1, depth - 1), min(SPRAM_DEPTH, depth - 1)}
    hot = sorted(edges | {rng.randrange(depth) for _ in range(6)})
    ops = []
    for _ in range(count):
        addr = rng.choice(hot) if rng.random() < 0.5 else rng.randrange(depth)
        kind = rng.random()
        if kind < 0.40:
            ops.append(Operation(addr, rng.getrandbits(width), False, True))
        elif kind < 0.75:
            ops.append(Operation(addr, rng.getrandbits(width), True, rng.random() < 0.5))
        else:  # idle: address and data wander, nothing may happen
            ops.append(Operation(addr, rng.getrandbits(width), False, False))
    return ops


def _simulate(dut: SinglePortRAM, ops: list[Operation]) -> list[int]:
    """``rdata`` after each clock edge of ``ops`` on the Amaranth simulator."""
    seen = []
    mask = (1 << dut.width) - 1  # the model's words are bit patterns, also of a signed shape

    async def bench(ctx):
        for op in ops:
            ctx.set(dut.addr, op.addr)
            ctx.set(Value.cast(dut.wdata), op.wdata)
            ctx.set(dut.we, op.we)
            ctx.set(dut.en, op.en)
            await ctx.tick()
            seen.append(ctx.get(Value.cast(dut.rdata)) & mask)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return seen


def _check_against_model(ops: list[Operation], seen: list[int]) -> int:
    """Compare every defined ``rdata``; return how many clocks were checked."""
    model = SinglePortModel()
    checked = 0
    for clock, (op, got) in enumerate(zip(ops, seen, strict=True)):
        want = model.clock(op)
        if want is not None:
            assert got == want, f"clock {clock}: {op} -> rdata {got:#x}, model {want:#x}"
            checked += 1
    return checked


# -- the contract, worked by hand -------------------------------------------------------

def test_read_latency_hold_and_write_priority():
    dut = SinglePortRAM(shape=16, depth=1024, primitive=False)
    ops = [
        Operation(5, 0x1111, True, False),   # write 5
        Operation(9, 0x2222, True, True),    # write 9: en is ignored, nothing read
        Operation(5, 0, False, True),        # read 5 -> 0x1111 after this edge
        Operation(5, 0x3333, True, False),   # rewrite 5: rdata keeps the old word
        Operation(9, 0, False, False),       # idle: held
        Operation(5, 0, False, True),        # read 5 -> 0x3333
        Operation(9, 0x4444, True, True),    # a write with en: no read, held
        Operation(9, 0, False, True),        # read 9 -> 0x4444
    ]
    seen = _simulate(dut, ops)
    assert seen[2:] == [0x1111, 0x1111, 0x1111, 0x3333, 0x3333, 0x4444]
    assert _check_against_model(ops, seen) == 6


# -- random sequences against the model ---------------------------------------------------

_LAYOUT = data.StructLayout({"weight": signed(16), "delay": unsigned(6), "target": unsigned(10)})


@pytest.mark.parametrize("shape, depth, seed", [
    (16, SPRAM_DEPTH, 1),         # one tile
    (48, SPRAM_DEPTH, 2),         # three lanes: the synapse word's SPRAM part
    (20, 40000, 3),               # two lanes (the top one partial), three banks, depth not a power of 2
    (_LAYOUT, MAX_DEPTH, 4),      # a layout as the word, the deepest memory
    (signed(7), 3, 5),            # tiny
    (1, 1, 6),                    # one bit, one word: no address bits
], ids=["16x16K", "48x16K", "20x40000", "layout32x64K", "s7x3", "1x1"])
def test_fallback_random_sequences_match_model(shape, depth, seed):
    dut = SinglePortRAM(shape=shape, depth=depth, primitive=False)
    ops = random_operations(seed, 3000, depth=depth, width=dut.width)
    checked = _check_against_model(ops, _simulate(dut, ops))
    assert checked > 1000  # about half the clocks show a word that was written


def test_model_sees_every_kind_of_clock():
    """The generator really produces the cases the contract distinguishes."""
    ops = random_operations(3, 3000, depth=40000, width=20)
    assert any(op.we and op.en for op in ops)
    assert any(op.we and not op.en for op in ops)
    assert any(op.en and not op.we for op in ops)
    assert any(not op.en and not op.we for op in ops)
    # a read followed by a write of the same word (rdata must keep the old word)
    assert any(a.en and not a.we and b.we and a.addr == b.addr for a, b in zip(ops, ops[1:], strict=False))
    assert {op.addr // SPRAM_DEPTH for op in ops} == {0, 1, 2}


# -- choosing the form ---------------------------------------------------------------------

class _Platform:
    """Just enough of an amaranth.vendor platform: its ``device``."""

    def __init__(self, device: str):
        self.device = device


def _instances(ram: SinglePortRAM, platform) -> list[str]:
    fragment = Fragment.get(ram, platform)
    found = []

    def walk(frag):
        for sub, _name, _loc in frag.subfragments:
            if isinstance(sub, Instance):
                found.append(sub.type)
            walk(sub)

    walk(fragment)
    return found


def test_form_follows_platform_and_flag():
    ram = SinglePortRAM(shape=48, depth=SPRAM_DEPTH)
    assert ram.tiles == (3, 1)
    assert not ram.uses_primitive(None)
    assert ram.uses_primitive(_Platform("iCE40UP5K"))
    assert ram.uses_primitive(_Platform("iCE40UP3K"))
    assert not ram.uses_primitive(_Platform("iCE40HX8K"))
    assert not ram.uses_primitive(_Platform("LFE5U-85F"))
    assert _instances(ram, _Platform("iCE40UP5K")) == ["SB_SPRAM256KA"] * 3
    assert _instances(ram, None) == []
    assert SinglePortRAM(shape=8, depth=4, primitive=True).uses_primitive(None)
    assert not SinglePortRAM(shape=8, depth=4, primitive=False).uses_primitive(_Platform("iCE40UP5K"))


def test_primitive_on_a_device_without_spram_is_refused():
    ram = SinglePortRAM(shape=16, depth=16, primitive=True)
    with pytest.raises(ValidationError, match=r"SinglePortRAM.primitive .*not 'LFE5U-85F'"):
        ram.uses_primitive(_Platform("LFE5U-85F"))


@pytest.mark.parametrize("width, depth, tiles", [
    (1, 1, (1, 1)), (16, 16384, (1, 1)), (17, 16384, (2, 1)), (16, 16385, (1, 2)),
    (48, 16384, (3, 1)), (16, 65536, (1, 4)), (68, 1024, (5, 1)), (20, 40000, (2, 3)),
])
def test_tile_count(width, depth, tiles):
    assert spram_tiles(width, depth) == tiles


@pytest.mark.parametrize("kwargs, message", [
    (dict(shape=16, depth=0), r"SinglePortRAM.depth must be an integer in 1 .. 65536, not 0"),
    (dict(shape=16, depth=65537), r"SinglePortRAM.depth must be an integer in 1 .. 65536, not 65537"),
    (dict(shape=16, depth=True), r"SinglePortRAM.depth .* not True"),
    (dict(shape=16, depth=16.0), r"SinglePortRAM.depth .* not 16.0"),
    (dict(shape=0, depth=16), r"SinglePortRAM.shape must be at least 1 bit wide, not 0"),
    (dict(shape="wide", depth=16), r"SinglePortRAM.shape must be a shape, not 'wide'"),
    (dict(shape=16, depth=16, primitive="yes"),
     r"SinglePortRAM.primitive must be True, False or None, not 'yes'"),
    (dict(shape=16, depth=16, domain=""), r"SinglePortRAM.domain must be a clock domain name, not ''"),
    (dict(shape=16, depth=16, hold=1), r"SinglePortRAM.hold must be True or False, not 1"),
])
def test_bad_parameters_are_named(kwargs, message):
    with pytest.raises(ValidationError, match=message):
        SinglePortRAM(**kwargs)


# -- the SPRAM form under synth_ice40 --------------------------------------------------------

@pytest.mark.parametrize("width, depth", [(48, SPRAM_DEPTH), (16, MAX_DEPTH), (20, 40000)],
                         ids=["48x16K", "16x64K", "20x40000"])
def test_spram_form_maps_to_exact_tile_count(width, depth, record_property):
    """Exactly ``lanes * banks`` SB_SPRAM256KA, no EBR, and only the documented logic:
    ``width`` hold flip-flops, the fresh flag and ``ceil(log2 banks)`` bank bits."""
    ram = SinglePortRAM(shape=width, depth=depth, primitive=True)
    report = synthesize(ram, family="ice40", top="spram")
    record_property("synthesis", report.summary())
    lanes, banks = spram_tiles(width, depth)
    assert report.cells.get("SB_SPRAM256KA", 0) == lanes * banks, report.cells
    assert report.brams == 0 and report.dsps == 0, report.summary()
    assert report.ffs == width + 1 + (banks - 1).bit_length(), report.summary()
    # a (banks + 1):1 mux a bit (the banks' rows and hold) is ``banks`` LUT4s; plus the
    # bank decode of the chip selects
    assert report.luts <= width * banks + 2 * banks + 4, report.summary()


@pytest.mark.parametrize("width, depth", [(32, SPRAM_DEPTH), (16, MAX_DEPTH)], ids=["32x16K", "16x64K"])
def test_spram_form_without_hold_is_the_tiles_alone(width, depth):
    """``hold=False``: no hold register and no fresh flag; one tile row is its DATAOUT
    straight on ``rdata`` (no flip-flop, one LUT: the chip select's ``en | we``), more
    banks keep the bank register and a ``banks``:1 multiplexer a bit."""
    ram = SinglePortRAM(shape=width, depth=depth, primitive=True, hold=False)
    report = synthesize(ram, family="ice40", top="spram")
    lanes, banks = spram_tiles(width, depth)
    assert report.cells.get("SB_SPRAM256KA", 0) == lanes * banks, report.cells
    assert report.ffs == (banks - 1).bit_length(), report.summary()
    if banks == 1:
        assert report.luts == 1, report.summary()
    else:
        assert report.luts <= width * (banks - 1) + 2 * banks + 4, report.summary()


# -- docs/ice40-plan.md: the icebreaker v2 memories on the UP5K ------------------------------

class _PlanMemories(wiring.Component):
    """Only the memories of the plan, every port a top-level port (nothing to optimise away).

    ``ebr``: name -> (width, depth), ``lib.memory`` with one read and one write port;
    ``spram``: name -> (width, depth), :class:`SinglePortRAM` tiles.
    """

    def __init__(self, ebr: dict, spram: dict):
        self._ebr, self._spram = ebr, spram
        members = {}
        for name, (width, depth) in ebr.items():
            bits = addr_bits(depth)
            members.update({f"{name}_raddr": In(bits), f"{name}_ren": In(1), f"{name}_rdata": Out(width),
                            f"{name}_waddr": In(bits), f"{name}_wdata": In(width), f"{name}_we": In(1)})
        for name, (width, depth) in spram.items():
            members.update({f"{name}_addr": In(addr_bits(depth)), f"{name}_wdata": In(width),
                            f"{name}_we": In(1), f"{name}_en": In(1), f"{name}_rdata": Out(width)})
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()

        def port(name, suffix):
            return getattr(self, f"{name}_{suffix}")

        for name, (width, depth) in self._ebr.items():
            memory = m.submodules[name] = Memory(shape=width, depth=depth, init=[])
            read, write = memory.read_port(), memory.write_port()
            m.d.comb += [read.addr.eq(port(name, "raddr")), read.en.eq(port(name, "ren")),
                         port(name, "rdata").eq(read.data), write.addr.eq(port(name, "waddr")),
                         write.data.eq(port(name, "wdata")), write.en.eq(port(name, "we"))]
        for name, (width, depth) in self._spram.items():
            ram = m.submodules[name] = SinglePortRAM(shape=width, depth=depth, primitive=True)
            m.d.comb += [ram.addr.eq(port(name, "addr")), ram.wdata.eq(port(name, "wdata")),
                         ram.we.eq(port(name, "we")), ram.en.eq(port(name, "en")),
                         port(name, "rdata").eq(ram.rdata)]
        return m


def test_icebreaker_plan_memories_fit_the_up5k(record_property):
    """docs/ice40-plan.md's map (512 neurons x 4 compartments, acc_bits 20, one bank,
    16,384 synapses, a 14,336-entry chunked pool): 27 EBR and 4 SPRAM, as its table says."""
    neurons, compartments, acc_bits, chunks = 512, 4, 20, 14336 // 64
    plan = _PlanMemories(
        ebr={"accumulators": (compartments * acc_bits, neurons), "neurons": (68, neurons),
             "stimulus": (32, neurons), "chunk_links": (8, chunks), "free_chunks": (8, chunks),
             "arrivals": (8 + 8 + 6, 64)},
        # SP0 + SP1: synapse bits 0..31; SP2 + SP3: the pool (and the packed rows above it)
        spram={"synapses": (32, 16384), "pool": (32, 16384)})
    report = synthesize(plan, family="ice40", top="icebreaker_plan")
    record_property("synthesis", report.summary())
    assert report.cells.get("SB_SPRAM256KA", 0) == 4, report.cells
    assert report.brams == 27, report.summary()
