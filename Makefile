# `make run` and `make test` create the virtual environment on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test layers check lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)  ## install on first use, then start the TUI
	$(BIN)/hypertui

test: $(STAMP) layers  ## install on first use, then lint and run the fast test suite
	$(BIN)/ruff check hypertui engine tui presets tests bench
	$(BIN)/python -m pytest -q

# import-linter reads packages from the file system: it sees `hypertui` whole through a
# folder of links (the checkout keeps engine/, tui/ and presets/ at its top level).
LAYERS := $(VENV)/layers
layers: $(STAMP)  ## the import-linter contracts of pyproject.toml: layers, no cycles
	rm -rf $(LAYERS) && mkdir -p $(LAYERS)/hypertui
	ln -s $(CURDIR)/hypertui/__init__.py $(CURDIR)/engine $(CURDIR)/tui $(CURDIR)/presets \
		$(LAYERS)/hypertui/
	cd $(LAYERS) && PYTHONPATH=$(abspath $(LAYERS)) $(abspath $(BIN))/lint-imports \
		$(CURDIR)/pyproject.toml

check: test

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) build *.egg-info
