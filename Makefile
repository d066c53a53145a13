# One entry point for every developer task. `make serve` and `make test` set up
# everything they need (a .venv with the project and its tools) on a fresh machine.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
BRIAN  := .venv-brian2

.PHONY: setup serve simulate test lint bench bench-emulator clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install -e '.[test]'
	touch $@

# The main job: the service on its embedded defaults (SQLite in ./data, the emulator).
serve: setup
	$(BIN)/neurofab serve --port 8000 --data ./data

# The quickstart network from the API reference, run on the emulator from the CLI.
simulate: setup
	mkdir -p out
	$(BIN)/neurofab simulate examples/quickstart/network.json examples/quickstart/job.json \
		-o out/result.json --spikes out/spikes.json --weights out/weights.json --raster out/raster.png

# Every test: lint, then the whole suite on both cores.
test: setup
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n 2 --durations=15

lint: setup
	$(BIN)/ruff check .

# Brian2 is a benchmark peer only, in its own environment (it breaks on numpy >= 2.4).
$(BRIAN)/.installed:
	$(PYTHON) -m venv $(BRIAN)
	$(BRIAN)/bin/pip install 'brian2==2.9.*' 'numpy<2.4' cython setuptools
	touch $@

bench-emulator: setup $(BRIAN)/.installed
	$(BIN)/python bench/emulator.py --brian2-python $(BRIAN)/bin/python

bench: bench-emulator

clean:
	rm -rf $(VENV) $(BRIAN) build *.egg-info
