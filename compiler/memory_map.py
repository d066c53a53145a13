"""docs/memory-map.md's tables, generated from the presets and the layouts themselves.

The document's prose is written by hand; every table of numbers sits between
``<!-- BEGIN GENERATED name -->`` and ``<!-- END GENERATED name -->`` and is produced
here, so the document cannot drift from the code: a test compares them.

``python -m neurofab.compiler.memory_map [PATH]`` rewrites the tables in place
(default ``docs/memory-map.md``); ``--check`` only reports whether they are current.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from neurofab.hdl.config import PRESETS
from neurofab.hdl.layouts import Memory, core_layouts, word_bytes, word_lanes

from .budget import MAPPINGS, OVER_BUDGET, core_bits, device_budget
from .image import IMAGE_MEMORIES

__all__ = ["SECTIONS", "render_sections", "update_document", "main"]

_BLOCK = re.compile(r"(<!-- BEGIN GENERATED (\w+) -->\n)(.*?)(<!-- END GENERATED \2 -->)", re.S)


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _presets() -> str:
    keys = ["max_cores", "neurons", "compartments", "profiles", "synapse_words", "axons", "route_words",
            "delay_slots", "event_queue", "acc_bits", "memory_bits"]
    rows = [[f"`{k}`"] + [f"{getattr(c, k):,}" for c in PRESETS.values()] for k in keys]
    rows.append(["device"] + [c.device for c in PRESETS.values()])
    return _table(["field"] + [f"`{n}`" for n in PRESETS], rows)


def _layouts() -> str:
    out = []
    names = ("profile", "neuron", "axon", "synapse", "route", "synapse_order", "event", "arrival")
    for name in names:
        per = {p: getattr(core_layouts(c), name) for p, c in PRESETS.items()}
        first = next(iter(per.values()))
        rows = []
        for field_name, field in first:
            cells = []
            for layout in per.values():
                f = layout[field_name]
                cells.append(f"{f.offset}..{f.offset + f.width - 1} ({f.width})" if f.width else "- (0)")
            rows.append([f"`{field_name}`", "signed" if field.shape.signed else "unsigned"] + cells)
        rows.append(["**word**", ""] + [f"{layout.size} bits, {word_lanes(layout)} lane(s)"
                                        for layout in per.values()])
        out.append(f"#### `{name}`\n\n" + _table(["field", "sign"] + [f"`{p}` bits (width)" for p in PRESETS],
                                                   rows))
    return "\n".join(out)


def _budgets() -> str:
    out = []
    for name in MAPPINGS:
        cfg = PRESETS[name]
        placed, totals = device_budget(cfg)
        rows = []
        for p in placed:
            lo, hi = p.bits
            rows.append([f"`{p.memory}`", f"{lo}..{hi - 1}", f"{p.depth:,} x {hi - lo}",
                         f"{p.depth * (hi - lo):,}", p.primitive, p.blocks if p.blocks else p.note])
        logical = core_bits(cfg)
        used = "; ".join(f"{prim}: {u} of {a} blocks" for prim, (u, a) in totals.items())
        verdict = (f" **Does not fit**: the plan that will is {OVER_BUDGET[name]}." if name in OVER_BUDGET
                   else "")
        out.append(f"#### `{name}` ({cfg.device})\n\n"
                   + _table(["memory", "bits", "depth x width", "bits total", "primitive", "blocks"], rows)
                   + f"\nLogical bits {logical:,} of the device's {cfg.memory_bits:,}; {used}.{verdict}\n")
    return "\n".join(out)


def _image() -> str:
    rows = []
    for m in IMAGE_MEMORIES:
        if m is Memory.SYNAPSE_ORDER:
            stored = ["1 .. 4 (the network's)"] * len(PRESETS)
        else:
            stored = [str(word_bytes(core_layouts(c).for_memory(m))) for c in PRESETS.values()]
        rows.append([m.name, m.value, "host only" if m is Memory.SYNAPSE_ORDER else "core"] + stored)
    return _table(["memory (`Memory`)", "number", "loaded into"] + [f"bytes a word, `{p}`" for p in PRESETS],
                  rows)


SECTIONS = {
    "presets": _presets,
    "layouts": _layouts,
    "budgets": _budgets,
    "image": _image,
}


def render_sections() -> dict[str, str]:
    """Each generated table, by section name."""
    return {name: fn() for name, fn in SECTIONS.items()}


def update_document(text: str) -> str:
    """``text`` with every generated section replaced by its current rendering."""
    sections = render_sections()
    seen = set()

    def replace(match):
        name = match.group(2)
        if name not in sections:
            raise ValueError(f"unknown generated section {name!r}")
        seen.add(name)
        return match.group(1) + "\n" + sections[name] + "\n" + match.group(4)

    result = _BLOCK.sub(replace, text)
    missing = set(sections) - seen
    if missing:
        raise ValueError(f"the document lacks generated sections {sorted(missing)}")
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", default="docs/memory-map.md")
    parser.add_argument("--check", action="store_true", help="only report whether the tables are current")
    args = parser.parse_args(argv)
    path = Path(args.path)
    text = path.read_text(encoding="utf-8")
    new = update_document(text)
    if args.check:
        print(f"{path}: {'current' if new == text else 'out of date'}")
        return 0 if new == text else 1
    path.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
