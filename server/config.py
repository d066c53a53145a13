"""The service's settings, shared by the web app, the workers and the CLI.

Each setting comes from the ``config`` mapping given to ``create_app``/``Worker``, else
from its environment variable, else its default:

| setting | environment | default |
| --- | --- | --- |
| ``DATA_DIR`` | ``NEUROFAB_DATA`` | ``./data`` |
| ``ADMIN_TOKEN`` | ``NEUROFAB_ADMIN_TOKEN`` | a random token kept in ``DATA/admin_token`` |
| ``BACKENDS`` | ``NEUROFAB_BACKENDS`` (comma-separated) | ``emulator`` |
| ``LEASE_SECONDS`` | ``NEUROFAB_LEASE_SECONDS`` | 30 |
| ``MAX_ATTEMPTS`` | ``NEUROFAB_MAX_ATTEMPTS`` | 3 |
| ``MAX_BODY_BYTES`` | ``NEUROFAB_MAX_BODY_BYTES`` | 32 MiB |
| ``INLINE_MAX_COST`` | ``NEUROFAB_INLINE_MAX_COST`` | 2e7 (0: never run a job inline) |
| ``TIERS`` | (``DATA/tiers.json``) | :data:`neurofab.server.tiers.DEFAULT_TIERS` |
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field

from .db import Database
from .tiers import Tier, load_tiers

__all__ = ["Settings", "MAX_WAIT_SECONDS", "DEFAULT_INLINE_MAX_COST"]

#: The longest ``GET /v1/jobs/{id}?wait=S`` may hold a request.
MAX_WAIT_SECONDS = 30.0
#: ``POST /v1/jobs?wait=S`` runs an emulator job in the web process when its predicted
#: cost (:func:`neurofab.server.runner.inline_cost`, neuron-and-synapse steps) is at most
#: this: about 6 quickstart jobs, a few milliseconds of emulator time, short enough not
#: to hold up the web process's other requests for long.
DEFAULT_INLINE_MAX_COST = 2e7


def _setting(config: dict, key: str, env: str, default, convert=str):
    if key in config and config[key] is not None:
        return convert(config[key]) if not isinstance(config[key], (list, tuple, dict)) else config[key]
    if os.environ.get(env):
        return convert(os.environ[env])
    return default


def _backends(value) -> tuple[str, ...]:
    if isinstance(value, str):
        value = value.split(",")
    return tuple(v.strip() for v in value if v.strip())


@dataclass
class Settings:
    data_dir: str
    admin_token: str
    backends: tuple[str, ...]
    lease_seconds: float
    max_attempts: int
    max_body_bytes: int
    inline_max_cost: float = DEFAULT_INLINE_MAX_COST
    tiers: dict[str, Tier] = field(default_factory=dict)

    @classmethod
    def load(cls, config: dict | None = None) -> Settings:
        config = dict(config or {})
        data_dir = os.path.abspath(_setting(config, "DATA_DIR", "NEUROFAB_DATA", "data"))
        os.makedirs(data_dir, exist_ok=True)
        settings = cls(
            data_dir=data_dir,
            admin_token=_setting(config, "ADMIN_TOKEN", "NEUROFAB_ADMIN_TOKEN", "")
            or _stored_admin_token(data_dir),
            backends=_backends(_setting(config, "BACKENDS", "NEUROFAB_BACKENDS", ("emulator",))),
            lease_seconds=_setting(config, "LEASE_SECONDS", "NEUROFAB_LEASE_SECONDS", 30.0, float),
            max_attempts=_setting(config, "MAX_ATTEMPTS", "NEUROFAB_MAX_ATTEMPTS", 3, int),
            max_body_bytes=_setting(config, "MAX_BODY_BYTES", "NEUROFAB_MAX_BODY_BYTES", 32 << 20, int),
            inline_max_cost=_setting(
                config, "INLINE_MAX_COST", "NEUROFAB_INLINE_MAX_COST", DEFAULT_INLINE_MAX_COST, float
            ),
        )
        settings.tiers = load_tiers(data_dir, config.get("TIERS"))
        if settings.lease_seconds <= 0 or settings.max_attempts < 1:
            raise ValueError("LEASE_SECONDS must be > 0 and MAX_ATTEMPTS >= 1")
        if not settings.inline_max_cost >= 0:  # also refuses nan
            raise ValueError(f"INLINE_MAX_COST must be >= 0, not {settings.inline_max_cost}")
        return settings

    @property
    def database_path(self) -> str:
        return os.path.join(self.data_dir, "neurofab.sqlite3")

    def database(self) -> Database:
        return Database(self.database_path)


def _stored_admin_token(data_dir: str) -> str:
    """The operator's token, made once per data directory (readable only by its owner)."""
    path = os.path.join(data_dir, "admin_token")
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip()
    except FileNotFoundError:
        pass
    token = "nf_admin_" + secrets.token_urlsafe(32)
    # Written aside and hard-linked into place: the file appears complete or not at all,
    # and if another process got there first its token wins.
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(token + "\n")
    try:
        os.link(tmp, path)
    except FileExistsError:
        with open(path, encoding="utf-8") as f:
            token = f.read().strip()
    finally:
        os.unlink(tmp)
    return token
