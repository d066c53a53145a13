"""``neurofab compile``: a thin shell over :func:`neurofab.compiler.compile_network`.

``neurofab compile NETWORK.json --core PRESET [--max-neurons-per-core K] -o IMAGE.bin
[--report]`` parses the network document, expands it, compiles it for the preset and
writes the image; ``--report`` prints the placement and memory use per core.
"""

from __future__ import annotations

import json
import sys

from neurofab.errors import ValidationError
from neurofab.hdl.config import PRESETS

__all__ = ["register", "cmd_compile", "add_core_options", "DEFAULT_CORE"]

#: the compile command targets hardware: the smallest board unless told otherwise
DEFAULT_CORE = "icebreaker"


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        import argparse

        raise argparse.ArgumentTypeError(f"must be a positive integer, not {text!r}")
    return value


def add_core_options(parser, default: str) -> None:
    """``--core`` and ``--max-neurons-per-core``, shared with ``neurofab simulate``."""
    parser.add_argument("--core", default=default, metavar="PRESET",
                        help=f"core preset: {', '.join(PRESETS)} (default {default})")
    parser.add_argument("--max-neurons-per-core", type=_positive_int, default=None, metavar="K",
                        help="at most K neurons per core (forces a split over more cores)")


def cmd_compile(args) -> int:
    from neurofab.network import expand, parse_network

    from .image import compile_network

    try:
        with open(args.network, encoding="utf-8") as f:
            doc = json.load(f)
    except OSError as e:
        raise ValidationError("", f"cannot read network file {args.network!r}: {e.strerror}") from e
    except json.JSONDecodeError as e:
        raise ValidationError("", f"network file {args.network!r} is not valid JSON: {e}") from e
    netlist = expand(parse_network(doc))
    image = compile_network(netlist, args.core, max_neurons_per_core=args.max_neurons_per_core)
    data = image.to_bytes()
    try:
        with open(args.output, "wb") as f:
            f.write(data)
    except OSError as e:
        raise ValidationError("", f"cannot write image file {args.output!r}: {e.strerror}") from e
    if args.report:
        sys.stdout.write(image.report_text() + "\n")
    return 0


def register(subparsers) -> None:
    """Add the ``compile`` subcommand to the ``neurofab`` command line."""
    p = subparsers.add_parser("compile", help="compile a network (API JSON document) into a core image")
    p.add_argument("network", help="a POST /v1/networks body (JSON file)")
    add_core_options(p, DEFAULT_CORE)
    p.add_argument("-o", "--output", required=True, metavar="IMAGE.bin", help="write the image here")
    p.add_argument("--report", action="store_true", help="print the cores used and each core's memory use")
    p.set_defaults(func=cmd_compile)
