"""The REST service: the Catalyst Neuromorphic Cloud API over a job queue and workers.

``create_app(config=None)`` is the Flask app factory; ``neurofab serve`` runs it under
the granian WSGI server with job workers (:mod:`.supervisor`), ``neurofab worker`` runs workers alone,
``neurofab accounts`` manages accounts (:mod:`.cli`). See docs/api.md.
"""

__all__ = ["create_app"]


def __getattr__(name):
    # Imported on use, so that `neurofab simulate` does not load Flask.
    if name == "create_app":
        from .app import create_app

        return create_app
    raise AttributeError(name)
