"""What the host writes into a core before a job: an image's memories as the core's words.

One definition for every host of a core (the RTL backend in :mod:`neurofab.host.rtl`,
the Amaranth tests' drivers, and the serial board driver to come). A core's host port
takes its memories word by word (``host_memory``, ``host_addr``, ``host_wdata``; see
:class:`~neurofab.hdl.core.Core`):

- :class:`~neurofab.hdl.core.Core` (block RAM, core v2) takes the image's logical words
  as they are: profiles, neuron words, axon words, synapse words.
- :class:`~neurofab.hdl.spram_core.SpramCore` (the iCE40's SPRAM memory system) takes
  its physical memories: each profile as rows of the pass's profile word
  (:func:`~neurofab.hdl.spram_core.profile_rows`, low bits first), the neuron words, the
  axon rows and the compartment rows of the pool SPRAM and the 32-bit SPRAM synapse words
  (:func:`~neurofab.hdl.layouts.spram_image`).

In both, the neuron words carry the job's initial ``lfsr``
(:func:`~neurofab.compiler.image.initial_lfsr` of the job's seed): the one field of the
state a job sets.
"""

from __future__ import annotations

import numpy as np

from neurofab.compiler.image import initial_lfsr
from neurofab.hdl.layouts import PROFILE_LAYOUT, Memory, core_layouts, pack_words, spram_image
from neurofab.hdl.spram_core import profile_rows

__all__ = ["core_loads", "split_words"]


def split_words(words: np.ndarray, layout_bits: int, rows: int) -> np.ndarray:
    """Packed words (``(count, lanes)`` ``uint64``) as ``rows`` rows of ``ceil(bits / rows)`` bits
    each, low bits first: ``(count * rows, 1)`` ``uint64`` (a row is at most 64 bits); with
    one row, the words as they are."""
    if rows == 1:
        return np.asarray(words, np.uint64).reshape(len(words), -1)
    width = -(-layout_bits // rows)
    if width > 64:
        raise ValueError(f"rows of {width} bits do not fit one 64-bit lane")
    words = np.asarray(words, np.uint64).reshape(len(words), -1)
    out = np.zeros((words.shape[0], rows), np.uint64)
    mask = (1 << width) - 1
    for k in range(rows):
        lo = k * width
        lane, bit = divmod(lo, 64)
        value = words[:, lane] >> np.uint64(bit)
        if bit + width > 64 and lane + 1 < words.shape[1]:
            value |= words[:, lane + 1] << np.uint64(64 - bit)
        out[:, k] = value & np.uint64(mask)
    return out.reshape(-1, 1)


def core_loads(image, job) -> list[tuple[Memory, np.ndarray]]:
    """``[(memory, words)]``: every word the host writes into core 0 of ``image`` for ``job``.

    ``words`` is ``uint64`` of shape ``(count, lanes)``, written at addresses ``0 .. count
    - 1`` of ``memory`` (a ``layouts.Memory`` number of the core's host port), in the order
    given. The stimulus sums and the accumulators are not included: the host zeroes the
    former and ``clear`` the latter.
    """
    config = image.config
    layouts = core_layouts(config)
    n = image.n_neurons
    memories = image.memories[0]
    neuron = image.fields(0, Memory.NEURON)
    neuron["lfsr"] = initial_lfsr(job.seed, np.arange(n))
    neurons = pack_words(layouts.neuron, neuron, n)
    if not config.spram:
        return [
            (Memory.PROFILE, memories[Memory.PROFILE]),
            (Memory.NEURON, neurons),
            (Memory.AXON, memories[Memory.AXON]),
            (Memory.SYNAPSE, memories[Memory.SYNAPSE]),
        ]
    rows = spram_image(config, memories[Memory.AXON], memories[Memory.SYNAPSE])
    n_axon_rows = config.axons
    return [
        (Memory.PROFILE, split_words(memories[Memory.PROFILE], PROFILE_LAYOUT.size, profile_rows(config))),
        (Memory.NEURON, neurons),
        (Memory.AXON, rows.aux_rows[:n_axon_rows].astype(np.uint64).reshape(-1, 1)),
        (Memory.SYNAPSE, rows.synapse_rows.astype(np.uint64).reshape(-1, 1)),
        (Memory.COMPARTMENT, rows.aux_rows[n_axon_rows:].astype(np.uint64).reshape(-1, 1)),
    ]
