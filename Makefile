# The two commands of the README: `make demo` and `make test`.
# `make test` runs every test (about 17-18 minutes alone on two cores). `make test-fast` is for the
# edit loop: the unit tests only, under 3 minutes; it leaves out the tests marked slow (trainings
# of many steps, browsers, several processes) and integration (each runs the sfxgan command or
# another process, or trains a run), which `make test` still runs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# The CPU build of torch installs in seconds here; an unpinned torch pulls a multi-GB CUDA build.
TORCH  ?= torch==2.13.0
DEMO   := demo
# The demo data's class fit peaks at 400-500 steps: the demo stops there, with a check every
# 100 steps, where `tiny` on real sounds trains until it stops improving (tests/test_quality.py
# holds this job to its bounds).
DEMO_STOP := --steps 400 --eval-every 100

.PHONY: install demo test test-fast lint format clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

demo: install
	rm -rf $(DEMO)/run $(DEMO)/sounds $(DEMO)/report
	$(BIN)/sfxgan demo-data $(DEMO)/data --per-class 40 --seed 0
	$(BIN)/sfxgan train $(DEMO)/data --out $(DEMO)/run --preset tiny $(DEMO_STOP)
	$(BIN)/sfxgan generate $(DEMO)/run --out $(DEMO)/sounds --per-class 20 --png
	$(BIN)/sfxgan evaluate --real $(DEMO)/data --generated $(DEMO)/sounds --run $(DEMO)/run \
		--out $(DEMO)/report
	@echo
	@echo "Generated sounds (WAV + spectrogram PNG per clip): $(DEMO)/sounds/<class>/"
	@echo "Training previews and loss curves:                 $(DEMO)/run/previews/"
	@echo "Quality, diversity and memorisation report:        $(DEMO)/report/report.html"

test: install
	$(BIN)/python -m pytest

test-fast: install
	$(BIN)/python -m pytest -m "not slow and not integration"

lint: install
	$(BIN)/ruff check src tests scripts
	$(BIN)/ruff format --check src tests scripts

format: install
	$(BIN)/ruff check --fix src tests scripts
	$(BIN)/ruff format src tests scripts

clean:
	rm -rf $(DEMO) .pytest_cache
