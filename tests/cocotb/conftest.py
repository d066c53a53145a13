"""Makes the bench helpers importable: tests/cocotb (benches) and tests/hdl (the model).

The cocotb runner hands this process's ``sys.path`` to the Verilator process as
``PYTHONPATH``, so the bench finds the same modules there.
"""

import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
for folder in (_HERE, _HERE.parent / "hdl"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
