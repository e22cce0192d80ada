# Two entry points for a fresh machine: `make demo` (the main job on the built-in model) and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
# The exact torch build: the CPU wheel. Named on every install so that no dependency can replace it with a
# multi-GB CUDA build (the package itself states only the range it works with).
TORCH  := torch==2.13.0

.PHONY: install demo test test-slow lint clean cpp

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e '.[dev]' $(TORCH)
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(VENV)/bin/hrm-export build --out engines/default --verify-profile latency

# The architecture contract first (seconds), then the default suite.
test: install
	$(VENV)/bin/lint-imports
	@if command -v c++ >/dev/null && command -v cmake >/dev/null; then $(MAKE) --no-print-directory cpp; \
	else echo "make test: no C++ compiler or CMake, the C++ tests will skip"; fi
	$(PY) -m pytest -q

test-slow: install
	$(PY) -m pytest -q -m slow

# The C++ runtime (docs/cpp.md): fetches its dependencies once into cpp/third_party, builds into cpp/build.
cpp: install
	cpp/build.sh release $(PY)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

clean:
	rm -rf $(VENV) engines/*/ .pytest_cache .import_linter_cache cpp/build cpp/build-asan cpp/third_party
