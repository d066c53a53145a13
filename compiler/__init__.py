"""The compiler: a network's netlist onto the memories of one or more cores.

``compile_network(netlist, config, *, max_neurons_per_core=None) -> Image`` places the
neurons on cores (:mod:`.placement`), fills every core's memories with words of the
layouts in :mod:`neurofab.hdl.layouts` and returns an :class:`Image`:
``Image.to_bytes()`` / :func:`decode_image` (exact round trip), ``Image.sha256()``,
``Image.report()`` / ``Image.report_text()``, and ``Image.to_netlist(populations)``,
which rebuilds the netlist from the decoded memories alone, for the emulator.
A network that does not fit raises :class:`CapacityError` (a
:class:`~neurofab.errors.ValidationError`) naming what does not fit and what would.
"""

from .image import Image, compile_network, decode_image, render_report
from .placement import CapacityError

__all__ = ["Image", "CapacityError", "compile_network", "decode_image", "render_report"]
