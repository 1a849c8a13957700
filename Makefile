# The README's two commands:  `make book`  and  `make test`.
# Both create ./.venv on first use and install asdlib with its book and test extras into it.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
SAMPLES ?= $(abspath ../shared/data/mimii-samples)
# `make book STRICT=1` turns Sphinx warnings into errors (CI does this).
STRICT ?=
BOOK_FLAGS := $(if $(STRICT),-W --keep-going,)

.PHONY: venv book test results benchmark clean

$(BIN)/asdlib: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[book,test,cluster]"
	touch $@

venv: $(BIN)/asdlib

## book: run the quick profile on the embedded simulator and build the Jupyter Book into _build/html
book: venv
	$(BIN)/python tools/build_book.py $(BOOK_FLAGS)

## test: the test suite (real MIMII sample clips are used when $(SAMPLES) exists)
test: venv
	ASDLIB_MIMII_SAMPLES=$${ASDLIB_MIMII_SAMPLES:-$(if $(wildcard $(SAMPLES)),$(SAMPLES),)} $(BIN)/python -m pytest -q -rs

## results: only the quick grid (what the book shows), into ./results
results: venv
	$(BIN)/asdlib run --profile quick

## benchmark: training and feature throughput on this machine (prints JSON lines)
benchmark: venv
	$(BIN)/python benchmarks/bench_training.py
	$(BIN)/python benchmarks/bench_features.py

clean:
	rm -rf _build
