"""cocotb agents for Amaranth streams on converted Verilog (ports ``<name>__valid`` etc.).

- :class:`StreamDriver` offers words on a stream with random gaps, holding each until taken;
- :class:`Backpressure` drives a stream's ``ready`` at random;
- :class:`StreamMonitor` reports every transfer on a stream.

All three use the same clocking: drivers write right after a rising edge; monitors
read in the read-only phase after it, when every driver has written, so ``valid &
ready`` seen there is a transfer on the next edge.
"""

from __future__ import annotations

import random

from cocotb.triggers import ReadOnly, RisingEdge

__all__ = ["StreamDriver", "Backpressure", "StreamMonitor"]


class StreamDriver:
    """Drives ``<prefix>__valid``/``__payload``: offers each item with probability ``p_valid``
    per idle cycle and keeps it (payload stable, valid high) until ``__ready`` takes it."""

    def __init__(self, dut, prefix: str, clock, rng: random.Random, p_valid: float):
        self._valid = getattr(dut, f"{prefix}__valid")
        self._ready = getattr(dut, f"{prefix}__ready")
        self._payload = getattr(dut, f"{prefix}__payload")
        self._clock = clock
        self._rng = rng
        self._p_valid = p_valid

    async def send(self, words):
        self._valid.value = 0
        await RisingEdge(self._clock)
        for word in words:
            while self._rng.random() >= self._p_valid:
                self._valid.value = 0
                await RisingEdge(self._clock)
            self._payload.value = word
            self._valid.value = 1
            # The transfer happens on the first edge at which ready is high.
            while True:
                await ReadOnly()
                taken = bool(self._ready.value)
                await RisingEdge(self._clock)
                if taken:
                    break
        self._valid.value = 0


class Backpressure:
    """Drives ``<prefix>__ready`` high with probability ``p_ready`` each cycle."""

    def __init__(self, dut, prefix: str, clock, rng: random.Random, p_ready: float):
        self._ready = getattr(dut, f"{prefix}__ready")
        self._clock = clock
        self._rng = rng
        self._p_ready = p_ready

    async def run(self):
        while True:
            self._ready.value = int(self._rng.random() < self._p_ready)
            await RisingEdge(self._clock)


class StreamMonitor:
    """Watches ``<prefix>__valid/ready/payload`` and calls ``callback(word, cycle)`` per transfer.

    It samples in the read-only phase after each edge, when every driver has written, so
    ``valid & ready`` there means a transfer on the next edge.
    """

    def __init__(self, dut, prefix: str, clock, callback):
        self._valid = getattr(dut, f"{prefix}__valid")
        self._ready = getattr(dut, f"{prefix}__ready")
        self._payload = getattr(dut, f"{prefix}__payload")
        self._clock = clock
        self._callback = callback
        self.transfers = 0
        self.stalls = 0

    async def run(self):
        cycle = 0
        while True:
            await RisingEdge(self._clock)
            await ReadOnly()
            cycle += 1
            if self._valid.value:
                if self._ready.value:
                    self.transfers += 1
                    self._callback(self._payload.value.to_unsigned(), cycle)
                else:
                    self.stalls += 1
