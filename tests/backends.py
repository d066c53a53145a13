"""The simulation backends that model tests run on, by name.

A plain module (not conftest.py): tests/ and tests/server/ each have a conftest, and
``from conftest import ...`` would pick whichever of the two was imported last.
"""

from __future__ import annotations

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
