"""The host side of the hardware: the core's RTL under Verilator (``neurofab.host.rtl``).

The wire protocol and the serial board driver will join it here.
"""

__all__: list[str] = []
