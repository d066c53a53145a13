"""``neurofab compile``: the thin shell writes the image the library makes, and reports."""

from __future__ import annotations

import argparse
import json

import pytest

from neurofab.compiler import decode_image
from neurofab.compiler.cli import register
from neurofab.errors import ValidationError
from neurofab.network import expand, parse_network

NETWORK = {
    "populations": [{"label": "exc", "size": 40, "params": {"threshold": 900}},
                    {"label": "inh", "size": 10}],
    "connections": [{"source": "exc", "target": "inh", "topology": "random_sparse", "p": 0.3, "weight": 500},
                    {"source": "inh", "target": "exc", "weight": -300, "delay": 2}],
    "seed": 7,
}


def run(argv):
    parser = argparse.ArgumentParser(prog="neurofab")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.fixture
def network_file(tmp_path):
    path = tmp_path / "net.json"
    path.write_text(json.dumps(NETWORK))
    return path


def test_compile_writes_the_image_and_reports(network_file, tmp_path, capsys):
    out = tmp_path / "net.bin"
    assert run(["compile", str(network_file), "--core", "sim", "--max-neurons-per-core", "16", "-o", str(out),
                "--report"]) == 0
    image = decode_image(out.read_bytes())
    assert image.n_cores == 4 and image.config.name == "sim"
    netlist = expand(parse_network(NETWORK))
    rebuilt = image.to_netlist(netlist.populations)
    assert rebuilt.src.tolist() == netlist.src.tolist() and rebuilt.weight.tolist() == netlist.weight.tolist()
    text = capsys.readouterr().out
    assert "core preset sim" in text and "4 of 65,536 cores used" in text
    assert "core 3: gids 48..49 (inh 2)" in text and "synapse words" in text


def test_compile_defaults_to_the_icebreaker(network_file, tmp_path, capsys):
    out = tmp_path / "net.bin"
    assert run(["compile", str(network_file), "-o", str(out)]) == 0
    assert decode_image(out.read_bytes()).config.name == "icebreaker"
    assert capsys.readouterr().out == ""


def test_compile_errors_name_the_problem(network_file, tmp_path):
    with pytest.raises(ValidationError, match="preset 'nope' is unknown; known presets: icebreaker"):
        run(["compile", str(network_file), "--core", "nope", "-o", str(tmp_path / "x.bin")])
    with pytest.raises(ValidationError, match=r"^200 neurons|at most 20 per core"):
        run(["compile", str(network_file), "--max-neurons-per-core", "20", "-o", str(tmp_path / "x.bin")])
    with pytest.raises(ValidationError, match="cannot read network file"):
        run(["compile", str(tmp_path / "missing.json"), "-o", str(tmp_path / "x.bin")])
    with pytest.raises(SystemExit):
        run(["compile", str(network_file), "--max-neurons-per-core", "0", "-o", str(tmp_path / "x.bin")])
