"""The bit-exact emulator: runs a network exactly as docs/model.md defines it, fast.

INTERFACE CONTRACT: ``simulate(netlist, job, *, progress=None, capacity=None) -> RunResult``
(``neurofab.network.Netlist``, ``neurofab.job.Job``, ``neurofab.results.RunResult``).
``progress(done_steps, total_steps)`` is called now and then if given. ``capacity``
(:class:`QueueCapacity`, e.g. ``QueueCapacity.from_image(image)``) makes the run fail
with :class:`CapacityExceeded` at the step where the image's cores would overflow their
event queues, as the hardware does; without it nothing is counted.
"""

from .capacity import CapacityExceeded, QueueCapacity
from .engine import simulate

__all__ = ["simulate", "QueueCapacity", "CapacityExceeded"]
