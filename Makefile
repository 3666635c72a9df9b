# `make run` and `make test` create the virtual environment on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-slow layers check lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)  ## install on first use, then start the TUI
	$(BIN)/hypertui

PYTEST := $(BIN)/python -m pytest -q -n 2  # two workers: this project's machines have 2 cores

test: $(STAMP) layers  ## install on first use, then lint and run the fast tier (< 4 min)
	$(BIN)/ruff check hypertui engine tui presets tests bench examples
	$(PYTEST) -m "not slow"

# A slow test waits on conditions, never on lengths of time, so a busy machine only makes
# it slower: Ray's tests took over 300 s each under 4 busy loops on 2 cores. The limit
# catches hangs, not slowness.
test-slow: $(STAMP)  ## the slow tier: real data, Ray, calibrations, signals to processes
	$(PYTEST) -m slow --timeout 1200

# import-linter reads packages from the file system: it sees `hypertui` whole through a
# folder of links (the checkout keeps engine/, tui/ and presets/ at its top level).
LAYERS := $(VENV)/layers
layers: $(STAMP)  ## the import-linter contracts of pyproject.toml: layers, no cycles
	rm -rf $(LAYERS) && mkdir -p $(LAYERS)/hypertui
	ln -s $(CURDIR)/hypertui/__init__.py $(CURDIR)/engine $(CURDIR)/tui $(CURDIR)/presets \
		$(LAYERS)/hypertui/
	cd $(LAYERS) && PYTHONPATH=$(abspath $(LAYERS)) $(abspath $(BIN))/lint-imports \
		$(CURDIR)/pyproject.toml

check: test test-slow  ## every check CI runs

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) build *.egg-info
