# Two entry points for a fresh machine: `make demo` and `make test`.
# Each creates (or reuses) the virtual environment .venv and installs sklae into
# it with the development pins of constraints-dev.txt (torch stays on the CPU build).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.sklae-installed

.PHONY: demo test test-fast lint docs docs-clean bench-speed clean

$(STAMP): pyproject.toml setup.cfg constraints-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints-dev.txt -e ".[test,benchmarks,dask,onnx,serving]"
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

# The same without the tests marked slow (over ~3 s each) and without ruff, while
# editing; CI runs `make test`.
test-fast: $(STAMP)
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/python -m pytest -m "not slow"

# The documentation site (Sphinx + example gallery), offline, warnings as errors.
# Open docs/_build/html/index.html afterwards.
DOCS_STAMP := $(VENV)/.sklae-docs-installed

$(DOCS_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints-dev.txt -e ".[docs]"
	touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 MPLBACKEND=Agg \
		$(BIN)/python -m sphinx -W --keep-going -b html docs docs/_build/html

docs-clean:
	rm -rf docs/_build docs/generated docs/auto_examples docs/sg_execution_times.rst \
		docs/api.rst docs/benchmark_results docs/user_guide/practical_matters.inc

bench-speed: $(STAMP)
	$(BIN)/python benchmarks/bench_training_speed.py

clean:
	rm -rf $(VENV) build *.egg-info
