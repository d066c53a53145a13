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

from backends import BACKENDS, backend_simulate  # noqa: E402 (after the sys.path entry above)

__all__ = ["simulate"]


@pytest.fixture(params=BACKENDS)
def simulate(request):
    """Parametrises a test over both backends; the test calls ``simulate(netlist, job)``."""
    return backend_simulate(request.param)
