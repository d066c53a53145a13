"""The base of every block shaped by a :class:`~neurofab.hdl.config.CoreConfig`."""

from amaranth.lib import wiring

from neurofab.errors import ValidationError

from .config import CoreConfig

__all__ = ["CoreBlock"]


class CoreBlock(wiring.Component):
    """A ``wiring.Component`` whose ports and memories follow a core's shape, kept as ``config``.

    A subclass checks its ``config`` first (:meth:`checked`, so that a wrong one is refused
    before any layout is derived from it, the error naming ``<Class>.config`` and the
    value), then passes it with its signature members to ``CoreBlock.__init__``.
    """

    def __init__(self, config: CoreConfig, members: dict):
        self._config = self.checked(config)
        super().__init__(members)

    @classmethod
    def checked(cls, config) -> CoreConfig:
        """``config`` if it is a :class:`CoreConfig`; else a :class:`ValidationError` naming it."""
        if not isinstance(config, CoreConfig):
            raise ValidationError(f"{cls.__name__}.config", f"must be a CoreConfig, not {config!r}")
        return config

    @property
    def config(self) -> CoreConfig:
        return self._config
