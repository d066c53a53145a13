"""A single-port RAM: iCE40UP SPRAM tiles on the iCE40UP5K, ``lib.memory`` elsewhere.

The iCE40UP5K has four ``SB_SPRAM256KA`` blocks of 16,384 x 16 bits, single-ported (one
read *or* one write a clock) and never filled by the bitstream. Yosys does not infer
them from an ``amaranth.lib.memory.Memory``, so :class:`SinglePortRAM` instantiates them
itself when it is elaborated for an iCE40UP device (or when asked to), as a grid of
tiles: ``ceil(width / 16)`` *lanes* side by side for the width, ``ceil(depth / 16384)``
*banks* stacked for the depth. Anywhere else (the Amaranth simulator, ECP5, Verilog for
a generic flow) it is one ``lib.memory.Memory`` with one read and one write port, driven
so that it behaves exactly the same, clock by clock, on every defined output.

The contract, both forms (clock edges of ``domain``):

- **Write**: ``we`` high at an edge writes ``wdata`` to ``addr``. Nothing is read in
  that clock, whatever ``en`` is.
- **Read**: ``en`` high and ``we`` low at an edge reads ``addr``; the word is on
  ``rdata`` from just after that edge (the next clock), like a synchronous ``lib.memory``
  read port.
- **Hold**: ``rdata`` changes only after a read. It keeps the last word read through
  idle clocks and through writes, *also* writes to the word just read (the read happened
  first, so ``rdata`` shows the old word). A stalled pipeline keeps ``en`` low.
- **Undefined**: ``rdata`` before the first read after reset, a read of a word never
  written since power-up (the SPRAM has no initial contents; the fallback's are zero,
  but nothing may rely on that), and any ``addr >= depth``.

How the SPRAM form keeps that contract: the bank that was read is registered with the
read (``bank_q``) and picks the lanes of ``rdata`` the clock after, which is when the
tiles' data appear. The SPRAM's own ``DATAOUT`` is undefined after a write to its tile
(Yosys's ``cells_sim.v`` makes it ``x``), so a flag ``fresh_q`` (the last clock was a
read) chooses between the tiles' outputs and ``hold``, a register that copies ``rdata``
every clock; correctness rests on these two registers alone. Each tile's
``CHIPSELECT`` is its bank's select gated by ``en | we`` only to save power: an idle
tile draws standby current, not read current. Cost over the tiles: ``width`` flip-flops
for ``hold`` and ``width`` 2..5-input muxes (one LUT a bit up to two banks, two beyond),
plus ``banks - 1`` select bits; no logic between the address and the tiles but the bank
decode. Reset clears ``bank_q``, ``fresh_q`` and ``hold``, never the memory.

Capacity: depth 1 .. 65,536 words (16 address bits: the UP5K's 4 x 16K), any width; the
component does not know the device, so a grid of more than 4 tiles is built but does
not fit a UP5K (:func:`spram_tiles` counts them first).
"""

from __future__ import annotations

from amaranth.hdl import Array, Cat, ClockSignal, Const, Instance, Module, Mux, Shape, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from neurofab.errors import ValidationError

from .config import addr_bits

__all__ = ["NO_RW_CHECK", "SPRAM_DEPTH", "SPRAM_WIDTH", "MAX_DEPTH", "spram_tiles", "SinglePortRAM"]

#: ``attrs`` of a ``lib.memory.Memory`` (one read port, one write port) none of whose reads
#: needs a defined word when it meets a write of the same word in the same clock.
#: Amaranth's read ports give the old word then, which an iCE40 block RAM does not
#: promise, so Yosys builds it: the write's address and data delayed a clock, a comparator
#: and a multiplexer a bit after the block RAM's output (about 560 flip-flops and 300 LUTs
#: over SpramCore's block RAMs), so no block RAM output reaches its register without
#: logic. Yosys does not read the attribute by itself:
#: :func:`~neurofab.hdl.synthesis.synthesize` sets ``RD_COLLISION_X_MASK`` on the memories
#: that carry it (a read of the word written in that clock is undefined), which drops
#: that logic. The simulators keep Amaranth's rule. One definition, for every block that
#: marks its memories (the iCE40 core's; Core, the ECP5 core, marks none).
NO_RW_CHECK = {"no_rw_check": 1}

#: Words of one ``SB_SPRAM256KA`` (14 address bits)
SPRAM_DEPTH = 16384
#: Bits of one ``SB_SPRAM256KA`` word
SPRAM_WIDTH = 16
#: Deepest :class:`SinglePortRAM`: 16 address bits, four banks of SPRAM
MAX_DEPTH = 65536

_SPRAM_ADDR_BITS = 14
# Devices with SB_SPRAM256KA: the UltraPlus parts (amaranth.vendor.SiliconBluePlatform.device).
_SPRAM_DEVICES = ("iCE40UP",)


def spram_tiles(width: int, depth: int) -> tuple[int, int]:
    """``(lanes, banks)``: the ``SB_SPRAM256KA`` grid a ``width`` x ``depth`` memory takes.

    ``lanes * banks`` tiles in all: ``ceil(width / 16)`` by ``ceil(depth / 16384)``.
    """
    return -(-width // SPRAM_WIDTH), -(-depth // SPRAM_DEPTH)


def _device_has_spram(platform) -> bool:
    device = getattr(platform, "device", None)
    return isinstance(device, str) and device.startswith(_SPRAM_DEVICES)


class SinglePortRAM(wiring.Component):
    """One single-port RAM of ``depth`` words of ``shape``: SPRAM tiles or ``lib.memory``.

    Parameters
    ----------
    shape : ShapeLike
        A word: an integer width, ``unsigned(n)``/``signed(n)``, or a ``data`` layout
        (``wdata`` and ``rdata`` are then views of it), at least 1 bit.
    depth : int
        Words, 1 .. 65,536.
    primitive : bool or None
        ``True``: build ``SB_SPRAM256KA`` tiles (with no platform, e.g. Verilog for
        Verilator with Yosys's ``cells_sim.v``, or for ``synth_ice40``); ``False``: a
        ``lib.memory.Memory``; ``None`` (default): tiles when the platform is an iCE40
        UltraPlus (``platform.device`` starts with ``iCE40UP``), the memory otherwise.
    domain : str
        The clock domain of every access (default ``"sync"``).
    hold : bool
        ``True`` (default): ``rdata`` holds the last word read (the module doc's
        **Hold**). ``False``: ``rdata`` is defined only in the clock right after a read
        (the SPRAM form then drops its ``hold`` register and ``fresh_q``, ``width``
        flip-flops and LUTs fewer): for a user that takes every word in that clock.
        The ``lib.memory`` form holds either way.

    Members
    -------
    addr : ``In(addr_bits(depth))``
        The word read or written this clock.
    wdata : ``In(shape)``
        The word ``we`` writes.
    we : ``In(1)``
        Write ``wdata`` to ``addr`` at this edge (no read this clock).
    en : ``In(1)``
        Read ``addr`` at this edge, unless ``we``. Low: ``rdata`` holds.
    rdata : ``Out(shape)``
        The word of the last read, from the clock after it until the next read.

    Latency 1 (a read's word appears the next clock); one access (read or write) every
    clock; no overflow; see the module doc for holding and what is undefined.
    """

    def __init__(self, *, shape, depth: int, primitive: bool | None = None, domain: str = "sync",
                 hold: bool = True):
        try:
            width = Shape.cast(shape).width
        except TypeError as error:
            raise ValidationError("SinglePortRAM.shape",
                                  f"must be a shape, not {shape!r} ({error})") from None
        if width < 1:
            raise ValidationError("SinglePortRAM.shape", f"must be at least 1 bit wide, not {shape!r}")
        if isinstance(depth, bool) or not isinstance(depth, int) or not 1 <= depth <= MAX_DEPTH:
            raise ValidationError("SinglePortRAM.depth",
                                  f"must be an integer in 1 .. {MAX_DEPTH}, not {depth!r}")
        if primitive is not None and not isinstance(primitive, bool):
            raise ValidationError("SinglePortRAM.primitive",
                                  f"must be True, False or None, not {primitive!r}")
        if not isinstance(domain, str) or not domain:
            raise ValidationError("SinglePortRAM.domain", f"must be a clock domain name, not {domain!r}")
        if not isinstance(hold, bool):
            raise ValidationError("SinglePortRAM.hold", f"must be True or False, not {hold!r}")
        self._hold = hold
        self._shape = shape
        self._width = width
        self._depth = depth
        self._primitive = primitive
        self._domain = domain
        super().__init__({
            "addr": In(addr_bits(depth)),
            "wdata": In(shape),
            "we": In(1),
            "en": In(1),
            "rdata": Out(shape),
        })

    @property
    def width(self) -> int:
        return self._width

    @property
    def depth(self) -> int:
        return self._depth

    @property
    def tiles(self) -> tuple[int, int]:
        """``(lanes, banks)`` of the SPRAM form (see :func:`spram_tiles`)."""
        return spram_tiles(self._width, self._depth)

    def uses_primitive(self, platform) -> bool:
        """Whether :meth:`elaborate` builds ``SB_SPRAM256KA`` tiles for ``platform``.

        Raises :class:`ValidationError` for ``primitive=True`` on a platform without SPRAM.
        """
        if self._primitive is None:
            return _device_has_spram(platform)
        if self._primitive and platform is not None and not _device_has_spram(platform):
            device = getattr(platform, "device", None)
            raise ValidationError("SinglePortRAM.primitive", "is True, but SB_SPRAM256KA exists only "
                                  f"on iCE40UP devices, not {device!r}")
        return self._primitive

    def elaborate(self, platform):
        if self.uses_primitive(platform):
            return self._elaborate_spram()
        return self._elaborate_memory()

    def _elaborate_memory(self) -> Module:
        m = Module()
        m.submodules.memory = memory = Memory(shape=self._shape, depth=self._depth, init=[])
        write = memory.write_port(domain=self._domain)
        # A write clock reads nothing: the read port's data holds, as the SPRAM form's does.
        read = memory.read_port(domain=self._domain)
        m.d.comb += [
            write.addr.eq(self.addr),
            write.data.eq(self.wdata),
            write.en.eq(self.we),
            read.addr.eq(self.addr),
            read.en.eq(self.en & ~self.we),
            self.rdata.eq(read.data),
        ]
        return m

    def _elaborate_spram(self) -> Module:
        m = Module()
        sync = m.d[self._domain]
        lanes, banks = self.tiles
        width = self._width
        addr = Value.cast(self.addr)
        low = Signal(_SPRAM_ADDR_BITS)  # zero-extended when the memory is shallower than a tile
        m.d.comb += low.eq(addr[:_SPRAM_ADDR_BITS])
        bank = addr[_SPRAM_ADDR_BITS:]
        wdata = Value.cast(self.wdata)
        # Lane l of a tile row stores bits 16 l .. 16 l + 15; the top lane's spare bits are 0.
        padded = Signal(lanes * SPRAM_WIDTH)
        m.d.comb += padded.eq(wdata)
        access = self.en | self.we
        read = self.en & ~self.we

        outputs = []  # per bank: its lanes' DATAOUT side by side
        for b in range(banks):
            selected = (bank == b) if banks > 1 else Const(1)
            bank_out = []
            for lane in range(lanes):
                dataout = Signal(SPRAM_WIDTH, name=f"dataout_b{b}_l{lane}")
                m.submodules[f"spram_b{b}_l{lane}"] = Instance(
                    "SB_SPRAM256KA",
                    i_ADDRESS=low,
                    i_DATAIN=padded[lane * SPRAM_WIDTH:(lane + 1) * SPRAM_WIDTH],
                    i_MASKWREN=Const(0b1111, 4),
                    i_WREN=self.we,
                    i_CHIPSELECT=access & selected,
                    i_CLOCK=ClockSignal(self._domain),
                    i_STANDBY=Const(0, 1),
                    i_SLEEP=Const(0, 1),
                    # active low: 1 keeps the block powered
                    i_POWEROFF=Const(1, 1),
                    o_DATAOUT=dataout,
                )
                bank_out.append(dataout)
            outputs.append(Signal(lanes * SPRAM_WIDTH, name=f"row_b{b}"))
            m.d.comb += outputs[-1].eq(Cat(*bank_out))

        # The bank read is registered with the read: its tiles' data appear the next clock.
        bank_q = Signal(range(banks), name="bank_q")
        fresh_q = Signal(name="fresh_q")
        hold = Signal(width, name="hold")
        if banks > 1:
            with m.If(read):
                sync += bank_q.eq(bank)
        sync += fresh_q.eq(read)
        tiles_out = Signal(width, name="tiles_out")
        if banks > 1:
            m.d.comb += tiles_out.eq(Array(outputs)[bank_q])
        else:
            m.d.comb += tiles_out.eq(outputs[0])
        if not self._hold:  # the user takes each word in the clock after its read
            m.d.comb += Value.cast(self.rdata).eq(tiles_out)
            return m
        data = Signal(width, name="data")
        m.d.comb += data.eq(Mux(fresh_q, tiles_out, hold))
        sync += hold.eq(data)
        m.d.comb += Value.cast(self.rdata).eq(data)
        return m

