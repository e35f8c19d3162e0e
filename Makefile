# glad_nb: two commands from a fresh clone -- `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PLOTLY_RENDERER ?= plotly_mimetype

.PHONY: install demo test test-suite test-kernels test-browser lab readme bench clean-venv

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# (re)install when pyproject.toml changes; torch/torchvision resolve from the machine's wheels
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/glad-nb demo $(DEMO_ARGS)

lab: $(STAMP)
	$(BIN)/jupyter lab nbs/

readme: $(STAMP)
	$(BIN)/python tools/readme.py --write

bench: $(STAMP)
	$(BIN)/python benchmarks/metrics.py
	$(BIN)/python benchmarks/train.py
	$(BIN)/python benchmarks/inference.py
	$(BIN)/python benchmarks/dashboard.py

# nbdev-export rewrites pyproject.toml with the same text: its old time is put back, so the install stamp stays valid.
# That every module imports on its own, in a fresh process, is checked by pytest (tests/test_package.py).
test: $(STAMP)
	@set -e; step() { echo "== make test: $$1"; }; fail() { echo "!! make test FAILED at: $$1"; exit 1; }; \
	sums() { find $$1 -type f \( -name '*.ipynb' -o -name '*.py' \) -not -path '*/.ipynb_checkpoints/*' -not -path '*/__pycache__/*' -print0 | sort -z | xargs -0 md5sum; }; \
	step "nbdev-clean changes nothing"; before=$$(sums nbs); $(BIN)/nbdev-clean || fail "nbdev-clean (error)"; \
	  [ "$$before" == "$$(sums nbs)" ] || { echo "notebooks were not clean; nbdev-clean changed:"; diff <(echo "$$before") <(sums nbs) || true; fail "nbdev-clean changed notebooks (run nbdev-clean and commit)"; }; \
	step "nbdev-export leaves glad_nb/ unchanged"; before=$$(sums glad_nb); pp=$$(stat -c %y pyproject.toml); $(BIN)/nbdev-export || fail "nbdev-export (error)"; \
	  git diff --quiet -- pyproject.toml 2>/dev/null && touch -d "$$pp" pyproject.toml; \
	  [ "$$before" == "$$(sums glad_nb)" ] || { diff <(echo "$$before") <(sums glad_nb) || true; fail "nbdev-export changed glad_nb/ (export and commit)"; }; \
	step "README.md agrees with nbs/index.ipynb"; $(BIN)/python tools/readme.py --check || fail "README.md is out of date (make readme)"; \
	step "pyflakes glad_nb/ tests/ benchmarks/"; $(BIN)/pyflakes glad_nb tests benchmarks || fail "pyflakes"
	$(MAKE) --no-print-directory test-suite

# the notebooks and pytest, two at a time (pytest-xdist; each test file stays in one process, in order); KERNELS picks the CPU kernels (make test-kernels)
KERNELS ?= OMP_NUM_THREADS=1
WORKERS ?= 2
test-suite: $(STAMP)
	@set -e; step() { echo "== make test: $$1 ($(KERNELS))"; }; fail() { echo "!! make test FAILED at: $$1 ($(KERNELS))"; exit 1; }; \
	step "nbdev-test --n-workers 2"; env IN_TEST=1 $(KERNELS) $(BIN)/nbdev-test --n-workers 2 --timing || fail "nbdev-test"; \
	step "pytest tests/ -n $(WORKERS)"; rc=0; env $(KERNELS) $(BIN)/python -m pytest -q -rs -n $(WORKERS) --dist loadfile tests/ || rc=$$?; \
	  [ $$rc -eq 0 ] || [ $$rc -eq 5 ] || fail "pytest tests/ (exit $$rc)"; \
	echo "== make test: all steps passed ($(KERNELS))"

# a proxy for another machine: two threads per process and no oneDNN change the CPU kernels and their rounding
# (pytest in one process here: each test already uses both threads)
test-kernels: $(STAMP)
	$(MAKE) --no-print-directory test-suite KERNELS="OMP_NUM_THREADS=2 GLAD_NB_ONEDNN=0" WORKERS=0

# real browser: Debian chromium + playwright (driving /usr/bin/chromium; no browser download)
test-browser: $(STAMP)
	command -v chromium >/dev/null || { apt-get update -q && apt-get install -y -q chromium chromium-driver; }
	$(BIN)/python -m pip install -q -e '.[dev,browser]'
	RUN_BROWSER=1 $(BIN)/python -m pytest -q -m browser tests/test_dashboard.py

clean-venv:
	rm -rf $(VENV)
