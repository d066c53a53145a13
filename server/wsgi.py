"""The WSGI entry point: ``granian --interface wsgi neurofab.server.wsgi:app`` (any WSGI server).

Settings come from the environment (``NEUROFAB_DATA`` and the others in :mod:`.config`).
"""

import sys

from .app import create_app

__all__ = ["app"]

# Many threads per process mostly wait on sockets; a thread whose socket is ready waits
# for the GIL up to the switch interval (5 ms by default), on every hop of a request.
# A shorter interval cuts that latency at a small cost in throughput of CPU-bound code.
sys.setswitchinterval(0.0005)

app = create_app()
