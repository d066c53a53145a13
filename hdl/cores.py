"""The core top a :class:`~neurofab.hdl.config.CoreConfig` is built as.

``core_for(config)``: :class:`~neurofab.hdl.spram_core.SpramCore` for the iCE40UP memory
system (``config.spram``: one accumulator bank, synapses and the event pool in SPRAM),
else :class:`~neurofab.hdl.core.Core` (core v2, block RAM). Both offer the same ports
and host-facing contract; only what the host port's memory numbers address differs
(:func:`neurofab.host.load.core_loads` packs an image for either).
"""

from __future__ import annotations

from .config import CoreConfig
from .core import Core
from .spram_core import SpramCore

__all__ = ["CORE_TOPS", "HOST_READ_LATENCY", "core_for"]

#: the core tops :func:`core_for` builds
CORE_TOPS = (Core, SpramCore)

#: clocks from a host read's address to its word within which every core top answers
#: (each top's own is its ``host_read_latency``)
HOST_READ_LATENCY = max(top.host_read_latency for top in CORE_TOPS)


def core_for(config: CoreConfig, *, primitive=None) -> Core | SpramCore:
    """A new core top for ``config`` (its constructor checks that the shape is one it builds).

    ``primitive`` is :class:`SpramCore`'s choice of SPRAM form (``True``: the iCE40's
    ``SB_SPRAM256KA`` tiles, for synthesis without a platform); Core has no SPRAM.
    """
    return SpramCore(config, primitive=primitive) if config.spram else Core(config)
