# Two entry points for a fresh machine: `make demo` and `make test`.
# Each creates (or reuses) the virtual environment .venv and installs sklae into
# it with the pins of constraints.txt, so torch stays on the CPU build.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.sklae-installed

.PHONY: demo test lint bench-speed clean

$(STAMP): pyproject.toml setup.cfg constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[test,benchmarks,dask]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m sklae

lint: $(STAMP)
	$(BIN)/python -m ruff check .
	$(BIN)/python -m ruff format --check .

# One torch/BLAS thread per process: the tests train many tiny networks, for which
# thread start-up costs more than it saves (4x faster on a shared 2-core machine).
test: lint
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/python -m pytest

bench-speed: $(STAMP)
	$(BIN)/python benchmarks/bench_training_speed.py

clean:
	rm -rf $(VENV) build *.egg-info
