"""NeuroFab: an open neuromorphic computing platform.

The layers install under this namespace: ``neurofab.hdl``, ``neurofab.compiler``,
``neurofab.emulator``, ``neurofab.host``, ``neurofab.server`` and ``neurofab.boards``.
This package itself holds what every layer shares: the network and job documents
(:mod:`neurofab.network`, :mod:`neurofab.job`) and the result shapes
(:mod:`neurofab.results`).
"""

from importlib.metadata import PackageNotFoundError, version

__all__ = ["__version__", "MODEL_VERSION"]

try:
    __version__ = version("neurofab")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

#: Version of docs/model.md that every backend implements (changes when results would).
MODEL_VERSION = 1
