# The two commands of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# The CPU build of torch installs in seconds here; an unpinned torch pulls a multi-GB CUDA build.
TORCH  ?= torch==2.13.0
DEMO   := demo

.PHONY: install demo test lint format clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

demo: install
	$(BIN)/sfxgan demo-data $(DEMO)/data --per-class 40 --seed 0
	$(BIN)/sfxgan reconstruct $(DEMO)/data --out $(DEMO)/reconstructed --preset tiny \
		--phase fast-griffin-lim --iters 32 --per-class 4
	@echo "Reconstructed sounds and spectrograms: $(DEMO)/reconstructed"

test: install
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

format: install
	$(BIN)/ruff check --fix src tests
	$(BIN)/ruff format src tests

clean:
	rm -rf $(DEMO) .pytest_cache
