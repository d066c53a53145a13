"""Makes tests/hdl's plain helper modules (neuron_model, streams) importable by name.

The cocotb bench (tests/cocotb) imports them too, from a Verilator process of its own.
"""

import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
