"""The tier table: what each kind of account may run, and what it costs.

This is the one place the limits live. The operator changes them by editing
``DEFAULT_TIERS`` or, without touching code, with a ``tiers.json`` file in the data
directory (or ``app.config["TIERS"]``) that overrides any field of any tier, e.g.
``{"free": {"jobs_per_day": 20}, "researcher": {"open": true}}``.

Limits follow what Catalyst published; ``max_synapses`` is ours (a machine needs one).
``jobs_per_day`` of ``None`` means unlimited. ``open`` says whether anyone may sign up
for the tier without the operator's admin token.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields, replace

__all__ = ["Tier", "DEFAULT_TIERS", "TIER_NAMES", "load_tiers"]


@dataclass(frozen=True)
class Tier:
    name: str
    jobs_per_day: int | None
    max_neurons: int
    max_synapses: int
    max_timesteps: int
    max_runtime_seconds: float
    monthly_gbp: float
    hourly_gbp: float
    open: bool

    def limits(self) -> dict:
        """The ``limits`` object of the signup response."""
        return {
            "max_neurons": self.max_neurons,
            "max_timesteps": self.max_timesteps,
            "max_synapses": self.max_synapses,
            "max_jobs_per_day": self.jobs_per_day,
            "max_runtime_seconds": self.max_runtime_seconds,
        }

    def cost_gbp(self, compute_seconds: float) -> float:
        """Estimated charge for a billing month with this much compute."""
        return round(self.monthly_gbp + self.hourly_gbp * compute_seconds / 3600.0, 4)


DEFAULT_TIERS: dict[str, Tier] = {
    t.name: t
    for t in (
        Tier("free", 10, 1_024, 1_048_576, 1_000, 30.0, 0.0, 0.0, open=True),
        Tier("researcher", 100, 32_768, 33_554_432, 100_000, 300.0, 0.0, 18.0, open=False),
        Tier("startup", 500, 131_072, 268_435_456, 1_000_000, 1800.0, 49.0, 14.40, open=False),
        Tier("enterprise", None, 131_072, 268_435_456, 10_000_000, 3600.0, 199.0, 10.80, open=False),
    )
}

TIER_NAMES = tuple(DEFAULT_TIERS)

_FIELD_TYPES = {f.name: f.type for f in fields(Tier)}


def _override(tier: Tier, changes: dict, source: str) -> Tier:
    known = set(_FIELD_TYPES) - {"name"}
    for key, value in changes.items():
        if key not in known:
            raise ValueError(
                f"{source}: unknown tier field {tier.name}.{key} (known: {', '.join(sorted(known))})"
            )
        if key == "open":
            if not isinstance(value, bool):
                raise ValueError(f"{source}: {tier.name}.open must be true or false, not {value!r}")
        elif key == "jobs_per_day" and value is None:
            pass
        elif isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ValueError(f"{source}: {tier.name}.{key} must be a non-negative number, not {value!r}")
    return replace(tier, **changes)


def load_tiers(data_dir: str | None = None, overrides: dict | None = None) -> dict[str, Tier]:
    """The tier table in force: the defaults, then ``DATA/tiers.json``, then ``overrides``."""
    tiers = dict(DEFAULT_TIERS)
    layers = []
    if data_dir:
        path = os.path.join(data_dir, "tiers.json")
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                layers.append((json.load(f), path))
    if overrides:
        layers.append((overrides, "TIERS config"))
    for layer, source in layers:
        for name, changes in layer.items():
            if name not in tiers:
                raise ValueError(f"{source}: unknown tier {name!r} (known: {', '.join(TIER_NAMES)})")
            changes = asdict(changes) if isinstance(changes, Tier) else changes
            changes = {k: v for k, v in changes.items() if k != "name"}
            tiers[name] = _override(tiers[name], changes, source)
    return tiers
