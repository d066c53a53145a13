"""``python -m neurofab`` is the ``neurofab`` command."""

import sys

from .cli import main

sys.exit(main())
