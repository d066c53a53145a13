"""Converts an Amaranth component to Verilog and builds it once with Verilator for cocotb.

Builds live in ``build/cocotb/<name>/`` at the repository root (ignored by git), so a
rerun with unchanged Verilog reuses the compiled model: the Verilog file is rewritten
only when its text changes, Verilator skips identical inputs, and ``make`` rebuilds
nothing. A file lock keeps two pytest-xdist workers from building the same folder at
once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from amaranth.back import verilog
from cocotb_tools.runner import Runner, get_results, get_runner

from neurofab.hdl.toolchain import use_verilator
from neurofab.host.rtl import locked, verilator_make_environment

__all__ = ["BUILD_ROOT", "VerilatorBuild", "build_with_verilator", "run_bench"]

BUILD_ROOT = Path(__file__).resolve().parents[2] / "build" / "cocotb"

# Amaranth's Verilog is correct but not lint-clean for Verilator: unused bits of sliced
# intermediates, width-extending assignments it writes on purpose, and FSM case
# statements over a wider state register than there are states (with a default value
# assigned before the case).
_VERILATOR_ARGS = ["-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC", "-Wno-UNUSEDSIGNAL", "-Wno-UNOPTFLAT",
                   "-Wno-CASEINCOMPLETE"]


@dataclass
class VerilatorBuild:
    """A built model: the runner to test it with, where it is, and what building cost."""

    runner: Runner
    toplevel: str
    build_dir: Path
    seconds: float


def build_with_verilator(component, toplevel: str, name: str) -> VerilatorBuild:
    """Convert ``component`` to Verilog module ``toplevel`` and build it in ``build/cocotb/name``.

    Ports are named as Amaranth names them (``i__payload``, ``o__ready``, ``clk``, ``rst``).
    """
    use_verilator()
    build_dir = BUILD_ROOT / name
    build_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with locked(build_dir / ".lock"):
        text = verilog.convert(component, name=toplevel, emit_src=False)
        source = build_dir / f"{toplevel}.v"
        if not source.exists() or source.read_text() != text:
            source.write_text(text)
        runner = get_runner("verilator")
        with verilator_make_environment():
            runner.build(sources=[source], hdl_toplevel=toplevel, build_dir=build_dir,
                         build_args=_VERILATOR_ARGS, log_file=build_dir / "build.log")
    return VerilatorBuild(runner, toplevel, build_dir, time.perf_counter() - started)


def run_bench(build: VerilatorBuild, test_module: str, test_dir: Path, settings: dict[str, int]) -> int:
    """Run every cocotb test in ``test_module`` on ``build``; return how many ran.

    ``settings`` reach the bench as ``NEUROFAB_BENCH_<KEY>`` environment variables.
    Fails (raises) if a test failed or none ran.
    """
    env = {f"NEUROFAB_BENCH_{key.upper()}": str(value) for key, value in settings.items()}
    # cocotb rewrites asserts with pytest's hook; limited to the bench module and with no
    # plugins loaded, that costs well under a second instead of about five.
    env["COCOTB_REWRITE_ASSERTION_FILES"] = f"{test_module}.py"
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    log_file = test_dir / "sim.log"
    try:
        results = build.runner.test(test_module=test_module, hdl_toplevel=build.toplevel,
                                    build_dir=build.build_dir, test_dir=test_dir, extra_env=env,
                                    log_file=log_file)
    except SystemExit as stop:
        # Under pytest the runner exits on a failed bench; turn that into a readable failure.
        log = log_file.read_text(errors="replace") if log_file.exists() else ""
        raise AssertionError(f"cocotb bench {test_module} failed (exit {stop.code})\n{log[-8000:]}") from None
    ran, failed = get_results(results)
    log = log_file.read_text(errors="replace")
    assert ran > 0, f"no cocotb test ran\n{log[-5000:]}"
    assert failed == 0, f"{failed} of {ran} cocotb tests failed\n{log[-8000:]}"
    return ran
