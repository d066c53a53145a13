"""The bit-exact emulator: runs a network exactly as docs/model.md defines it, fast.

INTERFACE CONTRACT: ``simulate(netlist, job, *, progress=None) -> RunResult``
(``neurofab.network.Netlist``, ``neurofab.job.Job``, ``neurofab.results.RunResult``).
``progress(done_steps, total_steps)`` is called now and then if given.
"""

from .engine import simulate

__all__ = ["simulate"]
