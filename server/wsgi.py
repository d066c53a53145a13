"""The WSGI entry point for gunicorn: ``gunicorn neurofab.server.wsgi:app``.

Settings come from the environment (``NEUROFAB_DATA`` and the others in :mod:`.config`).
"""

from .app import create_app

__all__ = ["app"]

app = create_app()
