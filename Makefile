# The README's two commands:  `make book`  and  `make test`.
# Both create ./.venv on first use and install asdlib with its book and test extras into it.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
SAMPLES ?= $(abspath ../shared/data/mimii-samples)
# `make book STRICT=1` turns Sphinx warnings into errors (CI does this).
STRICT ?=
# `make book PROFILE=paper DATA_ROOT=~/mimii`: every page from real MIMII with the paper's settings.
PROFILE ?= book
DATA_ROOT ?=
BOOK_FLAGS := $(if $(STRICT),-W --keep-going,)

.PHONY: venv book test results benchmark clean

$(BIN)/asdlib: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[book,test,cluster]"
	touch $@

venv: $(BIN)/asdlib

## book: run the book's grids (PROFILE, default book; DATA_ROOT, default the embedded simulator) and build _build/html
book: venv
	ASDLIB_PROFILE=$(PROFILE) ASDLIB_DATA_ROOT=$(DATA_ROOT) $(BIN)/python tools/build_book.py $(BOOK_FLAGS)

## test: the test suite (real MIMII sample clips are used when $(SAMPLES) exists)
test: venv
	ASDLIB_MIMII_SAMPLES=$${ASDLIB_MIMII_SAMPLES:-$(if $(wildcard $(SAMPLES)),$(SAMPLES),)} $(BIN)/python -m pytest -q -rs

## results: only the Table 1 grid of the book (PROFILE, DATA_ROOT), into ./results
results: venv
	$(BIN)/asdlib run --profile $(PROFILE) $(if $(DATA_ROOT),--data-root $(DATA_ROOT),)

## benchmark: training, feature and simulator throughput on this machine, and GPU training where there is a GPU (prints JSON lines)
benchmark: venv
	$(BIN)/python benchmarks/bench_training.py
	$(BIN)/python benchmarks/bench_features.py
	$(BIN)/python benchmarks/bench_simulate.py
	@if $(BIN)/python -c "import torch; raise SystemExit(not torch.cuda.is_available())"; then \
		$(BIN)/python benchmarks/bench_gpu.py && $(BIN)/python benchmarks/gpu_paper_grid.py; \
	else echo "bench_gpu.py, gpu_paper_grid.py: no CUDA GPU here, skipped"; fi

clean:
	rm -rf _build
