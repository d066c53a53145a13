"""Shared fixtures for the model tests: the two simulation backends.

Every hand-worked case runs on both the plain reference model (tests/reference.py)
and the fast emulator (``neurofab.emulator.simulate``), so each expected number is
checked against both implementations of docs/model.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# tests/ holds plain helper modules (reference, netgen) imported by name.
_TESTS = str(Path(__file__).resolve().parent)
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

__all__ = ["BACKENDS", "backend_simulate"]

BACKENDS = ("reference", "emulator")


def backend_simulate(name: str):
    """The ``simulate(netlist, job)`` function of a backend, by name."""
    if name == "reference":
        from reference import reference_simulate

        return reference_simulate
    if name == "emulator":
        from neurofab.emulator import simulate

        return simulate
    raise ValueError(f"unknown backend {name!r}")


@pytest.fixture(params=BACKENDS)
def simulate(request):
    """Parametrises a test over both backends; the test calls ``simulate(netlist, job)``."""
    return backend_simulate(request.param)
