"""The neuromorphic core in Amaranth HDL, its ``CoreConfig`` presets and memory-word layouts.

Blocks live in their own modules (``neuron``, ``neuron_pass``, ``fanout``,
``event_queue``, ``core``); see docs/hardware.md.
"""

__all__: list[str] = []
