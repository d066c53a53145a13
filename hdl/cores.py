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

__all__ = ["core_for"]


def core_for(config: CoreConfig, *, primitive=None) -> Core | SpramCore:
    """A new core top for ``config`` (its constructor checks that the shape is one it builds).

    ``primitive`` is :class:`SpramCore`'s choice of SPRAM form (``True``: the iCE40's
    ``SB_SPRAM256KA`` tiles, for synthesis without a platform); Core has no SPRAM.
    """
    return SpramCore(config, primitive=primitive) if config.spram else Core(config)
