"""The one error type for bad input, shared by the CLI and the service."""

__all__ = ["ValidationError"]


class ValidationError(ValueError):
    """A document or argument is invalid.

    ``path`` names the field (``populations[1].params.leak``) and ``str(error)`` is the
    whole message, which always names the field and the offending value. The service
    turns it into a 400 ``{"detail": str(error)}``; the CLI prints it and exits 2.
    """

    def __init__(self, path: str, message: str):
        self.path = path
        super().__init__(f"{path} {message}" if path else message)
