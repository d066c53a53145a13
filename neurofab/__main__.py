"""``python -m neurofab`` is the ``neurofab`` command."""

import sys

from .cli import main

__all__: list[str] = []

sys.exit(main())
