"""The service's one error type: an HTTP status, a ``detail`` for the JSON body, headers."""

from __future__ import annotations

__all__ = ["ApiError"]


class ApiError(Exception):
    """Raised anywhere in a request; the app's handler turns it into ``{"detail": ...}``."""

    def __init__(self, status: int, detail: str, headers: dict | None = None):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers or {}
