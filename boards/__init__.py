"""Platforms and top-levels for real boards (iCEBreaker, ULX3S): not built yet."""

__all__: list[str] = []
